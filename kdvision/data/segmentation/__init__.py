"""Segmentation data: Cityscapes, ADE20K and PASCAL VOC 2012 on-disk layouts, the generic
``seg_folder`` layout for a user's own classes, joint image+mask transforms, and the embedded
"digit scenes" set."""
