"""ER-VAE: a VAE with a manifold-valued latent through the embedding-reparameterisation procedure
(Golikov & Kretov 2018; ``docs/models/ervae.md``).

The model differs from the β-VAE only in its latent space (``submission.latent.embedded``): the posterior lives
in a hidden space H, samples reach the decoder through a fixed map f: H → M (the exact "Projection" or a learned
WAE decoder), optionally rotated by a group-action encoder. The objective is the paper's (§2, its ELBO), with an
optional β on the KL as in dlib's ``vae``:

    L(x) = E_{h ~ q(h|x)}[−log p(x | R(x)·f(h))] + β·KL(q(h | x) ‖ p(h)),

where KL(q(h|x) ‖ p(h)) equals the KL between the induced posterior on M and the prior on M because the volume
factors √det g(h) of f cancel (Golikov & Kretov 2018, §2, App. 5.2–5.3). β = 1 is the paper's objective.
"""

import gin

from submission.errors import UserError
from submission.latent import embedded
from submission.latent.base import EMBEDDED, resolve_latent_space
from submission.models.base import GaussianEncoderModel


@gin.configurable("ervae")
class ERVAE(GaussianEncoderModel):
  """L = reconstruction + β·KL in the hidden space; the manifold, f and the group action are the latent space's.

  ``latent_space``: an ``EmbeddedManifoldLatent`` or a callable returning one (gin: ``@embedded_manifold``,
  optionally with ``()``); default ``embedded_manifold`` with its bindings.
  """

  posterior = EMBEDDED

  def __init__(self, latent_space=None, beta=1.0):
    super().__init__(name="ervae")
    if beta < 0:
      raise UserError(f"ervae.beta must be >= 0, got {beta}")
    self._latent_space = latent_space
    self.beta = float(beta)

  def make_latent_space(self):
    return resolve_latent_space(self._latent_space or embedded.embedded_manifold, "ervae.latent_space")

  def regularizer(self, kl_loss, params, z_sampled, step):
    return self.beta * kl_loss
