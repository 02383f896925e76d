"""Cars3D (Reed et al. 2015): ``dataset.name = 'cars3d'``, one ``.mat`` file per car under ``cars/``.

dlib's loader calls ``PIL.Image.ANTIALIAS`` (removed in Pillow 10) and ``thumbnail((64, 64, 3))`` (a ValueError
since Pillow 7), and numbers the cars in the unsorted directory-listing order; ``Cars3D`` here makes the same
resize (a Lanczos thumbnail to 64x64), keeps uint8 pixels (216 MB instead of 1.7 GB) and numbers the cars by their
position in the *sorted* list of ``*.mat`` names.
"""

import os

import numpy as np
from PIL import Image

from submission.data import registry
from submission.data.stored_images import IMAGE_SHAPE, UInt8Images
from submission.errors import UserError

CARS3D_DIR = "cars"
CARS3D_NUM_OBJECTS = 183
CARS3D_FACTOR_NAMES = ("elevation", "azimuth", "object")
# One .mat file per car: "im" [128, 128, 3, 24 azimuths, 4 elevations] uint8.


def cars3d_files(directory):
  """The sorted ``*.mat`` file names in ``directory`` (object id = position in this list).

  dlib takes every name *containing* ".mat", in listing order, and leaves the images of missing cars at zero
  when there are fewer than 183 files; here the names must end in ".mat" and their number must be right.
  """
  try:
    names = os.listdir(directory)
  except OSError as e:
    raise UserError(f"cannot list {directory}: {e}") from e
  return sorted(n for n in names if n.endswith(".mat"))


def cars3d_check_files(directory, num_objects=None, headers=True):
  """Sorted file names, after checking their number and (``headers``) the shape of ``im`` in each."""
  import scipy.io  # pylint: disable=import-outside-toplevel
  num_objects = CARS3D_NUM_OBJECTS if num_objects is None else num_objects
  files = cars3d_files(directory)
  if len(files) != num_objects:
    raise UserError(f"{directory} holds {len(files)} .mat files, expected {num_objects} (one per car, "
                    f"from Reed et al.'s nips2015-analogy-data.tar.gz, data/cars)")
  if headers:
    for name in files:
      path = os.path.join(directory, name)
      try:
        variables = {v[0]: v[1:] for v in scipy.io.whosmat(path)}
      except (OSError, ValueError, TypeError) as e:
        raise UserError(f"cannot read {path} as a .mat file: {e}") from e
      if "im" not in variables or tuple(variables["im"][0])[:3] != (128, 128, 3) or \
          len(variables["im"][0]) != 5:
        raise UserError(f"{path}: expected a variable 'im' of shape [128, 128, 3, azimuths, elevations], "
                        f"found {variables}")
  return files


def _cars3d_pixels(mesh, path):
  """uint8 pixels of ``im``; float arrays are accepted when they hold whole numbers in [0, 255]."""
  if mesh.dtype == np.uint8:
    return mesh
  if np.issubdtype(mesh.dtype, np.number) and mesh.size and np.all(np.isfinite(mesh)) and \
      mesh.min() >= 0 and mesh.max() <= 255 and np.array_equal(mesh, np.round(mesh)):
    return mesh.astype(np.uint8)
  raise UserError(f"{path}: 'im' is {mesh.dtype} and not whole numbers in [0, 255]; expected uint8 pixels")


def cars3d_load_mesh(path):
  """The 96 views of one car as uint8 [24 * 4, 64, 64, 3], row j = (azimuth j // 4, elevation j % 4).

  The resize is dlib's: ``PIL.Image.thumbnail((64, 64), LANCZOS)`` of each 128x128 view (ANTIALIAS was an alias
  of LANCZOS).
  """
  import scipy.io  # pylint: disable=import-outside-toplevel
  try:
    im = scipy.io.loadmat(path)["im"]
  except (OSError, ValueError, TypeError, KeyError) as e:
    raise UserError(f"cannot read 'im' from {path}: {e}") from e
  if im.ndim != 5 or im.shape[2] != 3:
    raise UserError(f"{path}: 'im' has shape {list(im.shape)}, expected [128, 128, 3, 24, 4]")
  mesh = np.einsum("abcde->deabc", _cars3d_pixels(im, path))
  flattened = mesh.reshape((-1,) + mesh.shape[2:])
  out = np.empty((flattened.shape[0],) + IMAGE_SHAPE, dtype=np.uint8)
  for i, view in enumerate(flattened):
    picture = Image.fromarray(np.ascontiguousarray(view))
    picture.thumbnail((64, 64), Image.LANCZOS)
    out[i] = np.asarray(picture)
  return out


class Cars3D(UInt8Images):
  """Cars3D: 0 elevation (4), 1 azimuth (24), 2 object (183); float32 observations [64, 64, 3].

  Object id = position of the car's file in the **sorted** list of ``*.mat`` names in the directory. dlib uses
  the position in ``gfile.ListDirectory`` order, which is the file system's (unsorted) listing order, so its
  object ids can differ between machines; the set of images and every other factor are the same.
  """

  def __init__(self, directory, num_objects=None):
    num_objects = CARS3D_NUM_OBJECTS if num_objects is None else num_objects
    self.files = cars3d_check_files(directory, num_objects, headers=False)
    images = np.empty((4, 24, num_objects) + IMAGE_SHAPE, dtype=np.uint8)
    for obj, name in enumerate(self.files):
      views = cars3d_load_mesh(os.path.join(directory, name))
      if views.shape[0] != 24 * 4:
        raise UserError(f"{os.path.join(directory, name)}: {views.shape[0]} views, expected 96 (24 x 4)")
      # views[j] is (azimuth j // 4, elevation j % 4).
      images[:, :, obj] = views.reshape((24, 4) + IMAGE_SHAPE).transpose(1, 0, 2, 3, 4)
    super().__init__(images.reshape((-1,) + IMAGE_SHAPE), [4, 24, num_objects])


def _check(paths):
  if not os.path.isdir(paths[0]):
    raise UserError(f"{paths[0]} is not a directory")
  files = cars3d_check_files(paths[0], CARS3D_NUM_OBJECTS)
  return {"detail": f"{len(files)} .mat files ({files[0]} ... {files[-1]})",
          "factors_num_values": [4, 24, len(files)]}


registry.register(registry.DatasetEntry(
    "cars3d", lambda: Cars3D(os.path.join(registry.data_root(), CARS3D_DIR), num_objects=CARS3D_NUM_OBJECTS),
    files=[CARS3D_DIR],
    how_to_get="The .mat files come from Reed et al.'s nips2015-analogy-data.tar.gz (www.scottreed.info, "
               "data/cars), as dlib_download_data fetches them.",
    provenance=registry.OFFICIAL, source="Reed et al.'s car renderings",
    factors=tuple(zip(CARS3D_FACTOR_NAMES, (4, 24, 183))), observation_shape=[64, 64, 3],
    observation_dtype="float32",
    loader="submission.data.cars3d.Cars3D (dlib's fails on Pillow >= 7; object id = sorted file order)",
    check=_check, memory_bytes=registry.uint8_images_bytes(zip(CARS3D_FACTOR_NAMES, (4, 24, 183)), 3)))
