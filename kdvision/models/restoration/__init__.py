"""Restoration networks: the KTDN / SRKTDN dehazing students and the KTDN teacher autoencoder.

Registered models: "ktdn", "srktdn", "ktdn_teacher" (see ktdn.py).
"""
