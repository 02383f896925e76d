"""Mean absolute correlation, the example metric of docs/extending.md: how redundant the code dimensions are.

The mean of |Pearson correlation| over every pair of distinct active code dimensions, on ``num_train`` codes of
observations drawn by dlib's ``generate_batch_factor_code``: 0 for uncorrelated dimensions, 1 when they all
carry the same signal (up to scale and sign). A dimension is active when its variance over the sample exceeds
``active_variance``; a constant (pruned) dimension has no correlation. With fewer than two active dimensions the
score is 0. It ignores the factors: an unsupervised measure, in the spirit of dlib's ``unsupervised_metrics``.

dlib's style: a gin configurable with dlib's signature samples the codes and calls a pure function, which tests
call on fixed arrays. Its config, ``docs/examples/mean_abs_correlation.gin``, registers it with a gin ``import``.
"""

import gin
import numpy as np

import submission  # noqa: F401  (dlib's compat layer, which dlib's metric modules need first)
from disentanglement_lib.evaluation.metrics import utils


@gin.configurable("mean_abs_correlation", denylist=["ground_truth_data", "representation_function", "random_state",
                                                    "artifact_dir"])
def compute_mean_abs_correlation(ground_truth_data, representation_function, random_state, artifact_dir=None,
                                 num_train=gin.REQUIRED, batch_size=16, active_variance=0.):
  """dlib's calling convention: samples ``num_train`` points, returns {"mean_abs_correlation", "num_active_codes"}."""
  del artifact_dir
  mus, _ = utils.generate_batch_factor_code(ground_truth_data, representation_function, num_train, random_state,
                                            batch_size)
  return mean_abs_correlation_of_codes(mus, active_variance)


def mean_abs_correlation_of_codes(mus, active_variance=0.):
  """The score of codes ``mus`` [num_codes, num_points] (dlib's layout)."""
  mus = np.asarray(mus, np.float64)
  active = mus[np.var(mus, axis=1) > active_variance]
  score = 0.
  if len(active) >= 2:
    off_diagonal = ~np.eye(len(active), dtype=bool)
    score = float(np.mean(np.abs(np.corrcoef(active)[off_diagonal])))
  return {"mean_abs_correlation": score, "num_active_codes": len(active)}
