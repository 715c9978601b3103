"""Distillation losses: pure functions of tensors, one family per file, each citing its paper."""
from kdvision.losses.kd import kd_loss
from kdvision.losses.attention import at_loss, attention_map
from kdvision.losses.feature import fitnet_loss
