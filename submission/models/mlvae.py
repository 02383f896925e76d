"""ML-VAE (Bouchacourt et al. 2018, "Multi-level variational autoencoder"), dlib's ``mlvae``: the pair's posteriors
are combined as a product of experts, regulariser β·KL (the pair objective: ``submission.models.weak``).

    σ̄² = 2 σ1² σ2² / (σ1² + σ2²),    μ̄ = ½ (μ1/σ1² + μ2/σ2²) σ̄² = (μ1 σ2² + μ2 σ1²) / (σ1² + σ2²)

(dlib's σ̄² is twice the product's variance σ1²σ2²/(σ1² + σ2²); kept.) ``mlvae_labels`` averages every dimension
but the labelled factor's; ``mlvae_argmax`` is Ada-ML-VAE (Locatello et al. 2020), averaging the dimensions below
the adaptive threshold τ = ½(max_j δ_j + min_j δ_j). ``mlvae.beta`` (required) applies to both.
"""

import math

import gin
import tensorflow as tf

from submission.models.weak import WeakVAE, averaged_by_label, averaged_by_threshold


@gin.configurable("mlvae")
class MLVAE(WeakVAE):
  """L = ½Σ_i E_q̃i[−log p(x_i|z)] + β·½Σ_i KL(q̃_i ‖ p), q̄ the product of the pair's posteriors."""

  model_name = "mlvae"

  def __init__(self, beta=gin.REQUIRED):
    super().__init__(self.model_name, beta)

  def average(self, first, second):
    # In log-variances, so neither a tiny nor a huge variance overflows: the weight of μ1 is σ2²/(σ1² + σ2²).
    logvar1, logvar2 = first["logvar"], second["logvar"]
    logvar = math.log(2.) + logvar1 + logvar2 - tf.reduce_logsumexp(tf.stack([logvar1, logvar2]), axis=0)
    weight1 = tf.sigmoid(logvar2 - logvar1)
    return weight1 * first["mean"] + (1. - weight1) * second["mean"], logvar


@gin.configurable("mlvae_labels")
class MLVAELabels(MLVAE):
  """ML-VAE told which factor changed: averages every dimension but that factor's."""

  model_name = "mlvae_labels"
  choose_averaged = staticmethod(averaged_by_label)


@gin.configurable("mlvae_argmax")
class MLVAEArgmax(MLVAE):
  """Ada-ML-VAE: averages the dimensions whose δ_j is below τ = ½(max_j δ_j + min_j δ_j)."""

  model_name = "mlvae_argmax"
  choose_averaged = staticmethod(averaged_by_threshold)
