"""The embedded-manifold latent space of the ER-VAE (Golikov & Kretov 2018, "Embedding-reparameterization procedure
for manifold-valued latent variables in generative models"; ``docs/models/ervae.md``).

The posterior lives in a *hidden* space H of the manifold's own dimension d, where sampling and the KL are easy;
a fixed map f: H → M ⊂ R^N carries every sample onto the manifold M before the decoder sees it (paper §2):

    h ~ q(h | x)          Gaussian with prior N(0, I)  (``hidden_prior = 'normal'``), or
                          Beta(a, b) per coordinate on [0, 1] with prior U(0, 1)^d  (``'uniform'``, the paper's toy)
    z = f(h) ∈ M,         x ~ p(x | z)
    KL(q_M(z | x) ‖ p_M(z)) = KL(q(h | x) ‖ p(h))                                   (paper §2, App. 5.2–5.3)

Why the KL is the hidden one: if f pushes p(h) to p_M, the densities on M are q_M(f(h)) = q(h)/√det g(h) and
p_M(f(h)) = p(h)/√det g(h) with g = JᵀJ the metric f induces (App. 5.1); the volume factor is the same in both and
cancels in the log-ratio. In fact ELBO and IWAE computed in H are exact bounds for the generative model
h ~ p(h), x ~ p(x | f(h)) whatever f is; "f pushes p(h) to the uniform law on M" is what makes that model the one
with a uniform prior on M.

f is either the fixed "Projection" (exact, below) or a learned network: the decoder of a Wasserstein auto-encoder
trained on uniform samples of M (paper §2.2; ``python -m submission.fit_embedding``), loaded from the
directory it wrote (``embedding.json`` + ``embedding.weights.h5``) and kept frozen: training it further inside the
VAE would let it leave the manifold.

Group action (paper §3), for circles and tori only: an extra encoder head gives a rotation R(x) ∈ SO(2) per circle,
and z = R(x)·f(h). A rotation keeps points on the circle (it preserves each pair's radius), and the KL is unchanged
because the uniform prior on M is rotation-invariant: KL(R#q ‖ p) = KL(q ‖ R⁻¹#p) = KL(q ‖ p). That last step is
exact for the projection and holds for a learned f only as far as f pushes p(h) to the uniform law (the fit
reports the MMD that measures this). With the projection and a Beta posterior the rotation simply moves the Beta
bump around the circle, so a posterior may straddle the point where [0, 1] is glued.

The manifolds (circle, torus, sphere) are ``latent.manifolds``'. The "Projection" f is the manifold's
``from_unit_cube`` applied to u = h for the uniform prior and to u = Φ(h) coordinate-wise for the normal prior, so
u ~ U(0, 1)^d in both cases and f pushes the prior *exactly* to the uniform law on M. No group action on spheres:
SO(d+1) would need its own parameterisation; asking for it is an error.

Choices where the paper is silent (docs/models/ervae.md §7; all parameters of the ``embedded_manifold`` gin factory):
* Beta concentrations a, b = ``min_concentration`` + softplus(head), default floor 1: every posterior is then
  unimodal (its mean is a meaningful location) and its density finite at the ends of [0, 1], so log q stays
  finite in float32; Beta(1, 1) is the prior itself. Samples are clipped into [1e-6, 1 − 1e-6] because float32
  Beta draws can round to exactly 0 or 1.
* The exported location is f(hidden mean) (a/(a+b) for the Beta), rotated by R(x) with the group action.
* ``gaussian_encoder`` (dlib's signature) returns that location as ``mean`` and, as ``logvar``, the log of the
  first-order (delta-method) variance of each code coordinate, Var z_i ≈ Σ_j (∂z_i/∂h_j)² Var h_j, floored at
  1e-12. The project's own postprocessing uses ``mean_representation`` / ``sampled_representation`` instead.
"""

import json
import math
import os

import gin
import keras
import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from submission.errors import UserError
from submission.latent.base import EMBEDDED, LatentSpace, standard_normal
from submission.latent.gaussian import gaussian_kl, gaussian_sample
from submission.latent.manifolds import parse_manifold, rotate_pairs, uniform

HIDDEN_PRIORS = ("uniform", "normal")
PROJECTION = "projection"
EMBEDDING_FILE = "embedding.json"
WEIGHTS_FILE = "embedding.weights.h5"
EMBEDDING_FORMAT = "ervae-embedding/1"
# Float32 Beta draws can round to exactly 0 or 1, where log q may be infinite; clip into the open interval.
SAMPLE_EPSILON = 1e-6
VARIANCE_FLOOR = 1e-12
MIN_CONCENTRATION = 1.0


# --- manifolds --------------------------------------------------------------------------------------------------
def manifold_for_latent(name, num_latent):
  """The manifold of the image model: 'circle', 'torus' or 'sphere' of dimension ``encoder.num_latent``.

  A full spec ('torus:K', 'sphere:D') is accepted too when its dimension equals ``num_latent``.
  """
  text = str(name).strip().lower()
  if text in ("torus", "sphere"):
    text = f"{text}:{num_latent}"
  manifold = parse_manifold(text)
  if manifold.dim != num_latent:
    raise UserError(f"embedded_manifold.manifold = {name!r} has dimension {manifold.dim} but encoder.num_latent "
                    f"is {num_latent}; the hidden space has the manifold's dimension")
  return manifold


# --- pure functions ---------------------------------------------------------------------------------------------
def sample_hidden_prior(hidden_prior, num, dim, seed=None):
  """h ~ p(h), [num, dim]: N(0, I) or U(0, 1)^d (stateless when ``seed`` is given)."""
  if hidden_prior == "normal":
    return standard_normal([num, dim], seed)
  return uniform([num, dim], seed)


def projection_embedding(manifold, hidden_prior):
  """The paper's exact "Projection" embedding f: H → M, h ↦ ``manifold.from_unit_cube(u)`` with u = Φ(h) for a
  normal hidden prior (Φ the normal CDF, so that u is uniform) and u = h for a uniform one."""
  if hidden_prior == "normal":
    return lambda h: manifold.from_unit_cube(normal_cdf(h))
  return manifold.from_unit_cube


def normal_cdf(h):
  """Φ(h): maps N(0, 1) to U(0, 1), so the projection serves the normal hidden prior too."""
  return 0.5 * (1. + tf.math.erf(h / math.sqrt(2.)))


def diagonal_normal_log_prob(h, mean, logvar):
  """log N(h; μ, diag e^logvar), summed over the last axis."""
  return -0.5 * tf.reduce_sum(tf.square(h - mean) * tf.exp(-logvar) + logvar + math.log(2. * math.pi), axis=-1)


def standard_normal_log_prob(h):
  return -0.5 * tf.reduce_sum(tf.square(h) + math.log(2. * math.pi), axis=-1)


def beta_kl_to_uniform(concentration1, concentration0):
  """KL(Beta(a, b) ‖ U(0, 1)) = −H[Beta(a, b)] = −ln B(a, b) + (a−1)ψ(a) + (b−1)ψ(b) − (a+b−2)ψ(a+b), summed."""
  a, b = concentration1, concentration0
  entropy = (tf.math.lbeta(tf.stack([a, b], axis=-1)) - (a - 1.) * tf.math.digamma(a)
             - (b - 1.) * tf.math.digamma(b) + (a + b - 2.) * tf.math.digamma(a + b))
  return -tf.reduce_sum(entropy, axis=-1)


def tfp_seed(seed):
  """A stateless int64 [2] seed as the int32 [2] seed TFP's samplers take (None stays None)."""
  if seed is None:
    return None
  return tf.random.stateless_uniform([2], seed=seed, minval=None, maxval=None, dtype=tf.int32)


# --- learned embeddings on disk ---------------------------------------------------------------------------------
def embedding_network(hidden_dim, ambient_dim, widths, activation, name="embedding"):
  """The MLP f: R^hidden_dim → R^ambient_dim (hidden layers ``widths`` with ``activation``, linear output)."""
  network = keras.Sequential([keras.Input((hidden_dim,))] + [
      keras.layers.Dense(int(w), activation=activation, name=f"{name}_{i}") for i, w in enumerate(widths)
  ] + [keras.layers.Dense(ambient_dim, name=f"{name}_out")], name=name)
  return network


def read_embedding_description(directory):
  """The ``embedding.json`` written by ``submission.fit_embedding`` (UserError with the fix if it is missing or foreign)."""
  path = os.path.join(str(directory), EMBEDDING_FILE)
  if not os.path.isfile(path):
    raise UserError(f"no learned embedding at {directory} ({EMBEDDING_FILE} missing); create one with "
                    f"`python -m submission.fit_embedding --manifold circle --out {directory}` or use "
                    f"embedded_manifold.embedding = '{PROJECTION}'")
  with open(path) as f:
    description = json.load(f)
  if description.get("format") != EMBEDDING_FORMAT:
    raise UserError(f"{path} is not an embedding written by `python -m submission.fit_embedding` "
                    f"(format {description.get('format')!r}, expected {EMBEDDING_FORMAT!r})")
  return description


def load_embedding(directory, name="embedding"):
  """(frozen Keras network f, description dict) from a ``submission.fit_embedding`` output directory."""
  description = read_embedding_description(directory)
  network = embedding_network(description["hidden_dim"], description["ambient_dim"], description["widths"],
                              description["activation"], name=name)
  network.load_weights(os.path.join(str(directory), description["weights"]))
  network.trainable = False
  return network, description


# --- the latent space -------------------------------------------------------------------------------------------
class EmbeddedManifoldLatent(LatentSpace):
  """Hidden-space posterior, z = [R(x)·] f(h) on M; ``configure(num_latent)`` takes the manifold's dimension d.

  Heads on the encoder trunk: ``means`` and ``log_var`` (Dense(d) each, dlib's names) for the normal hidden prior;
  ``concentration`` (Dense(2d): a then b) for the uniform one; ``group_action`` (Dense(2k), one unit 2-vector
  (cos α, sin α) per circle) with the group action. Params: ``mean``/``logvar`` or
  ``concentration1``/``concentration0`` (a/b, TFP's names), [B, d] each; plus ``rotation`` [B, 2k].
  ``code_size`` is the ambient dimension N of M: 2k for a torus, d + 1 for S^d.
  ``embedding``: ``'projection'`` or the directory of a learned f. A learned circle serves any torus as the
  product of k copies; otherwise the learned manifold must be this one.
  """

  kind = "embedded_manifold"
  posterior = EMBEDDED

  def __init__(self, manifold="torus", embedding=PROJECTION, hidden_prior="uniform", group_action=False,
               min_concentration=MIN_CONCENTRATION, **kwargs):
    super().__init__(**kwargs)
    if hidden_prior not in HIDDEN_PRIORS:
      raise UserError(f"embedded_manifold.hidden_prior must be one of {HIDDEN_PRIORS}, got {hidden_prior!r}")
    if not min_concentration > 0:
      raise UserError(f"embedded_manifold.min_concentration must be > 0, got {min_concentration}")
    self.manifold_name = manifold
    self.embedding = str(embedding)
    self.hidden_prior = hidden_prior
    self.group_action = bool(group_action)
    self.min_concentration = float(min_concentration)

  # --- construction ---------------------------------------------------------------------------------------------
  def configure(self, num_latent):
    self.manifold = manifold_for_latent(self.manifold_name, num_latent)
    self.dim = self.manifold.dim
    if self.group_action and self.manifold.num_circles is None:
      raise UserError(f"the group action is one rotation per circle; it is not available on {self.manifold.spec} "
                      f"(set embedded_manifold.group_action = False)")
    self.embedding_network, self.per_circle = None, False
    if self.embedding != PROJECTION:
      self.embedding_network, description = load_embedding(self.embedding)
      self.per_circle = self._check_learned(description)
    if self.hidden_prior == "normal":
      self.means = keras.layers.Dense(self.dim, name="means")
      self.log_var = keras.layers.Dense(self.dim, name="log_var")
    else:
      self.concentration = keras.layers.Dense(2 * self.dim, name="concentration")
    if self.group_action:
      self.group_action_head = keras.layers.Dense(2 * self.manifold.num_circles, name="group_action")

  def _check_learned(self, description):
    """True when a learned circle is applied per coordinate of a torus; UserError on any mismatch."""
    where = f"the embedding at {self.embedding}"
    if description["hidden_prior"] != self.hidden_prior:
      raise UserError(f"{where} was fitted for the {description['hidden_prior']!r} hidden prior but "
                      f"embedded_manifold.hidden_prior is {self.hidden_prior!r}")
    if description["manifold"] == self.manifold.spec:
      return False
    if description["manifold"] == "circle" and self.manifold.num_circles:
      return True
    raise UserError(f"{where} embeds {description['manifold']}, not {self.manifold.spec} (a learned circle "
                    f"also serves any torus)")

  @property
  def code_size(self):
    return self.manifold.ambient_dim

  @property
  def geometry(self):
    return self.manifold.geometry

  # --- posterior parameters -------------------------------------------------------------------------------------
  def call(self, features):
    if self.hidden_prior == "normal":
      params = {"mean": self.means(features), "logvar": self.log_var(features)}
    else:
      raw = self.concentration(features)
      positive = self.min_concentration + tf.nn.softplus(raw)
      params = {"concentration1": positive[:, :self.dim], "concentration0": positive[:, self.dim:]}
    if self.group_action:
      pairs = tf.reshape(self.group_action_head(features), [-1, self.manifold.num_circles, 2])
      params["rotation"] = tf.reshape(tf.math.l2_normalize(pairs, axis=-1, epsilon=1e-12),
                                      [-1, self.manifold.ambient_dim])
    return params

  def hidden_location(self, params):
    """The posterior's location in H: μ (normal) or the Beta mean a/(a + b)."""
    if self.hidden_prior == "normal":
      return params["mean"]
    a, b = params["concentration1"], params["concentration0"]
    return a / (a + b)

  def hidden_variance(self, params):
    if self.hidden_prior == "normal":
      return tf.exp(params["logvar"])
    a, b = params["concentration1"], params["concentration0"]
    return a * b / (tf.square(a + b) * (a + b + 1.))

  # --- the hidden space -----------------------------------------------------------------------------------------
  def sample_hidden(self, params, seed=None):
    """A reparameterised draw h ~ q(h | x), [B, d] (Beta: implicit reparameterisation gradients)."""
    if self.hidden_prior == "normal":
      return gaussian_sample(params["mean"], params["logvar"], seed)
    draw = tfp.distributions.Beta(params["concentration1"], params["concentration0"]).sample(seed=tfp_seed(seed))
    return tf.clip_by_value(draw, SAMPLE_EPSILON, 1. - SAMPLE_EPSILON)

  def hidden_log_prob(self, params, h):
    """log q(h | x), summed over the d coordinates, [B]."""
    if self.hidden_prior == "normal":
      return diagonal_normal_log_prob(h, params["mean"], params["logvar"])
    beta = tfp.distributions.Beta(params["concentration1"], params["concentration0"])
    return tf.reduce_sum(beta.log_prob(h), axis=-1)

  def hidden_log_prior(self, h):
    """log p(h), [B]: N(0, I), or 0 inside [0, 1]^d for the uniform prior (−∞ outside)."""
    if self.hidden_prior == "normal":
      return standard_normal_log_prob(h)
    inside = tf.reduce_all((h >= 0.) & (h <= 1.), axis=-1)
    return tf.where(inside, 0., -np.inf)

  def sample_hidden_prior(self, num, seed=None):
    return sample_hidden_prior(self.hidden_prior, num, self.dim, seed)

  # --- the map to the manifold ----------------------------------------------------------------------------------
  def embedding_map(self, h):
    """f(h) ∈ R^N (without the group action)."""
    if self.embedding_network is None:
      return projection_embedding(self.manifold, self.hidden_prior)(h)
    if self.per_circle:
      flat = self.embedding_network(tf.reshape(h, [-1, 1]))
      return tf.reshape(flat, [-1, self.manifold.ambient_dim])
    return self.embedding_network(h)

  def embed(self, params, h):
    """z = R(x)·f(h) with the group action, f(h) without."""
    z = self.embedding_map(h)
    if self.group_action:
      z = rotate_pairs(z, params["rotation"])
    return z

  # --- LatentSpace interface ------------------------------------------------------------------------------------
  def sample(self, params, seed=None):
    return self.embed(params, self.sample_hidden(params, seed))

  def kl(self, params):
    """KL in the hidden space (Golikov & Kretov 2018, §2: the Jacobian terms cancel), [B]."""
    if self.hidden_prior == "normal":
      return gaussian_kl(params["mean"], params["logvar"])
    return beta_kl_to_uniform(params["concentration1"], params["concentration0"])

  def representation(self, params):
    return self.embed(params, self.hidden_location(params))

  def gaussian_encoder_outputs(self, params):
    """(f(location), log of the delta-method variance of each code coordinate) — see the module docstring."""
    location = self.hidden_location(params)
    with tf.GradientTape() as tape:
      tape.watch(location)
      z = self.embed(params, location)
    jacobian = tape.batch_jacobian(z, location)  # [B, N, d]
    variance = tf.reduce_sum(tf.square(jacobian) * self.hidden_variance(params)[:, tf.newaxis, :], axis=2)
    return z, tf.math.log(variance + VARIANCE_FLOOR)

  def sample_prior(self, num, seed=None):
    """f(h) for h from the hidden prior: the uniform law on M for the projection (no rotation: it has no x)."""
    return self.embedding_map(self.sample_hidden_prior(num, seed))

  def summaries(self, params):
    """Mean distance of the exported location to M: 0 for the projection, the fit's error for a learned f."""
    return {"manifold_distance": tf.reduce_mean(self.manifold.distance(self.representation(params)))}


@gin.configurable("embedded_manifold")
def embedded_manifold(manifold="torus", embedding=PROJECTION, hidden_prior="uniform", group_action=False,
                      min_concentration=MIN_CONCENTRATION):
  """The ER-VAE latent space on 'circle', 'torus' or 'sphere' of dimension ``encoder.num_latent``.

  ``embedding``: 'projection' (the fixed exact map) or the directory written by
  ``python -m submission.fit_embedding``. ``hidden_prior``: 'uniform' (Beta posterior, the paper's choice)
  or 'normal' (Gaussian posterior). ``group_action``: a rotation per circle from the encoder (paper §3).
  """
  return EmbeddedManifoldLatent(manifold=manifold, embedding=embedding, hidden_prior=hidden_prior,
                                group_action=group_action, min_concentration=min_concentration, name="latent")
