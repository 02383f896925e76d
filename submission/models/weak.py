"""The weakly-supervised objective of Locatello et al., "Weakly-Supervised Disentanglement Without Compromises"
(ICML 2020), as dlib's ``methods/weak/weak_vae.py`` computes it; ``group_vae`` and ``mlvae`` state their averaging.

A model trains on pairs (x1, x2) that share all but a few factors (``submission.data.pairs``). Both are encoded,
q_i = N(μ_i, diag σ_i²); an average q̄ = N(μ̄, diag σ̄²) of the two is the family's own (GroupVAE: arithmetic, ML-VAE:
product of experts). On the dimensions taken as shared each posterior is replaced by the average:

    q̃_i,j = q̄_j   if j ∈ S (the averaged dimensions),   q_i,j   otherwise

and the β-VAE objective is applied to both halves with their replaced posteriors:

    reconstruction_loss = ½ mean_b ℓ(x1, dec(z̃1)) + ½ mean_b ℓ(x2, dec(z̃2)),   z̃_i ~ q̃_i
    kl_loss             = ½ mean_b KL(q̃1 ‖ p) + ½ mean_b KL(q̃2 ‖ p)
    loss                = reconstruction_loss + β·kl_loss,    elbo = −(reconstruction_loss + kl_loss)

S is chosen from the per-dimension divergence of the two posteriors,

    δ_j = KL(q(z_j | x1) ‖ q(z_j | x2))     (dlib computes 2·δ_j, which the choices below do not see)

in one of two ways (each model names one):

* ``labels`` (GroupVAE / ML-VAE with labels): the pair's label ℓ (one factor that changed) names the one
  dimension kept, S = {j : j ≠ ℓ}. Read as dlib reads it: one_hot(ℓ) compared with its maximum, so a label
  ≥ num_latent names no dimension and then nothing is averaged.
* ``argmax`` (Ada-GVAE / Ada-ML-VAE, the adaptive threshold): the dimensions that diverge least are averaged,

      τ = ½ (max_j δ_j + min_j δ_j),    S = {j : δ_j < τ}

  (dlib bins δ into two bins of equal width over [min, max]; the upper bin is kept). When every δ_j is equal the
  bins are undefined; dlib's histogram then yields no upper bin, so every dimension is averaged, as here.

Pairs are encoded in one encoder call (the halves concatenated on the batch axis), and the halves' terms are
computed as one batch of 2B, whose means equal dlib's ½·(half 1) + ½·(half 2). The train results add
``averaged_dimensions``: the mean size of S per pair (Ada-GVAE's estimate of the number of shared dimensions).
dlib's facts and the choices made here: ``docs/models/weak.md``.
"""

import gin
import tensorflow as tf

from submission.data.pairs import PAIRS
from submission.errors import UserError
from submission.latent.base import DIAGONAL_GAUSSIAN
from submission.models.base import GaussianEncoderModel


@gin.configurable("weak_loss", denylist=["z1", "z2", "labels"])
def make_weak_loss(z1, z2, labels, loss_fn=gin.REQUIRED):
  """dlib's ``weak_loss``: ``loss_fn(z1, z2, labels)``. dlib registers it for extra losses on the two codes of a
  pair, but none of its models (nor these) calls it; it is here so that configs binding it parse."""
  return loss_fn(z1, z2, labels)


def posterior_divergence(first, second):
  """δ [B, L]: KL(N(μ1, σ1²) ‖ N(μ2, σ2²)) per pair and dimension."""
  log_ratio = second["logvar"] - first["logvar"]
  return 0.5 * (tf.exp(-log_ratio) + tf.square(second["mean"] - first["mean"]) * tf.exp(-second["logvar"]) - 1.
                + log_ratio)


def averaged_by_label(divergence, labels):
  """S from the labels: every dimension but the labelled one (bool [B, L]); ``divergence`` gives only the shape."""
  one_hot = tf.one_hot(labels, tf.shape(divergence)[1], dtype=divergence.dtype)
  return one_hot < tf.reduce_max(one_hot, axis=1, keepdims=True)


def averaged_by_threshold(divergence, labels):
  """S from the adaptive threshold τ = ½(max δ + min δ) per pair: δ_j < τ (bool [B, L]); ``labels`` unused."""
  del labels
  low = tf.reduce_min(divergence, axis=1, keepdims=True)
  high = tf.reduce_max(divergence, axis=1, keepdims=True)
  # As dlib's two bins over [low, high]: the upper bin holds 2(δ − low) ≥ high − low, and is empty when high = low.
  kept = tf.logical_and(2. * (divergence - low) >= high - low, high > low)
  return tf.logical_not(kept)


class WeakVAE(GaussianEncoderModel):
  """Base of the weakly-supervised models: trains on pairs; a family states ``average`` and its regulariser, a
  model the rule choosing the averaged dimensions (``choose_averaged``)."""

  posterior = DIAGONAL_GAUSSIAN  # the averages and δ read mean and logvar
  batches = PAIRS
  choose_averaged = None  # averaged_by_label or averaged_by_threshold (a staticmethod in each model)

  @classmethod
  def holds_family_settings(cls):
    return cls.choose_averaged is None

  def __init__(self, name, beta):
    if self.holds_family_settings():
      raise UserError(f"{name} holds settings shared by a family of models; train one of them (e.g. "
                      f"{name}_labels or {name}_argmax)")
    super().__init__(name=name)
    self.beta = beta

  def average(self, first, second):
    """(μ̄, log σ̄²) of the two posteriors, each {"mean", "logvar"} [B, L]."""
    raise NotImplementedError

  def regularizer(self, kl_loss, params, z_sampled, step):
    """β·KL, for both families (dlib's GroupVAE and ML-VAE differ only in their averaging)."""
    return self.beta * kl_loss

  def averaged_dimensions(self, first, second, labels):
    """S (bool [B, L]): the dimensions whose posteriors are replaced by the average."""
    return self.choose_averaged(posterior_divergence(first, second), labels)

  def forward(self, batch, seed, step):
    images = tf.concat([batch["first"], batch["second"]], axis=0)
    params = self.latent.training_params(self.encode(images), seed)
    halves = {key: tf.split(params[key], 2) for key in ("mean", "logvar")}
    first, second = ({key: parts[i] for key, parts in halves.items()} for i in (0, 1))
    averaged = self.averaged_dimensions(first, second, batch["labels"])
    mean, logvar = self.average(first, second)
    replaced = dict(params)
    for key, value in (("mean", mean), ("logvar", logvar)):
      replaced[key] = tf.concat([tf.where(averaged, value, first[key]), tf.where(averaged, value, second[key])], 0)
    terms, _, z = self.objective(images, replaced, seed, step)
    terms["averaged_dimensions"] = tf.reduce_mean(tf.reduce_sum(tf.cast(averaged, tf.float32), axis=1))
    return terms, replaced, z
