"""AnnealedVAE (Burgess et al. 2018), dlib's ``annealed_vae``: γ·|KL − C(t)| with a linearly growing capacity."""

import gin
import tensorflow as tf

from submission.models.base import GaussianEncoderModel


def anneal(c_max, step, iteration_threshold):
  """C(t) = min(c_max, c_max·t / iteration_threshold)."""
  return tf.minimum(c_max * 1., c_max * 1. * tf.cast(step, tf.float32) / iteration_threshold)


@gin.configurable("annealed_vae")
class AnnealedVAE(GaussianEncoderModel):
  """L = reconstruction + γ·|KL − C(t)|, t the global step."""

  def __init__(self, gamma=gin.REQUIRED, c_max=gin.REQUIRED, iteration_threshold=gin.REQUIRED):
    super().__init__(name="annealed_vae")
    self.gamma = gamma
    self.c_max = c_max
    self.iteration_threshold = iteration_threshold

  def regularizer(self, kl_loss, params, z_sampled, step):
    capacity = anneal(self.c_max, step, self.iteration_threshold)
    return self.gamma * tf.abs(kl_loss - capacity)
