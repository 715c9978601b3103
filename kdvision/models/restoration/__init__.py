"""Restoration networks: the KTDN / SRKTDN dehazing students and the KTDN teacher autoencoder.

Registered models: "ktdn", "srktdn", "ktdn_teacher" (ktdn.py) and "tkl_unet" (restoration_unet.py,
with the VGG-19 features of its contrastive terms in vgg19_features.py).
"""
