"""Evaluation metrics for every task."""
from kdvision.metrics.classification import accuracy
from kdvision.metrics.segmentation import ConfusionMatrix, confusion_matrix, miou
from kdvision.metrics.restoration import psnr, ssim, psnr_per_image, ssim_per_image
