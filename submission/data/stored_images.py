"""What the project's loaders share: the base class of a data set stored as one uint8 image per factor combination,
the division by 255 that gives dlib's observations, and reading array headers without reading the arrays (for
``python -m submission.data verify`` and for early, clear errors).

Pixel values: dlib divides by 255 in float32 (Shapes3D: ``astype(np.float32) / 255.``) or in float64 and then
casts to float32 (Cars3D, SmallNORB) or keeps float64 (MPI3D). For every int16 value v (so every byte),
``float32(v) / float32(255)`` equals ``float32(v / 255.)`` exactly (checked exhaustively in
tests/test_data_loaders.py), so ``to_float32`` (the fast float32 division) gives dlib's observations bit for bit
(MPI3D: dlib's float64 values rounded to float32).

Errors about the files (wrong shapes, counts, truncation) are UserErrors naming the file.
"""

import zipfile

import numpy as np

from disentanglement_lib.data.ground_truth import ground_truth_data, util
from submission.data.observation_index import ObservationIndex
from submission.errors import UserError

IMAGE_SHAPE = (64, 64, 3)


def to_float32(pixels):
  """``pixels / 255`` as float32: a new array, equal to dlib's values (see the module docstring)."""
  out = np.asarray(pixels).astype(np.float32)
  out /= np.float32(255.)
  return out


class UInt8Images(ground_truth_data.GroundTruthData):
  """uint8 images ``[N, 64, 64, C]`` in row-major factor order; all factors are latent (dlib's convention)."""

  def __init__(self, images, factor_sizes):
    self.images = images
    self.factor_sizes = [int(s) for s in factor_sizes]
    self.latent_factor_indices = list(range(len(self.factor_sizes)))
    self.num_total_factors = len(self.factor_sizes)
    self.state_space = util.SplitDiscreteStateSpace(self.factor_sizes, self.latent_factor_indices)
    # dlib computes float bases and casts the dot product to int64; integer bases give the same indices.
    self.factor_bases = np.array(np.prod(self.factor_sizes) // np.cumprod(self.factor_sizes), dtype=np.int64)

  @property
  def num_factors(self):
    return self.state_space.num_latent_factors

  @property
  def factors_num_values(self):
    return list(self.factor_sizes)

  @property
  def observation_shape(self):
    return list(self.images.shape[1:])

  def sample_factors(self, num, random_state):
    return self.state_space.sample_latent_factors(num, random_state)

  def sample_observations_from_factors(self, factors, random_state):
    return self.observations(self.rows(factors, random_state))

  def rows(self, factors, random_state):
    all_factors = self.state_space.sample_all_factors(factors, random_state)
    return np.dot(all_factors, self.factor_bases)

  def observations(self, rows):
    return to_float32(self.images[rows])

  def observation_index(self):
    """Every observation is a row of ``images`` (see submission.data.observation_index)."""
    return ObservationIndex(int(self.images.shape[0]), self.rows, self.observations)


# ------------------------------------------------------------------------------------------------------------
# Reading array headers without reading the arrays (for `verify` and for early, clear errors).
# ------------------------------------------------------------------------------------------------------------
def npz_member_header(path, key):
  """(shape, dtype) of ``key`` in the .npz at ``path``, reading only the member's .npy header."""
  try:
    with zipfile.ZipFile(path) as archive:
      member = key + ".npy"
      if member not in archive.namelist():
        keys = sorted(n[:-4] for n in archive.namelist() if n.endswith(".npy"))
        raise UserError(f"{path} has no array {key!r} (it has {', '.join(keys) or 'none'})")
      with archive.open(member) as f:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
          shape, _, dtype = np.lib.format.read_array_header_1_0(f)
        else:
          shape, _, dtype = np.lib.format.read_array_header_2_0(f)
  except (zipfile.BadZipFile, OSError, ValueError, EOFError) as e:
    raise UserError(f"cannot read {path} as a .npz file: {e}") from e
  return tuple(int(s) for s in shape), np.dtype(dtype)


def h5_dataset_header(path, key):
  import h5py  # pylint: disable=import-outside-toplevel
  try:
    with h5py.File(path, "r") as f:
      if key not in f:
        raise UserError(f"{path} has no dataset {key!r} (it has {', '.join(sorted(f.keys())) or 'none'})")
      return tuple(int(s) for s in f[key].shape), np.dtype(f[key].dtype)
  except OSError as e:
    raise UserError(f"cannot read {path} as an HDF5 file: {e}") from e


def load_npz_arrays(path, keys):
  try:
    with np.load(path, encoding="latin1") as data:
      missing = [k for k in keys if k not in data.files]
      if missing:
        raise UserError(f"{path} has no array {missing[0]!r} (it has {', '.join(sorted(data.files))})")
      return [data[k] for k in keys]
  except (zipfile.BadZipFile, OSError, ValueError, EOFError) as e:
    raise UserError(f"cannot read {path} as a .npz file: {e}") from e
