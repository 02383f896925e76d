"""Tests for submission.data.dsprites_render (re-rendered dSprites in the official .npz format)."""

import os

import numpy as np
import pytest

from submission.data import dsprites_render as R

V = R.LATENTS_POSSIBLE_VALUES
ORIENTATIONS = V["orientation"]
POSITIONS = V["posX"]
SCALES = V["scale"]
SHAPES = (R.SHAPE_SQUARE, R.SHAPE_ELLIPSE, R.SHAPE_HEART)


def _centre_of_mass(imgs):
  """(column, row) centre of mass in pixel indices."""
  imgs = imgs.astype(np.float64)
  mass = imgs.sum(axis=(1, 2))
  idx = np.arange(R.IMAGE_SIZE, dtype=np.float64)
  col = (imgs.sum(axis=1) * idx).sum(axis=1) / mass
  row = (imgs.sum(axis=2) * idx).sum(axis=1) / mass
  return col, row


def _relative_difference(a, b):
  """Number of differing pixels divided by the foreground area of ``a``, per image."""
  a = a.astype(np.int64)
  b = b.astype(np.int64)
  return np.abs(a - b).sum(axis=(1, 2)) / a.sum(axis=(1, 2))


# ------------------------------------------------------------------------------------------------
# Constants.
# ------------------------------------------------------------------------------------------------
def test_official_metadata_constants():
  assert R.DSPRITES_FILE == "dsprites/dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz"
  assert list(R.LATENTS_SIZES) == [1, 3, 6, 40, 32, 32]
  assert R.NUM_IMAGES == 737280
  assert R.LATENTS_NAMES == ("color", "shape", "scale", "orientation", "posX", "posY")
  np.testing.assert_array_equal(V["color"], [1.0])
  np.testing.assert_array_equal(V["shape"], [1.0, 2.0, 3.0])
  np.testing.assert_allclose(V["scale"], [0.5, 0.6, 0.7, 0.8, 0.9, 1.0])
  np.testing.assert_array_equal(V["orientation"], np.linspace(0, 2 * np.pi, 40))
  assert V["orientation"][-1] == 2 * np.pi
  np.testing.assert_array_equal(V["posX"], np.linspace(0, 1, 32))
  np.testing.assert_array_equal(V["posY"], np.linspace(0, 1, 32))
  for name, size in zip(R.LATENTS_NAMES, R.LATENTS_SIZES):
    assert len(V[name]) == size


# ------------------------------------------------------------------------------------------------
# Geometry of render_sprites.
# ------------------------------------------------------------------------------------------------
def test_dtype_shape_and_binary_values():
  rng = np.random.default_rng(0)
  n = 300
  imgs = R.render_sprites(rng.integers(0, 3, n), rng.choice(SCALES, n), rng.choice(ORIENTATIONS, n),
                          rng.choice(POSITIONS, n), rng.choice(POSITIONS, n))
  assert imgs.dtype == np.uint8
  assert imgs.shape == (n, 64, 64)
  assert set(np.unique(imgs).tolist()) == {0, 1}
  # Every image has a sprite of reasonable size (smallest: ellipse at scale 0.5, ~40 px).
  area = imgs.sum(axis=(1, 2))
  assert area.min() >= 30 and area.max() <= 400


def test_scalar_arguments_broadcast_and_out_parameter():
  one = R.render_sprites(2, 1.0, 0.3, 0.5, 0.25)
  assert one.shape == (1, 64, 64)
  out = np.full((3, 64, 64), 7, dtype=np.uint8)
  res = R.render_sprites([0, 1, 2], 1.0, 0.3, 0.5, 0.25, out=out)
  assert res is out
  np.testing.assert_array_equal(out[2], one[0])
  assert set(np.unique(out).tolist()) == {0, 1}
  with pytest.raises(ValueError):
    R.render_sprites(3, 1.0, 0.0, 0.5, 0.5)
  with pytest.raises(ValueError):  # a non-contiguous ``out`` could not be written in place
    R.render_sprites([0, 1], 1.0, 0.0, 0.5, 0.5, out=np.zeros((2, 64, 128), np.uint8)[:, :, ::2])


def test_windowed_rendering_equals_full_canvas_reference():
  rng = np.random.default_rng(1)
  n = 400
  official = (rng.integers(0, 3, n), rng.choice(SCALES, n), rng.choice(ORIENTATIONS, n),
              rng.choice(POSITIONS, n), rng.choice(POSITIONS, n))
  np.testing.assert_array_equal(R.render_sprites(*official), R._render_sprites_full_canvas(*official))
  # Also off-grid values, including sprites partly or wholly outside the canvas.
  wild = (rng.integers(0, 3, n), rng.uniform(0.2, 2.5, n), rng.uniform(-7, 7, n),
          rng.uniform(-0.8, 1.8, n), rng.uniform(-0.8, 1.8, n))
  np.testing.assert_array_equal(R.render_sprites(*wild), R._render_sprites_full_canvas(*wild))


@pytest.mark.parametrize("shape", SHAPES)
def test_pos_x_moves_right_and_pos_y_moves_down(shape):
  for scale in (0.5, 1.0):
    for orientation in ORIENTATIONS[[0, 7, 23]]:
      # posX sweep at fixed posY.
      imgs = R.render_sprites(shape, scale, orientation, POSITIONS, 0.4)
      col, row = _centre_of_mass(imgs)
      steps = np.diff(col)
      assert np.all(steps > 0), (shape, scale, orientation, steps.min())
      # One step is 32/31 = 1.03 px; the centre of mass follows it closely.
      assert steps.min() > 0.5 and steps.max() < 1.6
      assert np.ptp(row) < 0.6  # the row does not move
      # posY sweep at fixed posX.
      imgs = R.render_sprites(shape, scale, orientation, 0.6, POSITIONS)
      col, row = _centre_of_mass(imgs)
      steps = np.diff(row)
      assert np.all(steps > 0), (shape, scale, orientation, steps.min())
      assert steps.min() > 0.5 and steps.max() < 1.6
      assert np.ptp(col) < 0.6


def test_centres_span_pixels_16_to_48():
  # Square and ellipse are point-symmetric, so their centre of mass is the sprite centre.
  for shape in (R.SHAPE_SQUARE, R.SHAPE_ELLIPSE):
    for orientation in ORIENTATIONS[::5]:
      imgs = R.render_sprites(shape, 1.0, orientation, [0.0, 1.0], [0.0, 1.0])
      col, row = _centre_of_mass(imgs)
      np.testing.assert_allclose(col, [16.0, 48.0], atol=0.25)
      np.testing.assert_allclose(row, [16.0, 48.0], atol=0.25)
  # Over all shapes, scales and orientations the centre of mass stays within 2 px of that
  # (the heart turns about its bounding-box centre; its mass sits up to 1.6 px off it).
  shape, scale, o = (a.ravel() for a in np.meshgrid(SHAPES, SCALES, ORIENTATIONS))
  for pos, expected in ((0.0, 16.0), (1.0, 48.0)):
    col, row = _centre_of_mass(R.render_sprites(shape, scale, o, pos, pos))
    assert np.abs(col - expected).max() < 2.0 and np.abs(row - expected).max() < 2.0


@pytest.mark.parametrize("shape", SHAPES)
def test_orientation_zero_and_two_pi_give_identical_images(shape):
  px, py = np.meshgrid(POSITIONS[::3], POSITIONS[::5])
  px = np.repeat(px.ravel(), len(SCALES))
  py = np.repeat(py.ravel(), len(SCALES))
  sc = np.tile(SCALES, len(px) // len(SCALES))
  at_zero = R.render_sprites(shape, sc, ORIENTATIONS[0], px, py)
  at_two_pi = R.render_sprites(shape, sc, ORIENTATIONS[-1], px, py)
  np.testing.assert_array_equal(at_zero, at_two_pi)
  # ... and the neighbouring orientation is different ("all pixel outputs different").
  at_step = R.render_sprites(shape, sc, ORIENTATIONS[1], px, py)
  assert np.all(np.abs(at_zero.astype(int) - at_step).sum(axis=(1, 2)) > 0)


def _turned_pairs(shape, turn):
  o, px, py = np.meshgrid(ORIENTATIONS, POSITIONS[::6], POSITIONS[::9])
  o, px, py = o.ravel(), px.ravel(), py.ravel()
  a = R.render_sprites(shape, 1.0, o, px, py)
  b = R.render_sprites(shape, 1.0, o + turn, px, py)
  return _relative_difference(a, b)


def test_half_turn_changes_heart_a_lot_but_not_ellipse_or_square():
  heart = _turned_pairs(R.SHAPE_HEART, np.pi)
  ellipse = _turned_pairs(R.SHAPE_ELLIPSE, np.pi)
  square = _turned_pairs(R.SHAPE_SQUARE, np.pi)
  # Measured: heart differs in 58-74 % of its area, ellipse in 0-2.6 %, square in 0 %.
  assert heart.min() > 0.4, heart.min()
  assert heart.mean() > 0.55, heart.mean()
  assert ellipse.max() < 0.05, ellipse.max()
  assert square.max() < 0.05, square.max()


def test_quarter_turn_leaves_square_nearly_unchanged_but_not_ellipse_or_heart():
  square = _turned_pairs(R.SHAPE_SQUARE, np.pi / 2)
  ellipse = _turned_pairs(R.SHAPE_ELLIPSE, np.pi / 2)
  heart = _turned_pairs(R.SHAPE_HEART, np.pi / 2)
  # Measured: square 0 %, ellipse 75-91 %, heart 33-42 %.
  assert square.max() < 0.05, square.max()
  assert ellipse.min() > 0.5, ellipse.min()
  assert heart.min() > 0.2, heart.min()


@pytest.mark.parametrize("shape", SHAPES)
def test_scale_increases_area_strictly(shape):
  o, px, py = np.meshgrid(ORIENTATIONS[::3], POSITIONS[::10], POSITIONS[::10])
  o, px, py = o.ravel(), px.ravel(), py.ravel()
  areas = np.stack([R.render_sprites(shape, s, o, px, py).sum(axis=(1, 2)) for s in SCALES],
                   axis=1).astype(np.float64)
  assert np.all(np.diff(areas, axis=1) > 0)
  # Area grows roughly like scale^2: (1 / 0.5)^2 = 4.
  ratio = areas[:, -1] / areas[:, 0]
  assert ratio.min() > 3.3 and ratio.max() < 4.8, (ratio.min(), ratio.max())


def test_sprites_never_touch_the_border():
  # All shapes and all 40 orientations at scale 1, at the four extreme corner positions.
  shape, o, px, py = np.meshgrid(SHAPES, ORIENTATIONS, [0.0, 1.0], [0.0, 1.0])
  imgs = R.render_sprites(shape.ravel(), 1.0, o.ravel(), px.ravel(), py.ravel())
  assert imgs.shape[0] == 3 * 40 * 4
  assert np.all(imgs.sum(axis=(1, 2)) > 0)
  assert imgs[:, 0, :].sum() == 0 and imgs[:, -1, :].sum() == 0
  assert imgs[:, :, 0].sum() == 0 and imgs[:, :, -1].sum() == 0
  # Measured: the union of all these sprites spans rows/columns 3..61.
  support = imgs.any(axis=0)
  rows = np.flatnonzero(support.any(axis=1))
  cols = np.flatnonzero(support.any(axis=0))
  assert rows.min() >= 2 and rows.max() <= 61
  assert cols.min() >= 2 and cols.max() <= 61


def _extents(imgs):
  width = imgs.any(axis=1).sum(axis=1)   # number of columns with foreground
  height = imgs.any(axis=2).sum(axis=1)  # number of rows with foreground
  return width, height


def test_sizes_at_scale_one_orientation_zero():
  px, py = np.meshgrid(POSITIONS, POSITIONS[::4])
  px, py = px.ravel(), py.ravel()
  # Square side 18-19 px.
  w, h = _extents(R.render_sprites(R.SHAPE_SQUARE, 1.0, 0.0, px, py))
  assert w.min() >= 18 and w.max() <= 19 and h.min() >= 18 and h.max() <= 19
  # Ellipse long axis ~20 px (horizontal at orientation 0), short axis about half.
  w, h = _extents(R.render_sprites(R.SHAPE_ELLIPSE, 1.0, 0.0, px, py))
  assert w.min() >= 19 and w.max() <= 21
  assert h.min() >= 9 and h.max() <= 11
  assert np.all(np.abs(h / w - 0.5) < 0.1)
  # Heart ~18 px across, upright (lobes up, tip down).
  imgs = R.render_sprites(R.SHAPE_HEART, 1.0, 0.0, px, py)
  w, h = _extents(imgs)
  assert w.min() >= 17 and w.max() <= 19
  assert h.min() >= 15 and h.max() <= 19
  one = imgs[0]
  rows = np.flatnonzero(one.any(axis=1))
  top_width = one[rows[0] + 2].sum()
  bottom_width = one[rows[-1] - 1].sum()
  assert top_width > 2 * bottom_width  # wide lobes at the top, narrow tip at the bottom


def test_scale_is_linear_in_size():
  w1, _ = _extents(R.render_sprites(R.SHAPE_ELLIPSE, 1.0, 0.0, POSITIONS, 0.5))
  w05, _ = _extents(R.render_sprites(R.SHAPE_ELLIPSE, 0.5, 0.0, POSITIONS, 0.5))
  assert abs(w05.mean() / w1.mean() - 0.5) < 0.06


def test_rotation_is_clockwise_on_screen():
  # An ellipse (long axis horizontal at 0) turned by +45 degrees clockwise on screen runs
  # from the upper left to the lower right: row and column are positively correlated.
  img = R.render_sprites(R.SHAPE_ELLIPSE, 1.0, np.pi / 4, 0.5, 0.5)[0]
  rows, cols = np.nonzero(img)
  # For semi-axes a = 2b at 45 degrees the correlation is (a^2 - b^2) / (a^2 + b^2) = 0.6.
  assert np.corrcoef(rows, cols)[0, 1] > 0.5
  img = R.render_sprites(R.SHAPE_ELLIPSE, 1.0, -np.pi / 4, 0.5, 0.5)[0]
  rows, cols = np.nonzero(img)
  assert np.corrcoef(rows, cols)[0, 1] < -0.5
  # The heart's tip (bottom at orientation 0) swings to the left for a clockwise quarter turn.
  img = R.render_sprites(R.SHAPE_HEART, 1.0, np.pi / 2, 0.5, 0.5)[0]
  cols = np.flatnonzero(img.any(axis=0))
  left_height = img[:, cols[0] + 1].sum()
  right_height = img[:, cols[-1] - 2].sum()
  assert right_height > 2 * left_height


# ------------------------------------------------------------------------------------------------
# File format, through dlib's own loader.
# ------------------------------------------------------------------------------------------------
SMALL_SIZES = [1, 3, 2, 4, 2, 2]


@pytest.fixture(scope="module")
def small_file(tmp_path_factory):
  data_dir = tmp_path_factory.mktemp("dlib_data")
  path = os.path.join(str(data_dir), R.DSPRITES_FILE)
  values = R._subgrid_possible_values(SMALL_SIZES)
  assert R._write_npz(path, values, chunk_size=7, progress=False) == path
  return path, values


def test_small_file_has_official_format(small_file):
  path, values = small_file
  total = int(np.prod(SMALL_SIZES))
  with np.load(path, encoding="latin1", allow_pickle=True) as data:
    assert sorted(data.files) == ["imgs", "latents_classes", "latents_values", "metadata"]
    imgs = data["imgs"]
    classes = data["latents_classes"]
    lat_values = data["latents_values"]
    meta = data["metadata"][()]
  assert imgs.shape == (total, 64, 64) and imgs.dtype == np.uint8
  assert set(np.unique(imgs).tolist()) == {0, 1}
  assert classes.shape == (total, 6) and classes.dtype == np.int64
  assert lat_values.shape == (total, 6) and lat_values.dtype == np.float64
  # Row-major order, posY fastest.
  np.testing.assert_array_equal(np.ravel_multi_index(classes.T, SMALL_SIZES), np.arange(total))
  assert classes[1, 5] == 1 and classes[1, 4] == 0
  for i, name in enumerate(R.LATENTS_NAMES):
    np.testing.assert_array_equal(lat_values[:, i], values[name][classes[:, i]])
  # Metadata dict.
  assert isinstance(meta, dict)
  assert set(meta) == {"description", "latents_sizes", "latents_names", "latents_possible_values",
                       "title", "date", "version", "author"}
  assert list(meta["latents_sizes"]) == SMALL_SIZES
  assert tuple(meta["latents_names"]) == R.LATENTS_NAMES
  assert meta["title"] == "dSprites dataset"
  assert "re-render" in meta["description"].lower() and "not deepmind" in meta["description"].lower()
  for name in R.LATENTS_NAMES:
    np.testing.assert_array_equal(meta["latents_possible_values"][name], values[name])
  # Images are exactly the rendering of their latents.
  expected = R.render_sprites(np.rint(lat_values[:, 1]).astype(int) - 1, lat_values[:, 2],
                              lat_values[:, 3], lat_values[:, 4], lat_values[:, 5])
  np.testing.assert_array_equal(imgs, expected)
  # The subgrid uses official values (extremes included).
  assert values["orientation"][0] == 0.0 and values["orientation"][-1] == 2 * np.pi
  np.testing.assert_array_equal(values["shape"], [1.0, 2.0, 3.0])


def test_dlib_loader_reads_small_file(small_file, monkeypatch):
  import submission.compat  # noqa: F401  (must precede disentanglement_lib imports)
  from disentanglement_lib.data.ground_truth import dsprites as dlib_dsprites

  path, values = small_file
  monkeypatch.setattr(dlib_dsprites, "DSPRITES_PATH", path)
  data = dlib_dsprites.DSprites()
  assert list(data.factor_sizes) == SMALL_SIZES
  assert data.observation_shape == [64, 64, 1]
  rs = np.random.RandomState(0)
  factors = data.sample_factors(50, rs)
  assert factors.shape == (50, 6)
  obs = data.sample_observations_from_factors(factors, rs)
  assert obs.shape == (50, 64, 64, 1) and obs.dtype == np.float32
  expected = R.render_sprites(np.rint(values["shape"][factors[:, 1]]).astype(int) - 1,
                              values["scale"][factors[:, 2]], values["orientation"][factors[:, 3]],
                              values["posX"][factors[:, 4]], values["posY"][factors[:, 5]])
  np.testing.assert_array_equal(obs[..., 0], expected.astype(np.float32))
  # Default dlib usage without colour factor: indices 1..5.
  data = dlib_dsprites.DSprites([1, 2, 3, 4, 5])
  factors = data.sample_factors(20, rs)
  obs = data.sample_observations_from_factors(factors, rs)
  expected = R.render_sprites(factors[:, 0], values["scale"][factors[:, 1]],
                              values["orientation"][factors[:, 2]], values["posX"][factors[:, 3]],
                              values["posY"][factors[:, 4]])
  np.testing.assert_array_equal(obs[..., 0], expected.astype(np.float32))


def test_write_is_atomic_on_failure(tmp_path, monkeypatch):
  path = os.path.join(str(tmp_path), R.DSPRITES_FILE)
  values = R._subgrid_possible_values([1, 3, 1, 2, 2, 2])
  R._write_npz(path, values, progress=False)
  before = open(path, "rb").read()
  umask = os.umask(0)
  os.umask(umask)
  assert os.stat(path).st_mode & 0o777 == 0o666 & ~umask  # normal permissions, not 0o600

  def failing_savez(*args, **kwargs):
    raise RuntimeError("interrupted")

  monkeypatch.setattr(R.np, "savez", failing_savez)
  with pytest.raises(RuntimeError):
    R._write_npz(path, R._subgrid_possible_values([1, 3, 2, 2, 2, 2]), progress=False)
  # The old file is untouched and no temporary file is left behind.
  assert open(path, "rb").read() == before
  assert os.listdir(os.path.dirname(path)) == [os.path.basename(path)]


def test_progress_goes_to_stderr(tmp_path, capsys):
  path = os.path.join(str(tmp_path), "x", "small.npz")
  R._write_npz(path, R._subgrid_possible_values([1, 1, 1, 2, 2, 2]), chunk_size=3, progress=True)
  captured = capsys.readouterr()
  assert captured.out == ""
  assert "chunk 3/3" in captured.err
  R._write_npz(path, R._subgrid_possible_values([1, 1, 1, 2, 2, 2]), chunk_size=3, progress=False)
  captured = capsys.readouterr()
  assert captured.err == "" and captured.out == ""


def test_write_dsprites_npz_uses_official_grid_and_path(tmp_path, monkeypatch):
  # The full file is too big for a unit test: check that write_dsprites_npz drives the same
  # writer with the official grid and path.
  calls = {}

  def fake_write(path, possible_values, chunk_size, progress):
    calls.update(path=path, values=possible_values, chunk_size=chunk_size, progress=progress)
    return path

  monkeypatch.setattr(R, "_write_npz", fake_write)
  out = R.write_dsprites_npz(str(tmp_path), chunk_size=123, progress=False)
  assert out == os.path.join(str(tmp_path), "dsprites", "dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz")
  assert calls["chunk_size"] == 123 and calls["progress"] is False
  assert [len(calls["values"][n]) for n in R.LATENTS_NAMES] == [1, 3, 6, 40, 32, 32]
