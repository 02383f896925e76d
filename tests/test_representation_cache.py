"""The representation cache: same factors and random streams as the uncached path, same scores, never stale."""

import os

import numpy as np
import pytest

from conftest import STUDY, dlib_config
from disentanglement_lib.evaluation.metrics import beta_vae, factor_vae
from evaluation import evaluate, representation_cache
from submission import cli
from submission.data import correlated_ellipses, dsprites_render, named_data, smallnorb
from submission.data.observation_index import observation_index
from submission.errors import UserError
from test_data_loaders import NORB_SIZES, _shapes3d_arrays, _write_shapes3d_h5, _write_smallnorb

DSPRITES_SIZES = [1, 3, 2, 5, 3, 2]  # 180 images: fewer than the metrics below draw
FIVE_METRICS = {
    "beta_vae_sklearn": ["beta_vae_sklearn.batch_size = 8", "beta_vae_sklearn.num_train = 20",
                         "beta_vae_sklearn.num_eval = 10"],
    "factor_vae_metric": ["factor_vae_score.num_variance_estimate = 100", "factor_vae_score.num_train = 20",
                          "factor_vae_score.num_eval = 10", "factor_vae_score.batch_size = 8"],
    "mig": ["mig.num_train = 200"],
    "dci": ["dci.num_train = 100", "dci.num_test = 50"],
    "sap_score": ["sap_score.num_train = 100", "sap_score.num_test = 50"],
}


@pytest.fixture
def data_root(tmp_path, monkeypatch):
  monkeypatch.setenv(named_data.DATA_ENV, str(tmp_path / "data"))
  return tmp_path / "data"


@pytest.fixture
def small_dsprites(data_root):
  values = dsprites_render._subgrid_possible_values(DSPRITES_SIZES)
  dsprites_render._write_npz(os.path.join(str(data_root), dsprites_render.DSPRITES_FILE), values, progress=False)
  return data_root


def _deterministic_data_sets(root, monkeypatch):
  """One small instance of every loader with an observation index."""
  monkeypatch.setenv(named_data.DATA_ENV, str(root))
  values = dsprites_render._subgrid_possible_values(DSPRITES_SIZES)
  dsprites_render._write_npz(os.path.join(str(root), dsprites_render.DSPRITES_FILE), values, progress=False)
  images, labels = _shapes3d_arrays()
  _write_shapes3d_h5(root, images, labels)
  _write_smallnorb(root)
  monkeypatch.setattr(smallnorb, "SMALLNORB_FACTOR_SIZES", NORB_SIZES)
  sizes = (2, 3, 2, 4)
  ellipses = str(root / "ellipses")
  correlated_ellipses.write_cache(correlated_ellipses.cache_path(ellipses, sizes),
                                  correlated_ellipses.EllipseRenderer(sizes), progress=False)
  return {
      "dsprites_full": named_data.load("dsprites_full"),
      "dsprites_noshape": named_data.load("dsprites_noshape"),  # the shape is a nuisance drawn from the stream
      "shapes3d": named_data.load("shapes3d"),
      "smallnorb": named_data.load("smallnorb"),  # the instance is a nuisance
      "correlated_ellipses (lazy)": correlated_ellipses.CorrelatedEllipses(lazy=True, sizes=sizes),
      "correlated_ellipses (cached grid)": correlated_ellipses.CorrelatedEllipses(data_dir=ellipses, sizes=sizes),
  }


def test_rows_then_observations_equal_sample_observations_and_leave_the_stream_where_it_would(tmp_path, monkeypatch):
  for name, data in _deterministic_data_sets(tmp_path, monkeypatch).items():
    index = observation_index(data)
    assert index is not None, name
    rows_seen = set()
    for seed in range(3):
      direct, cached = np.random.RandomState(seed), np.random.RandomState(seed)
      factors = data.sample_factors(50, direct)
      np.testing.assert_array_equal(factors, data.sample_factors(50, cached), err_msg=name)
      expected = data.sample_observations_from_factors(factors, direct)
      rows = index.rows(factors, cached)
      observed = index.observations(rows)
      assert observed.dtype == expected.dtype and observed.shape == expected.shape, name
      np.testing.assert_array_equal(observed, expected, err_msg=name)
      np.testing.assert_array_equal(direct.randint(1 << 30, size=8), cached.randint(1 << 30, size=8), err_msg=name)
      rows_seen.update(int(r) for r in rows)
    assert min(rows_seen) >= 0 and max(rows_seen) < index.count, name


def test_random_observations_have_no_index(small_dsprites):
  for name in ("color_dsprites", "noisy_dsprites", "dummy_data"):
    assert observation_index(named_data.load(name)) is None, name


class Recording(representation_cache.CachedGroundTruthData):
  """The cached data set (``cached``) or the real one behind the same interface, logging every factor array drawn
  and every factor array whose observations are asked for."""

  def __init__(self, data, cached):
    super().__init__(data, observation_index(data))
    self.cached, self.log = cached, []

  def sample_factors(self, num, random_state):
    factors = super().sample_factors(num, random_state)
    self.log.append(("drawn", factors.copy()))
    return factors

  def sample_observations_from_factors(self, factors, random_state):
    self.log.append(("observed", np.array(factors)))
    if self.cached:
      return super().sample_observations_from_factors(factors, random_state)
    return self.data.sample_observations_from_factors(factors, random_state)


@pytest.mark.parametrize("metric", [beta_vae.compute_beta_vae_sklearn, factor_vae.compute_factor_vae])
def test_cached_path_draws_the_same_factors_and_consumes_the_same_streams(metric, small_dsprites):
  data = named_data.load("dsprites_full")
  encoder = lambda images: images.reshape(len(images), -1)[:, ::409].astype(np.float32)  # a fixed "encoder"
  codes = representation_cache.encode_all(observation_index(data), encoder)
  kwargs = dict(batch_size=8, num_train=15, num_eval=6)
  if metric is factor_vae.compute_factor_vae:
    kwargs["num_variance_estimate"] = 40
  runs = []
  for cached in (False, True):
    recording = Recording(data, cached)
    represent = representation_cache.lookup(codes, lambda images: pytest.fail("images reached the encoder")) \
        if cached else encoder
    random_state = np.random.RandomState(7)
    np.random.seed(0)
    scores = metric(recording, represent, random_state, **kwargs)
    runs.append((recording.log, random_state.randint(1 << 30, size=8), scores))
  (log_a, next_a, scores_a), (log_b, next_b, scores_b) = runs
  assert len(log_a) == len(log_b) > 20
  for (kind_a, a), (kind_b, b) in zip(log_a, log_b):
    assert kind_a == kind_b
    np.testing.assert_array_equal(a, b)
  np.testing.assert_array_equal(next_a, next_b)
  assert scores_a == scores_b  # the codes are the same here (one encoder on single images), so the scores are too


def _evaluate_five(representation_dir, output_root, enabled):
  scores = {}
  for metric, bindings in FIVE_METRICS.items():
    np.random.seed(0)
    scores[metric] = evaluate.evaluate_with_gin(
        representation_dir, str(output_root / metric), gin_config_files=[dlib_config(
            f"{STUDY}/metric_configs/{metric}.gin")],
        gin_bindings=bindings + ["dataset.name = 'dsprites_full'", f"representation_cache.enabled = {enabled}"])
  return scores


# Measured here: every score of the five metrics is equal cached and uncached (difference 0.0), and the codes of the
# cache (batches of 1024) are within 1e-5 of those of the metric's own batches. 1e-6 allows float noise in a score;
# a tie flipped by rounding (an argmin/argmax vote) would show as a failure here and need a look, not a wider bound.
SCORE_TOLERANCE = 1e-6


def test_all_five_metrics_score_the_same_cached_and_uncached(tiny_trained_model, small_dsprites, tmp_path):
  _, representation_dir = tiny_trained_model
  cache = representation_cache.cache_file(representation_dir, "dsprites_full")
  if os.path.exists(cache):
    os.remove(cache)
  uncached = _evaluate_five(representation_dir, tmp_path / "uncached", False)
  assert not os.path.exists(cache)
  cached = _evaluate_five(representation_dir, tmp_path / "cached", True)
  assert os.path.exists(cache)
  codes = np.load(cache)["codes"]
  assert codes.shape[0] == 180

  images = named_data.load("dsprites_full").images
  direct = evaluate.load_representation_function(representation_dir)(
      np.expand_dims(images[:64].astype(np.float32), 3))
  np.testing.assert_allclose(codes[:64], direct, rtol=0, atol=1e-5)
  for metric in FIVE_METRICS:
    for key, value in uncached[metric].items():
      if isinstance(value, (int, float)) and key != "elapsed_time":
        assert cached[metric][key] == pytest.approx(value, rel=0, abs=SCORE_TOLERANCE), (metric, key)


def test_auto_builds_only_when_a_metric_needs_more_images_than_the_data_set_holds_and_then_shares_it(
    tiny_trained_model, small_dsprites, tmp_path):
  _, representation_dir = tiny_trained_model
  cache = representation_cache.cache_file(representation_dir, "dsprites_full")
  if os.path.exists(cache):
    os.remove(cache)
  mig_config = [dlib_config(f"{STUDY}/metric_configs/mig.gin")]
  bindings = ["dataset.name = 'dsprites_full'", "mig.num_train = 100"]
  evaluate.evaluate_with_gin(representation_dir, str(tmp_path / "mig"), gin_config_files=mig_config,
                             gin_bindings=bindings)  # 100 images < 180: not worth a cache
  assert not os.path.exists(cache)
  evaluate.evaluate_with_gin(representation_dir, str(tmp_path / "beta"), gin_config_files=[dlib_config(
      f"{STUDY}/metric_configs/beta_vae_sklearn.gin")], gin_bindings=FIVE_METRICS["beta_vae_sklearn"] + [
          "dataset.name = 'dsprites_full'"])  # 480 images > 180: builds it
  assert os.path.exists(cache)
  built = os.stat(cache).st_mtime_ns
  with cli.gin_config(mig_config, bindings):
    from disentanglement_lib.evaluation.metrics import mig  # noqa: F401  pylint: disable=import-outside-toplevel
    assert representation_cache.images_to_encode() == 100
    data = named_data.load("dsprites_full")
    function = evaluate.load_representation_function(representation_dir)
    used, _ = representation_cache.cached_inputs(representation_dir, "dsprites_full", data, function, 100)
  assert isinstance(used, representation_cache.CachedGroundTruthData)  # an existing valid cache is shared
  assert os.stat(cache).st_mtime_ns == built


def test_a_stale_or_foreign_cache_is_never_used(tiny_trained_model, small_dsprites):
  _, representation_dir = tiny_trained_model
  data = named_data.load("dsprites_full")
  index = observation_index(data)
  function = evaluate.load_representation_function(representation_dir)
  key = representation_cache.cache_key(representation_dir, "dsprites_full", data, index)
  codes = representation_cache.load_or_build(representation_dir, "dsprites_full", data, index, function, True)
  path = representation_cache.cache_file(representation_dir, "dsprites_full")
  np.testing.assert_array_equal(representation_cache.read_codes(path, key), codes)

  data_file = os.path.join(named_data.data_root(), dsprites_render.DSPRITES_FILE)
  os.utime(data_file, ns=(1, 1))  # the data set changed (another file at the same path)
  new_key = representation_cache.cache_key(representation_dir, "dsprites_full", data, index)
  assert new_key != key and representation_cache.read_codes(path, new_key) is None
  assert representation_cache.load_or_build(representation_dir, "dsprites_full", data, index, function,
                                            False) is None
  other_model = dict(key, saved_model_sha256="0" * 64)
  assert representation_cache.read_codes(path, other_model) is None
  with open(path, "wb") as f:
    f.write(b"not an npz")
  assert representation_cache.read_codes(path, new_key) is None
  rebuilt = representation_cache.load_or_build(representation_dir, "dsprites_full", data, index, function, True)
  np.testing.assert_array_equal(rebuilt, codes)
  np.testing.assert_array_equal(representation_cache.read_codes(path, new_key), codes)


def test_sampled_representation_and_disabled_cache_use_the_uncached_path(tiny_trained_model, small_dsprites,
                                                                         tmp_path):
  from submission import postprocess  # pylint: disable=import-outside-toplevel
  model_dir, representation_dir = tiny_trained_model
  sampled_dir = str(tmp_path / "postprocessed" / "sampled")
  postprocess.postprocess_with_gin(model_dir, sampled_dir, gin_config_files=[dlib_config(
      f"{STUDY}/postprocess_configs/sampled.gin")])
  data = named_data.load("dsprites_full")
  for directory, enabled in ((sampled_dir, True), (representation_dir, False)):
    function = evaluate.load_representation_function(directory)
    used, represent = representation_cache.cached_inputs(directory, "dsprites_full", data, function, 10**9,
                                                         enabled)
    assert used is data and represent is function
  assert not os.path.exists(representation_cache.cache_file(sampled_dir, "dsprites_full"))


def test_bad_setting_is_one_line(tiny_trained_model, small_dsprites, tmp_path):
  _, representation_dir = tiny_trained_model
  with pytest.raises(UserError, match="representation_cache.enabled must be"):
    evaluate.evaluate_with_gin(representation_dir, str(tmp_path / "m"), gin_config_files=[dlib_config(
        f"{STUDY}/metric_configs/mig.gin")], gin_bindings=["mig.num_train = 10", "representation_cache.enabled = 3"])
  assert not os.path.exists(str(tmp_path / "m"))


def test_progress_reports_images_done_and_eta(capsys, monkeypatch):
  monkeypatch.setattr(representation_cache, "PROGRESS_SECONDS", 0.0)
  progress = representation_cache.ImageProgress("mig", 100)
  counted = representation_cache.counting(lambda images: images[:, :2], progress)
  for _ in range(4):
    counted(np.zeros((25, 3)))
  lines = capsys.readouterr().err.strip().splitlines()
  assert lines[-1].startswith("[mig] 100/100 images (100 %)") and "ETA" in lines[-1]
  assert len(lines) == 4
