"""DCIMIG: the mutual information gap credited to one factor per code dimension (Sepliarskaia et al. 2019).

Sepliarskaia, Kiseleva and de Rijke, "How to not measure disentanglement" (arXiv:1910.05587, 2019; also
"Evaluating disentangled representations"), section 4: a metric that is high only when the representation is
disentangled (each code dimension informs one factor), complete (each factor is captured) and informative
(captured well), hence the name; MIG misses the first property, MIG-sup the second.

#### Mathematical details

With I(c_j; z_k) the mutual information between code dimension j and factor k:

1. for each code dimension j, its gap Δ_j = I(c_j; z_(1)) − I(c_j; z_(2)) between the two factors it informs most,
   credited to its best factor k_j = argmax_k I(c_j; z_k);
2. for each factor k, its score D_k = max { Δ_j : k_j = k }, 0 when no dimension has k as its best factor;
3. DCIMIG = sum_k D_k / sum_k H(z_k).

A factor-aligned code scores 1 (each D_k = H(z_k)); a code whose dimensions each mix two factors equally scores
0; a random code about 0. Unlike MIG and MIG-sup the normalisation is global (by the total entropy), so a factor
with more values weighs more.

Choices:

* **Estimator**: the plug-in mutual information of the code discretised by dlib's gin ``discretizer`` (20
  equal-width bins in the metric config, as dlib's MIG) with the factors, and the factors' empirical entropies, on
  ``num_train`` points drawn by dlib's ``generate_batch_factor_code`` (the paper leaves the estimator open; this is
  dlib's, so MIG, MIG-sup and DCIMIG read one matrix).
* **Ties**: a dimension whose best two factors tie has gap 0, credited to the first of them (NumPy's argmax).
* The authors published no code; the reference is Ubisoft La Forge's implementation (Carbonneau et al. 2022,
  github.com/ubisoft/ubisoft-laforge-disentanglement-metrics, ``dcimig.py``), which follows the paper's steps.
  Agreement on fixed inputs: ``tests/test_metrics.py``.
"""

import gin
import numpy as np

from disentanglement_lib.evaluation.metrics import utils


@gin.configurable("dcimig", denylist=["ground_truth_data", "representation_function", "random_state",
                                      "artifact_dir"])
def compute_dcimig(ground_truth_data, representation_function, random_state, artifact_dir=None,
                   num_train=gin.REQUIRED, batch_size=16):
  """dlib's calling convention: samples ``num_train`` points, returns {"dcimig"}."""
  del artifact_dir
  mus, ys = utils.generate_batch_factor_code(ground_truth_data, representation_function, num_train, random_state,
                                             batch_size)
  return dcimig_of_codes(mus, ys)


def dcimig_of_codes(mus, ys):
  """DCIMIG of codes ``mus`` [num_codes, num_points] and factors ``ys`` [num_factors, num_points] (dlib's layout),
  the codes discretised by dlib's gin-bound ``discretizer``."""
  mutual_information = utils.discrete_mutual_info(utils.make_discretizer(mus), ys)
  return {"dcimig": dcimig_from_mutual_information(mutual_information, utils.discrete_entropy(ys))}


def dcimig_from_mutual_information(mutual_information, factor_entropy):
  """The score from I(c_j; z_k) [num_codes, num_factors] and H(z_k) [num_factors]."""
  mutual_information = np.asarray(mutual_information, np.float64)
  num_codes, num_factors = mutual_information.shape
  if num_factors < 2:
    raise ValueError("DCIMIG needs at least two factors (a gap between the two best)")
  best_two = -np.sort(-mutual_information, axis=1)[:, :2]
  gaps = best_two[:, 0] - best_two[:, 1]
  owner = np.argmax(mutual_information, axis=1)
  per_factor = np.zeros(num_factors)
  for j in range(num_codes):
    per_factor[owner[j]] = max(per_factor[owner[j]], gaps[j])
  return float(np.sum(per_factor) / np.sum(factor_entropy))
