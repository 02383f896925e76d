"""Real data formats through the project's lookup (submission.data.named_data), against dlib's own loaders.

Every test writes small files in the official format under tmp_path and points $DISENTANGLEMENT_LIB_DATA at
them. Where dlib's loader cannot run on today's stack (Pillow >= 7/10, NumPy 2) it is run with the smallest
shim that makes it run, and the observations are also compared with values computed directly from the file.
"""

import builtins
import os

import h5py
import numpy as np
import PIL.Image
import pytest
import scipy.io

from disentanglement_lib.data.ground_truth import cars3d as dlib_cars3d
from disentanglement_lib.data.ground_truth import dsprites as dlib_dsprites
from disentanglement_lib.data.ground_truth import dummy_data as dlib_dummy
from disentanglement_lib.data.ground_truth import mpi3d as dlib_mpi3d
from disentanglement_lib.data.ground_truth import norb as dlib_norb
from disentanglement_lib.data.ground_truth import shapes3d as dlib_shapes3d
from disentanglement_lib.data.ground_truth import util as dlib_util
from submission.data import cars3d, dsprites_render, mpi3d, named_data, shapes3d, smallnorb, stored_images
from submission.errors import UserError


@pytest.fixture
def data_root(tmp_path, monkeypatch):
  monkeypatch.setenv(named_data.DATA_ENV, str(tmp_path))
  return tmp_path


def _same_samples(ours, dlib, num=64, seeds=(0, 1, 2)):
  """Draws sample(num, RandomState(seed)) from both; returns the observation pairs (factors must agree)."""
  pairs = []
  for seed in seeds:
    factors_ours, obs_ours = ours.sample(num, np.random.RandomState(seed))
    factors_dlib, obs_dlib = dlib.sample(num, np.random.RandomState(seed))
    np.testing.assert_array_equal(factors_ours, factors_dlib)
    pairs.append((obs_ours, obs_dlib))
  return pairs


def _set_dlib_sizes(data, sizes):
  """dlib hard-codes the full-size factor grid in __init__; small test files need a small one."""
  data.factor_sizes = list(sizes)
  data.state_space = dlib_util.SplitDiscreteStateSpace(data.factor_sizes, data.latent_factor_indices)
  data.factor_bases = np.prod(data.factor_sizes) / np.cumprod(data.factor_sizes)


@pytest.fixture
def pillow_shims(monkeypatch):
  """What dlib's Cars3D / ScreamDSprites / SmallNORB need on Pillow 13: ANTIALIAS and 2-tuple thumbnails."""
  monkeypatch.setattr(PIL.Image, "ANTIALIAS", PIL.Image.LANCZOS, raising=False)
  thumbnail = PIL.Image.Image.thumbnail
  monkeypatch.setattr(PIL.Image.Image, "thumbnail",
                      lambda self, size, *a, **k: thumbnail(self, tuple(size)[:2], *a, **k))


# --------------------------------------------------------------------------------------------------------------
# dSprites: the rendered file through dlib's loaders, unchanged.
# --------------------------------------------------------------------------------------------------------------
DSPRITES_SIZES = [1, 3, 2, 5, 3, 2]


@pytest.fixture
def dsprites_root(data_root):
  values = dsprites_render._subgrid_possible_values(DSPRITES_SIZES)
  dsprites_render._write_npz(os.path.join(str(data_root), dsprites_render.DSPRITES_FILE), values, progress=False)
  return data_root, values


def _render(values, factors):
  """The sprite images for dsprites_full factors [shape, scale, orientation, posX, posY] (class indices)."""
  return dsprites_render.render_sprites(
      factors[:, 0], values["scale"][factors[:, 1]], values["orientation"][factors[:, 2]],
      values["posX"][factors[:, 3]], values["posY"][factors[:, 4]])


def test_rendered_dsprites_through_the_lookup_uses_dlibs_classes_unchanged(dsprites_root):
  _, values = dsprites_root
  full = named_data.load("dsprites_full")
  assert type(full) is dlib_dsprites.DSprites
  assert full.num_factors == 5 and full.factors_num_values == [3, 6, 40, 32, 32]
  assert list(full.factor_sizes) == DSPRITES_SIZES  # sampling uses the file's grid
  factors, obs = full.sample(200, np.random.RandomState(0))
  assert obs.shape == (200, 64, 64, 1) and obs.dtype == np.float32
  assert set(np.unique(factors[:, 0])) == {0, 1, 2}
  np.testing.assert_array_equal(obs[..., 0], _render(values, factors))
  # Every factor combination maps to its rendering: check the whole grid.
  grid = np.stack(np.unravel_index(np.arange(int(np.prod(DSPRITES_SIZES[1:]))), DSPRITES_SIZES[1:]), axis=1)
  np.testing.assert_array_equal(full.sample_observations_from_factors(grid, np.random.RandomState(0))[..., 0],
                                _render(values, grid))

  noshape = named_data.load("dsprites_noshape")
  assert type(noshape) is dlib_dsprites.DSprites and noshape.factors_num_values == [6, 40, 32, 32]
  factors = noshape.sample_factors(50, np.random.RandomState(1))
  obs = noshape.sample_observations_from_factors(factors, np.random.RandomState(2))
  shapes = np.random.RandomState(2).randint(3, size=50)  # the nuisance shape, drawn as dlib draws it
  np.testing.assert_array_equal(obs[..., 0], _render(values, np.column_stack([shapes, factors])))

  color = named_data.load("color_dsprites")
  assert type(color) is dlib_dsprites.ColorDSprites
  factors, obs = color.sample(50, np.random.RandomState(3))
  sprite = _render(values, factors).astype(np.float64)
  assert obs.shape == (50, 64, 64, 3)
  np.testing.assert_array_equal(obs == 0, np.repeat(sprite[..., None] == 0, 3, axis=3))
  lit = obs[sprite.astype(bool)]
  assert lit.min() >= 0.5 and lit.max() <= 1.0

  noisy = named_data.load("noisy_dsprites")
  assert type(noisy) is dlib_dsprites.NoisyDSprites
  factors, obs = noisy.sample(50, np.random.RandomState(4))
  sprite = _render(values, factors).astype(bool)
  assert np.all(obs[sprite] == 1.0) and 0.45 < obs[~sprite].mean() < 0.55


def test_rendered_dsprites_geometry_through_the_lookup(dsprites_root):
  """posX moves the centre of mass right, scale grows the area, orientation 0 and 2*pi give one image."""
  _, values = dsprites_root
  data = named_data.load("dsprites_full")
  rs = np.random.RandomState(0)

  def image(shape, scale, orientation, x, y):
    return data.sample_observations_from_factors(np.array([[shape, scale, orientation, x, y]]), rs)[0, ..., 0]

  columns = np.arange(64)
  for shape in range(3):
    centres = [(image(shape, 1, 1, x, 0).sum(axis=0) * columns).sum() / image(shape, 1, 1, x, 0).sum()
               for x in range(3)]
    assert centres[0] < centres[1] < centres[2] and centres[2] - centres[0] == pytest.approx(32, abs=1)
    assert image(shape, 0, 2, 1, 1).sum() < image(shape, 1, 2, 1, 1).sum()
    assert values["orientation"][0] == 0 and values["orientation"][-1] == 2 * np.pi
    np.testing.assert_array_equal(image(shape, 1, 0, 1, 1), image(shape, 1, 4, 1, 1))


def test_scream_dsprites_fixes_dlibs_thumbnail_crash_and_keeps_its_observations(dsprites_root, pillow_shims,
                                                                               monkeypatch):
  root, _ = dsprites_root
  os.makedirs(root / "scream")
  pixels = np.random.RandomState(0).randint(0, 256, size=(300, 420, 3)).astype(np.uint8)
  PIL.Image.fromarray(pixels).save(root / "scream" / "scream.jpg", quality=90)
  ours = named_data.load("scream_dsprites")
  assert ours.scream.shape == (250, 350, 3)  # thumbnail((350, 274)) keeps the aspect ratio
  monkeypatch.setattr(dlib_dsprites, "DSPRITES_PATH", str(root / dsprites_render.DSPRITES_FILE))
  monkeypatch.setattr(dlib_dsprites, "SCREAM_PATH", str(root / "scream" / "scream.jpg"))
  dlib = dlib_dsprites.ScreamDSprites([1, 2, 3, 4, 5])  # runs only with the Pillow shims
  for obs_ours, obs_dlib in _same_samples(ours, dlib, num=16):
    assert obs_ours.shape == (16, 64, 64, 3)
    np.testing.assert_array_equal(obs_ours, obs_dlib)


def test_dlibs_scream_dsprites_fails_on_todays_pillow(dsprites_root, monkeypatch):
  root, _ = dsprites_root
  os.makedirs(root / "scream")
  PIL.Image.new("RGB", (420, 300)).save(root / "scream" / "scream.jpg")
  monkeypatch.setattr(dlib_dsprites, "DSPRITES_PATH", str(root / dsprites_render.DSPRITES_FILE))
  monkeypatch.setattr(dlib_dsprites, "SCREAM_PATH", str(root / "scream" / "scream.jpg"))
  with pytest.raises(ValueError, match="too many values"):
    dlib_dsprites.ScreamDSprites([1, 2, 3, 4, 5])


# --------------------------------------------------------------------------------------------------------------
# Shapes3D: dlib's .npz layout and the public .h5.
# --------------------------------------------------------------------------------------------------------------
SHAPES3D_SIZES = (2, 3, 2, 2, 2, 3)
SHAPES3D_VALUES = [np.linspace(0, 0.9, 10), np.linspace(0, 0.9, 10), np.linspace(0, 0.9, 10),
                   np.linspace(0.75, 1.25, 8), np.arange(4.0), np.linspace(-30, 30, 15)]


def _shapes3d_arrays(seed=0):
  n = int(np.prod(SHAPES3D_SIZES))
  images = np.random.RandomState(seed).randint(0, 256, size=(n, 64, 64, 3)).astype(np.uint8)
  classes = np.stack(np.unravel_index(np.arange(n), SHAPES3D_SIZES), axis=1)
  labels = np.stack([SHAPES3D_VALUES[i][::len(SHAPES3D_VALUES[i]) // SHAPES3D_SIZES[i]][classes[:, i]]
                     for i in range(6)], axis=1)
  return images, labels


def _write_shapes3d_npz(root, images, labels):
  os.makedirs(root / "3dshapes", exist_ok=True)
  path = root / shapes3d.SHAPES3D_FILE
  np.savez(path, images=images.reshape(SHAPES3D_SIZES + (64, 64, 3)), labels=labels.reshape(SHAPES3D_SIZES + (6,)))
  return str(path)


def _write_shapes3d_h5(root, images, labels):
  os.makedirs(root / "3dshapes", exist_ok=True)
  path = root / "3dshapes" / "3dshapes.h5"
  with h5py.File(path, "w") as f:
    f.create_dataset("images", data=images)
    f.create_dataset("labels", data=labels)
  return str(path)


def test_shapes3d_npz_and_h5_equal_dlibs_loader(tmp_path, monkeypatch):
  images, labels = _shapes3d_arrays()
  npz_root, h5_root = tmp_path / "npz", tmp_path / "h5"
  npz_path = _write_shapes3d_npz(npz_root, images, labels)
  _write_shapes3d_h5(h5_root, images, labels)

  monkeypatch.setattr(dlib_shapes3d, "SHAPES3D_PATH", npz_path)
  dlib = dlib_shapes3d.Shapes3D()
  assert dlib.images.dtype == np.float32  # dlib: all images as float32 (22 GiB for the real file)
  _set_dlib_sizes(dlib, SHAPES3D_SIZES)

  for root in (npz_root, h5_root):
    monkeypatch.setenv(named_data.DATA_ENV, str(root))
    ours = named_data.load("shapes3d")
    assert isinstance(ours, shapes3d.Shapes3D) and ours.images.dtype == np.uint8
    assert ours.num_factors == 6 and ours.factors_num_values == list(SHAPES3D_SIZES)
    assert ours.observation_shape == [64, 64, 3]
    for obs_ours, obs_dlib in _same_samples(ours, dlib):
      assert obs_ours.dtype == np.float32
      np.testing.assert_array_equal(obs_ours, obs_dlib)
  # Directly from the file: factors (f0..f5) -> row ravel_multi_index, pixels / 255.
  factors = ours.sample_factors(10, np.random.RandomState(5))
  rows = np.ravel_multi_index(factors.T, SHAPES3D_SIZES)
  np.testing.assert_array_equal(ours.sample_observations_from_factors(factors, None),
                                images[rows].astype(np.float32) / np.float32(255))
  np.testing.assert_array_equal(ours.labels[rows], labels[rows])


def test_shapes3d_real_sizes_and_bad_files(data_root):
  assert shapes3d.SHAPES3D_FACTOR_SIZES == (10, 10, 10, 8, 4, 15)
  images, labels = _shapes3d_arrays()
  path = _write_shapes3d_h5(data_root, images, labels[::-1])  # rows not in row-major factor order
  with pytest.raises(UserError, match="row-major"):
    named_data.load("shapes3d")
  os.remove(path)
  _write_shapes3d_h5(data_root, images[:, :32], labels)
  with pytest.raises(UserError, match=r"3dshapes\.h5: images are uint8 \[144, 32, 64, 3\]"):
    named_data.load("shapes3d")


# --------------------------------------------------------------------------------------------------------------
# MPI3D
# --------------------------------------------------------------------------------------------------------------
MPI3D_SIZES = (2, 2, 2, 1, 3, 2, 3)


def _write_mpi3d(root, mode, images):
  os.makedirs(root / mode, exist_ok=True)
  np.savez(root / mode / f"{mode}.npz", images=images)
  return str(root / mode / f"{mode}.npz")


def test_mpi3d_equals_dlibs_loader_in_float32(data_root, monkeypatch):
  n = int(np.prod(MPI3D_SIZES))
  images = np.random.RandomState(1).randint(0, 256, size=(n, 64, 64, 3)).astype(np.uint8)
  _write_mpi3d(data_root, "mpi3d_toy", images)
  monkeypatch.setitem(mpi3d.MPI3D_SIZES_BY_COUNT, n, MPI3D_SIZES)
  ours = named_data.load("mpi3d_toy")
  assert isinstance(ours, mpi3d.MPI3D) and ours.images.dtype == np.uint8
  assert ours.num_factors == 7 and ours.factors_num_values == list(MPI3D_SIZES)
  dlib = dlib_mpi3d.MPI3D("mpi3d_toy")  # reads $DISENTANGLEMENT_LIB_DATA itself
  _set_dlib_sizes(dlib, MPI3D_SIZES)
  for obs_ours, obs_dlib in _same_samples(ours, dlib):
    assert obs_ours.dtype == np.float32 and obs_dlib.dtype == np.float64
    np.testing.assert_array_equal(obs_ours, obs_dlib.astype(np.float32))
    assert np.abs(obs_ours - obs_dlib).max() < 1e-7


def test_mpi3d_factor_sizes_follow_the_number_of_images(data_root):
  assert mpi3d.mpi3d_factor_sizes(460800, "f") == [4, 4, 2, 3, 3, 40, 40]
  assert mpi3d.mpi3d_factor_sizes(1036800, "f") == [6, 6, 2, 3, 3, 40, 40]
  path = _write_mpi3d(data_root, "mpi3d_realistic", np.zeros((10, 64, 64, 3), np.uint8))
  with pytest.raises(UserError) as error:
    named_data.load("mpi3d_realistic")
  assert path in str(error.value) and "10 images" in str(error.value) and "460800" in str(error.value)


# --------------------------------------------------------------------------------------------------------------
# Cars3D
# --------------------------------------------------------------------------------------------------------------
CAR_FILES = ["car_c_mesh.mat", "car_a_mesh.mat", "car_b_mesh.mat"]  # written in this (unsorted) order


def _write_cars(root, dtype=np.uint8):
  os.makedirs(root / "cars", exist_ok=True)
  meshes = {}
  for k, name in enumerate(CAR_FILES):
    im = np.random.RandomState(k).randint(0, 256, size=(128, 128, 3, 24, 4)).astype(dtype)
    scipy.io.savemat(str(root / "cars" / name), {"im": im})
    meshes[name] = im
  (root / "cars" / "list.txt").write_text("not a car\n")
  return meshes


def _thumbnail(view):
  picture = PIL.Image.fromarray(np.ascontiguousarray(view.astype(np.uint8)))
  picture.thumbnail((64, 64), PIL.Image.LANCZOS)
  return np.asarray(picture)


def test_cars3d_sorted_order_and_dlibs_observations(data_root, pillow_shims, monkeypatch):
  meshes = _write_cars(data_root)
  monkeypatch.setattr(cars3d, "CARS3D_NUM_OBJECTS", len(CAR_FILES))
  ours = named_data.load("cars3d")
  assert ours.files == sorted(CAR_FILES) and ours.images.dtype == np.uint8
  assert ours.num_factors == 3 and ours.factors_num_values == [4, 24, 3]
  assert ours.observation_shape == [64, 64, 3]
  # Directly from the files: (elevation e, azimuth a, object k) is view im[..., a, e] of the k-th sorted file.
  rs = np.random.RandomState(0)
  factors = np.column_stack([rs.randint(4, size=12), rs.randint(24, size=12), rs.randint(3, size=12)])
  obs = ours.sample_observations_from_factors(factors, rs)
  assert obs.dtype == np.float32
  for (e, a, k), o in zip(factors, obs):
    expected = _thumbnail(meshes[sorted(CAR_FILES)[k]][:, :, :, a, e])
    np.testing.assert_array_equal(o, (expected / 255.).astype(np.float32))
  # dlib's loader (183 objects hard-coded; object id = directory-listing position).
  monkeypatch.setattr(dlib_cars3d, "CARS3D_PATH", str(data_root / "cars"))
  dlib = dlib_cars3d.Cars3D()
  listing = [x for x in dlib_cars3d.gfile.ListDirectory(str(data_root / "cars")) if ".mat" in x]
  factors = ours.sample_factors(200, np.random.RandomState(1))
  dlib_factors = factors.copy()
  dlib_factors[:, 2] = [listing.index(sorted(CAR_FILES)[k]) for k in factors[:, 2]]
  np.testing.assert_array_equal(ours.sample_observations_from_factors(factors, None),
                                dlib.sample_observations_from_factors(dlib_factors, None))


def test_cars3d_float_pixels_checks_and_dlibs_failure(data_root, monkeypatch):
  meshes = _write_cars(data_root, dtype=np.float64)  # whole numbers stored as doubles: read losslessly
  monkeypatch.setattr(cars3d, "CARS3D_NUM_OBJECTS", len(CAR_FILES))
  ours = named_data.load("cars3d")
  view = _thumbnail(meshes["car_a_mesh.mat"][:, :, :, 5, 2])
  np.testing.assert_array_equal(ours.sample_observations_from_factors(np.array([[2, 5, 0]]), None)[0],
                                (view / 255.).astype(np.float32))
  monkeypatch.setattr(dlib_cars3d, "CARS3D_PATH", str(data_root / "cars"))
  with pytest.raises(TypeError, match="Cannot handle this data type"):
    dlib_cars3d.Cars3D()  # dlib hands the doubles to PIL.Image.fromarray, which takes no float RGB
  monkeypatch.setattr(cars3d, "CARS3D_NUM_OBJECTS", 183)
  with pytest.raises(UserError, match=r"cars holds 3 \.mat files, expected 183"):
    named_data.load("cars3d")
  monkeypatch.setattr(cars3d, "CARS3D_NUM_OBJECTS", len(CAR_FILES))
  scipy.io.savemat(str(data_root / "cars" / "car_a_mesh.mat"), {"im": np.full((128, 128, 3, 24, 4), 0.5)})
  with pytest.raises(UserError, match="car_a_mesh.mat: 'im' is float64 and not whole numbers"):
    named_data.load("cars3d")


def test_dlibs_cars3d_fails_on_todays_pillow(data_root, monkeypatch):
  os.makedirs(data_root / "cars")
  scipy.io.savemat(str(data_root / "cars" / "car_a_mesh.mat"), {"im": np.zeros((128, 128, 3, 24, 4), np.uint8)})
  monkeypatch.setattr(dlib_cars3d, "CARS3D_PATH", str(data_root / "cars"))
  if not hasattr(PIL.Image, "ANTIALIAS"):
    with pytest.raises(AttributeError, match="ANTIALIAS"):  # removed in Pillow 10
      dlib_cars3d.Cars3D()
  monkeypatch.setattr(PIL.Image, "ANTIALIAS", PIL.Image.LANCZOS, raising=False)
  with pytest.raises(ValueError, match="too many values"):  # thumbnail((64, 64, 3), ...) on Pillow >= 7
    dlib_cars3d.Cars3D()


# --------------------------------------------------------------------------------------------------------------
# SmallNORB
# --------------------------------------------------------------------------------------------------------------
NORB_SIZES = (2, 2, 2, 2, 3)  # category, instance, elevation, azimuth / 2, lighting
NORB_MAGIC = {np.uint8: 507333717, np.int32: 507333716}


def _write_norb_matrix(path, array):
  array = np.ascontiguousarray(array)
  header = [NORB_MAGIC[array.dtype.type], array.ndim] + list(array.shape) + [1] * (3 - array.ndim)
  with open(path, "wb") as f:
    f.write(np.array(header, "<i4").tobytes())
    f.write(array.tobytes())


def _write_smallnorb(root, seed=0):
  """Instances 0 -> training chunk, 1 -> testing chunk; rows shuffled; azimuth stored as 0, 2, ..."""
  os.makedirs(root / "small_norb", exist_ok=True)
  rs = np.random.RandomState(seed)
  grid = np.stack(np.unravel_index(np.arange(int(np.prod(NORB_SIZES))), NORB_SIZES), axis=1)
  chunks = {}
  for chunk, instance in zip(smallnorb.SMALLNORB_CHUNKS, (0, 1)):
    features = rs.permutation(grid[grid[:, 1] == instance])
    dat = rs.randint(0, 256, size=(len(features), 2, 96, 96)).astype(np.uint8)
    info = np.column_stack([features[:, 1], features[:, 2], 2 * features[:, 3], features[:, 4]]).astype(np.int32)
    template = str(root / smallnorb.SMALLNORB_TEMPLATE)
    _write_norb_matrix(template.format(chunk, "dat"), dat)
    _write_norb_matrix(template.format(chunk, "cat"), features[:, 0].astype(np.int32))
    _write_norb_matrix(template.format(chunk, "info"), info)
    chunks[chunk] = (features, dat)
  return chunks


def test_smallnorb_equals_dlibs_loader(data_root, pillow_shims, monkeypatch):
  chunks = _write_smallnorb(data_root)
  monkeypatch.setattr(smallnorb, "SMALLNORB_FACTOR_SIZES", NORB_SIZES)
  ours = named_data.load("smallnorb")
  assert isinstance(ours, smallnorb.SmallNORB) and ours.images.dtype == np.int16
  assert ours.num_factors == 4 and ours.factors_num_values == [2, 2, 2, 3]
  assert ours.observation_shape == [64, 64, 1]
  # dlib's reading, resizing and indexing code, with the NumPy 2 shim (int() of a 1-element array) and the
  # small grid in place of its hard-coded [5, 10, 9, 18, 6].
  monkeypatch.setattr(dlib_norb, "int", lambda a: builtins.int(np.asarray(a).reshape(-1)[0]), raising=False)
  template = str(data_root / smallnorb.SMALLNORB_TEMPLATE)
  dlib = object.__new__(dlib_norb.SmallNORB)
  dlib.images, features = dlib_norb._load_small_norb_chunks(template, dlib_norb.SMALLNORB_CHUNKS)
  dlib.factor_sizes = list(NORB_SIZES)
  dlib.latent_factor_indices = [0, 2, 3, 4]
  dlib.num_total_factors = features.shape[1]
  dlib.index = dlib_util.StateSpaceAtomIndex(dlib.factor_sizes, features)
  dlib.state_space = dlib_util.SplitDiscreteStateSpace(dlib.factor_sizes, dlib.latent_factor_indices)
  for obs_ours, obs_dlib in _same_samples(ours, dlib):
    assert obs_ours.shape == (64, 64, 64, 1) and obs_ours.dtype == np.float32
    np.testing.assert_array_equal(obs_ours, obs_dlib)
  # Directly from the file: the factors pick camera 0 of the matching row; dlib's unclamped resize kept.
  factors = np.array([[1, 0, 1, 2]])  # category 1, elevation 0, azimuth 1, lighting 2; instance drawn
  rs = np.random.RandomState(7)
  instance = np.random.RandomState(7).randint(2)
  features, dat = chunks[smallnorb.SMALLNORB_CHUNKS[instance]]
  row = np.flatnonzero((features == [1, instance, 0, 1, 2]).all(axis=1))[0]
  resized = np.asarray(PIL.Image.fromarray(dat[row, 0].view(np.int8)).resize((64, 64), PIL.Image.LANCZOS))
  np.testing.assert_array_equal(ours.sample_observations_from_factors(factors, rs)[0, :, :, 0],
                                (resized / 255.).astype(np.float32))
  assert resized.min() < 0 or resized.max() > 255  # the quirk: Lanczos in mode "I" is not clamped


def test_dlibs_smallnorb_fails_on_numpy2_and_bad_files_are_reported(data_root):
  _write_smallnorb(data_root)
  template = str(data_root / smallnorb.SMALLNORB_TEMPLATE)
  with pytest.raises(TypeError):
    dlib_norb._read_binary_matrix(template.format(smallnorb.SMALLNORB_CHUNKS[0], "cat"))
  # Our loader checks the grid: the real 5x10x9x18x6 sizes do not fit these files.
  with pytest.raises(UserError, match="do not cover the 5x10x9x18x6 factor grid"):
    named_data.load("smallnorb")
  path = template.format(smallnorb.SMALLNORB_CHUNKS[1], "dat")
  with open(path, "r+b") as f:
    f.truncate(os.path.getsize(path) - 1)
  with pytest.raises(UserError, match="testing-dat.mat has .* bytes, expected"):
    named_data.load("smallnorb")


def test_float32_division_equals_dlibs_float64_division_for_every_stored_value():
  values = np.arange(-32768, 32768).astype(np.int16)  # every int16, hence every byte
  np.testing.assert_array_equal(stored_images.to_float32(values), (values.astype(np.float64) / 255.).astype(np.float32))
  np.testing.assert_array_equal(stored_images.to_float32(values), values.astype(np.float32) / 255.)


# --------------------------------------------------------------------------------------------------------------
# Lookup behaviour
# --------------------------------------------------------------------------------------------------------------
def test_missing_files_are_named_with_the_variable(data_root):
  for name, relative in (("cars3d", "cars"), ("shapes3d", os.path.join("3dshapes", "3dshapes.h5")),
                         ("mpi3d_real", os.path.join("mpi3d_real", "mpi3d_real.npz")),
                         ("dsprites_full", dsprites_render.DSPRITES_FILE)):
    path = os.path.join(str(data_root), relative)
    assert named_data.missing_paths(name) == [path]
    with pytest.raises(UserError) as error:
      named_data.load(name)
    message = str(error.value)
    assert "\n" not in message and path in message and named_data.DATA_ENV in message
  assert "or " + os.path.join(str(data_root), shapes3d.SHAPES3D_FILE) in \
      named_data.missing_message("shapes3d")
  assert len(named_data.missing_paths("smallnorb")) == 6
  assert named_data.missing_paths("dummy_data") == []


def test_every_dlib_name_is_registered_and_every_name_is_in_the_table_of_named_data():
  dlib_names = {"dsprites_full", "dsprites_noshape", "color_dsprites", "noisy_dsprites", "scream_dsprites",
                "smallnorb", "cars3d", "mpi3d_toy", "mpi3d_realistic", "mpi3d_real", "shapes3d", "dummy_data"}
  assert dlib_names <= set(named_data.names())
  for name in named_data.names():
    found = named_data.entry(name)
    assert found.name == name and name in named_data.__doc__, name  # one record per name, listed by its family


def test_dummy_data_is_dlibs(data_root):
  data = named_data.load("dummy_data")
  assert type(data) is dlib_dummy.DummyData
  factors, obs = data.sample(5, np.random.RandomState(0))
  factors_dlib, obs_dlib = dlib_dummy.DummyData().sample(5, np.random.RandomState(0))
  np.testing.assert_array_equal(obs, obs_dlib)
  np.testing.assert_array_equal(factors, factors_dlib)


def test_every_dlib_name_is_registered_with_dlibs_factor_sizes():
  expected = {
      "dsprites_full": [3, 6, 40, 32, 32], "dsprites_noshape": [6, 40, 32, 32],
      "color_dsprites": [3, 6, 40, 32, 32], "noisy_dsprites": [3, 6, 40, 32, 32],
      "scream_dsprites": [3, 6, 40, 32, 32], "smallnorb": [5, 9, 18, 6], "cars3d": [4, 24, 183],
      "shapes3d": [10, 10, 10, 8, 4, 15], "mpi3d_toy": [4, 4, 2, 3, 3, 40, 40],
      "mpi3d_realistic": [4, 4, 2, 3, 3, 40, 40], "mpi3d_real": [6, 6, 2, 3, 3, 40, 40], "dummy_data": [5] * 10}
  for name, sizes in expected.items():
    assert [n for _, n in named_data.entry(name).factors] == sizes, name
