"""dlib's unsupervised scores for representations with constant columns (e.g. PVAE's pruned dimensions).

dlib's ``unsupervised_metrics`` (the ``unsupervised`` metric config: Gaussian total correlation, Gaussian
Wasserstein correlation and its normalised form, the mean pairwise mutual information of the discretised codes)
takes the covariance of the mean codes. A code column that is constant — a dimension closed by an L0 gate exports
as a column of zeros — has variance 0, so the Gaussian total correlation

    TC = ½·(Σ_i log Cov_ii − log det Cov)

is −∞ − (−∞) = NaN, and dlib's result writer refuses NaN: the whole metric fails, its other scores with it.

The value the formula tends to as a column's variance goes to 0 (with its covariances, which vanish with it) is the
score of the other columns: a degenerate coordinate is independent of everything, adds the same log-variance to
both terms of TC and nothing to either trace of the Wasserstein correlation. ``unsupervised_metrics`` here is
dlib's function step for step, from dlib's own pieces and the same draws, except that the three Gaussian scores are
computed on the covariance of the non-constant columns. The mutual information keeps every column, as dlib: a
constant column has zero mutual information with the others, which is defined, and dlib averages over all pairs.
With no constant column every score equals dlib's (tested).
"""

import functools
import inspect

import gin
import numpy as np

import submission.compat  # noqa: F401  (dlib's metric utilities import gin.tf, which needs the TF2 shims)
from disentanglement_lib.evaluation.metrics import unsupervised_metrics as dlib_unsupervised
from disentanglement_lib.evaluation.metrics import utils as dlib_utils


def gaussian_scores(codes):
  """The three Gaussian scores of dlib's unsupervised metric for codes [num_codes, num_points], on the covariance of
  the codes whose variance is non-zero."""
  covariance = np.cov(codes)
  varying = np.diag(covariance) > 0
  covariance = covariance[np.ix_(varying, varying)]
  wasserstein = dlib_unsupervised.gaussian_wasserstein_correlation(covariance)
  return {"gaussian_total_correlation": dlib_unsupervised.gaussian_total_correlation(covariance),
          "gaussian_wasserstein_correlation": wasserstein,
          "gaussian_wasserstein_correlation_norm": wasserstein / np.sum(np.diag(covariance))}


def unsupervised_metrics(ground_truth_data, representation_function, random_state, artifact_dir=None,
                         num_train=None, batch_size=16):
  """dlib's ``unsupervised_metrics`` (same arguments, draws and keys), defined for constant code columns."""
  del artifact_dir
  codes, _ = dlib_utils.generate_batch_factor_code(ground_truth_data, representation_function, num_train,
                                                   random_state, batch_size)
  scores = gaussian_scores(codes)
  discrete = dlib_utils.make_discretizer(codes)
  mutual_info = dlib_utils.discrete_mutual_info(discrete, discrete)
  np.fill_diagonal(mutual_info, 0)
  num_codes = codes.shape[0]
  scores["mutual_info_score"] = np.sum(mutual_info) / (num_codes ** 2 - num_codes)
  return scores


def replacement_for(evaluation_fn):
  """What to call in place of the metric function gin bound: this module's ``unsupervised_metrics`` for dlib's, with
  the ``num_train`` and ``batch_size`` gin binds to dlib's configurable; any other function itself."""
  if inspect.unwrap(evaluation_fn) is not inspect.unwrap(dlib_unsupervised.unsupervised_metrics):
    return evaluation_fn
  defaults = inspect.signature(inspect.unwrap(dlib_unsupervised.unsupervised_metrics)).parameters
  bound = {}
  for name in ("num_train", "batch_size"):
    try:
      bound[name] = gin.query_parameter(f"unsupervised_metrics.{name}")
    except ValueError:  # not bound: dlib's default
      bound[name] = defaults[name].default
  return functools.partial(unsupervised_metrics, **bound)
