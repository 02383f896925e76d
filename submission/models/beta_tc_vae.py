"""β-TCVAE (Chen et al. 2018), dlib's ``beta_tc_vae``: KL + (β − 1)·TC, TC by minibatch-weighted sampling.

As in dlib the estimator omits the data-set-size constant (d − 1)·log(B·N): it shifts the loss, not the
gradients.
"""

import math

import gin
import tensorflow as tf

from submission.latent.base import DIAGONAL_GAUSSIAN
from submission.models.base import GaussianEncoderModel


def gaussian_log_density(samples, mean, log_var):
  """log N(samples; mean, e^log_var), elementwise."""
  return -0.5 * (tf.square(samples - mean) * tf.exp(-log_var) + log_var + math.log(2. * math.pi))


def total_correlation(z, z_mean, z_logvar):
  """mean_j [log q(z_j) − Σ_l log q(z_jl)] with q(z_j) ≈ (1/B)Σ_i q(z_j | x_i), the 1/B dropped."""
  # log_qz_prob[j, i, l] = log q(z_jl | x_i)
  log_qz_prob = gaussian_log_density(z[:, None, :], z_mean[None, :, :], z_logvar[None, :, :])
  log_qz_product = tf.reduce_sum(tf.reduce_logsumexp(log_qz_prob, axis=1), axis=1)
  log_qz = tf.reduce_logsumexp(tf.reduce_sum(log_qz_prob, axis=2), axis=1)
  return tf.reduce_mean(log_qz - log_qz_product)


@gin.configurable("beta_tc_vae")
class BetaTCVAE(GaussianEncoderModel):
  """L = reconstruction + KL + (β − 1)·TC."""

  posterior = DIAGONAL_GAUSSIAN  # the total correlation estimate reads mean and logvar

  def __init__(self, beta=gin.REQUIRED):
    super().__init__(name="beta_tc_vae")
    self.beta = beta

  def regularizer(self, kl_loss, params, z_sampled, step):
    tc = (self.beta - 1.) * total_correlation(z_sampled, params["mean"], params["logvar"])
    return tc + kl_loss
