"""Data sets by ``dataset.name``: dlib's names (through dlib's loaders, or the project's where dlib's is broken or
wasteful today, see ``loaders``), plus the project's own data sets, which register here.

dlib computes its file paths when its modules are imported; here they are recomputed from
``$DISENTANGLEMENT_LIB_DATA`` each time a data set is loaded, so the variable can be set at any time, and a
missing file is reported by path before anything is read.

Which loader serves which name:

=====================================================  =========================================================
dsprites_full, dsprites_noshape, color_dsprites,        dlib's ``DSprites`` classes, unchanged (uint8 in memory)
noisy_dsprites, dummy_data
scream_dsprites                                         dlib's ``ScreamDSprites`` with its Pillow >= 7 crash fixed
shapes3d, mpi3d_toy, mpi3d_realistic, mpi3d_real,       ``submission.data.loaders`` (same observations as dlib's,
cars3d, smallnorb                                       uint8/int16 in memory, readable on today's stack)
=====================================================  =========================================================
"""

import os

import numpy as np

from disentanglement_lib.data.ground_truth import dsprites, dummy_data
from submission.data import correlated_ellipses, loaders  # noqa: F401  (the project's own data sets register at import)
from submission.data.registry import (  # noqa: F401  (the registry's API, with every data set registered)
    DATA_ENV, DatasetEntry, check, data_root, dataset_name, entry, expected_paths, load, missing_message,
    missing_paths, names, register, required_paths)
from submission.errors import UserError

DSPRITES_FILE = os.path.join("dsprites", "dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz")
SHAPES3D_FILE = "look-at-object-room_floor-hueXwall-hueXobj-hueXobj-sizeXobj-shapeXview-azi.npz"
SHAPES3D_H5_FILE = "3dshapes.h5"
SCREAM_FILE = os.path.join("scream", "scream.jpg")
SMALLNORB_TEMPLATE = os.path.join("small_norb", "smallnorb-{}-{}.mat")
CARS3D_DIR = "cars"


# ------------------------------------------------------------------------------------------------------------
# dSprites (dlib's loaders) and Scream dSprites (dlib's class with its Pillow crash fixed).
# ------------------------------------------------------------------------------------------------------------
def _dlib_dsprites(cls, indices=None):
  def make():
    dsprites.DSPRITES_PATH = os.path.join(data_root(), DSPRITES_FILE)
    dsprites.SCREAM_PATH = os.path.join(data_root(), SCREAM_FILE)
    check_dsprites_file(dsprites.DSPRITES_PATH)  # dlib's loader would fail on a bad file with a KeyError
    return cls(indices) if indices is not None else cls()
  return make


def check_dsprites_file(path):
  """Image header and metadata of a dSprites .npz (reads the small metadata member only)."""
  shape, dtype = loaders.npz_member_header(path, "imgs")
  if dtype != np.uint8 or len(shape) != 3 or shape[1:] != (64, 64):
    raise UserError(f"{path}: imgs are {dtype} {list(shape)}, expected uint8 [N, 64, 64]")
  try:
    with np.load(path, encoding="latin1", allow_pickle=True) as data:
      sizes = [int(s) for s in data["metadata"][()]["latents_sizes"]]
  except (KeyError, TypeError, IndexError, ValueError) as e:
    raise UserError(f"{path}: no readable metadata['latents_sizes'] ({e})") from e
  if len(sizes) != 6 or int(np.prod(sizes)) != shape[0]:
    raise UserError(f"{path}: latents_sizes {sizes} do not multiply to the {shape[0]} images")
  official = sizes == [1, 3, 6, 40, 32, 32]
  detail = f"{shape[0]} images, latents_sizes {sizes}" + ("" if official else " (not the official grid)")
  return {"detail": detail}


def _check_dsprites(paths):
  return check_dsprites_file(paths[0])


def _check_scream_dsprites(paths):
  result = check_dsprites_file(paths[0])
  from PIL import Image  # pylint: disable=import-outside-toplevel
  try:
    with Image.open(paths[1]) as image:
      size, mode = image.size, image.mode
  except OSError as e:
    raise UserError(f"cannot read {paths[1]} as an image: {e}") from e
  if mode != "RGB":
    raise UserError(f"{paths[1]}: a {mode} image, expected RGB")
  return {"detail": f"{result['detail']}; scream image {size[0]}x{size[1]}"}


def _scream_dsprites():
  dsprites.DSPRITES_PATH = os.path.join(data_root(), DSPRITES_FILE)
  dsprites.SCREAM_PATH = os.path.join(data_root(), SCREAM_FILE)
  check_dsprites_file(dsprites.DSPRITES_PATH)
  return loaders.ScreamDSprites([1, 2, 3, 4, 5], scream_path=dsprites.SCREAM_PATH)


_DSPRITES_FACTORS = (("shape", 3), ("scale", 6), ("orientation", 40), ("posX", 32), ("posY", 32))
_DSPRITES_HOW = ("Render it with `python -m submission.data generate dsprites`, or put DeepMind's official file "
                 "there (github.com/deepmind/dsprites-dataset).")
_ALL_DSPRITES = [1, 2, 3, 4, 5]


def uint8_images_bytes(factors, channels):
  """The memory of one uint8 64x64 image per factor combination (how the loaders here and dlib's DSprites keep
  them)."""
  return int(np.prod([size for _, size in factors])) * 64 * 64 * channels


# Every dSprites variant keeps dSprites' one-channel images (colour, noise and scream are applied per batch).
_DSPRITES_MEMORY = uint8_images_bytes(_DSPRITES_FACTORS, 1)
_DLIB = "dlib's {} (unchanged)"

register("dsprites_full", _dlib_dsprites(dsprites.DSprites, _ALL_DSPRITES), [DSPRITES_FILE], _DSPRITES_HOW,
         factors=_DSPRITES_FACTORS, observation_shape=[64, 64, 1], observation_dtype="float32",
         loader=_DLIB.format("DSprites([1, 2, 3, 4, 5])"), check=_check_dsprites,
         memory_bytes=_DSPRITES_MEMORY)
register("dsprites_noshape", _dlib_dsprites(dsprites.DSprites, [2, 3, 4, 5]), [DSPRITES_FILE], _DSPRITES_HOW,
         factors=_DSPRITES_FACTORS[1:], observation_shape=[64, 64, 1], observation_dtype="float32",
         loader=_DLIB.format("DSprites([2, 3, 4, 5]); the shape is a random nuisance"), check=_check_dsprites,
         memory_bytes=_DSPRITES_MEMORY)
register("color_dsprites", _dlib_dsprites(dsprites.ColorDSprites, _ALL_DSPRITES), [DSPRITES_FILE], _DSPRITES_HOW,
         factors=_DSPRITES_FACTORS, observation_shape=[64, 64, 3], observation_dtype="float64",
         loader=_DLIB.format("ColorDSprites"), check=_check_dsprites,
         memory_bytes=_DSPRITES_MEMORY)
register("noisy_dsprites", _dlib_dsprites(dsprites.NoisyDSprites, _ALL_DSPRITES), [DSPRITES_FILE], _DSPRITES_HOW,
         factors=_DSPRITES_FACTORS, observation_shape=[64, 64, 3], observation_dtype="float64",
         loader=_DLIB.format("NoisyDSprites"), check=_check_dsprites,
         memory_bytes=_DSPRITES_MEMORY)
register("scream_dsprites", _scream_dsprites, [DSPRITES_FILE, SCREAM_FILE],
         "dSprites: " + _DSPRITES_HOW + " The scream image comes from Wikimedia Commons (The_Scream.jpg), as "
         "dlib_download_data fetches it.",
         factors=_DSPRITES_FACTORS, observation_shape=[64, 64, 3], observation_dtype="float64",
         loader="dlib's ScreamDSprites with thumbnail((350, 274)) (dlib's 3-tuple crashes on Pillow >= 7)",
         check=_check_scream_dsprites,
         memory_bytes=_DSPRITES_MEMORY)

# ------------------------------------------------------------------------------------------------------------
# SmallNORB, Cars3D, Shapes3D, MPI3D: the project's loaders (see loaders.py for why).
# ------------------------------------------------------------------------------------------------------------
def _smallnorb():
  return loaders.SmallNORB(os.path.join(data_root(), SMALLNORB_TEMPLATE),
                           factor_sizes=loaders.SMALLNORB_FACTOR_SIZES)


def _check_smallnorb(paths):  # pylint: disable=unused-argument
  n = loaders.smallnorb_check_headers(os.path.join(data_root(), SMALLNORB_TEMPLATE))
  expected = int(np.prod(loaders.SMALLNORB_FACTOR_SIZES))
  if n != expected:
    raise UserError(f"the smallnorb files hold {n} images, expected {expected} "
                    f"({'x'.join(map(str, loaders.SMALLNORB_FACTOR_SIZES))})")
  return {"detail": f"{n} images (training + testing), first camera used"}


def _cars3d():
  return loaders.Cars3D(os.path.join(data_root(), CARS3D_DIR), num_objects=loaders.CARS3D_NUM_OBJECTS)


def _check_cars3d(paths):
  if not os.path.isdir(paths[0]):
    raise UserError(f"{paths[0]} is not a directory")
  files = loaders.cars3d_check_files(paths[0], loaders.CARS3D_NUM_OBJECTS)
  return {"detail": f"{len(files)} .mat files ({files[0]} ... {files[-1]})",
          "factors_num_values": [4, 24, len(files)]}


def _shapes3d():
  return loaders.Shapes3D(required_paths("shapes3d")[0])


def _check_shapes3d(paths):
  sizes, n = loaders.shapes3d_check_header(paths[0])
  if sizes is None:  # a flat file of unusual size: the labels say which grid it is
    if paths[0].endswith(".h5"):
      import h5py  # pylint: disable=import-outside-toplevel
      with h5py.File(paths[0], "r") as f:
        labels = f["labels"][()]
    else:
      with np.load(paths[0]) as data:
        labels = data["labels"]
    sizes = loaders.shapes3d_sizes_from_labels(labels, paths[0])
  return {"detail": f"{n} images, factor sizes {sizes}", "factors_num_values": sizes}


def _mpi3d(name):
  return lambda: loaders.MPI3D(required_paths(name)[0])


def _check_mpi3d(paths):
  sizes, n = loaders.mpi3d_check_header(paths[0])
  return {"detail": f"{n} images, factor sizes {sizes}", "factors_num_values": sizes}


register("smallnorb", _smallnorb,
         loaders.smallnorb_paths(SMALLNORB_TEMPLATE),
         "The files come from NYU's norb-v1.0-small page (cs.nyu.edu/~ylclab/data/norb-v1.0-small, gunzip them), "
         "as dlib_download_data fetches them.",
         factors=tuple(zip(loaders.SMALLNORB_FACTOR_NAMES, (5, 9, 18, 6))), observation_shape=[64, 64, 1],
         observation_dtype="float32",
         loader="submission.data.loaders.SmallNORB (dlib's fails on NumPy 2 and Pillow >= 10; same observations)",
         check=_check_smallnorb)
register("cars3d", _cars3d, [CARS3D_DIR],
         "The .mat files come from Reed et al.'s nips2015-analogy-data.tar.gz (www.scottreed.info, data/cars), "
         "as dlib_download_data fetches them.",
         factors=tuple(zip(loaders.CARS3D_FACTOR_NAMES, (4, 24, 183))), observation_shape=[64, 64, 3],
         observation_dtype="float32",
         loader="submission.data.loaders.Cars3D (dlib's fails on Pillow >= 7; object id = sorted file order)",
         check=_check_cars3d, memory_bytes=uint8_images_bytes(zip(loaders.CARS3D_FACTOR_NAMES, (4, 24, 183)), 3))
register("shapes3d", _shapes3d,
         [(os.path.join("3dshapes", SHAPES3D_H5_FILE), os.path.join("3dshapes", SHAPES3D_FILE))],
         "Download DeepMind's public 3dshapes.h5 (github.com/deepmind/3d-shapes) to that path; dlib's own .npz "
         "layout is read too.",
         factors=tuple(zip(loaders.SHAPES3D_FACTOR_NAMES, loaders.SHAPES3D_FACTOR_SIZES)),
         observation_shape=[64, 64, 3], observation_dtype="float32",
         loader="submission.data.loaders.Shapes3D (reads the public .h5; uint8 in memory, dlib's needs 22 GiB)",
         check=_check_shapes3d,
         memory_bytes=uint8_images_bytes(zip(loaders.SHAPES3D_FACTOR_NAMES, loaders.SHAPES3D_FACTOR_SIZES), 3))
for _mode, _how, _sizes in (
    ("mpi3d_toy", "sim_toy_64x_ordered_without_heldout_factors.npz from the MPI3D release "
     "(storage.googleapis.com/disentanglement_dataset/data_npz/)", (4, 4, 2, 3, 3, 40, 40)),
    ("mpi3d_realistic", "the MPI3D realistic .npz (github.com/rr-learning/disentanglement_dataset)",
     (4, 4, 2, 3, 3, 40, 40)),
    ("mpi3d_real", "the MPI3D real .npz (github.com/rr-learning/disentanglement_dataset)",
     (6, 6, 2, 3, 3, 40, 40))):
  register(_mode, _mpi3d(_mode), [os.path.join(_mode, _mode + ".npz")], f"Save {_how} under that name.",
           factors=tuple(zip(loaders.MPI3D_FACTOR_NAMES, _sizes)), observation_shape=[64, 64, 3],
           observation_dtype="float32",
           loader="submission.data.loaders.MPI3D (factor sizes from the number of images: 460800 -> 4x4 "
                  "colours x shapes, 1036800 -> 6x6; uint8 in memory)",
           check=_check_mpi3d, memory_bytes=uint8_images_bytes(zip(loaders.MPI3D_FACTOR_NAMES, _sizes), 3))
def _check_dummy_data(paths):  # pylint: disable=unused-argument
  observation = dummy_data.DummyData().sample_observations(1, np.random.RandomState(0))
  if observation.shape != (1, 64, 64, 1):
    raise UserError(f"dummy_data observations have shape {list(observation.shape[1:])}, expected [64, 64, 1]")
  return {"detail": "no files needed; one observation drawn"}


register("dummy_data", dummy_data.DummyData, factors=tuple((f"factor {i}", 5) for i in range(10)),
         observation_shape=[64, 64, 1], observation_dtype="float64",
         loader=_DLIB.format("DummyData: uniform noise, independent of the factors"), check=_check_dummy_data)
