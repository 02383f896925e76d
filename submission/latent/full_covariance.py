"""Full-covariance Gaussian posterior N(μ, S), with an optional inverse-Wishart hyperprior on the prior covariance.

Posterior (CHyVAE, ``docs/models/chyvae.md`` §1): the encoder trunk feeds two heads, ``means`` (μ ∈ R^d)
and ``covariance_factor`` (a raw d×d matrix A). L is the lower triangle of A, diagonal included, with the diagonal
replaced by softplus(diag A) + 1e-4; the strictly upper part is ignored. The covariance is

    S = L·Lᵀ + 1e-4·I,

and samples are z = μ + chol(S)·ε (what the authors' ``MultivariateNormalFullCovariance(μ, S)`` does), so gradients
flow through the samples. Exported: ``mean_representation`` = μ, ``gaussian_encoder`` = (μ, log diag S).

Prior: with ``nu=None``, N(0, I). With ``nu = ν``, the hierarchical prior of CHyVAE,
Σ ~ IW(Ψ, ν) with Ψ = ψ·I, ψ = max(ν − d − 1, 1) (so E[Σ] = Ψ/(ν − d − 1) = I when ν ≥ d + 2), then z | Σ ~ N(0, Σ).
``sample_prior`` draws one Σ per latent vector, i.e. independent draws of the marginal p(z) (a multivariate t); the
authors' picture code instead shares each Σ among a tenth of its samples, which shows the same marginal grouped.
``kl`` is KL(N(μ, S) ‖ N(0, I)): exact for ``nu=None`` and the ν → ∞ limit of CHyVAE's term. CHyVAE's own
KL-like term needs a second posterior sample and is computed by the model (``submission.models.chyvae``).
"""

import keras
import tensorflow as tf

from submission.errors import UserError
from submission.latent.base import FULL_COVARIANCE_GAUSSIAN, LatentSpace, split_seed, standard_normal

DIAGONAL_EPSILON = 1e-4  # added to softplus(diag A): the authors' value
COVARIANCE_JITTER = 1e-4  # added to L·Lᵀ: the authors' value


# --- pure functions ---------------------------------------------------------------------------------------------
def lower_triangular_factor(raw):
  """L from a raw [..., d, d] head output: its lower triangle, with softplus(diagonal) + 1e-4 on the diagonal."""
  lower = tf.linalg.band_part(raw, -1, 0)
  return tf.linalg.set_diag(lower, tf.nn.softplus(tf.linalg.diag_part(raw)) + DIAGONAL_EPSILON)


def posterior_covariance(factor):
  """S = L·Lᵀ + 1e-4·I."""
  d = tf.shape(factor)[-1]
  return tf.matmul(factor, factor, transpose_b=True) + COVARIANCE_JITTER * tf.eye(d, dtype=factor.dtype)


def log_det_from_cholesky(cholesky):
  """log |M| = 2·Σ log diag chol(M)."""
  return 2. * tf.reduce_sum(tf.math.log(tf.linalg.diag_part(cholesky)), axis=-1)


def gaussian_kl_full_covariance(mean, covariance, covariance_cholesky=None):
  """KL(N(μ, S) ‖ N(0, I)) = ½ (tr S + μᵀμ − d − log|S|), per example."""
  if covariance_cholesky is None:
    covariance_cholesky = tf.linalg.cholesky(covariance)
  d = tf.cast(tf.shape(mean)[-1], mean.dtype)
  return 0.5 * (tf.linalg.trace(covariance) + tf.reduce_sum(tf.square(mean), axis=-1) - d
                - log_det_from_cholesky(covariance_cholesky))


def inverse_wishart_scale(nu, d):
  """ψ in Ψ = ψ·I: max(ν − d − 1, 1), so that the prior mean of Σ is I (the authors' choice)."""
  return max(float(nu) - d - 1., 1.)


def check_degrees_of_freedom(nu, d):
  if not float(nu) > d - 1:
    raise UserError(f"the inverse-Wishart needs nu > d - 1 degrees of freedom (d = encoder.num_latent = {d}); "
                     f"got nu = {nu}. The authors require nu > d + 1, where the prior mean of Sigma is I.")


def _gamma(num, alpha, seed, dtype):
  """Gamma(α_j, 1) draws, [num, len(α)] (the stateful op appends α's shape; the stateless one broadcasts)."""
  if seed is None:
    return tf.random.gamma([num], alpha, dtype=dtype)
  return tf.random.stateless_gamma([num, tf.shape(alpha)[0]], seed, alpha=alpha, dtype=dtype)


def bartlett_factor(nu, d, num, seed=None, dtype=tf.float32):
  """T [num, d, d] with T·Tᵀ ~ Wishart(ν, I): T_jj = sqrt(χ²_{ν−j+1}) (j = 1..d), N(0, 1) below the diagonal."""
  check_degrees_of_freedom(nu, d)
  chi_seed, normal_seed = split_seed(seed, 2)
  alpha = (float(nu) - tf.range(d, dtype=dtype)) / 2.
  chi_square = 2. * _gamma(num, alpha, chi_seed, dtype)
  below = tf.linalg.band_part(standard_normal([num, d, d], normal_seed, dtype), -1, 0)
  return tf.linalg.set_diag(below, tf.sqrt(chi_square))


def sample_inverse_wishart(psi_scale, nu, d, num, seed=None, dtype=tf.float32):
  """Σ ~ IW(ψ·I, ν), [num, d, d]: the inverse of W = T·Tᵀ/ψ ~ Wishart(ν, Ψ⁻¹) (Bartlett, as the authors do)."""
  factor = bartlett_factor(nu, d, num, seed, dtype)
  identity = tf.eye(d, batch_shape=[num], dtype=dtype)
  inverse_factor = tf.linalg.triangular_solve(factor, identity, lower=True)  # T⁻¹
  return psi_scale * tf.matmul(inverse_factor, inverse_factor, transpose_a=True)  # ψ·T⁻ᵀT⁻¹ = (T·Tᵀ/ψ)⁻¹


def sample_hierarchical_prior(psi_scale, nu, d, num, seed=None, dtype=tf.float32):
  """z ~ N(0, Σ), Σ ~ IW(ψ·I, ν), one Σ per row: z = √ψ·T⁻ᵀ·ε has covariance ψ·(T·Tᵀ)⁻¹ = Σ given T."""
  factor_seed, noise_seed = split_seed(seed, 2)
  factor = bartlett_factor(nu, d, num, factor_seed, dtype)
  noise = standard_normal([num, d, 1], noise_seed, dtype)
  z = tf.linalg.triangular_solve(factor, noise, lower=True, adjoint=True)
  return tf.sqrt(tf.cast(psi_scale, dtype)) * z[..., 0]


# --- the latent space -------------------------------------------------------------------------------------------
class FullCovarianceLatent(LatentSpace):
  """Heads ``means`` (Dense(d)) and ``covariance_factor`` (Dense(d·d)). Params: ``mean`` [B, d], ``covariance`` S
  [B, d, d] and ``scale_tril`` = chol(S) [B, d, d]."""

  kind = "full_covariance"  # made by chyvae itself
  posterior = FULL_COVARIANCE_GAUSSIAN

  def __init__(self, nu=None, **kwargs):
    super().__init__(**kwargs)
    self.nu = None if nu is None else float(nu)

  def configure(self, num_latent):
    if num_latent < 1:
      raise UserError(f"encoder.num_latent must be >= 1, got {num_latent}")
    self.num_latent = int(num_latent)
    if self.nu is not None:
      check_degrees_of_freedom(self.nu, self.num_latent)
    self.psi_scale = None if self.nu is None else inverse_wishart_scale(self.nu, self.num_latent)
    self.means = keras.layers.Dense(self.num_latent, name="means")
    self.covariance_factor = keras.layers.Dense(self.num_latent**2, name="covariance_factor")

  @property
  def code_size(self):
    return self.num_latent

  def call(self, features):
    raw = tf.reshape(self.covariance_factor(features), [-1, self.num_latent, self.num_latent])
    covariance = posterior_covariance(lower_triangular_factor(raw))
    return {"mean": self.means(features), "covariance": covariance, "scale_tril": tf.linalg.cholesky(covariance)}

  def sample(self, params, seed=None):
    mean = params["mean"]
    noise = standard_normal(tf.shape(mean), seed, dtype=mean.dtype)
    return mean + tf.linalg.matvec(params["scale_tril"], noise)

  def kl(self, params):
    return gaussian_kl_full_covariance(params["mean"], params["covariance"], params["scale_tril"])

  def representation(self, params):
    return params["mean"]

  def gaussian_encoder_outputs(self, params):
    return params["mean"], tf.math.log(tf.linalg.diag_part(params["covariance"]))

  def sample_prior(self, num, seed=None):
    if self.nu is None:
      return standard_normal([num, self.num_latent], seed)
    return sample_hierarchical_prior(self.psi_scale, self.nu, self.num_latent, num, seed)
