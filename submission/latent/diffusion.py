"""Diffusion latent spaces (ΔVAE, Pérez Rey, Menkovski & Portegies 2019): the hypersphere S^d and the torus (S¹)^k.

The posterior q(z | x) is the heat kernel of the manifold, i.e. the law of Brownian motion (generator ½Δ) started
at a location μ_Z and run for a time t. It is sampled with a projected random walk and compared to the uniform prior
with a closed-form small-t KL. Formulas, checked numbers and sources: ``docs/models/deltavae.md`` (§1, §2, §6, §7).

Dimension convention (``encoder.num_latent``): it is the *intrinsic* dimension, as in the ΔVAE papers. Pérez Rey 2019's
"d = 10" is ``encoder.num_latent = 10`` and means S^10 ⊂ R^11, so the decoder input and the exported
representation have d + 1 = 11 columns. For the torus, ``num_latent = k`` circles, exported as k (cos, sin) pairs
(2k columns).

Pure functions first (usable on their own and tested against the table of ``docs/models/deltavae.md`` §2), then the two
``LatentSpace`` classes and their gin factories ``hypersphere`` and ``torus``. Keras layers cannot be
``@gin.configurable`` themselves (gin's wrapped ``__init__`` breaks Keras' ``__new__``), hence the factories.
"""

import math

import gin
import keras
import tensorflow as tf

from submission.errors import UserError
from submission.latent.base import DIFFUSION, SPHERE, TORUS, LatentSpace, split_seed, standard_normal
from submission.latent.manifolds import Sphere, Torus, nearest_on_sphere

# Defaults of the authors' ΔVAE code (diffusion_vae, ``Encoder``: min_log_t = −7.5, max_log_t = −5.0), i.e.
# t ∈ [5.5e-4, 6.7e-3]; docs/models/deltavae.md §1. The later lsbd-vae code uses (−10, −6) instead.
LOG_T_MIN = -7.5
LOG_T_MAX = -5.0
# The authors' default walk length (``DiffusionVAEParams(steps=10)``); Pérez Rey 2019's submission used L = 5.
NUM_STEPS = 10


# --- pure functions ---------------------------------------------------------------------------------------------
def log_volume_sphere(d, dtype=tf.float32):
  """log Vol(S^d) = log 2 + ((d+1)/2)·log π − lgamma((d+1)/2); e.g. S¹: log 2π, S²: log 4π."""
  d = tf.cast(d, dtype)
  half = (d + 1.) / 2.
  return math.log(2.) + half * math.log(math.pi) - tf.math.lgamma(half)


def sphere_kl_to_uniform(log_t, d):
  """KL(q_t(μ, ·) ‖ Uniform(S^d)) ≈ −(d/2)·log(2πt) − d/2 + log Vol(S^d) + d(d−1)·t/4   (Pérez Rey 2019, eq. 3).

  The small-t expansion of the heat-kernel entropy; the curvature term is S·t/4 with S = d(d−1) the scalar
  curvature of the unit sphere (the released code and the derivation in ``docs/models/deltavae.md`` §2 agree; an
  older copy of the code had (d+4)·S·t/24). It depends on log t only, not on μ (the sphere is homogeneous). It is
  valid for t ≪ 2/(d−1); the tanh bound on log t keeps t there. For d = 1 (a circle, flat) it is the exact entropy of a
  Gaussian of variance t, −½·log(2πe·t) + log 2π, as long as √t ≪ π (wrapping negligible).
  """
  log_t = tf.convert_to_tensor(log_t)
  dtype = log_t.dtype
  half_d = d / 2.
  return (-half_d * (log_t + math.log(2. * math.pi)) - half_d + log_volume_sphere(d, dtype)
          + d * (d - 1) / 4. * tf.exp(log_t))


def projected_random_walk(loc, t, num_steps, seed=None):
  """A reparameterised sample of Brownian motion on the unit sphere: z_0 = loc, z_{l+1} = P(z_l + √(t/L)·ε_l), P the
  nearest point of the sphere (``manifolds.nearest_on_sphere``).

  ``loc``: points on the sphere, shape [..., n] (n = d + 1, the ambient dimension; the projection acts on the last
  axis, so [B, k, 2] walks k independent circles). ``t``: diffusion time, broadcastable to ``loc`` (e.g. [..., 1]).
  ε_l ~ N(0, I_n) in the full ambient space. ``seed``: optional stateless seed (int [2]); it is split into one seed
  per step, so the same seed gives the same walk.

  Step size √(t/L), not t as Algorithm 1 of Pérez Rey 2019 writes (ε·t): L steps of variance t/L per coordinate add
  up to variance t, so as L → ∞ the walk converges to Brownian motion with generator ½Δ run for time t, the process
  whose heat-kernel entropy gives the KL above (E[geodesic distance²] ≈ d·t). With ε·t the variance would be L·t²,
  which is neither the heat kernel of the KL nor independent of L. The authors' code (diffusion_vae, lsbd-vae) scales
  the noise by exp(½·log t)/√L, i.e. √(t/L). Gradients flow to ``loc`` and ``t`` through every step.
  """
  if num_steps < 1:
    raise ValueError(f"the random walk needs num_steps >= 1, got {num_steps}")
  loc = tf.convert_to_tensor(loc)
  step_scale = tf.sqrt(tf.cast(t, loc.dtype) / num_steps)
  z = loc
  for step_seed in split_seed(seed, num_steps):
    z = nearest_on_sphere(z + step_scale * standard_normal(tf.shape(loc), step_seed, dtype=loc.dtype))
  return z


def circle_kl_to_uniform(log_t):
  """KL(q_t ‖ Uniform(S¹)) = −½·log(2πt) − ½ + log(2π): ``sphere_kl_to_uniform`` with d = 1 (no curvature)."""
  return sphere_kl_to_uniform(log_t, 1)


def torus_kl_to_uniform(log_t):
  """KL to the uniform prior on the flat torus (S¹)^k: the sum of the k circles' KLs (``log_t``: [..., k])."""
  return tf.reduce_sum(circle_kl_to_uniform(log_t), axis=-1)


def torus_random_walk(loc, t, num_steps, seed=None):
  """Independent projected random walks on k circles: ``loc`` [B, 2k] as (cos, sin) pairs, ``t`` [B, k]."""
  num_circles = tf.shape(t)[-1]
  pairs = tf.reshape(loc, [-1, num_circles, 2])
  walked = projected_random_walk(pairs, t[..., tf.newaxis], num_steps, seed)
  return tf.reshape(walked, tf.shape(loc))


def bounded_log_t(pre_activation, log_t_min, log_t_max):
  """log t = c + h·tanh(a), c = (max + min)/2, h = (max − min)/2: maps R onto (log_t_min, log_t_max)."""
  centre, half_width = (log_t_max + log_t_min) / 2., (log_t_max - log_t_min) / 2.
  return centre + half_width * tf.tanh(pre_activation)


# --- latent spaces ----------------------------------------------------------------------------------------------
class _DiffusionLatent(LatentSpace):
  """Shared parts: the log-t head (bounded by a scaled tanh or unbounded) and the walk settings."""

  posterior = DIFFUSION

  def __init__(self, log_t_min=LOG_T_MIN, log_t_max=LOG_T_MAX, num_steps=NUM_STEPS, bounded=True, **kwargs):
    super().__init__(**kwargs)
    if bounded and not log_t_min < log_t_max:
      raise UserError(f"log_t_min must be below log_t_max, got {log_t_min} and {log_t_max}")
    if int(num_steps) != num_steps or num_steps < 1:
      raise UserError(f"num_steps (the random-walk length L) must be a positive integer, got {num_steps}")
    self.log_t_min = float(log_t_min)
    self.log_t_max = float(log_t_max)
    self.num_steps = int(num_steps)
    self.bounded = bool(bounded)

  def _log_t(self, features):
    pre_activation = self.log_var(features)
    if self.bounded:
      return bounded_log_t(pre_activation, self.log_t_min, self.log_t_max)
    return pre_activation

  def summaries(self, params):
    return {"mean_log_t": tf.reduce_mean(params["log_t"])}


class HypersphereLatent(_DiffusionLatent):
  """S^d ⊂ R^{d+1} with a uniform prior; ``configure(num_latent)`` takes d (the intrinsic dimension).

  Heads on the encoder trunk: ``means`` (Dense(d+1), μ_Z = P(head)) and ``log_var`` (Dense(1), log t; the names
  are dlib's so the variables sit where dlib's Gaussian heads would). Params: ``loc`` [B, d+1], ``log_t`` [B, 1].
  Exported: ``mean_representation`` = μ_Z (d+1 unit-norm columns); ``gaussian_encoder`` = (μ_Z, log t repeated
  over the d+1 columns), log t being the per-direction variance of the posterior's tangent-plane approximation.
  """

  kind = "hypersphere"
  geometry = SPHERE

  def configure(self, num_latent):
    if num_latent < 1:
      raise UserError(f"encoder.num_latent is the sphere's dimension d (S^d in R^(d+1)); got {num_latent}")
    self.dim = int(num_latent)
    self.manifold = Sphere(self.dim)
    self.means = keras.layers.Dense(self.dim + 1, name="means")
    self.log_var = keras.layers.Dense(1, name="log_var")

  @property
  def code_size(self):
    return self.dim + 1

  def call(self, features):
    return {"loc": self.manifold.nearest_point(self.means(features)), "log_t": self._log_t(features)}

  def sample(self, params, seed=None):
    return projected_random_walk(params["loc"], tf.exp(params["log_t"]), self.num_steps, seed)

  def kl(self, params):
    return sphere_kl_to_uniform(params["log_t"][:, 0], self.dim)

  def representation(self, params):
    return params["loc"]

  def gaussian_encoder_outputs(self, params):
    return params["loc"], tf.broadcast_to(params["log_t"], tf.shape(params["loc"]))

  def sample_prior(self, num, seed=None):
    return self.manifold.sample_uniform(num, seed)


class TorusLatent(_DiffusionLatent):
  """The flat torus (S¹)^k ⊂ R^{2k} with a uniform prior; ``configure(num_latent)`` takes k (number of circles).

  Each circle has its own location (P of a 2-vector) and its own log t. Heads: ``means`` (Dense(2k)) and
  ``log_var`` (Dense(k)). Params: ``loc`` [B, 2k] as (cos θ_i, sin θ_i) pairs, ``log_t`` [B, k]. The KL is the sum
  over circles of the exact flat-circle formula (the authors' Clifford-torus code drops the constant −½·log 2π per
  circle; it has no effect on gradients, but including it makes the KL a true KL).
  """

  kind = "torus"
  geometry = TORUS

  def configure(self, num_latent):
    if num_latent < 1:
      raise UserError(f"encoder.num_latent is the number of circles k of the torus; got {num_latent}")
    self.num_circles = int(num_latent)
    self.manifold = Torus(self.num_circles)
    self.means = keras.layers.Dense(2 * self.num_circles, name="means")
    self.log_var = keras.layers.Dense(self.num_circles, name="log_var")

  @property
  def code_size(self):
    return 2 * self.num_circles

  def call(self, features):
    return {"loc": self.manifold.nearest_point(self.means(features)), "log_t": self._log_t(features)}

  def sample(self, params, seed=None):
    return torus_random_walk(params["loc"], tf.exp(params["log_t"]), self.num_steps, seed)

  def kl(self, params):
    return torus_kl_to_uniform(params["log_t"])

  def representation(self, params):
    return params["loc"]

  def gaussian_encoder_outputs(self, params):
    return params["loc"], tf.repeat(params["log_t"], 2, axis=1)

  def sample_prior(self, num, seed=None):
    return self.manifold.sample_uniform(num, seed)


@gin.configurable("hypersphere")
def hypersphere(log_t_min=LOG_T_MIN, log_t_max=LOG_T_MAX, num_steps=NUM_STEPS, bounded=True):
  """The ΔVAE hypersphere S^d (d = ``encoder.num_latent``); ``bounded=False`` leaves log t unconstrained."""
  return HypersphereLatent(log_t_min=log_t_min, log_t_max=log_t_max, num_steps=num_steps, bounded=bounded,
                           name="latent")


@gin.configurable("torus")
def torus(log_t_min=LOG_T_MIN, log_t_max=LOG_T_MAX, num_steps=NUM_STEPS, bounded=True):
  """The ΔVAE flat torus of k = ``encoder.num_latent`` circles."""
  return TorusLatent(log_t_min=log_t_min, log_t_max=log_t_max, num_steps=num_steps, bounded=bounded,
                     name="latent")
