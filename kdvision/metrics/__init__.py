"""Evaluation metrics for every task."""
from kdvision.metrics.classification import accuracy
from kdvision.metrics.restoration import psnr, ssim, psnr_per_image, ssim_per_image
from kdvision.metrics.segmentation import ConfusionMatrix, confusion_matrix, miou
