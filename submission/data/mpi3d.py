"""MPI3D (Gondal et al. 2019): ``dataset.name`` = ``mpi3d_toy``, ``mpi3d_realistic``, ``mpi3d_real``.

dlib hard-codes the factor sizes per name (a 6x6 "realistic" file would be indexed wrongly) and returns float64
observations; ``MPI3D`` here infers the sizes from the number of images, keeps the pixels as uint8 and returns
float32 observations (dlib's float64 values rounded; see ``submission.data.stored_images``).
"""

import os

import numpy as np

from submission.data import registry
from submission.data.stored_images import IMAGE_SHAPE, UInt8Images, load_npz_arrays, npz_member_header
from submission.errors import UserError

MPI3D_FACTOR_NAMES = ("object colour", "object shape", "object size", "camera height", "background colour",
                      "first DOF", "second DOF")
# Number of images -> factor sizes. toy, realistic and complex: 4 colours x 4 shapes; real: 6 x 6.
MPI3D_SIZES_BY_COUNT = {
    460800: (4, 4, 2, 3, 3, 40, 40),
    1036800: (6, 6, 2, 3, 3, 40, 40),
}


def mpi3d_factor_sizes(num_images, path):
  sizes = MPI3D_SIZES_BY_COUNT.get(int(num_images))
  if sizes is None:
    known = "; ".join(f"{n} images -> {list(s)}" for n, s in sorted(MPI3D_SIZES_BY_COUNT.items()))
    raise UserError(f"{path} holds {num_images} images, which matches no MPI3D factor grid ({known})")
  return list(sizes)


def mpi3d_check_header(path):
  """Factor sizes of an MPI3D .npz from its header."""
  shape, dtype = npz_member_header(path, "images")
  if dtype != np.uint8 or len(shape) != 4 or tuple(shape[1:]) != IMAGE_SHAPE:
    raise UserError(f"{path}: images are {dtype} {list(shape)}, expected uint8 [N, 64, 64, 3]")
  return mpi3d_factor_sizes(shape[0], path), shape[0]


class MPI3D(UInt8Images):
  """MPI3D (toy, realistic, real) with the factor sizes the file has, inferred from its number of images.

  dlib hard-codes [4,4,2,3,3,40,40] for toy and realistic and [6,6,2,3,3,40,40] for real; here 460,800 images
  mean 4 colours x 4 shapes and 1,036,800 images 6 x 6, whatever the name. Images stay uint8 (5.3 GiB for
  460,800, 12.7 GiB for 1,036,800); observations are float32 [64, 64, 3] (dlib: float64 of the same values).
  """

  def __init__(self, path):
    sizes, _ = mpi3d_check_header(path)
    (images,) = load_npz_arrays(path, ["images"])
    super().__init__(images, sizes)


def _check(paths):
  sizes, n = mpi3d_check_header(paths[0])
  return {"detail": f"{n} images, factor sizes {sizes}", "factors_num_values": sizes}


def _entry(name, where, sizes):
  return registry.DatasetEntry(
      name, lambda: MPI3D(registry.required_paths(name)[0]), files=[os.path.join(name, name + ".npz")],
      how_to_get=f"Save {where} under that name.", provenance=registry.OFFICIAL, source="the MPI3D release",
      factors=tuple(zip(MPI3D_FACTOR_NAMES, sizes)), observation_shape=[64, 64, 3], observation_dtype="float32",
      loader="submission.data.mpi3d.MPI3D (factor sizes from the number of images: 460800 -> 4x4 colours x "
             "shapes, 1036800 -> 6x6; uint8 in memory)",
      check=_check, memory_bytes=registry.uint8_images_bytes(zip(MPI3D_FACTOR_NAMES, sizes), 3))


registry.register(
    _entry("mpi3d_toy", "sim_toy_64x_ordered_without_heldout_factors.npz from the MPI3D release "
           "(storage.googleapis.com/disentanglement_dataset/data_npz/)", (4, 4, 2, 3, 3, 40, 40)),
    _entry("mpi3d_realistic", "the MPI3D realistic .npz (github.com/rr-learning/disentanglement_dataset)",
           (4, 4, 2, 3, 3, 40, 40)),
    _entry("mpi3d_real", "the MPI3D real .npz (github.com/rr-learning/disentanglement_dataset)",
           (6, 6, 2, 3, 3, 40, 40)))
