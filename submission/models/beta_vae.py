"""β-VAE (Higgins et al. 2017), dlib's ``vae``: regulariser β·KL."""

import gin

from submission.models.base import GaussianEncoderModel


@gin.configurable("vae")
class BetaVAE(GaussianEncoderModel):
  """L = E_q[−log p(x|z)] + β·KL(q(z|x) ‖ p(z))."""

  def __init__(self, beta=gin.REQUIRED):
    super().__init__(name="vae")
    self.beta = beta

  def regularizer(self, kl_loss, params, z_sampled, step):
    return self.beta * kl_loss
