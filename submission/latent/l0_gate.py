"""Hard-concrete L0 gates on latent dimensions (Louizos, Welling & Kingma 2018), and a gated Gaussian latent space.

PVAE (Shi, Glocker & Castro 2019) puts one gate m_j ∈ [0, 1] on each latent dimension j and learns a
location log α_j per gate. Facts from the authors' code: ``docs/models/pvae.md`` §2–§4; choices: §9.

Gate (Shi et al. 2019, eq. 4), temperature β, stretch interval (γ, ζ) with γ < 0 < 1 < ζ:

    u ~ U(0, 1),   s = sigmoid((log u − log(1 − u) + log α) / β),   m = clip(s·(ζ − γ) + γ, 0, 1).

The stretch puts finite probability on exactly 0 and exactly 1. Its distribution function on (0, 1) is
P(m ≤ x) = sigmoid(β·logit((x − γ)/(ζ − γ)) − log α), so (Shi et al. 2019, eq. 3)

    P(m ≠ 0) = sigmoid(log α − β·log(−γ/ζ)),      P(m = 1) = sigmoid(log α − β·log((1 − γ)/(ζ − 1))).

Defaults are Table 1 of the paper, as the authors' code uses them: β = 0.05 (``L0Pair``'s temperature 1/20, never
overridden; Louizos et al. use 2/3), γ = −0.1, ζ = 1.1; log α starts at log((1 − p)/p) for an initial drop rate
p = 0.2, i.e. log 4 (plus N(0, 0.01²) noise, as the authors' code), where P(m ≠ 0) ≈ 0.82.

Choices, each deliberate (the authors' code differs where noted):

* Noise: u ~ U(ε, 1 − ε) with ε = 1e-6 (keeps the logit finite), as paper eq. 4 and Louizos et al. The authors'
  code squeezes u into [0.1, 0.9] first, which makes every gate deterministic once |log α| > 2.32 and means that
  eq. 3 is no longer the sampler's P(m ≠ 0); with plain U(0, 1) the penalty is exactly the expected L0 norm.
* One gate vector per minibatch by default (``per_example=False``), as the authors (``L0Pair`` draws one mask
  for the whole batch); ``per_example=True`` draws one per example (lower-variance gradients for log α).
* The same draw m gates the mean, the variance and the KL term (paper eqs. 1 and 5 use one m). The authors' code
  draws a second, independent mask for the KL weights.
* Deterministic gate for export and evaluation (``deterministic_gate``):
  - ``"median"`` (default): the noise-free draw, u = ½: m̂ = clip(sigmoid(log α / β)·(ζ − γ) + γ, 0, 1). It is
    the median of the training-time gate, is exactly 0 iff P(m ≠ 0) ≤ ½ and exactly 1 iff P(m = 1) ≥ ½, so at
    β = 0.05 it is binary except for |log α| < β·log 11 ≈ 0.12: the mask the decoder saw most often.
  - ``"louizos"``: Louizos et al.'s test-time formula clip(sigmoid(log α)·(ζ − γ) + γ, 0, 1), present but unused in
    the authors' code. It ignores β; at β = 0.05 it gives fractional gates for |log α| < log 11 ≈ 2.4 (0.86 at
    initialisation, where training draws are 1 with probability 0.78). The authors evaluated with fresh draws.
  ``num_active_dims`` counts the dimensions whose deterministic gate is > 0.

The gated Gaussian posterior (paper eq. 5): the encoder's heads give a mean μ and a variance σ² directly (not a
log-variance, so that a closed gate leaves N(0, 0) rather than N(0, 1)); then

    mean = m ⊙ μ,   variance = m ⊙ σ² + ε_var,   KL = Σ_j m_j·KL(N(mean_j, variance_j) ‖ N(0, 1)),

with ε_var = 1e-6 (the paper adds "a small positive constant" to σ²; 1e-6 is the authors' floor), which keeps
log(variance) finite when a gate is closed. By default (``kl_parameters = "gated"``) the KL of a dimension is
evaluated at its gated parameters, as in the authors' code. ``kl_parameters = "ungated"`` is the spike-and-slab
reading, KL = Σ_j m_j·KL(N(μ_j, σ_j² + ε_var) ‖ N(0, 1)). The two agree whenever m_j ∈ {0, 1} (at β = 0.05 at most
6 % of draws are fractional: P(0 < m < 1) ≤ ½·β·log 11), but they pull a gate differently in those draws: for a
dimension whose posterior is the prior (μ_j = 0, σ_j² = 1, the state of a dimension the model does not use), the
gated KL of a fractional gate is m·½(m − log m − 1) > 0, a barrier of up to 0.08 nats (× the KL weight) between the
open and the closed gate that holds an unused gate open against τ; the ungated KL of such a dimension is 0 for
every m, so only τ acts on its gate (measured: ``docs/models/pvae.md`` §10). A closed gate (m_j = 0) therefore
contributes exactly nothing to the KL, a constant 0 to the mean, and N(0, 1e-6) noise to a sample. The authors'
``L0Pair`` gates before adding the bias, so their pruned dimensions output the bias instead of 0.

Variance positivity: σ² = softplus(head), a smooth map whose gradient reaches every unit. The authors' code takes
the raw linear output and overwrites every entry ≤ 0 with 1e-6 in place, which cuts the gradient through those
entries (they can never become positive again through that path).

L0 penalty (paper eq. 3): τ·Σ_j P(m_j ≠ 0) with τ = 0.1 (``l0_weight``), added once to the per-example (batch-mean)
loss. Normalisation, chosen deliberately: none. The authors' code divides by 162,079 (80 % of CelebA's images, a
data-set size N from Louizos's code, kept unchanged for MNIST and dSprites), applies 0.1 twice, sums over the 256
input units of the head, and leaves the term out of the division of the other terms by the pixel count P. In this
package's units (losses summed over pixels, as dlib) their effective weight per gate is
0.1·(256·0.1)/162079·P ≈ 0.065 for 64×64×1 images (0.016 for MNIST at 32×32); τ = 0.1 per gate is the paper's
equation read literally and within a factor 1.6 of that. Set ``l0_weight`` to reproduce the authors' scale. (Their
regulariser also carries a weight decay 0.5·0.001·Σ W² on the heads, with a sign quirk on the biases; it is an L2
penalty, not part of the paper's eq. 3, and is left out.)

``training_params`` draws the gates (stateless when a seed is given: the gate noise uses
``stateless_fold_in(seed, GATE_STREAM)``, independent of the reparameterisation noise drawn from ``seed``);
``call`` applies the deterministic gate, so every exported signature (``mean_representation``,
``gaussian_encoder``, ``reconstructions``, ``sampled_representation``) sees m̂. The exported mean keeps pruned
dimensions as constant (zero) columns, so every metric sees ``encoder.num_latent`` columns. Prior samples are the
prior N(0, 1) gated like the posterior: N(0, m̂_j) per dimension.

Any Gaussian model takes these gates with ``latent_space.factory = @l0_gated_gaussian`` (see
``submission.models.base``); PVAE (``submission.models.pvae``) always uses them.
"""

import math

import gin
import keras
import tensorflow as tf

from submission.errors import UserError
from submission.latent.base import derived_seed, standard_normal
from submission.latent.gaussian import GaussianLatent, gaussian_kl

# Shi et al. 2019, Table 1 (= the authors' code defaults, docs/models/pvae.md §3).
TEMPERATURE = 0.05
GAMMA = -0.1
ZETA = 1.1
INITIAL_DROP_RATE = 0.2
INITIAL_LOG_ALPHA_STDDEV = 0.01  # the authors' code: log α ~ N(log((1 − p)/p), 0.01²)
L0_WEIGHT = 0.1  # τ
VARIANCE_EPSILON = 1e-6
UNIFORM_EPSILON = 1e-6
DETERMINISTIC_GATES = ("median", "louizos")
KL_PARAMETERS = ("gated", "ungated")
# Folded into the step's seed to get the gate noise's own stateless seed.
GATE_STREAM = 0x6A7E


# --- pure functions --------------------------------------------------------------------------------------------
def initial_log_alpha(drop_rate):
  """log((1 − p)/p), so that P(s > ½) = sigmoid(log α) = 1 − p; p = 0.2 → log 4."""
  return math.log((1. - drop_rate) / drop_rate)


def stretched_gate(log_alpha, logistic_noise, temperature, gamma, zeta):
  """m = clip(sigmoid((L + log α)/β)·(ζ − γ) + γ, 0, 1) for logistic noise L = logit u."""
  s = tf.sigmoid((logistic_noise + log_alpha) / temperature)
  return tf.clip_by_value(s * (zeta - gamma) + gamma, 0., 1.)


def sample_gate(log_alpha, num_draws, temperature, gamma, zeta, seed=None):
  """``num_draws`` hard-concrete draws of the gate vector, shape [num_draws, D]; stateless when ``seed`` is given."""
  log_alpha = tf.convert_to_tensor(log_alpha, tf.float32)
  shape = tf.stack([num_draws, tf.shape(log_alpha)[0]])
  if seed is None:
    u = tf.random.uniform(shape, UNIFORM_EPSILON, 1. - UNIFORM_EPSILON)
  else:
    u = tf.random.stateless_uniform(shape, seed, UNIFORM_EPSILON, 1. - UNIFORM_EPSILON)
  return stretched_gate(log_alpha, tf.math.log(u) - tf.math.log1p(-u), temperature, gamma, zeta)


def probability_nonzero(log_alpha, temperature, gamma, zeta):
  """P(m ≠ 0) = sigmoid(log α − β·log(−γ/ζ))   (Shi et al. 2019, eq. 3)."""
  return tf.sigmoid(log_alpha - temperature * math.log(-gamma / zeta))


def median_gate(log_alpha, temperature, gamma, zeta):
  """The draw at u = ½: clip(sigmoid(log α/β)·(ζ − γ) + γ, 0, 1), the median of the gate."""
  return stretched_gate(log_alpha, 0., temperature, gamma, zeta)


def louizos_test_gate(log_alpha, gamma, zeta):
  """Louizos et al.'s test-time gate clip(sigmoid(log α)·(ζ − γ) + γ, 0, 1) (no temperature)."""
  return tf.clip_by_value(tf.sigmoid(log_alpha) * (zeta - gamma) + gamma, 0., 1.)


def gated_gaussian(mean, variance, gate, variance_epsilon=VARIANCE_EPSILON):
  """Shi et al. 2019, eq. 5: (m ⊙ μ, log(m ⊙ σ² + ε)) as the posterior's mean and log-variance."""
  return gate * mean, tf.math.log(gate * variance + variance_epsilon)


def masked_gaussian_kl(mean, logvar, gate):
  """Σ_j m_j·½(μ_j² + σ_j² − log σ_j² − 1) per example (Shi et al. 2019, eq. 1), for the gated mean and log-variance."""
  return gaussian_kl(mean, logvar, weights=gate)


# --- the gate ----------------------------------------------------------------------------------------------------
class HardConcreteGate(keras.layers.Layer):
  """A vector of ``num_gates`` hard-concrete gates with learnable log α (reusable on any latent space)."""

  def __init__(self, num_gates, temperature=TEMPERATURE, gamma=GAMMA, zeta=ZETA,
               initial_drop_rate=INITIAL_DROP_RATE, deterministic_gate="median", **kwargs):
    super().__init__(**kwargs)
    check_gate_settings(temperature, gamma, zeta, initial_drop_rate, deterministic_gate)
    self.num_gates = int(num_gates)
    self.temperature, self.gamma, self.zeta = float(temperature), float(gamma), float(zeta)
    self.initial_drop_rate = float(initial_drop_rate)
    self.deterministic_gate = deterministic_gate
    self.log_alpha = self.add_weight(
        shape=(self.num_gates,), name="log_alpha",
        initializer=keras.initializers.RandomNormal(initial_log_alpha(self.initial_drop_rate),
                                                    INITIAL_LOG_ALPHA_STDDEV))
    self.built = True  # its only weight exists now; it is never called on inputs

  def sample(self, num_draws, seed=None):
    """Training-time gates, shape [num_draws, num_gates]."""
    return sample_gate(self.log_alpha, num_draws, self.temperature, self.gamma, self.zeta, seed)

  def deterministic(self):
    """The gate used for export and evaluation, shape [num_gates] (see the module docstring)."""
    if self.deterministic_gate == "louizos":
      return louizos_test_gate(self.log_alpha, self.gamma, self.zeta)
    return median_gate(self.log_alpha, self.temperature, self.gamma, self.zeta)

  def probability_nonzero(self):
    return probability_nonzero(self.log_alpha, self.temperature, self.gamma, self.zeta)

  def expected_l0(self):
    """Σ_j P(m_j ≠ 0)."""
    return tf.reduce_sum(self.probability_nonzero())

  def num_active(self):
    """Number of dimensions whose deterministic gate is open (> 0), as float32 (a logged scalar)."""
    return tf.reduce_sum(tf.cast(self.deterministic() > 0., tf.float32))


def check_gate_settings(temperature, gamma, zeta, initial_drop_rate, deterministic_gate):
  if not temperature > 0:
    raise UserError(f"l0_gated_gaussian.temperature must be > 0, got {temperature}")
  if not (gamma < 0 and zeta > 1):
    raise UserError(f"l0_gated_gaussian needs gamma < 0 and zeta > 1 (the stretch around [0, 1]), "
                    f"got gamma={gamma}, zeta={zeta}")
  if not 0 < initial_drop_rate < 1:
    raise UserError(f"l0_gated_gaussian.initial_drop_rate must be in (0, 1), got {initial_drop_rate}")
  if deterministic_gate not in DETERMINISTIC_GATES:
    raise UserError(f"l0_gated_gaussian.deterministic_gate must be one of {DETERMINISTIC_GATES}, "
                    f"got {deterministic_gate!r}")


# --- the gated Gaussian latent space -----------------------------------------------------------------------------
class GatedGaussianLatent(GaussianLatent):
  """Diagonal Gaussian with an L0 gate per dimension (paper eq. 5). Heads ``means`` and ``variance`` (softplus).

  Params: ``mean``, ``logvar`` (gated, what the Gaussian models' regularisers read), ``gate`` ([1, D] or [B, D])
  and the ungated head outputs ``ungated_mean``, ``ungated_variance`` from which ``training_params`` re-gates.
  Sampling (z = mean + exp(logvar/2)·ε), the exported mean and ``gaussian_encoder`` are the Gaussian's.
  """

  kind = "l0_gated_gaussian"

  def __init__(self, gate_settings=None, l0_weight=L0_WEIGHT, per_example=False,
               variance_epsilon=VARIANCE_EPSILON, kl_parameters="gated", **kwargs):
    super().__init__(**kwargs)
    if kl_parameters not in KL_PARAMETERS:
      raise UserError(f"l0_gated_gaussian.kl_parameters must be one of {KL_PARAMETERS}, got {kl_parameters!r}")
    self.kl_parameters = kl_parameters
    if l0_weight < 0:
      raise UserError(f"l0_gated_gaussian.l0_weight (τ) must be >= 0, got {l0_weight}")
    if not variance_epsilon > 0:
      raise UserError(f"l0_gated_gaussian.variance_epsilon must be > 0, got {variance_epsilon}")
    self.gate_settings = dict(gate_settings or {})
    check_gate_settings(**{**dict(temperature=TEMPERATURE, gamma=GAMMA, zeta=ZETA,
                                  initial_drop_rate=INITIAL_DROP_RATE, deterministic_gate="median"),
                           **self.gate_settings})
    self.l0_weight = float(l0_weight)
    self.per_example = bool(per_example)
    self.variance_epsilon = float(variance_epsilon)

  def configure(self, num_latent):
    self.num_latent = num_latent
    self.means = keras.layers.Dense(num_latent, name="means")
    self.variance = keras.layers.Dense(num_latent, name="variance")
    self.gate = HardConcreteGate(num_latent, name="gate", **self.gate_settings)

  def _gated(self, ungated_mean, ungated_variance, gate):
    mean, logvar = gated_gaussian(ungated_mean, ungated_variance, gate, self.variance_epsilon)
    return {"mean": mean, "logvar": logvar, "gate": gate, "ungated_mean": ungated_mean,
            "ungated_variance": ungated_variance}

  def call(self, features):
    """Deterministic gate: the posterior used for export and evaluation."""
    ungated_variance = tf.nn.softplus(self.variance(features))
    return self._gated(self.means(features), ungated_variance, self.gate.deterministic()[tf.newaxis, :])

  def training_params(self, params, seed=None):
    """Draws the gates: one vector for the batch, or one per example with ``per_example``."""
    num_draws = tf.shape(params["ungated_mean"])[0] if self.per_example else 1
    gate_seed = derived_seed(seed, GATE_STREAM)
    gate = self.gate.sample(num_draws, gate_seed)
    return self._gated(params["ungated_mean"], params["ungated_variance"], gate)

  def kl(self, params):
    if self.kl_parameters == "ungated":
      ungated_logvar = tf.math.log(params["ungated_variance"] + self.variance_epsilon)
      return masked_gaussian_kl(params["ungated_mean"], ungated_logvar, params["gate"])
    return masked_gaussian_kl(params["mean"], params["logvar"], params["gate"])

  def penalty(self, params):
    """τ·Σ_j P(m_j ≠ 0), unnormalised (Shi et al. 2019, eq. 3; see the module docstring)."""
    del params
    return self.l0_weight * self.gate.expected_l0()

  def summaries(self, params):
    del params
    return {"num_active_dims": self.gate.num_active(), "expected_l0": self.gate.expected_l0()}

  def sample_prior(self, num, seed=None):
    """N(0, 1) gated like the posterior: √m̂_j·ε_j."""
    return tf.sqrt(self.gate.deterministic()) * standard_normal([num, self.num_latent], seed)


@gin.configurable("l0_gated_gaussian")
def l0_gated_gaussian(temperature=TEMPERATURE, gamma=GAMMA, zeta=ZETA, initial_drop_rate=INITIAL_DROP_RATE,
                      l0_weight=L0_WEIGHT, per_example=False, deterministic_gate="median",
                      variance_epsilon=VARIANCE_EPSILON, kl_parameters="gated"):
  """PVAE's gated Gaussian latent space; defaults: Shi et al. 2019, Table 1 (β = 0.05, γ = −0.1, ζ = 1.1, τ = 0.1)."""
  gate_settings = dict(temperature=temperature, gamma=gamma, zeta=zeta, initial_drop_rate=initial_drop_rate,
                       deterministic_gate=deterministic_gate)
  return GatedGaussianLatent(gate_settings=gate_settings, l0_weight=l0_weight, per_example=per_example,
                             variance_epsilon=variance_epsilon, kl_parameters=kl_parameters, name="latent")
