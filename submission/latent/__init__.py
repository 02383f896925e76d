"""Latent spaces: posterior family, reparameterised sampler, KL to the prior, exported representation."""

from submission.latent.base import LatentSpace
from submission.latent.gaussian import GaussianLatent

__all__ = ["LatentSpace", "GaussianLatent"]
