"""Data sets by ``dataset.name``: dlib's names through dlib's own loaders, plus the project's own data sets.

dlib computes its file paths when its modules are imported; here they are recomputed from
``$DISENTANGLEMENT_LIB_DATA`` each time a data set is loaded, so the variable can be set at any time, and a
missing file is reported by path before anything is read.
"""

import dataclasses
import os
from typing import Callable, Sequence

import gin

import submission.compat  # noqa: F401  (must precede dlib imports)
from disentanglement_lib.data.ground_truth import cars3d, dsprites, dummy_data, mpi3d, norb, shapes3d
from submission.errors import UserError

DATA_ENV = "DISENTANGLEMENT_LIB_DATA"
DSPRITES_FILE = os.path.join("dsprites", "dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz")


def data_root():
  return os.environ.get(DATA_ENV, ".")


@dataclasses.dataclass(frozen=True)
class DatasetEntry:
  """How to load one named data set and which files (relative to the data root) it needs."""
  load: Callable[[], object]
  files: Sequence[str] = ()
  how_to_get: str = ""


_REGISTRY = {}


def register(name, load, files=(), how_to_get=""):
  """Adds a data set under ``name`` (project data sets call this when their module is imported)."""
  _REGISTRY[name] = DatasetEntry(load, tuple(files), how_to_get)


def names():
  return sorted(_REGISTRY)


def required_paths(name):
  return [os.path.join(data_root(), f) for f in _entry(name).files]


def missing_paths(name):
  return [p for p in required_paths(name) if not os.path.exists(p)]


def _entry(name):
  if name not in _REGISTRY:
    raise UserError(f"unknown dataset.name {name!r}; known names: {', '.join(names())}")
  return _REGISTRY[name]


@gin.configurable("dataset")
def dataset_name(name=gin.REQUIRED):
  """dlib's ``dataset`` configurable; here it only resolves the name, so recording it never loads data."""
  _entry(name)
  return name


def load(name=None):
  """The GroundTruthData for ``name`` (default: the gin-bound ``dataset.name``)."""
  name = dataset_name() if name is None else name
  entry = _entry(name)
  missing = missing_paths(name)
  if missing:
    raise UserError(
        f"dataset {name!r} needs {missing[0]} (${DATA_ENV}={data_root()!r}), which does not exist. "
        f"{entry.how_to_get}".strip())
  return entry.load()


def _dlib_dsprites(cls, indices=None):
  def make():
    dsprites.DSPRITES_PATH = os.path.join(data_root(), DSPRITES_FILE)
    dsprites.SCREAM_PATH = os.path.join(data_root(), "scream", "scream.jpg")
    return cls(indices) if indices is not None else cls()
  return make


def _dlib_cars3d():
  cars3d.CARS3D_PATH = os.path.join(data_root(), "cars")
  return cars3d.Cars3D()


def _dlib_smallnorb():
  norb.SMALLNORB_TEMPLATE = os.path.join(data_root(), "small_norb", "smallnorb-{}-{}.mat")
  return norb.SmallNORB()


def _dlib_shapes3d():
  shapes3d.SHAPES3D_PATH = os.path.join(data_root(), "3dshapes", SHAPES3D_FILE)
  return shapes3d.Shapes3D()


SHAPES3D_FILE = "look-at-object-room_floor-hueXwall-hueXobj-hueXobj-sizeXobj-shapeXview-azi.npz"
_DSPRITES_HOW = ("Render it with `python -m submission.data generate dsprites`, or put DeepMind's official file "
                 "there (github.com/deepmind/dsprites-dataset).")
_ALL_DSPRITES = [1, 2, 3, 4, 5]

register("dsprites_full", _dlib_dsprites(dsprites.DSprites, _ALL_DSPRITES), [DSPRITES_FILE], _DSPRITES_HOW)
register("dsprites_noshape", _dlib_dsprites(dsprites.DSprites, [2, 3, 4, 5]), [DSPRITES_FILE], _DSPRITES_HOW)
register("color_dsprites", _dlib_dsprites(dsprites.ColorDSprites, _ALL_DSPRITES), [DSPRITES_FILE], _DSPRITES_HOW)
register("noisy_dsprites", _dlib_dsprites(dsprites.NoisyDSprites, _ALL_DSPRITES), [DSPRITES_FILE], _DSPRITES_HOW)
register("scream_dsprites", _dlib_dsprites(dsprites.ScreamDSprites, _ALL_DSPRITES),
         [DSPRITES_FILE, os.path.join("scream", "scream.jpg")],
         "The scream image comes from Wikimedia Commons (The_Scream.jpg), as dlib_download_data fetches it.")
register("smallnorb", _dlib_smallnorb,
         [os.path.join("small_norb", f"smallnorb-{p}-{k}.mat")
          for p in ("5x46789x9x18x6x2x96x96-training", "5x01235x9x18x6x2x96x96-testing")
          for k in ("dat", "cat", "info")],
         "The files come from NYU's norb-v1.0-small page (gunzip them), as dlib_download_data fetches them.")
register("cars3d", _dlib_cars3d, ["cars"],
         "The .mat files come from Reed et al.'s nips2015-analogy-data.tar.gz (data/cars), as dlib_download_data "
         "fetches them.")
register("shapes3d", _dlib_shapes3d, [os.path.join("3dshapes", SHAPES3D_FILE)],
         "dlib reads a non-public .npz of DeepMind's 3dshapes.")
for _mode, _how in (("mpi3d_toy", "sim_toy_64x_ordered_without_heldout_factors.npz from the MPI3D release"),
                    ("mpi3d_realistic", "the MPI3D realistic .npz"), ("mpi3d_real", "the MPI3D real .npz")):
  register(_mode, lambda mode=_mode: mpi3d.MPI3D(mode), [os.path.join(_mode, _mode + ".npz")],
           f"Save {_how} under that name.")
register("dummy_data", dummy_data.DummyData)
