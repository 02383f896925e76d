"""The project's metrics (evaluation/metrics/): the properties their papers state, and agreement with the authors'
reference implementations on fixed inputs.

The reference numbers in ``tests/data/metric_references.json`` (inputs and outputs, no code) were computed by
running the reference code unchanged in a separate environment (Python 3.11, NumPy 1.26, scikit-learn 1.5.2,
PyTorch 2 CPU):

* MIG-sup: github.com/Zhiyuan1991/proVLAE @ 3e1ec1798ef4dfa9672eb563bc5e8053acd62c69, ``metric_MIG.py``
  ``compute_metric_shapes`` (the authors'), fed the mutual information matrix (marginal entropies 0, conditional
  entropies −I) of dSprites' four factors it hard-codes;
* DCIMIG: github.com/ubisoft/ubisoft-laforge-disentanglement-metrics @ 05d5667c129bc1445c343a651d26ccd2926fdde6,
  ``src/metrics/dcimig.py`` (Sepliarskaia et al. published no code), on integer codes 0..9 that its 10-bin
  quantisation and dlib's 10-bin histogram discretizer both map one-to-one;
* InfoMEC: github.com/kylehkhsu/latent_quantization @ 9a420a33505e03914f9b4fbfcafd221d25b8162f,
  ``disentangle/metrics/infomec.py`` ``compute_infomec(..., discrete_latents=False)`` (the authors'), after
  ``np.random.seed(seed)``;
* DCI-ES explicitness: github.com/andreinicolicioiu/DCI-ES @ 9329daec05ac18038e080596c5bde997d28a1aaa,
  ``metrics/explitcitness.py`` ``Explitcitness`` (the authors'), one object per curve as ``src/simple_gather.py``.
"""

import json
import math
import os

import gin
import numpy as np
import pytest

import submission  # noqa: F401  (the compat layer dlib needs, before any dlib import)
from disentanglement_lib.data.ground_truth import ground_truth_data
from disentanglement_lib.evaluation.metrics import utils
from evaluation.metrics import dci_es, dcimig, infomec, mig_sup

REFERENCES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "metric_references.json")
FACTOR_SIZES = (3, 6, 8, 5)


@pytest.fixture(name="references", scope="module")
def fixture_references():
  with open(REFERENCES) as f:
    return json.load(f)


@pytest.fixture(name="discretizer")
def fixture_discretizer():
  """dlib's metric configs' discretizer binding (20 equal-width bins); ``bins(n)`` rebinds the bin count."""
  def bins(num_bins):
    gin.clear_config()
    gin.parse_config(["discretizer.discretizer_fn = @histogram_discretizer", f"discretizer.num_bins = {num_bins}"])
  bins(20)
  yield bins
  gin.clear_config()


def factors(num_points, seed=0):
  """Independent uniform factors of FACTOR_SIZES [num_factors, num_points]."""
  random_state = np.random.RandomState(seed)
  return np.stack([random_state.randint(0, size, num_points) for size in FACTOR_SIZES])


def aligned(ys):
  """A perfect code: one dimension per factor, an affine function of it."""
  return ys * np.array([[0.7], [1.3], [0.4], [2.]]) + np.array([[1.], [-2.], [0.], [5.]])


def permuted(mus):
  """The same code, its dimensions permuted and one flipped in sign."""
  return mus[[2, 0, 3, 1]] * np.array([[1.], [-1.], [1.], [1.]])


def mixed(ys):
  """The perfect code with its first two dimensions each carrying factors 0 and 1 (rotated 45 degrees)."""
  mus = aligned(ys).astype(np.float64)
  a, b = ys[0] / 2., ys[1] / 5.
  mus[0], mus[1] = a + b, a - b
  return mus


def random_code(num_points, seed=1):
  return np.random.RandomState(seed).randn(len(FACTOR_SIZES), num_points)


# --- MIG-sup ---------------------------------------------------------------------------------------------------------


def test_mig_sup_properties(discretizer):
  del discretizer
  ys = factors(5000)
  perfect = mig_sup.mig_sup_of_codes(aligned(ys), ys)["mig_sup"]
  assert perfect > 0.97  # 1 up to the plug-in estimator's positive bias on independent pairs
  assert mig_sup.mig_sup_of_codes(permuted(aligned(ys)), ys)["mig_sup"] == pytest.approx(perfect, abs=1e-12)
  assert mig_sup.mig_sup_of_codes(random_code(5000), ys)["mig_sup"] < 0.02
  assert mig_sup.mig_sup_of_codes(mixed(ys), ys)["mig_sup"] < perfect - 0.2


def test_mig_sup_ignores_inactive_dimensions(discretizer):
  del discretizer
  ys = factors(3000)
  with_dead = np.concatenate([aligned(ys), np.full((3, 3000), 0.5), 1e-3 * random_code(3000)[:2]])
  result = mig_sup.mig_sup_of_codes(with_dead, ys)
  assert result["num_active_codes"] == 4
  assert result["mig_sup"] == pytest.approx(mig_sup.mig_sup_of_codes(aligned(ys), ys)["mig_sup"], abs=1e-12)


def test_mig_sup_agrees_with_the_authors(references):
  for case in references["mig_sup"]:
    mutual_information = np.array(case["mutual_information"]).T  # theirs is [factors, codes]
    value = mig_sup.mig_sup_from_mutual_information(mutual_information, np.log(case["factor_sizes"]),
                                                    case["active"])
    assert value == pytest.approx(case["mig_sup"], rel=1e-6)  # theirs runs in float32


# --- DCIMIG ----------------------------------------------------------------------------------------------------------


def test_dcimig_properties(discretizer):
  del discretizer
  ys = factors(5000)
  perfect = dcimig.dcimig_of_codes(aligned(ys), ys)["dcimig"]
  assert perfect > 0.97
  assert dcimig.dcimig_of_codes(permuted(aligned(ys)), ys)["dcimig"] == pytest.approx(perfect, abs=1e-12)
  assert dcimig.dcimig_of_codes(random_code(5000), ys)["dcimig"] < 0.02
  assert dcimig.dcimig_of_codes(mixed(ys), ys)["dcimig"] < perfect - 0.2


def test_dcimig_credits_each_factor_its_best_dimension_only():
  # Two dimensions informing factor 0 (gaps 0.5 and 0.2), none informing factor 1: (0.5 + 0) / (1 + 1).
  mutual_information = np.array([[0.6, 0.1], [0.3, 0.1]])
  assert dcimig.dcimig_from_mutual_information(mutual_information, [1., 1.]) == pytest.approx(0.25)


def test_dcimig_agrees_with_the_reference(references, discretizer):
  discretizer(10)
  for case in references["dcimig"]:
    codes = np.array(case["codes"], np.float64).T
    ys = np.array(case["factors"]).T
    assert dcimig.dcimig_of_codes(codes, ys)["dcimig"] == pytest.approx(case["dcimig"], rel=1e-9, abs=1e-12)


# --- InfoMEC ---------------------------------------------------------------------------------------------------------


def infomec_of(mus, ys, seed=0):
  return infomec.infomec_of_codes(mus, ys, np.random.RandomState(seed))


def test_infomec_properties():
  ys = factors(2000)
  perfect = infomec_of(aligned(ys), ys)
  assert perfect["infom"] > 0.95 and perfect["infoc"] > 0.95
  assert perfect["infoe"] > 0.5  # ordinal codes: a linear read-out of 8 classes from one number is imperfect
  again = infomec_of(permuted(aligned(ys)), ys)
  for key in ("infom", "infoc", "infoe"):
    assert again[key] == pytest.approx(perfect[key], abs=0.01), key
  noise = infomec_of(random_code(2000), ys)
  assert abs(noise["infoe"]) < 0.03
  mix = infomec_of(mixed(ys), ys)
  assert mix["infom"] < perfect["infom"] - 0.2


def test_infomec_prunes_collapsed_dimensions():
  ys = factors(1000)
  mus = np.concatenate([aligned(ys), np.zeros((1, 1000)), 1e-4 * random_code(1000)[:1]])
  result = infomec_of(mus, ys)
  assert result["num_active_codes"] == 4
  assert result["infom"] > 0.95 and result["infoc"] > 0.95


def test_infomec_agrees_with_the_authors(references):
  for case in references["infomec"]:
    mus, ys = np.array(case["latents"]).T, np.array(case["factors"]).T
    nmi = infomec.normalized_mutual_information(mus, ys, np.random.RandomState(case["seed"]))
    np.testing.assert_allclose(nmi, case["nmi"], rtol=1e-6, atol=1e-9)
    result = infomec_of(mus, ys, case["seed"])
    assert result["infom"] == pytest.approx(case["infom"], rel=1e-6)
    assert result["infoc"] == pytest.approx(case["infoc"], rel=1e-6)
    # L-BFGS stopped at 100 iterations: another scikit-learn's line search may end a little elsewhere.
    assert result["infoe"] == pytest.approx(case["infoe"], abs=2e-3)
    assert list(infomec.active_codes(mus)) == case["active_latents"]


# --- DCI-ES ----------------------------------------------------------------------------------------------------------


def test_explicitness_agrees_with_the_authors(references):
  for case in references["dci_es_explicitness"]:
    value = dci_es.explicitness(case["capacities"], case["losses"], case["baseline_loss"])
    assert value == pytest.approx(case["explicitness"], rel=1e-12, abs=1e-12)


def test_explicitness_of_simple_curves():
  capacities = [1, 2, 3]
  assert dci_es.explicitness(capacities, [0., 0., 0.], 1.) == 1.  # lowest loss at the smallest capacity
  assert dci_es.explicitness(capacities, [1., .5, 0.], 1.) == pytest.approx(0.)  # linear fall from the baseline
  assert dci_es.explicitness(capacities, [1., 1., 0.], 1.) == pytest.approx(-0.5)
  assert dci_es.explicitness(capacities, [0., 1., 1.], 1.) == 1.  # the running minimum: capacity never hurts


def test_explicitness_baseline_is_the_authors_chance_error_over_the_factors_values():
  assert dci_es.baseline_loss(3) == pytest.approx(2 / 3)  # the authors' number for dSprites' shapes
  assert dci_es.baseline_loss(6) == pytest.approx(5 / 6)
  # Given codes alone, a factor's values are those that occur; the wrapper passes the data set's count instead,
  # which a small sample may not show in full. A curve falling halfway at the middle capacity scores differently.
  ys = np.repeat(np.arange(4), 50)[None, :]
  mus = (ys + 0.4 * np.random.RandomState(0).randn(1, 200)).astype(np.float32)
  observed = dci_es.dci_es_of_codes(mus, ys, mus, ys, capacities=(1, 2, 3), num_trees=5)
  declared = dci_es.dci_es_of_codes(mus, ys, mus, ys, capacities=(1, 2, 3), num_trees=5, num_values=[40])
  assert observed["explicitness"] != pytest.approx(declared["explicitness"])


def small_dci_es(mus, ys, num_train=1500):
  return dci_es.dci_es_of_codes(mus[:, :num_train], ys[:, :num_train], mus[:, num_train:], ys[:, num_train:],
                                capacities=(1, 2, 3, 4, 8), num_trees=20, seed=0)


def test_dci_es_properties():
  ys = factors(2500)
  perfect = small_dci_es(aligned(ys), ys)
  # Not 1: the authors' forests try sqrt(4) = 2 random dimensions per split, so some splits of a tree land on a
  # dimension of another factor and take a little of the impurity importance.
  assert perfect["disentanglement"] > 0.85 and perfect["completeness"] > 0.85
  assert perfect["informativeness_test"] == 1.
  assert perfect["size"] == 1.
  assert perfect["explicitness"] > 0.6  # depth 3 separates 8 values; depth 1 does not
  again = small_dci_es(permuted(aligned(ys)), ys)
  # The forests' random choice of dimensions depends on their order, so permuting moves the scores a little.
  for key in ("disentanglement", "completeness", "informativeness_test", "explicitness"):
    assert again[key] == pytest.approx(perfect[key], abs=0.05), key
  noise = small_dci_es(random_code(2500), ys)
  assert noise["disentanglement"] < 0.15 and noise["completeness"] < 0.15
  assert noise["informativeness_test"] < 0.3  # chance: predicting each factor's most frequent value, about 0.21
  # E is measured from the curve's own lowest loss (the authors' code): no capacity helps a random code, so its
  # curve is flat and E is near 1. E is read with I, never alone.
  assert noise["explicitness"] > 0.9
  mix = small_dci_es(mixed(ys), ys)
  assert mix["disentanglement"] < perfect["disentanglement"] - 0.1
  wider = small_dci_es(np.concatenate([aligned(ys), random_code(2500)]), ys)
  assert wider["size"] == 0.5


# --- the wrappers: dlib's sampling ---------------------------------------------------------------------------------


class FactorsAsObservations(ground_truth_data.GroundTruthData):
  """FACTOR_SIZES factors observed directly; the identity representation is a perfect code."""

  num_factors = len(FACTOR_SIZES)
  factors_num_values = list(FACTOR_SIZES)
  observation_shape = [len(FACTOR_SIZES)]

  def sample_factors(self, num, random_state):
    return np.stack([random_state.randint(0, size, num) for size in FACTOR_SIZES], axis=1)

  def sample_observations_from_factors(self, factors_, random_state):
    return factors_.astype(np.float32)


def test_wrappers_sample_through_dlib(discretizer):
  del discretizer
  data = FactorsAsObservations()
  identity = lambda observations: np.asarray(observations, np.float64)  # noqa: E731
  scores = {
      "mig_sup": mig_sup.compute_mig_sup(data, identity, np.random.RandomState(0), num_train=3000),
      "dcimig": dcimig.compute_dcimig(data, identity, np.random.RandomState(0), num_train=3000),
      "infomec": infomec.compute_infomec(data, identity, np.random.RandomState(0), num_train=1000),
      "dci_es": dci_es.compute_dci_es(data, identity, np.random.RandomState(0), num_train=1000, num_test=500,
                                      capacities=(1, 2, 4), num_trees=10),
  }
  assert scores["mig_sup"]["mig_sup"] > 0.95 and scores["dcimig"]["dcimig"] > 0.95
  assert scores["infomec"]["infom"] > 0.95 and scores["dci_es"]["disentanglement"] > 0.75
  # Same codes as dlib's own sampler gives: the wrapper adds nothing of its own to the stream.
  mus, ys = utils.generate_batch_factor_code(data, identity, 3000, np.random.RandomState(0), 16)
  assert scores["mig_sup"] == mig_sup.mig_sup_of_codes(mus, ys)
  for values in scores.values():
    assert all(math.isfinite(v) for v in values.values())


def test_infomec_degenerate_codes_give_numbers_not_nan():
  nmi = np.array([[0.5, 0., 0.], [0., 0., 0.], [0.2, 0., 0.]])
  # One active dimension, informing factors 0 and 2 as 5:2: InfoC is 1 (no factor can be spread).
  assert infomec.infom_infoc(nmi, [True, False, False]) == (pytest.approx((5 / 7 - 1 / 3) / (1 - 1 / 3)), 1.)
  assert infomec.infom_infoc(nmi, [False, True, True]) == (0., 0.)  # active but uninformative
  assert infomec.infom_infoc(nmi, [False, False, False]) == (0., 0.)
  # The uninformative second dimension and factor 1 are left out of the means.
  assert infomec.infom_infoc(nmi, [True, True, False]) == (pytest.approx((5 / 7 - 1 / 3) / (1 - 1 / 3)), 1.)
  ys = factors(300)
  result = infomec_of(np.zeros((4, 300)) + random_code(300) * [[1.], [0.], [0.], [0.]], ys)
  assert all(math.isfinite(v) for v in result.values())
