"""The manifolds latent codes live on, as subsets of R^N: the sphere S^d ⊂ R^{d+1} and the flat torus
(S¹)^k ⊂ R^{2k} of k circles (k = 1: the circle). Geometry only, shared by ΔVAE's diffusion latent spaces
(``latent.diffusion``) and ER-VAE's embedded ones (``latent.embedded``).

Each manifold knows its sizes, its nearest-point map R^N → M (``nearest_point``), the distance of a point to it,
uniform draws on it, and ``from_unit_cube``: a map [0, 1]^d → M that pushes the uniform law on the cube *exactly*
to the uniform law on M (the ER-VAE paper's "Projection" embedding is this map; Golikov & Kretov 2018, §2.1):
* circle and torus: u_i ↦ (cos 2πu_i, sin 2πu_i) on each circle (the paper's wrap of [0, 1] onto the circle);
* sphere S^d: hyperspherical coordinates x_1 = cos θ_1, x_2 = sin θ_1 cos θ_2, …,
  (x_d, x_{d+1}) = sin θ_1 ⋯ sin θ_{d−1} (cos φ, sin φ), with φ = 2π u_d and each polar angle θ_j drawn by inverse
  CDF: under the uniform law θ_j has density ∝ sin^m θ_j (m = d − j), i.e. (1 − cos θ_j)/2 ~ Beta((m+1)/2,
  (m+1)/2), so cos θ_j = 1 − 2·I⁻¹_{(m+1)/2,(m+1)/2}(u_j). For S² this is Archimedes' map x_1 = 1 − 2u_1. (The paper
  gives no map for spheres; this one is exact, smooth away from the coordinate singularities — a null set — and
  differentiable through ``tfp.math.betaincinv``.)
"""

import math

import tensorflow as tf
import tensorflow_probability as tfp

from submission.errors import UserError
from submission.latent.base import SPHERE, TORUS, standard_normal

_NORM_EPSILON = 1e-12


# --- pure functions ---------------------------------------------------------------------------------------------
def nearest_on_sphere(x):
  """x / ‖x‖ over the last axis: the nearest point of the unit sphere (a tiny ε under the root keeps 0 finite)."""
  return tf.math.l2_normalize(x, axis=-1, epsilon=_NORM_EPSILON)


def nearest_on_torus(x, num_circles):
  """Each (x, y) pair of x [..., 2k] scaled to unit length: the nearest point of the torus (S¹)^k."""
  pairs = tf.reshape(x, [-1, num_circles, 2])
  return tf.reshape(nearest_on_sphere(pairs), [-1, 2 * num_circles])


def sphere_geodesic_distance(a, b):
  """Great-circle distance between unit vectors (atan2 form, accurate for small angles too)."""
  cos = tf.reduce_sum(a * b, axis=-1)
  sin = tf.norm(b - cos[..., tf.newaxis] * a, axis=-1)
  return tf.atan2(sin, cos)


def circle_from_unit_interval(u):
  """u ∈ [0, 1]^k → k unit vectors (cos 2πu_i, sin 2πu_i), flattened to [..., 2k]."""
  angle = 2. * math.pi * u
  pairs = tf.stack([tf.cos(angle), tf.sin(angle)], axis=-1)
  return tf.reshape(pairs, tf.concat([tf.shape(u)[:-1], [2 * u.shape[-1]]], axis=0))


def sphere_from_unit_cube(u):
  """u ∈ [0, 1]^d → S^d ⊂ R^{d+1}, pushing U(0, 1)^d to the uniform law (see the module docstring)."""
  d = u.shape[-1]
  coordinates, sin_product = [], tf.ones_like(u[..., 0])
  for j in range(d - 1):
    half = (d - j) / 2.  # (m + 1)/2 with m = d − (j + 1), the exponent of sin θ in the density
    t = tfp.math.betaincinv(tf.constant(half, u.dtype), tf.constant(half, u.dtype), u[..., j])
    cos_theta = 1. - 2. * t
    sin_theta = 2. * tf.sqrt(tf.maximum(t * (1. - t), 0.))
    coordinates.append(sin_product * cos_theta)
    sin_product = sin_product * sin_theta
  phi = 2. * math.pi * u[..., d - 1]
  coordinates += [sin_product * tf.cos(phi), sin_product * tf.sin(phi)]
  return tf.stack(coordinates, axis=-1)


def rotate_pairs(z, rotation):
  """Rotates each (x, y) pair of z [B, 2k] by the angle whose (cos α, sin α) is the matching pair of ``rotation``:
  the action of SO(2)^k on the torus, which keeps every point on it."""
  num_circles = z.shape[-1] // 2
  pairs = tf.reshape(z, [-1, num_circles, 2])
  cs = tf.reshape(rotation, [-1, num_circles, 2])
  cos, sin = cs[..., 0], cs[..., 1]
  x, y = pairs[..., 0], pairs[..., 1]
  rotated = tf.stack([cos * x - sin * y, sin * x + cos * y], axis=-1)
  return tf.reshape(rotated, tf.shape(z))


def uniform(shape, seed=None):
  """U(0, 1) draws, stateless when ``seed`` is given."""
  if seed is None:
    return tf.random.uniform(shape)
  return tf.random.stateless_uniform(shape, seed=seed)


# --- the manifolds ----------------------------------------------------------------------------------------------
class Torus:
  """(S¹)^k ⊂ R^{2k} as (cos, sin) pairs; k = 1 is the circle."""

  geometry = TORUS

  def __init__(self, num_circles):
    if int(num_circles) != num_circles or num_circles < 1:
      raise UserError(f"a torus needs a positive whole number of circles, got {num_circles}")
    self.num_circles = int(num_circles)
    self.dim = self.num_circles
    self.ambient_dim = 2 * self.num_circles

  @property
  def spec(self):
    return "circle" if self.num_circles == 1 else f"torus:{self.num_circles}"

  @property
  def mean_squared_distance(self):
    """E‖x − y‖² for x, y independent and uniform on M (2 per circle): the natural kernel scale."""
    return 2. * self.num_circles

  def nearest_point(self, x):
    return nearest_on_torus(x, self.num_circles)

  def distance(self, z):
    """Euclidean distance to the torus, [B]: the nearest point normalises each pair, so √Σ_i (‖z_i‖ − 1)²."""
    radii = tf.norm(tf.reshape(z, [-1, self.num_circles, 2]), axis=-1)
    return tf.sqrt(tf.reduce_sum(tf.square(radii - 1.), axis=-1))

  def sample_uniform(self, num, seed=None):
    """Independent uniform angles, one per circle."""
    return circle_from_unit_interval(uniform([num, self.num_circles], seed))

  def from_unit_cube(self, u):
    return circle_from_unit_interval(u)


class Sphere:
  """S^d ⊂ R^{d+1}."""

  geometry = SPHERE
  num_circles = None

  def __init__(self, dim):
    if int(dim) != dim or dim < 1:
      raise UserError(f"a sphere S^d needs a positive whole dimension d, got {dim}")
    self.dim = int(dim)
    self.ambient_dim = self.dim + 1

  @property
  def spec(self):
    return f"sphere:{self.dim}"

  @property
  def mean_squared_distance(self):
    return 2.

  def nearest_point(self, x):
    return nearest_on_sphere(x)

  def distance(self, z):
    return tf.abs(tf.norm(z, axis=-1) - 1.)

  def sample_uniform(self, num, seed=None):
    """Normalised standard Gaussians (the Gaussian is rotation-invariant)."""
    return nearest_on_sphere(standard_normal([num, self.ambient_dim], seed))

  def from_unit_cube(self, u):
    return sphere_from_unit_cube(u)


def parse_manifold(spec):
  """'circle', 'torus:K' or 'sphere:D' → a manifold (UserError otherwise)."""
  text = str(spec).strip().lower()
  name, _, size = text.partition(":")
  try:
    if name == "circle" and not size:
      return Torus(1)
    if name == "torus" and size:
      return Torus(int(size))
    if name == "sphere" and size:
      return Sphere(int(size))
  except ValueError:
    pass
  raise UserError(f"unknown manifold {spec!r}; use circle, torus:K (K circles) or sphere:D (S^D in R^(D+1))")
