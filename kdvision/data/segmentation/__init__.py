"""Segmentation data: Cityscapes, ADE20K and PASCAL VOC 2012 on-disk layouts, joint
image+mask transforms, and the embedded "digit scenes" set."""
