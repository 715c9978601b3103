"""Distillation losses: pure functions of tensors, one family per file, each citing its paper."""
from kdvision.losses.kd import kd_loss
from kdvision.losses.attention import at_loss, attention_map
from kdvision.losses.feature import fitnet_loss
from kdvision.losses.similarity import sp_loss, similarity_matrix
from kdvision.losses.pixel_kd import pixel_kd_loss
from kdvision.losses.prototypes import class_prototypes, perspective_logits
from kdvision.losses.restoration import l1, laplacian_pyramid_l1, lab_mse, rgb_to_lab, feature_transfer_l1
from kdvision.losses.contrastive import contrastive_regularization
from kdvision.losses.collaborative import pfe_loss, pfv_loss
from kdvision.losses.dkd import dkd_terms
from kdvision.losses.logit_standardization import standardize_logits
from kdvision.losses.dist import dist_terms
from kdvision.losses.multi_teacher import multi_teacher_kd_loss
from kdvision.losses.relational import rkd_distance_loss, rkd_angle_loss, pkt_loss
from kdvision.losses.crd import nce_loss
from kdvision.losses.nst import nst_loss
from kdvision.losses.variational import vid_loss
from kdvision.losses.overhaul import ofd_loss, bn_margin
from kdvision.losses.review import hcl_loss
from kdvision.losses.channel_wise import cwd_loss
