"""dlib's unsupervised scores, defined for codes with constant columns (PVAE's pruned dimensions)."""

import gin
import numpy as np
import pytest
from disentanglement_lib.data.ground_truth import dummy_data
from disentanglement_lib.evaluation.metrics import unsupervised_metrics as dlib_unsupervised

from evaluation import unsupervised_scores

PROJECTION = np.random.RandomState(7).normal(size=(64 * 64, 4))


def representation(images, constant_columns=0):
  """Four informative, correlated columns, then constant (zero) ones, as a gate-pruned PVAE exports."""
  codes = np.tanh(images.reshape(len(images), -1) @ PROJECTION / 40.)
  codes[:, 1] += 0.5 * codes[:, 0]
  return np.concatenate([codes, np.zeros((len(images), constant_columns))], axis=1)


@pytest.fixture(autouse=True)
def discretizer():
  """dlib's unsupervised.gin binds the discretizer its mutual information uses."""
  gin.parse_config(["discretizer.discretizer_fn = @histogram_discretizer", "discretizer.num_bins = 20"])


def scores_of(function, constant_columns):
  return function(dummy_data.DummyData(), lambda x: representation(x, constant_columns), np.random.RandomState(3),
                  num_train=300, batch_size=16)


def test_without_constant_columns_every_score_equals_dlibs():
  ours = scores_of(unsupervised_scores.unsupervised_metrics, 0)
  dlibs = scores_of(dlib_unsupervised.unsupervised_metrics, 0)
  assert set(ours) == set(dlibs)
  for key, value in dlibs.items():
    assert ours[key] == pytest.approx(value, rel=1e-12), key


def test_constant_columns_leave_the_gaussian_scores_of_the_others_and_keep_dlibs_mutual_information():
  with np.errstate(all="ignore"):  # dlib's log of a zero variance
    dlibs = scores_of(dlib_unsupervised.unsupervised_metrics, 3)
  assert np.isnan(dlibs["gaussian_total_correlation"])  # the defect: dlib cannot write this result
  ours = scores_of(unsupervised_scores.unsupervised_metrics, 3)
  reference = scores_of(unsupervised_scores.unsupervised_metrics, 0)
  assert ours["gaussian_total_correlation"] > 0.05  # column 1 depends on column 0
  for key in ("gaussian_total_correlation", "gaussian_wasserstein_correlation",
              "gaussian_wasserstein_correlation_norm"):
    assert ours[key] == pytest.approx(reference[key], rel=1e-9), key
  assert ours["mutual_info_score"] == pytest.approx(dlibs["mutual_info_score"], rel=1e-12)
  assert all(np.isfinite(value) for value in ours.values())


def test_only_dlibs_unsupervised_metric_is_replaced_and_it_keeps_the_gin_bound_sample_size():
  def other(ground_truth_data, representation_function, random_state):
    return {}
  assert unsupervised_scores.replacement_for(other) is other
  gin.parse_config(["unsupervised_metrics.num_train = 123"])  # cleared by conftest's clean_gin
  replaced = unsupervised_scores.replacement_for(dlib_unsupervised.unsupervised_metrics)
  assert replaced.func is unsupervised_scores.unsupervised_metrics
  assert replaced.keywords == {"num_train": 123, "batch_size": 16}
