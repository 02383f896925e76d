"""InfoMEC: information-based modularity (InfoM), explicitness (InfoE) and compactness (InfoC) (Hsu et al. 2023).

Hsu, Dorrell, Whittington, Wu and Finn, "Disentanglement via latent quantization", NeurIPS 2023, section 5 and
appendix: three scores read off the normalised mutual information between each factor (source) and each code
dimension (latent), plus how much of each factor a linear read-out recovers.

#### Mathematical details

With K factors z_k, L code dimensions c_j, and NMI_kj = I(z_k; c_j) / H(z_k) over the active dimensions A:

    InfoM = ( (1/|A|) sum_{j in A} max_k NMI_kj / sum_k NMI_kj  −  1/K ) / (1 − 1/K)
    InfoC = ( (1/K) sum_k max_{j in A} NMI_kj / sum_{j in A} NMI_kj  −  1/|A| ) / (1 − 1/|A|)
    InfoE = (1/K) sum_k ( H_null(z_k) − H_lin(z_k | c) ) / H_null(z_k)

InfoM is 1 when every active dimension informs one factor only and 0 when it informs all equally; InfoC is 1 when
every factor is informed by one dimension only; each is rescaled so its chance level (an even spread) is 0. InfoE
is the fraction of a factor's cross-entropy that a multinomial logistic regression on all code dimensions removes,
relative to the same regression on a zero input (H_null); it is about 0 for a random code and 1 for a code from
which the factor is linearly decodable with certainty.

Choices, each that of the authors' code (github.com/kylehkhsu/latent_quantization, ``disentangle/metrics/
infomec.py``, continuous latents) unless stated:

* **NMI estimator**: each code dimension standardised, then scikit-learn's ``mutual_info_classif`` (the
  Kraskov/Ross k-nearest-neighbour estimator, ``n_neighbors`` = 10) against the factor's values as classes;
  H(z_k) is the factor's plug-in entropy. The estimator adds a 1e-10 jitter to break ties; the authors draw it from
  NumPy's global random state, here it comes from the metric's ``random_state`` (in the same order, so seeding
  both alike gives the same numbers).
* **Active dimensions**: those whose range (max − min over the sample) exceeds ``active_fraction`` (1/20) of the
  largest range; pruned dimensions (constant or near-constant codes) do not count in InfoM and InfoC.
* **Degenerate cases (the project's; the authors' code gives NaN, which dlib's result files cannot hold)**: a
  dimension (for InfoM) or factor (for InfoC) without any information is left out of the mean, as the authors'
  later ``compute_mutual_information_ratio`` leaves such dimensions out; with one active dimension InfoC is 1 (no
  factor can be spread), with one factor InfoM is 1; with no active dimension, or no information at all, both are
  0. The kNN estimate can be slightly negative; it is clamped at 0 for InfoM and InfoC.
* **InfoE's regression**: scikit-learn's ``LogisticRegression`` without penalty (``C = inf``; the authors' 
  ``penalty=None`` on older scikit-learn), L-BFGS, at most ``max_iter`` = 100 iterations, tolerance 1e-4,
  ``class_weight="balanced"``, on the standardised codes, scored by the (unweighted) log loss **on the points it
  was fitted on**, as the authors do; the null model is the same regression on a zero input. Stopping at 100
  iterations is part of the definition (an unpenalised fit to separable classes never converges).
* **Sampling (the project's)**: ``num_train`` points drawn by dlib's ``generate_batch_factor_code``; the paper
  uses the whole data set.

Agreement with the authors' code on fixed inputs: ``tests/test_metrics.py``.
"""

import warnings

import gin
import numpy as np
from sklearn import exceptions, feature_selection, linear_model, metrics, preprocessing

from disentanglement_lib.evaluation.metrics import utils


@gin.configurable("infomec", denylist=["ground_truth_data", "representation_function", "random_state",
                                       "artifact_dir"])
def compute_infomec(ground_truth_data, representation_function, random_state, artifact_dir=None,
                    num_train=gin.REQUIRED, batch_size=16, n_neighbors=10, active_fraction=1. / 20, max_iter=100):
  """dlib's calling convention: samples ``num_train`` points, returns {"infom", "infoe", "infoc",
  "num_active_codes"}."""
  del artifact_dir
  mus, ys = utils.generate_batch_factor_code(ground_truth_data, representation_function, num_train, random_state,
                                             batch_size)
  return infomec_of_codes(mus, ys, random_state, n_neighbors, active_fraction, max_iter)


def _classes(ys):
  """Each factor's values as class indices 0..n-1 [num_factors, num_points]."""
  return np.stack([np.unique(y, return_inverse=True)[1].reshape(-1) for y in ys])


def normalized_mutual_information(mus, ys, random_state, n_neighbors=10):
  """NMI [num_factors, num_codes]: I(z_k; c_j) / H(z_k), kNN estimate on standardised codes."""
  classes = _classes(ys)
  codes = preprocessing.StandardScaler().fit_transform(np.asarray(mus, np.float64).T)
  nmi = np.empty((classes.shape[0], codes.shape[1]))
  for k, y in enumerate(classes):
    for j in range(codes.shape[1]):  # factor-major order, as the authors', so the jitter draws line up
      nmi[k, j] = feature_selection.mutual_info_classif(codes[:, j:j + 1], y, discrete_features=False,
                                                        n_neighbors=n_neighbors, random_state=random_state)[0]
    nmi[k] /= metrics.mutual_info_score(y, y)
  return nmi


def _cross_entropy(inputs, classes, max_iter):
  model = linear_model.LogisticRegression(C=np.inf, tol=1e-4, fit_intercept=True, class_weight="balanced",
                                          solver="lbfgs", max_iter=max_iter)
  with warnings.catch_warnings():
    warnings.simplefilter("ignore", exceptions.ConvergenceWarning)  # stopping early is part of the definition
    model.fit(inputs, classes)
  return metrics.log_loss(classes, model.predict_proba(inputs), labels=model.classes_)


def info_e(mus, ys, max_iter=100):
  """InfoE: the mean over factors of the fraction of H_null(z_k) a linear read-out of the codes removes."""
  codes = preprocessing.StandardScaler().fit_transform(np.asarray(mus, np.float64).T)
  null = np.zeros_like(codes)
  fractions = []
  for y in _classes(ys):
    marginal = _cross_entropy(null, y, max_iter)
    fractions.append((marginal - _cross_entropy(codes, y, max_iter)) / marginal)
  return float(np.mean(fractions))


def _preference(nmi, axis, num_choices):
  """The mean share of the largest entry along ``axis``, rescaled so an even spread over ``num_choices`` is 0 and
  one entry alone is 1; lines without any information are left out (1 if there is one choice only, 0 if no line
  informs at all)."""
  totals = nmi.sum(axis=axis)
  informed = totals > 0
  if num_choices == 1:
    return 1.
  if not np.any(informed):
    return 0.
  share = np.mean(nmi.max(axis=axis)[informed] / totals[informed])
  return float((share - 1. / num_choices) / (1. - 1. / num_choices))


def infom_infoc(nmi, active):
  """(InfoM, InfoC) from NMI [num_factors, num_codes] and the active codes' mask."""
  pruned = np.clip(np.asarray(nmi, np.float64)[:, np.asarray(active, bool)], 0., None)
  num_factors, num_active = pruned.shape
  if num_active == 0:
    return 0., 0.
  return _preference(pruned, 0, num_factors), _preference(pruned, 1, num_active)


def active_codes(mus, active_fraction=1. / 20):
  """Codes whose range over the sample exceeds ``active_fraction`` of the largest range."""
  ranges = np.ptp(np.asarray(mus), axis=1)
  return ranges > np.max(ranges) * active_fraction


def infomec_of_codes(mus, ys, random_state, n_neighbors=10, active_fraction=1. / 20, max_iter=100):
  """InfoM, InfoE, InfoC of codes ``mus`` [num_codes, num_points] and factors ``ys`` [num_factors, num_points]."""
  active = active_codes(mus, active_fraction)
  infom, infoc = infom_infoc(normalized_mutual_information(mus, ys, random_state, n_neighbors), active)
  return {"infom": infom, "infoe": info_e(mus, ys, max_iter), "infoc": infoc, "num_active_codes": int(active.sum())}
