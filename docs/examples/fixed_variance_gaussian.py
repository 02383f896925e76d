"""A Gaussian latent space with a fixed posterior variance, the example latent space of docs/extending.md.

q(z|x) = N(μ(x), σ²·I) with σ² = ``fixed_variance_gaussian.variance`` (gin), prior N(0, I): the encoder learns
only the mean. Its parameters are a diagonal Gaussian's (``mean``, ``logvar``), so every model that reads them
(``dip_vae``, ``beta_tc_vae``, the L1-VAE of ``l1_vae.py``) accepts it. Select it on any such model with

    import docs.examples.fixed_variance_gaussian
    latent_space.factory = @fixed_variance_gaussian
"""

import math

import gin
import keras
import tensorflow as tf

from submission.errors import UserError
from submission.latent.gaussian import GaussianLatent


class FixedVarianceGaussian(GaussianLatent):
  """dlib's Gaussian latent space without its ``log_var`` head; sampling, KL, export and prior are inherited."""

  kind = "fixed_variance_gaussian"  # its gin name, recorded in the model card

  def __init__(self, variance, **kwargs):
    super().__init__(**kwargs)
    self.log_variance = math.log(variance)

  def configure(self, num_latent):
    self.num_latent = num_latent
    self.means = keras.layers.Dense(num_latent, name="means")

  def call(self, features):
    mean = self.means(features)
    return {"mean": mean, "logvar": tf.zeros_like(mean) + self.log_variance}


@gin.configurable("fixed_variance_gaussian")
def fixed_variance_gaussian(variance=0.1):
  if not variance > 0:
    raise UserError(f"fixed_variance_gaussian.variance must be positive, got {variance!r}")
  return FixedVarianceGaussian(variance, name="latent")
