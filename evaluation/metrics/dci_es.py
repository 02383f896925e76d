"""DCI-ES: DCI with explicitness (E) from the loss–capacity curve, and size (S) (Eastwood et al., ICLR 2023).

Eastwood, Nicolicioiu, von Kügelgen, Kekić, Träuble, Dittadi and Schölkopf, "DCI-ES: An extended disentanglement
framework with connections to identifiability", ICLR 2023. Eastwood & Williams' D, C and I (dlib's ``dci``) say
how each factor is spread over the code and how well a fixed probe recovers it; the extension asks how much
*capacity* a probe needs to recover it. A family of probes of growing capacity traces, per factor, a
loss–capacity curve; a representation whose curve falls to its lowest loss at small capacity is explicit.

#### Mathematical details

For factor k, probes f_c of capacity c ∈ {c_1 < ... < c_n} give a test loss ℓ_k(c); the curve used is its running
minimum ℓ̃_k(c_i) = min_{i' <= i} ℓ_k(c_i') (a larger probe can always do what a smaller one does),
with lowest loss ℓ*_k = ℓ̃_k(c_n). With the baseline loss ℓ_b,k of a probe that ignores the code,

    E_k = 1 − AULCC_k / Z_k,   AULCC_k = ∫_{c_1}^{c_n} (ℓ̃_k(c) − ℓ*_k) dc  (trapezoid rule),
                                Z_k = ½ (c_n − c_1) ℓ_b,k,
    E = (1/K) sum_k E_k,        S = K / L,

for K factors and an L-dimensional code. E_k = 1 when the smallest probe already reaches the lowest loss, 0 when
the curve falls linearly from the baseline to 0, and down to −1 for a curve that stays at the baseline until the
largest capacity. S is 1 for a code with one dimension per factor and smaller for larger codes. D, C and I are
Eastwood & Williams' (dlib's ``disentanglement`` and ``completeness`` functions, unchanged) of the probe family's
most informative member.

Choices, each that of the authors' code (github.com/andreinicolicioiu/DCI-ES: ``metrics/explitcitness.py``,
``src/simple_gather.py``, ``src/loss_capacity/train_model_random_forest.py``, ``configs/random_forest``) unless
stated:

* **Probes**: random forests (scikit-learn's ``RandomForestClassifier``, ``num_trees`` = 100 trees, seeded) whose
  capacity is the trees' maximum depth, over the authors' grid 1, 2, 3, 4, 8, 10, …, 20, 32 (``capacities``),
  with the depth itself (not its logarithm) as the capacity axis, as the authors use it for forests. One forest per
  factor and depth, a classifier since dlib's factors are discrete (the authors use a classifier for discrete
  factors).
* **Loss**: 1 − test accuracy (the authors' "1 − R² or accuracy").
* **Baseline loss ℓ_b,k**: 1 − 1/n_k for a factor of n_k values, the error of a guess that ignores the code, as
  the authors' script writes it for every categorical factor (``src/simple_gather.py``: 2/3 for dSprites' 3
  shapes, 5/6 for 6 values). n_k is the data set's number of values of the factor (``factors_num_values``); the
  pure function, given codes alone, counts the values that occur. The authors treat some factors as continuous
  (MPI3D's and Cars3D's angles and heights: loss 1 − R², baseline 1); here every factor is a class, as dlib's are.
* **ℓ*_k is the curve's own lowest loss** in the area, and 0 in the normaliser Z_k, as the authors' code computes
  E for the paper (``metrics/explitcitness.py``; their comment says so). So E measures how early a representation
  reaches *its* best loss, and is read with I: a code that tells nothing has a flat curve, and E near 1, with I at
  chance.
* **D, C, I** from the probe family member with the highest mean test accuracy (the authors' ``best_info_ind``);
  its impurity importances |feature_importances_| form the importance matrix.
* **S = K / L** as the paper defines it; the authors' code does not compute it.
* **Sampling (the project's)**: ``num_train`` training and ``num_test`` test points drawn by dlib's
  ``generate_batch_factor_code``, as dlib's DCI draws them (10,000 and 5,000 in the metric config).

Agreement of E with the authors' code on fixed curves: ``tests/test_metrics.py``.
"""

import gin
import numpy as np
from sklearn import ensemble

from disentanglement_lib.evaluation.metrics import dci, utils

AUTHORS_CAPACITIES = (1, 2, 3, 4, 8, 10, 12, 14, 16, 18, 20, 32)


@gin.configurable("dci_es", denylist=["ground_truth_data", "representation_function", "random_state",
                                      "artifact_dir"])
def compute_dci_es(ground_truth_data, representation_function, random_state, artifact_dir=None,
                   num_train=gin.REQUIRED, num_test=gin.REQUIRED, batch_size=16, capacities=AUTHORS_CAPACITIES,
                   num_trees=100):
  """dlib's calling convention (sampling as dlib's ``dci``); returns D, C, I, E, S and per-factor E."""
  del artifact_dir
  mus_train, ys_train = utils.generate_batch_factor_code(ground_truth_data, representation_function, num_train,
                                                         random_state, batch_size)
  mus_test, ys_test = utils.generate_batch_factor_code(ground_truth_data, representation_function, num_test,
                                                       random_state, batch_size)
  return dci_es_of_codes(mus_train, ys_train, mus_test, ys_test, capacities, num_trees,
                         seed=int(random_state.randint(2**31 - 1)),
                         num_values=ground_truth_data.factors_num_values)


def explicitness(capacities, losses, baseline_loss):
  """E_k of one loss–capacity curve (the authors' formula, see the module docstring)."""
  x = np.asarray(capacities, np.float64)
  curve = np.minimum.accumulate(np.asarray(losses, np.float64))
  above = curve - curve.min()
  area = np.sum(0.5 * (above[:-1] + above[1:]) * np.diff(x))
  return float(1. - area / (0.5 * (x[-1] - x[0]) * baseline_loss))


def baseline_loss(num_values):
  """The error of a guess that ignores the code, for a factor of ``num_values`` equally likely values."""
  return 1. - 1. / num_values


def loss_capacity(mus_train, ys_train, mus_test, ys_test, capacities=AUTHORS_CAPACITIES, num_trees=100, seed=0):
  """Per capacity: test losses [num_capacities, num_factors], train and test accuracies, importance matrices
  [num_capacities, num_codes, num_factors]."""
  num_factors, num_codes = ys_train.shape[0], mus_train.shape[0]
  losses = np.zeros((len(capacities), num_factors))
  train_accuracy = np.zeros_like(losses)
  importance = np.zeros((len(capacities), num_codes, num_factors))
  for i, depth in enumerate(capacities):
    for k in range(num_factors):
      forest = ensemble.RandomForestClassifier(n_estimators=num_trees, max_depth=int(depth), random_state=seed)
      forest.fit(mus_train.T, ys_train[k])
      losses[i, k] = 1. - np.mean(forest.predict(mus_test.T) == ys_test[k])
      train_accuracy[i, k] = np.mean(forest.predict(mus_train.T) == ys_train[k])
      importance[i, :, k] = np.abs(forest.feature_importances_)
  return losses, train_accuracy, importance


def dci_es_of_codes(mus_train, ys_train, mus_test, ys_test, capacities=AUTHORS_CAPACITIES, num_trees=100, seed=0,
                    num_values=None):
  """DCI-ES of codes [num_codes, num_points] and factors [num_factors, num_points] (dlib's layout); ``num_values``:
  each factor's number of values (default: the number that occur in the train and test points)."""
  if len(capacities) < 2 or list(capacities) != sorted(set(capacities)):
    raise ValueError(f"dci_es.capacities must be at least two increasing depths, not {capacities}")
  losses, train_accuracy, importance = loss_capacity(mus_train, ys_train, mus_test, ys_test, capacities, num_trees,
                                                     seed)
  if num_values is None:
    num_values = [np.unique(np.concatenate([ys_train[k], ys_test[k]])).size for k in range(ys_train.shape[0])]
  per_factor = [explicitness(capacities, losses[:, k], baseline_loss(num_values[k]))
                for k in range(ys_test.shape[0])]
  best = int(np.argmax(1. - losses.mean(axis=1)))
  scores = {"disentanglement": dci.disentanglement(importance[best]),
            "completeness": dci.completeness(importance[best]),
            "informativeness_train": float(train_accuracy[best].mean()),
            "informativeness_test": float(1. - losses[best].mean()),
            "explicitness": float(np.mean(per_factor)),
            "size": ys_train.shape[0] / mus_train.shape[0],
            "best_capacity": int(capacities[best])}
  scores.update({f"explicitness_factor_{k}": value for k, value in enumerate(per_factor)})
  return scores
