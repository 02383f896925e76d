"""GroupVAE (Hosoya 2019, "Group-based learning of disentangled representations with generalizability for novel
contents"), dlib's ``group_vae``: the pair's posteriors are averaged arithmetically, regulariser β·KL
(the pair objective: ``submission.models.weak``).

    μ̄ = ½ (μ1 + μ2),    σ̄² = ½ (σ1² + σ2²)

``group_vae_labels`` averages every dimension but the labelled factor's; ``group_vae_argmax`` is Ada-GVAE
(Locatello et al. 2020), averaging the dimensions below the adaptive threshold τ = ½(max_j δ_j + min_j δ_j).
``group_vae.beta`` (required) applies to both.
"""

import math

import gin
import tensorflow as tf

from submission.models.weak import WeakVAE, averaged_by_label, averaged_by_threshold


@gin.configurable("group_vae")
class GroupVAE(WeakVAE):
  """L = ½Σ_i E_q̃i[−log p(x_i|z)] + β·½Σ_i KL(q̃_i ‖ p), q̄ the arithmetic mean of the pair's posteriors."""

  model_name = "group_vae"

  def __init__(self, beta=gin.REQUIRED):
    super().__init__(self.model_name, beta)

  def average(self, first, second):
    # log(½e^a + ½e^b) without overflow
    logvar = tf.reduce_logsumexp(tf.stack([first["logvar"], second["logvar"]]), axis=0) - math.log(2.)
    return 0.5 * (first["mean"] + second["mean"]), logvar


@gin.configurable("group_vae_labels")
class GroupVAELabels(GroupVAE):
  """GroupVAE told which factor changed: averages every dimension but that factor's."""

  model_name = "group_vae_labels"
  choose_averaged = staticmethod(averaged_by_label)


@gin.configurable("group_vae_argmax")
class GroupVAEArgmax(GroupVAE):
  """Ada-GVAE: averages the dimensions whose δ_j is below τ = ½(max_j δ_j + min_j δ_j)."""

  model_name = "group_vae_argmax"
  choose_averaged = staticmethod(averaged_by_threshold)
