"""DIP-VAE-I/II (Kumar et al. 2018), dlib's ``dip_vae``.

Regulariser: KL + λ_od Σ_{i≠j} C_ij² + λ_d Σ_i (C_ii − 1)², λ_d = lambda_d_factor·λ_od, where C is the batch
covariance of the posterior means (type "i") or that plus the mean posterior variance diag(E[σ²]) (type "ii").
The covariance is the biased one (divides by B), as in dlib.
"""

import gin
import tensorflow as tf

from submission.errors import UserError
from submission.latent.base import DIAGONAL_GAUSSIAN
from submission.models.base import GaussianEncoderModel


def compute_covariance_z_mean(z_mean):
  """Cov[μ] = E[μμᵀ] − E[μ]E[μ]ᵀ over the batch."""
  mean = tf.reduce_mean(z_mean, axis=0, keepdims=True)
  second_moment = tf.matmul(z_mean, z_mean, transpose_a=True) / tf.cast(tf.shape(z_mean)[0], z_mean.dtype)
  return second_moment - tf.matmul(mean, mean, transpose_a=True)


def regularize_diag_off_diag_dip(covariance, lambda_od, lambda_d):
  """λ_od Σ_{i≠j} C_ij² + λ_d Σ_i (C_ii − 1)²."""
  diagonal = tf.linalg.diag_part(covariance)
  off_diagonal = covariance - tf.linalg.diag(diagonal)
  return lambda_od * tf.reduce_sum(tf.square(off_diagonal)) + lambda_d * tf.reduce_sum(tf.square(diagonal - 1.))


def check_dip_type(dip_type, binding="dip_vae.dip_type"):
  if dip_type not in ("i", "ii"):
    raise UserError(f"{binding} must be 'i' or 'ii', got {dip_type!r}")
  return dip_type


def dip_covariance(z_mean, z_logvar, dip_type):
  covariance = compute_covariance_z_mean(z_mean)
  if check_dip_type(dip_type) == "ii":
    covariance += tf.linalg.diag(tf.reduce_mean(tf.exp(z_logvar), axis=0))
  return covariance


def dip_regularizer(kl_loss, params, lambda_od, lambda_d, dip_type):
  """KL + the DIP moment penalty on the posterior means (and variances, type "ii") of ``params``."""
  covariance = dip_covariance(params["mean"], params["logvar"], dip_type)
  return kl_loss + regularize_diag_off_diag_dip(covariance, lambda_od, lambda_d)


@gin.configurable("dip_vae")
class DIPVAE(GaussianEncoderModel):
  """L = reconstruction + KL + DIP moment penalty."""

  posterior = DIAGONAL_GAUSSIAN

  def __init__(self, lambda_od=gin.REQUIRED, lambda_d_factor=gin.REQUIRED, dip_type="i"):
    super().__init__(name="dip_vae")
    self.lambda_od = lambda_od
    self.lambda_d = lambda_d_factor * lambda_od
    self.dip_type = check_dip_type(dip_type)

  def regularizer(self, kl_loss, params, z_sampled, step):
    return dip_regularizer(kl_loss, params, self.lambda_od, self.lambda_d, self.dip_type)
