"""CorrelatedEllipses: factor statistics, grids, rendered geometry, the atomic cache, and a short CHyVAE run on it
scored by the five dlib metrics. Reference: docs/models/chyvae.md §4 (the authors' synthetic.py recipe).

The port of OpenCV's rasteriser was also compared once with OpenCV itself (3.4.18 and 5.0.0, not a dependency):
all 245,760 images were byte-identical; see the module docstring.
"""

import json
import math
import os

import gin
import keras
import numpy as np
import pytest
import tensorflow as tf

import submission.data.correlated_ellipses as CE
from conftest import REPOSITORY_ROOT
from evaluation import pipeline
from submission import cli
from submission.data import named_data
from submission.errors import UserError

CHYVAE_CONFIG = os.path.join(REPOSITORY_ROOT, "gin_configs", "chyvae.gin")
NUM_DRAWS = 100000
CLIP_MASS = 0.158655  # Φ(−1): the mass clipped to each end




@pytest.fixture(scope="module")
def renderer():
  return CE.EllipseRenderer()


# --- the factor distribution ----------------------------------------------------------------------------------------
def test_clipped_factors_are_correlated_within_pairs_only():
  u = CE.sample_clipped_latents(NUM_DRAWS, np.random.RandomState(0))
  assert u.shape == (NUM_DRAWS, 4) and u.min() == 0. and u.max() == 1.
  correlation = np.corrcoef(u.T)
  # ρ = 0.5 before clipping, ≈ 0.46 after (docs/models/chyvae.md §4); across the pairs 0 (s.e. ≈ 0.003 on 100k draws).
  assert correlation[0, 1] == pytest.approx(0.46, abs=0.02)
  assert correlation[2, 3] == pytest.approx(0.46, abs=0.02)
  for i, j in ((0, 2), (0, 3), (1, 2), (1, 3)):
    assert abs(correlation[i, j]) < 0.015, (i, j, correlation[i, j])
  # ≈ 15.9% of every factor sits at each clip end (s.e. ≈ 0.0012).
  np.testing.assert_allclose((u == 0.).mean(0), CLIP_MASS, atol=0.006)
  np.testing.assert_allclose((u == 1.).mean(0), CLIP_MASS, atol=0.006)


def test_sample_factors_snaps_the_correlated_draws_to_the_grids():
  data = CE.CorrelatedEllipses(lazy=True)
  factors = data.sample_factors(NUM_DRAWS, np.random.RandomState(1))
  assert factors.shape == (NUM_DRAWS, 4) and factors.dtype == np.int64
  assert list(factors.min(0)) == [0, 0, 0, 0] and list(factors.max(0)) == [31, 31, 5, 39]
  correlation = np.corrcoef(factors.T)
  assert correlation[0, 1] == pytest.approx(0.46, abs=0.02)
  assert correlation[2, 3] == pytest.approx(0.455, abs=0.02)  # 6 scale bins blur it slightly
  assert max(abs(correlation[i, j]) for i in (0, 1) for j in (2, 3)) < 0.015
  # The top grid value is reached only at the clip (u = 1); floor-to-grid puts the bottom bin's share on top of
  # the clipped mass: x/y bottom bin u < 1/31, scale bottom bin s < 0.6 (≈ 27%), rotation < 360/39 degrees.
  np.testing.assert_allclose([np.mean(factors[:, k] == n - 1) for k, n in enumerate(CE.FACTOR_SIZES)], CLIP_MASS,
                             atol=0.006)
  bottom = [np.mean(factors[:, k] == 0) for k in range(4)]
  np.testing.assert_allclose(bottom, [0.1747, 0.1747, 0.2743, 0.1712], atol=0.006)
  # Same random state, same factors.
  np.testing.assert_array_equal(factors[:10], data.sample_factors(10, np.random.RandomState(1)))


def test_snap_to_grid_is_floor_to_grid():
  u = np.array([[0., 0., 0., 0.], [1., 1., 1., 1.], [0.5, 1 / 31 - 1e-9, 0.2, 1 / 39],
                [0.999, 1 / 31 + 1e-9, 0.1999, 0.5]])
  np.testing.assert_array_equal(CE.snap_to_grid(u), [[0, 0, 0, 0], [31, 31, 5, 39], [15, 0, 1, 1], [30, 1, 0, 19]])


# --- grids, parameters and images -----------------------------------------------------------------------------------
def test_grids_and_ellipse_parameters_are_the_recipes():
  grid_x, grid_y, grid_scale, grid_rotation = CE.factor_grids()
  np.testing.assert_allclose(grid_x, np.linspace(0, 1, 32))
  np.testing.assert_allclose(grid_y, np.linspace(0, 1, 32))
  np.testing.assert_allclose(grid_scale, [0.5, 0.6, 0.7, 0.8, 0.9, 1.])
  np.testing.assert_allclose(grid_rotation, np.linspace(0, 360, 40))
  everything = CE.all_factor_indices()
  assert everything.shape == (245760, 4)
  centre_x, centre_y, axes, angles = CE.ellipse_parameters(everything)
  assert sorted(set(centre_x)) == sorted(set(centre_y))
  centres = sorted(set(centre_x))
  assert len(centres) == 32 and centres[:4] == [50, 55, 60, 65] and centres[-1] == 206
  assert sorted({tuple(a) for a in axes}) == [(25, 12), (30, 15), (35, 18), (40, 20), (45, 22), (50, 25)]
  assert angles.min() == 0. and angles.max() == 360.
  data = CE.CorrelatedEllipses(lazy=True)
  assert data.num_factors == 4 and data.factors_num_values == [32, 32, 6, 40]
  assert data.observation_shape == [64, 64, 1]


def test_observations_are_grey_edged_images_in_unit_range():
  data = CE.CorrelatedEllipses(lazy=True)
  random_state = np.random.RandomState(2)
  images = data.sample_observations(50, random_state)
  assert images.shape == (50, 64, 64, 1) and images.dtype == np.float32
  assert images.min() == 0. and images.max() == 1.
  grey = (images > 0) & (images < 1)
  assert grey.any(axis=(1, 2, 3)).all()  # INTER_AREA leaves grey edges on every ellipse
  assert set(np.unique(np.rint(images * 255))) <= {round(255 * k / 16) for k in range(17)}


def image_moments(image):
  """Mass, centroid (col, row) and covariance of a 64×64 image in 64-pixel units."""
  rows, cols = np.mgrid[:64, :64]
  weight = image / image.sum()
  centroid = np.array([(weight * cols).sum(), (weight * rows).sum()])
  d = np.stack([cols - centroid[0], rows - centroid[1]])
  covariance = np.einsum("iab,jab,ab->ij", d, d, weight)
  return image.sum(), centroid, covariance


@pytest.mark.parametrize("factors", [(16, 16, 5, 0), (10, 20, 3, 4), (20, 8, 0, 13), (16, 16, 5, 10), (3, 28, 2, 30)])
def test_rendered_geometry_matches_the_ellipse(renderer, factors):
  # A filled ellipse with half-axes (a, b) px rotated by θ (x towards y, i.e. clockwise on screen, y pointing down)
  # about its centre c in the 256 canvas. OpenCV's 8-connected fill also sets every pixel its outline touches, so
  # the drawn shape is half a pixel larger all round: half-axes a + ½, b + ½. At 64 px: area π(a+½)(b+½)/16;
  # 256-px pixel k has centre k and 64-px pixel j covers 4j..4j+3, so c maps to (c − 1.5)/4; the covariance of a
  # uniform ellipse is R·diag((a+½)², (b+½)²)/4·Rᵀ, over 16 at 64 px. The off-diagonal term checks the sense of θ.
  image = renderer.render(np.array([factors]))[0, ..., 0].astype(np.float64) / 255.
  centre_x, centre_y, axes, angles = CE.ellipse_parameters(np.array([factors]))
  a, b = axes[0] + 0.5
  theta = math.radians(round(angles[0]))  # OpenCV rounds the angle to whole degrees
  mass, centroid, covariance = image_moments(image)
  assert mass == pytest.approx(math.pi * a * b / 16, rel=0.02)
  np.testing.assert_allclose(centroid, [(centre_x[0] - 1.5) / 4, (centre_y[0] - 1.5) / 4], atol=0.03)
  rotation = np.array([[math.cos(theta), -math.sin(theta)], [math.sin(theta), math.cos(theta)]])
  expected = rotation @ np.diag([a**2, b**2]) @ rotation.T / 4 / 16
  np.testing.assert_allclose(covariance, expected, atol=0.015 * a**2 / 64)


def test_zero_and_360_degrees_give_the_same_image(renderer):
  np.testing.assert_array_equal(renderer.render(np.array([[7, 9, 2, 0]])), renderer.render(np.array([[7, 9, 2, 39]])))


def test_vectorised_renderer_equals_drawing_each_ellipse_on_the_full_canvas(renderer):
  # The renderer moves one pre-reduced mask per (scale, rotation) and sub-block phase; drawing each ellipse on its
  # own 256×256 canvas and reducing it must give the same bytes, including ellipses cut by the canvas edge.
  random_state = np.random.RandomState(3)
  factors = np.concatenate([
      np.stack([random_state.randint(n, size=40) for n in CE.FACTOR_SIZES], axis=1),
      [[0, 0, 5, 0], [31, 31, 5, 0], [31, 0, 5, 20], [0, 31, 5, 10], [31, 16, 5, 39]],  # cut by the border
  ])
  centre_x, centre_y, axes, angles = CE.ellipse_parameters(factors)
  direct = np.stack([
      CE.area_reduce(CE.render_ellipse_mask(axes[k], angles[k], size=256, centre=(centre_x[k], centre_y[k])))
      for k in range(len(factors))])
  np.testing.assert_array_equal(renderer.render(factors)[..., 0], direct)
  for image in direct[-5:]:  # the border cases do reach the image border
    assert image[0].any() or image[-1].any() or image[:, 0].any() or image[:, -1].any()


# --- the cache ------------------------------------------------------------------------------------------------------
SMALL_SIZES = (4, 3, 2, 5)


def test_cache_holds_every_image_and_is_read_back(tmp_path, monkeypatch):
  path = tmp_path / CE.cache_file_name(SMALL_SIZES)
  with pytest.raises(UserError, match="generate correlated_ellipses"):  # the class reads the cache, never makes it
    CE.CorrelatedEllipses(data_dir=str(tmp_path), sizes=SMALL_SIZES)
  CE.write_cache(CE.cache_path(str(tmp_path), SMALL_SIZES), CE.EllipseRenderer(SMALL_SIZES), progress=False)
  data = CE.CorrelatedEllipses(data_dir=str(tmp_path), sizes=SMALL_SIZES)
  assert data.cache_path == str(path) and os.listdir(tmp_path) == [path.name]
  stored = np.load(path)
  assert stored.shape == (120, 64, 64, 1) and stored.dtype == np.uint8
  np.testing.assert_array_equal(stored, data.renderer.render(CE.all_factor_indices(SMALL_SIZES)))
  # Observations are read from the cache (row-major over x, y, scale, rotation) and equal the lazy rendering.
  factors = data.sample_factors(30, np.random.RandomState(4))
  lazy = CE.CorrelatedEllipses(lazy=True, sizes=SMALL_SIZES)
  np.testing.assert_array_equal(data.sample_observations_from_factors(factors, None),
                                lazy.sample_observations_from_factors(factors, None))

  def must_not_render(*args, **kwargs):
    raise AssertionError("the cache was rendered again")

  monkeypatch.setattr(CE, "write_cache", must_not_render)
  before = os.stat(path).st_mtime_ns
  again = CE.CorrelatedEllipses(data_dir=str(tmp_path), sizes=SMALL_SIZES)
  assert os.stat(path).st_mtime_ns == before
  np.testing.assert_array_equal(np.asarray(again.images), stored)


def test_interrupted_rendering_leaves_nothing(tmp_path, monkeypatch):
  renderer = CE.EllipseRenderer(SMALL_SIZES)
  calls = []
  original = renderer.render

  def fail_second_chunk(factors):
    calls.append(len(factors))
    if len(calls) == 2:
      raise KeyboardInterrupt
    return original(factors)

  monkeypatch.setattr(renderer, "render", fail_second_chunk)
  target = tmp_path / "cache.npy"
  with pytest.raises(KeyboardInterrupt):
    CE.write_cache(str(target), renderer, chunk_size=50, progress=False)
  assert os.listdir(tmp_path) == []


def test_wrong_cache_is_reported_in_one_line(tmp_path, monkeypatch):
  np.save(tmp_path / CE.cache_file_name(SMALL_SIZES), np.zeros((3, 64, 64, 1), np.uint8))
  with pytest.raises(UserError, match="delete it to re-render it"):
    CE.CorrelatedEllipses(data_dir=str(tmp_path), sizes=SMALL_SIZES)
  # `python -m submission.data verify` reads only the header: absent is missing (with how to make it), a wrong
  # shape is reported.
  monkeypatch.setenv(named_data.DATA_ENV, str(tmp_path))
  entry = named_data.entry("correlated_ellipses")
  assert entry.factors == (("x", 32), ("y", 32), ("scale", 6), ("rotation", 40))
  cache = str(tmp_path / "correlated_ellipses" / CE.cache_file_name())
  assert named_data.missing_paths("correlated_ellipses") == [cache]
  assert named_data.can_make_missing("correlated_ellipses")
  with pytest.raises(UserError, match="`python -m submission.data generate correlated_ellipses`"):
    named_data.check("correlated_ellipses")
  (tmp_path / "correlated_ellipses").mkdir()
  np.save(tmp_path / "correlated_ellipses" / CE.cache_file_name(), np.zeros((3, 64, 64, 1), np.uint8))
  with pytest.raises(UserError, match="expected uint8 \\(245760, 64, 64, 1\\)"):
    named_data.check("correlated_ellipses")


def test_dataset_name_resolves_to_the_full_spec_cached_under_the_data_root(tmp_path, monkeypatch):
  monkeypatch.setenv(named_data.DATA_ENV, str(tmp_path))
  paths = []

  def record(path, renderer, **kwargs):
    paths.append((path, renderer.sizes))
    raise KeyboardInterrupt  # stop before rendering 0.94 GiB

  monkeypatch.setattr(CE, "write_cache", record)
  with cli.gin_config(bindings=["dataset.name = 'correlated_ellipses'"]):
    with pytest.raises(KeyboardInterrupt):
      named_data.load()
  assert paths == [(str(tmp_path / "correlated_ellipses" / "correlated_ellipses_v1_32x32x6x40.npy"), (32, 32, 6, 40))]
  with cli.gin_config(bindings=["dataset.name = 'correlated_ellipses'", "correlated_ellipses.lazy = True"]):
    data = named_data.load()
  assert isinstance(data, CE.CorrelatedEllipses) and data.images is None and data.sizes == (32, 32, 6, 40)
  # render_on_demand() reaches loads outside any gin config too; render_on_demand(False) restores the default.
  CE.render_on_demand()
  try:
    assert named_data.load("correlated_ellipses").images is None
    assert named_data.missing_paths("correlated_ellipses") == []  # no cache needed
  finally:
    CE.render_on_demand(False)
  with pytest.raises(KeyboardInterrupt):
    named_data.load("correlated_ellipses")
  assert len(paths) == 2


# --- a short CHyVAE run on it, scored by the five metrics -----------------------------------------------------------
# Sample sizes small enough for a test (as in tests/test_pipeline.py; DCI smaller still: its gradient-boosted
# trees grow one per class, and x and y have 32); one list serves every metric config.
SMALL_METRICS = [
    "beta_vae_sklearn.batch_size = 8", "beta_vae_sklearn.num_train = 40", "beta_vae_sklearn.num_eval = 20",
    "factor_vae_score.num_variance_estimate = 300", "factor_vae_score.num_train = 40",
    "factor_vae_score.num_eval = 20", "factor_vae_score.batch_size = 8",
    "mig.num_train = 300", "dci.num_train = 12", "dci.num_test = 8",
    "sap_score.num_train = 200", "sap_score.num_test = 100",
    "correlated_ellipses.lazy = True",
]


def initial_loss(bindings, num_batches=4):
  """Loss terms of a freshly initialised CHyVAE (the run's seed) averaged over a few batches of the data set."""
  from submission.models.chyvae import CHyVAE  # pylint: disable=import-outside-toplevel
  with cli.gin_config([CHYVAE_CONFIG], bindings):
    keras.utils.set_random_seed(gin.query_parameter("model.random_seed"))
    model = CHyVAE().build([64, 64, 1])
    data = named_data.load()
    random_state = np.random.RandomState(123)
    terms = [model.evaluation_terms(tf.constant(data.sample_observations(16, random_state)),
                                    tf.constant([i, 0], tf.int64), tf.constant(0.)) for i in range(num_batches)]
  return {key: np.mean([float(t[key]) for t in terms]) for key in ("loss", "reconstruction_loss")}


@pytest.fixture
def render_on_demand():
  """Every load of the data set in this process renders on demand, so no step builds the 0.94 GiB cache (the
  pipeline's pictures step loads the data set outside any gin config, where the gin binding cannot reach)."""
  CE.render_on_demand()
  yield
  CE.render_on_demand(False)


def test_short_chyvae_training_lowers_loss_and_the_five_metrics_evaluate(tmp_path, render_on_demand):
  bindings = ["model.batch_size = 16", "model.eval_steps = 2",  # lazy rendering: the render_on_demand fixture
              "train_loop.log_every_steps = 20", "vae/AdamOptimizer.learning_rate = 0.001"]
  initial = initial_loss(bindings)
  scores = pipeline.run_pipeline(CHYVAE_CONFIG, str(tmp_path / "run"), steps=40, gin_bindings=bindings,
                                 metric_bindings=SMALL_METRICS)
  with open(tmp_path / "run" / "model" / "results" / "json" / "train_results.json") as f:
    trained = json.load(f)
  assert trained["global_step"] == 40
  # Before training the decoder outputs p ≈ ½ everywhere (≈ 4096·ln 2 ≈ 2839 nats); 40 steps roughly quarter it.
  assert trained["loss"] < initial["loss"] - 1000., (initial, trained["loss"])
  assert trained["reconstruction_loss"] < 0.5 * initial["reconstruction_loss"], (initial, trained)
  assert set(scores) == set(pipeline.DEFAULT_METRICS)
  for metric in pipeline.DEFAULT_METRICS:
    headline = pipeline.headline(metric, scores[metric])
    assert headline, metric
    for key, value in headline.items():
      assert np.isfinite(value) and 0. <= value <= 1., (metric, key, value)
  with open(tmp_path / "run" / "model" / "results" / "gin" / "train.gin") as f:
    assert "dataset.name = 'correlated_ellipses'" in f.read()
