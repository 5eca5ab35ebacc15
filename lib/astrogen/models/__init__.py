"""Generative and discriminative models: flows, invertible networks, GANs, autoencoders."""
