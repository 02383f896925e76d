"""Diagonal Gaussian posterior N(μ, diag σ²) with a N(0, I) prior — dlib's latent space."""

import gin
import keras
import tensorflow as tf

from submission.latent.base import DIAGONAL_GAUSSIAN, LatentSpace, standard_normal


def gaussian_kl(mean, logvar, weights=1.):
  """KL(N(μ, diag e^logvar) ‖ N(0, I)) per example: ½ Σ_j w_j·(μ_j² + σ_j² − log σ_j² − 1), each dimension's term
  weighted by ``weights`` (1: the plain KL)."""
  return 0.5 * tf.reduce_sum(weights * (tf.square(mean) + tf.exp(logvar) - logvar - 1.), axis=1)


def gaussian_sample(mean, logvar, seed=None):
  """The reparameterised draw μ + σ·ε, ε ~ N(0, I) (stateless when ``seed`` is given)."""
  return mean + tf.exp(logvar / 2.) * standard_normal(tf.shape(mean), seed)


class GaussianLatent(LatentSpace):
  """dlib's heads ``means`` and ``log_var`` on the encoder trunk; z = μ + σ·ε."""

  kind = "gaussian"
  posterior = DIAGONAL_GAUSSIAN

  def configure(self, num_latent):
    self.num_latent = num_latent
    self.means = keras.layers.Dense(num_latent, name="means")
    self.log_var = keras.layers.Dense(num_latent, name="log_var")

  @property
  def code_size(self):
    return self.num_latent

  def call(self, features):
    return {"mean": self.means(features), "logvar": self.log_var(features)}

  def sample(self, params, seed=None):
    return gaussian_sample(params["mean"], params["logvar"], seed)

  def kl(self, params):
    return gaussian_kl(params["mean"], params["logvar"])

  def representation(self, params):
    return params["mean"]

  def gaussian_encoder_outputs(self, params):
    return params["mean"], params["logvar"]

  def sample_prior(self, num, seed=None):
    return standard_normal([num, self.num_latent], seed)


@gin.configurable("gaussian")
def gaussian():
  """dlib's latent space by name (``latent_space.factory = @gaussian``), the same as leaving it unbound."""
  return GaussianLatent(name="latent")
