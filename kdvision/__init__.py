"""kdvision: knowledge distillation for computer vision (classification, segmentation, restoration)."""

__version__ = "0.1.0"
