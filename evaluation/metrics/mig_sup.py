"""MIG-sup: the mutual information gap taken per code dimension (Li et al. 2020).

Li, Murkute, Gyawali and Wang, "Progressive learning and disentanglement of hierarchical representations", ICLR
2020 (pro-VLAE), section 5: dlib's MIG (Chen et al. 2018) rewards a factor that is captured by one code dimension
far better than by any other, but not a code dimension that captures two factors at once. MIG-sup swaps the roles:
for every code dimension, the gap between the two factors it informs most.

#### Mathematical details

With I(c_j; z_k) the mutual information between code dimension j and factor k and H(z_k) the factor's entropy,
the normalised information is I_jk = I(c_j; z_k) / H(z_k), and

    MIG-sup = (1 / |A|) sum_{j in A} ( I_j,(1) - I_j,(2) ),

where I_j,(1) >= I_j,(2) are the largest two of I_j1 .. I_jK and A is the set of active code dimensions. A
factor-aligned code (one dimension per factor) scores 1; a dimension that carries two factors equally scores 0;
a random code scores about 0.

Choices, each in the authors' code (github.com/Zhiyuan1991/proVLAE, ``metric_MIG.py``) unless stated:

* **Only active dimensions count**: a dimension is active when the variance of its code over the sample exceeds
  ``active_variance`` (0.01, the authors' threshold, applied by them to the encoder's mean, as here to the mean
  representation). An inactive dimension would score a gap of about 0 and only dilute the average. With no
  active dimension the score is 0 (the code tells nothing).
* **Normalisation by the factor's entropy**, as dlib's MIG does; the authors divide by log(number of values of
  the factor), the entropy of a uniform factor, which is what dlib's data sets sample (the empirical entropy
  used here differs from it by sampling noise only).
* **Estimator (the project's choice)**: the authors estimate I(c_j; z_k) from q(z|x) over the whole data set
  (Chen et al.'s estimator, needing the encoder's variance and a full factor grid). Here, as in dlib's MIG, it is
  the plug-in mutual information of the code discretised by dlib's ``discretizer`` (gin ``discretizer.*``: 20
  equal-width bins in the metric config) with the factors, on ``num_train`` points drawn by dlib's
  ``generate_batch_factor_code``; so MIG-sup and dlib's MIG share one estimate of the same matrix.
* Negative normalised information (never produced by the plug-in estimator) would be clamped at 0, as the authors
  clamp theirs.

Agreement with the authors' code on fixed mutual information matrices: ``tests/test_metrics.py``.
"""

import gin
import numpy as np

from disentanglement_lib.evaluation.metrics import utils


@gin.configurable("mig_sup", denylist=["ground_truth_data", "representation_function", "random_state",
                                       "artifact_dir"])
def compute_mig_sup(ground_truth_data, representation_function, random_state, artifact_dir=None,
                    num_train=gin.REQUIRED, batch_size=16, active_variance=0.01):
  """dlib's calling convention: samples ``num_train`` points, returns {"mig_sup", "num_active_codes"}."""
  del artifact_dir
  mus, ys = utils.generate_batch_factor_code(ground_truth_data, representation_function, num_train, random_state,
                                             batch_size)
  return mig_sup_of_codes(mus, ys, active_variance)


def mig_sup_of_codes(mus, ys, active_variance=0.01):
  """MIG-sup of codes ``mus`` [num_codes, num_points] and factors ``ys`` [num_factors, num_points] (dlib's
  layout), the codes discretised by dlib's gin-bound ``discretizer``."""
  mutual_information = utils.discrete_mutual_info(utils.make_discretizer(mus), ys)
  active = np.var(mus, axis=1) > active_variance
  return {"mig_sup": mig_sup_from_mutual_information(mutual_information, utils.discrete_entropy(ys), active),
          "num_active_codes": int(np.sum(active))}


def mig_sup_from_mutual_information(mutual_information, factor_entropy, active):
  """The score from I(c_j; z_k) [num_codes, num_factors], H(z_k) [num_factors] and the active codes (bool mask or
  indices)."""
  mutual_information = np.asarray(mutual_information, np.float64)
  if mutual_information.shape[1] < 2:
    raise ValueError("MIG-sup needs at least two factors (a gap between the two best)")
  normalized = np.clip(mutual_information / np.asarray(factor_entropy, np.float64)[None, :], 0., None)
  best_two = -np.sort(-normalized, axis=1)[:, :2]
  gaps = (best_two[:, 0] - best_two[:, 1])[np.asarray(active)]
  return float(np.mean(gaps)) if gaps.size else 0.
