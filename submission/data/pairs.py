"""Pairs of observations that share all but a few factors: the weak supervision of Locatello et al., "Weakly-Supervised
Disentanglement Without Compromises" (ICML 2020), drawn as dlib's ``methods/weak/train_weak_lib.py`` draws them,
over any registered ground-truth data set.

A pair is (x1, x2, label): factors c1 are drawn from the data set, c2 is c1 with a few factors resampled
(``simple_dynamics``, dlib's ``dynamics`` configurable), x1 and x2 are observations of c1 and c2, and the label is
the index of one resampled factor (the one the label-supervised models, ``group_vae_labels`` and ``mlvae_labels``,
read; the adaptive ones ignore it).

How many factors are resampled, as dlib decides it (``dynamics.k``):

    k ≥ 1:   k' = k;          k = −1:  k' drawn uniformly from {1, …, num_factors − 1}
    then the pair changes n factors, n drawn uniformly from {1, k'}  (so even a fixed k changes one factor half
    the time), the n factors drawn without replacement, each given a value drawn uniformly from its values.

Differences from dlib, both deliberate: dlib draws the new values from NumPy's global generator, so its pairs do not
follow from the seed; here everything is drawn from the batch's own ``RandomState`` (``submission.data.batches``),
so the stream resumes exactly. And ``dynamics.force_change = True`` (default False, dlib's behaviour) draws each
new value from the factor's *other* values, so exactly n factors differ; under dlib's rule a resampled factor keeps
its value with probability 1/num_values and the label then names a factor that did not change.
"""

import gin
import numpy as np
import tensorflow as tf

from submission.errors import UserError

RANDOM_K = -1  # dlib's dynamics.k = -1: k' drawn per pair


@gin.configurable("dynamics", denylist=["factors", "factors_num_values", "random_state"])
def simple_dynamics(factors, factors_num_values, random_state, k=gin.REQUIRED, force_change=False):
  """(c2, labels): a copy of the factors [B, F] with n factors of each row resampled (see the module docstring),
  and per row the index of the last factor resampled, int32 [B]."""
  check_dynamics(factors_num_values, k, force_change)
  num_factors = len(factors_num_values)
  changed = np.array(factors, copy=True)
  labels = np.empty(len(changed), dtype=np.int32)
  for i, row in enumerate(changed):
    k_observed = random_state.randint(1, num_factors) if k == RANDOM_K else k
    indices = random_state.choice(num_factors, random_state.choice([1, k_observed]), replace=False)
    for index in indices:
      num_values = factors_num_values[index]
      if force_change:  # one of the other num_values − 1 values, uniformly
        row[index] = (row[index] + 1 + random_state.randint(num_values - 1)) % num_values
      else:
        row[index] = random_state.randint(num_values)
    labels[i] = indices[-1]
  return changed, labels


def check_dynamics(factors_num_values, k, force_change):
  """UserError unless ``dynamics`` can draw pairs of a data set with these factor sizes."""
  num_factors = len(factors_num_values)
  if isinstance(k, bool) or not isinstance(k, int) or not (k == RANDOM_K or 1 <= k <= num_factors):
    raise UserError(f"dynamics.k must be -1 (drawn per pair) or a number of factors from 1 to {num_factors}, "
                    f"got {k!r}")
  if k == RANDOM_K and num_factors < 2:
    raise UserError("dynamics.k = -1 draws k from 1 .. num_factors - 1, which needs at least 2 factors")
  if force_change and min(factors_num_values) < 2:
    raise UserError(f"dynamics.force_change needs every factor to have 2 values or more; the factor sizes are "
                    f"{list(factors_num_values)}")


class Pairs:
  """Batches of pairs, {"first", "second": [B] + observation_shape float32, "labels": [B] int32}."""

  name = "pairs"

  def signature(self, data, batch_size):
    """The batch's TensorSpecs; checks the ``dynamics`` settings against ``data`` first."""
    # No rows: draws nothing, only checks the bound dynamics.k (and fails on a missing one, as training would).
    simple_dynamics(np.zeros([0, data.num_factors], np.int64), data.factors_num_values, None)
    observations = tf.TensorSpec([batch_size] + list(data.observation_shape), tf.float32)
    return {"first": observations, "second": observations, "labels": tf.TensorSpec([batch_size], tf.int32)}

  def sample(self, data, batch_size, random_state):
    return sample_pairs(data, batch_size, random_state)[0]


def sample_pairs(data, batch_size, random_state):
  """(batch, (c1, c2)): a batch of ``Pairs`` and the factors of its two halves."""
  first_factors = data.sample_factors(batch_size, random_state)
  first = data.sample_observations_from_factors(first_factors, random_state)
  second_factors, labels = simple_dynamics(first_factors, data.factors_num_values, random_state)
  second = data.sample_observations_from_factors(second_factors, random_state)
  batch = {"first": np.asarray(first, np.float32), "second": np.asarray(second, np.float32), "labels": labels}
  return batch, (first_factors, second_factors)


PAIRS = Pairs()
