"""Shapes3D (Burgess & Kim 2018, DeepMind's ``3dshapes``): ``dataset.name = 'shapes3d'``.

dlib's loader reads a non-public ``.npz`` and casts all 480,000 images to float32 (22 GiB); ``Shapes3D`` here reads
the public ``3dshapes.h5`` (flat layout) or dlib's ``.npz``, keeps the pixels as uint8, and returns dlib's
observations (same factor order, sampling and float32 values; see ``submission.data.stored_images``).
"""

import os

import numpy as np

from submission.data import registry
from submission.data.stored_images import IMAGE_SHAPE, UInt8Images, h5_dataset_header, load_npz_arrays, \
    npz_member_header
from submission.errors import UserError

SHAPES3D_FILE = os.path.join(  # dlib's layout
    "3dshapes", "look-at-object-room_floor-hueXwall-hueXobj-hueXobj-sizeXobj-shapeXview-azi.npz")
SHAPES3D_H5_FILE = os.path.join("3dshapes", "3dshapes.h5")
SHAPES3D_FACTOR_SIZES = (10, 10, 10, 8, 4, 15)
SHAPES3D_FACTOR_NAMES = ("floor hue", "wall hue", "object hue", "scale", "shape", "orientation")


def shapes3d_sizes_from_labels(labels, path):
  """Factor sizes of a flat, row-major labels array [N, 6], checking the order; UserError otherwise."""
  labels = np.asarray(labels).reshape(-1, labels.shape[-1])
  if labels.shape[1] != 6:
    raise UserError(f"{path}: labels have {labels.shape[1]} columns, expected 6")
  classes, sizes = [], []
  for column in labels.T:
    values, inverse = np.unique(column, return_inverse=True)
    classes.append(inverse.reshape(-1))
    sizes.append(len(values))
  expected = np.arange(labels.shape[0])
  if int(np.prod(sizes)) != labels.shape[0] or not np.array_equal(
      np.ravel_multi_index(classes, sizes), expected):
    raise UserError(f"{path}: labels are not one row per factor combination in row-major order "
                    f"(factor sizes {sizes}, {labels.shape[0]} rows)")
  return sizes


def shapes3d_check_header(path):
  """(factor sizes, number of images) of a Shapes3D file, from headers (and the small labels array)."""
  if path.endswith(".h5"):
    images_shape, dtype = h5_dataset_header(path, "images")
    labels_shape, _ = h5_dataset_header(path, "labels")
  else:
    images_shape, dtype = npz_member_header(path, "images")
    labels_shape, _ = npz_member_header(path, "labels")
  if dtype != np.uint8 or tuple(images_shape[-3:]) != IMAGE_SHAPE or len(images_shape) not in (4, 9):
    raise UserError(f"{path}: images are {dtype} {list(images_shape)}, expected uint8 [N, 64, 64, 3] "
                    f"(3dshapes.h5) or a 6-D factor grid [..., 64, 64, 3] (dlib's .npz)")
  n = int(np.prod(images_shape[:-3]))
  if int(np.prod(labels_shape[:-1])) != n or labels_shape[-1] != 6:
    raise UserError(f"{path}: labels are {list(labels_shape)}, expected [{n}, 6]")
  if len(images_shape) == 9:
    return list(images_shape[:6]), n
  if n == int(np.prod(SHAPES3D_FACTOR_SIZES)):
    return list(SHAPES3D_FACTOR_SIZES), n
  return None, n  # factor sizes come from the labels


class Shapes3D(UInt8Images):
  """Shapes3D from DeepMind's public ``3dshapes.h5`` or from dlib's ``.npz``; factors as in dlib.

  0 floor hue (10), 1 wall hue (10), 2 object hue (10), 3 scale (8), 4 shape (4), 5 orientation (15).
  The h5 file is flat ([480000, 64, 64, 3]); its factor sizes are read off the labels, whose rows must be in
  row-major factor order (they are in DeepMind's file). dlib's .npz holds the images as a 6-D factor grid.
  Observations: float32 [64, 64, 3], ``uint8 / 255.`` as dlib computes it.
  """

  def __init__(self, path):
    if path.endswith(".h5"):
      import h5py  # pylint: disable=import-outside-toplevel
      shapes3d_check_header(path)
      try:
        with h5py.File(path, "r") as f:
          labels = f["labels"][()]
          sizes = shapes3d_sizes_from_labels(labels, path)
          images = f["images"][()]
      except OSError as e:
        raise UserError(f"cannot read {path}: {e}") from e
    else:
      grid_sizes, _ = shapes3d_check_header(path)
      images, labels = load_npz_arrays(path, ["images", "labels"])
      sizes = grid_sizes if images.ndim == 9 else shapes3d_sizes_from_labels(labels, path)
      images = images.reshape((-1,) + IMAGE_SHAPE)
    super().__init__(images, sizes)
    self.labels = np.asarray(labels).reshape(-1, 6)


def _check(paths):
  sizes, n = shapes3d_check_header(paths[0])
  if sizes is None:  # a flat file of unusual size: the labels say which grid it is
    if paths[0].endswith(".h5"):
      import h5py  # pylint: disable=import-outside-toplevel
      with h5py.File(paths[0], "r") as f:
        labels = f["labels"][()]
    else:
      with np.load(paths[0]) as data:
        labels = data["labels"]
    sizes = shapes3d_sizes_from_labels(labels, paths[0])
  return {"detail": f"{n} images, factor sizes {sizes}", "factors_num_values": sizes}


registry.register(registry.DatasetEntry(
    "shapes3d", lambda: Shapes3D(registry.required_paths("shapes3d")[0]),
    files=[(SHAPES3D_H5_FILE, SHAPES3D_FILE)],
    how_to_get="Download DeepMind's public 3dshapes.h5 (github.com/deepmind/3d-shapes) to that path; dlib's own "
               ".npz layout is read too.",
    provenance=registry.OFFICIAL, source="DeepMind's 3dshapes",
    factors=tuple(zip(SHAPES3D_FACTOR_NAMES, SHAPES3D_FACTOR_SIZES)), observation_shape=[64, 64, 3],
    observation_dtype="float32",
    loader="submission.data.shapes3d.Shapes3D (reads the public .h5; uint8 in memory, dlib's needs 22 GiB)",
    check=_check, memory_bytes=registry.uint8_images_bytes(zip(SHAPES3D_FACTOR_NAMES, SHAPES3D_FACTOR_SIZES), 3)))
