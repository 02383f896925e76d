"""CHyVAE (Ansari & Soh, AAAI 2019): a VAE whose prior covariance has an inverse-Wishart hyperprior.

Generative model: Σ ~ IW(Ψ, ν), z | Σ ~ N(0, Σ), x | z ~ Bernoulli(sigmoid(dec(z))), with Ψ = ψ·I and
ψ = max(ν − d − 1, 1), so that E[Σ] = I. The posterior is a full-covariance Gaussian N(μ, S)
(``submission.latent.full_covariance``). Facts and derivation: ``docs/models/chyvae.md`` §1; choices: §6.

Objective, as the authors' code computes it (no β, no annealing), minimised per batch of b images:

    loss = mean_i BCE(x_i, dec(z_i)) + mean_i KL_code(x_i),        z_i ~ q(z | x_i) for the decoder,
    KL_code(x) = (ν+1)/2 · log|Ψ + z'z'ᵀ| − ½ · log|S| + (ν+1)/2 · tr[(S + μμᵀ + Ψ)(Ψ + z'z'ᵀ)⁻¹],

with z' ~ q(z | x) a second, independent reparameterised sample used only here (drawn from its own stateless
stream of the step's seed). With q(Σ | z') = IW(Ψ + z'z'ᵀ, ν + 1), the conjugate posterior of Σ given one latent,

    KL_code + C = E_{Σ~q(Σ|z')}[KL(N(μ, S) ‖ N(0, Σ))] + KL(IW(Ψ + z'z'ᵀ, ν+1) ‖ IW(Ψ, ν)),
    C = −ν/2 · log|Ψ| + log Γ_d(ν/2) − log Γ_d((ν+1)/2) − (ν+2)·d/2 − (d/2)·log 2,

so ``regularizer`` = mean KL_code (what is minimised, as in the authors' code) and ``kl_loss`` = mean (KL_code + C)
(the hierarchical model's KL-like term, which ``elbo`` uses). As ν → ∞ it tends to KL(N(μ, S) ‖ N(0, I)).
KL_code itself is large (≈ 6,300 at d = 10, ν = 200, almost all of it ν-dependent constant-like log-determinants),
so ``regularizer`` and ``loss`` are dominated by it; ``kl_loss`` is that minus C, computed in float32, which leaves
about 1e-3 nats of rounding in it.

Choice (``docs/models/chyvae.md`` §6): the per-example form above is the default, because it is what the released
code computes (``_regularizer(..., B=1)`` with each example's own z'z'ᵀ, then a batch mean), and so what the reported
results were trained with. ``chyvae.batch_form = True`` switches to the form derived in ``docs/models/chyvae.md`` §1
for one Σ shared by the batch, q(Σ | Z') = IW(Ψ + Σ_i z'_i z'_iᵀ, ν + b):

    KL_batch = (ν+b)/2 · log|Ψ + Σ_i z'_i z'_iᵀ| − ½ Σ_i log|S_i|
               + (ν+b)/2 · tr[(Σ_i (S_i + μ_iμ_iᵀ) + Ψ)(Ψ + Σ_i z'_i z'_iᵀ)⁻¹],
    C_b = −ν/2 · log|Ψ| + log Γ_d(ν/2) − log Γ_d((ν+b)/2) − (ν+2b)·d/2 − (b·d/2)·log 2,

divided by b so that it is on the per-example scale of the reconstruction term (regularizer = KL_batch / b,
kl_loss = (KL_batch + C_b) / b). Its value depends on the batch size.
"""

import math

import gin
import tensorflow as tf

from submission.latent.base import derived_seed
from submission.latent.full_covariance import FullCovarianceLatent, log_det_from_cholesky
from submission.models.base import GaussianEncoderModel


# The random stream of z' (the decoder's z uses the step seed itself).
REGULARIZER_STREAM = 1


def _outer(vectors):
  return vectors[..., :, None] * vectors[..., None, :]


def _kl_code(scatter, moments, log_det_covariance, count, psi_scale, nu):
  """(ν + n)/2·log det(Ψ + Z) − ½·log det S + (ν + n)/2·tr((Ψ + Z)⁻¹(M + Ψ)) for n latents with scatter Z = Σ z'z'ᵀ,
  moments M = Σ (S + μμᵀ) and log det S = Σ log det S (sums over the n examples, or per example with n = 1)."""
  psi = psi_scale * tf.eye(tf.shape(moments)[-1], dtype=moments.dtype)
  posterior_cholesky = tf.linalg.cholesky(psi + scatter)  # Ψ + Z, positive definite because Ψ is
  trace = tf.linalg.trace(tf.linalg.cholesky_solve(posterior_cholesky, moments + psi))
  return ((nu + count) / 2. * log_det_from_cholesky(posterior_cholesky) - 0.5 * log_det_covariance
          + (nu + count) / 2. * trace)


def kl_code(mean, covariance, covariance_cholesky, z_prime, psi_scale, nu):
  """KL_code per example [B] (the authors' regulariser, B = 1): inputs μ [B, d], S and chol(S) [B, d, d], z' [B, d]."""
  return _kl_code(_outer(z_prime), covariance + _outer(mean), log_det_from_cholesky(covariance_cholesky), 1.,
                  psi_scale, nu)


def kl_code_batch(mean, covariance, covariance_cholesky, z_prime, psi_scale, nu):
  """KL_batch, a scalar for the whole batch (one Σ shared by the b examples)."""
  return _kl_code(tf.reduce_sum(_outer(z_prime), axis=0), tf.reduce_sum(covariance + _outer(mean), axis=0),
                  tf.reduce_sum(log_det_from_cholesky(covariance_cholesky)), tf.cast(tf.shape(mean)[0], mean.dtype),
                  psi_scale, nu)


def log_multivariate_gamma(a, d):
  """log Γ_d(a) = d(d−1)/4 · log π + Σ_{j=1..d} log Γ(a + (1 − j)/2)  (``a`` a float64 tensor)."""
  return d * (d - 1) / 4. * math.log(math.pi) + tf.add_n(
      [tf.math.lgamma(a + (1. - j) / 2.) for j in range(1, d + 1)])


def kl_code_constant(psi_scale, nu, d, batch_size=1):
  """C_b (C for b = 1), in float64: KL_code + C_b is the KL-like term of the hierarchical model."""
  b = tf.cast(batch_size, tf.float64)
  nu = tf.constant(float(nu), tf.float64)
  return (-nu / 2. * d * math.log(psi_scale) + log_multivariate_gamma(nu / 2., d)
          - log_multivariate_gamma((nu + b) / 2., d) - (nu + 2. * b) * d / 2. - b * d / 2. * math.log(2.))


@gin.configurable("chyvae")
class CHyVAE(GaussianEncoderModel):
  """loss = reconstruction + mean KL_code (per example, default) or KL_batch / b (``batch_form=True``)."""

  def __init__(self, nu=gin.REQUIRED, batch_form=False):
    super().__init__(name="chyvae")
    self.nu = float(nu)
    self.batch_form = bool(batch_form)

  def make_latent_space(self):  # its own, whatever latent_space.factory says: ν belongs to the model
    return FullCovarianceLatent(nu=self.nu, name="latent")

  def hyperprior_kl(self, params, z_prime):
    """(regularizer, kl_loss): batch means of KL_code and KL_code + C, or KL_batch / b and (KL_batch + C_b) / b."""
    args = (params["mean"], params["covariance"], params["scale_tril"], z_prime, self.latent.psi_scale, self.nu)
    d = self.latent.num_latent
    if self.batch_form:
      batch_size = tf.shape(z_prime)[0]
      b = tf.cast(batch_size, z_prime.dtype)
      regularizer = kl_code_batch(*args) / b
      constant = tf.cast(kl_code_constant(self.latent.psi_scale, self.nu, d, batch_size), z_prime.dtype) / b
    else:
      regularizer = tf.reduce_mean(kl_code(*args))
      constant = tf.cast(kl_code_constant(self.latent.psi_scale, self.nu, d), z_prime.dtype)
    return regularizer, regularizer + constant

  def kl_and_regularizer(self, params, z_sampled, seed, step):
    """(mean KL_code + C, mean KL_code) with z' ~ q(z | x), drawn independently of the decoder's z."""
    del z_sampled, step  # no schedule; the decoder's sample must not enter the hyperprior term
    z_prime = self.latent.sample(params, derived_seed(seed, REGULARIZER_STREAM))
    regularizer, kl_loss = self.hyperprior_kl(params, z_prime)
    return kl_loss, regularizer
