"""L1-VAE, the example model of docs/extending.md: a β-VAE whose regulariser adds an L1 penalty on the posterior
means, which pushes the means of unused code dimensions towards 0.

    L = E_q[−log p(x|z)] + β·KL(q(z|x) ‖ p(z)) + λ·mean_b Σ_j |μ_bj|

Importing this module registers the gin name ``l1_vae``; its config, ``docs/examples/l1_vae.gin``, does so with a
gin ``import`` line, so nothing in the library lists it.
"""

import gin
import tensorflow as tf

from submission.latent.base import DIAGONAL_GAUSSIAN
from submission.models.base import GaussianEncoderModel


@gin.configurable("l1_vae")
class L1VAE(GaussianEncoderModel):
  """β·KL + λ·|μ|₁; reports the L1 term as ``l1_penalty`` beside the other loss terms."""

  posterior = DIAGONAL_GAUSSIAN  # the penalty reads the posterior's mean: a latent space without one is refused

  def __init__(self, beta=1., l1_weight=gin.REQUIRED):
    super().__init__(name="l1_vae")
    self.beta, self.l1_weight = beta, l1_weight

  def regularizer(self, kl_loss, params, z_sampled, step):
    return self.beta * kl_loss + self.l1_weight * l1_penalty(params)

  def objective(self, images, params, seed, step):
    terms, params, z = super().objective(images, params, seed, step)
    terms["l1_penalty"] = l1_penalty(params)  # every term is logged, in TensorBoard and train_results.json
    return terms, params, z


def l1_penalty(params):
  """mean_b Σ_j |μ_bj|: the batch mean of the L1 norm of the posterior means."""
  return tf.reduce_mean(tf.reduce_sum(tf.abs(params["mean"]), axis=1))
