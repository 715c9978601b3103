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
