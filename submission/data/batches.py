"""What one training batch is. A model names its kind (``GaussianEncoderModel.batches``); the training loop's
single input stream (``submission.train.batch_dataset``) draws batch i of that kind from ``RandomState([seed, i])``,
so every kind resumes exactly.

A kind has ``signature(data, batch_size)`` (a TensorSpec or a dict of them; it may check the kind's settings
against the data set, so a bad setting fails before anything is written) and ``sample(data, batch_size,
random_state)`` (NumPy arrays of that structure). Kinds: ``OBSERVATIONS`` here (every unsupervised model) and
``submission.data.pairs.PAIRS`` (the weakly-supervised models).
"""

import numpy as np
import tensorflow as tf


class Observations:
  """Single observations, [B] + observation_shape float32: what the unsupervised models train on."""

  name = "observations"

  def signature(self, data, batch_size):
    return tf.TensorSpec([batch_size] + list(data.observation_shape), tf.float32)

  def sample(self, data, batch_size, random_state):
    return np.asarray(data.sample_observations(batch_size, random_state), dtype=np.float32)


OBSERVATIONS = Observations()
