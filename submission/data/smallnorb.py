"""SmallNORB (LeCun et al. 2004): ``dataset.name = 'smallnorb'``, six files under ``small_norb/``.

dlib's loader fails on NumPy 2 (``int(np.frombuffer(..., 1))``) and on Pillow >= 10 (``PIL.Image.ANTIALIAS``);
``SmallNORB`` here has its own NORB reader, the same resize, and keeps the pixels as int16 (dlib: float64).

It keeps dlib's pixel quirk on purpose: dlib reads the bytes as int8, Pillow turns that into a 32-bit "I" image
(reading the bytes as unsigned) and the Lanczos resize in mode "I" does not clamp, so a few pixels fall slightly
outside [0, 1]. Reproducing it keeps observations equal to dlib's.
"""

import os

import numpy as np
from PIL import Image

from disentanglement_lib.data.ground_truth import ground_truth_data, util
from submission.data import registry
from submission.data.observation_index import ObservationIndex
from submission.data.stored_images import to_float32
from submission.errors import UserError

SMALLNORB_TEMPLATE = os.path.join("small_norb", "smallnorb-{}-{}.mat")
SMALLNORB_CHUNKS = ("5x46789x9x18x6x2x96x96-training", "5x01235x9x18x6x2x96x96-testing")
SMALLNORB_FACTOR_SIZES = (5, 10, 9, 18, 6)  # category, instance, elevation, azimuth / 2, lighting
SMALLNORB_LATENT_FACTOR_INDICES = (0, 2, 3, 4)  # the instance is a nuisance factor
SMALLNORB_FACTOR_NAMES = ("category", "elevation", "azimuth", "lighting")
_NORB_DTYPES = {507333717: np.uint8, 507333716: np.int32, 507333713: np.float32, 507333715: np.float64}


def norb_header(path):
  """(dims, dtype, data offset) of a file in NORB's binary matrix format, checking its length."""
  try:
    with open(path, "rb") as f:
      head = f.read(8)
      if len(head) < 8:
        raise UserError(f"{path} is too short for a NORB binary matrix")
      magic, ndim = (int(v) for v in np.frombuffer(head, "<i4"))
      if magic not in _NORB_DTYPES or not 0 < ndim < 16:
        raise UserError(f"{path} is not a NORB binary matrix (magic {magic}, {ndim} dimensions)")
      num_dims = max(3, ndim)
      dims_raw = f.read(4 * num_dims)
      if len(dims_raw) < 4 * num_dims:
        raise UserError(f"{path} is too short for a NORB binary matrix")
      dims = tuple(int(d) for d in np.frombuffer(dims_raw, "<i4")[:ndim])
    size = os.path.getsize(path)
  except OSError as e:
    raise UserError(f"cannot read {path}: {e}") from e
  dtype = np.dtype(_NORB_DTYPES[magic])
  offset = 8 + 4 * num_dims
  expected = offset + int(np.prod(dims)) * dtype.itemsize
  if size != expected:
    raise UserError(f"{path} has {size} bytes, expected {expected} for a {dtype} matrix {list(dims)}")
  return dims, dtype, offset


def read_norb_matrix(path):
  """The matrix in ``path`` (memory-mapped); image bytes come back as uint8 (dlib reads them as int8)."""
  dims, dtype, offset = norb_header(path)
  return np.memmap(path, dtype=dtype.newbyteorder("<"), mode="r", offset=offset, shape=dims)


def smallnorb_paths(template):
  return [template.format(chunk, kind) for chunk in SMALLNORB_CHUNKS for kind in ("dat", "cat", "info")]


def smallnorb_check_headers(template):
  """Checks the shapes of the six files; returns the number of images."""
  total = 0
  for chunk in SMALLNORB_CHUNKS:
    dat = norb_header(template.format(chunk, "dat"))
    cat = norb_header(template.format(chunk, "cat"))
    info = norb_header(template.format(chunk, "info"))
    n = dat[0][0]
    if len(dat[0]) != 4 or dat[0][1] != 2 or dat[1] != np.uint8:
      raise UserError(f"{template.format(chunk, 'dat')}: {dat[1]} {list(dat[0])}, expected bytes [N, 2, H, W]")
    if cat[0] != (n,) or cat[1] != np.int32:
      raise UserError(f"{template.format(chunk, 'cat')}: {cat[1]} {list(cat[0])}, expected int32 [{n}]")
    if info[0] != (n, 4) or info[1] != np.int32:
      raise UserError(f"{template.format(chunk, 'info')}: {info[1]} {list(info[0])}, expected int32 [{n}, 4]")
    total += n
  return total


def smallnorb_resize(images):
  """dlib's resize of [N, H, W] bytes: int8 -> Pillow mode "I" -> Lanczos to 64x64 (not clamped); int16."""
  out = np.empty((images.shape[0], 64, 64), dtype=np.int16)
  for i, image in enumerate(images):
    resized = np.asarray(Image.fromarray(np.asarray(image).view(np.int8)).resize((64, 64), Image.LANCZOS))
    out[i] = resized  # mode "I" gives int32; Lanczos overshoot stays far inside int16
  return out


class SmallNORB(ground_truth_data.GroundTruthData):
  """SmallNORB as dlib defines it: 0 category (5), 1 elevation (9), 2 azimuth (18), 3 lighting (6).

  The instance (10) is a nuisance factor drawn at random; only the first camera is used; both chunks
  (training and testing) together cover the 5x10x9x18x6 grid. Observations: float32 [64, 64, 1].
  """

  def __init__(self, template, factor_sizes=None):
    self.factor_sizes = list(SMALLNORB_FACTOR_SIZES if factor_sizes is None else factor_sizes)
    smallnorb_check_headers(template)
    images, features = [], []
    for chunk in SMALLNORB_CHUNKS:
      images.append(smallnorb_resize(read_norb_matrix(template.format(chunk, "dat"))[:, 0]))
      category = np.asarray(read_norb_matrix(template.format(chunk, "cat")))
      info = np.array(read_norb_matrix(template.format(chunk, "info")))
      features.append(np.column_stack((category, info)).astype(np.int64))
    self.images = np.concatenate(images)
    features = np.concatenate(features)
    features[:, 3] = features[:, 3] // 2  # azimuth values are 0, 2, ..., 34
    self.latent_factor_indices = list(SMALLNORB_LATENT_FACTOR_INDICES)
    self.num_total_factors = features.shape[1]
    try:
      self.index = util.StateSpaceAtomIndex(self.factor_sizes, features)
    except ValueError as e:
      raise UserError(f"the smallnorb files ({template.format('*', '*')}) do not cover the "
                      f"{'x'.join(map(str, self.factor_sizes))} factor grid exactly once: {e}") from e
    self.state_space = util.SplitDiscreteStateSpace(self.factor_sizes, self.latent_factor_indices)

  @property
  def num_factors(self):
    return self.state_space.num_latent_factors

  @property
  def factors_num_values(self):
    return [self.factor_sizes[i] for i in self.latent_factor_indices]

  @property
  def observation_shape(self):
    return [64, 64, 1]

  def sample_factors(self, num, random_state):
    return self.state_space.sample_latent_factors(num, random_state)

  def sample_observations_from_factors(self, factors, random_state):
    return self.observations(self.rows(factors, random_state))

  def rows(self, factors, random_state):
    all_factors = self.state_space.sample_all_factors(factors, random_state)
    return self.index.features_to_index(all_factors)

  def observations(self, rows):
    # dlib: float64 array of the resized values / 255., then astype(float32); to_float32 gives the same.
    return np.expand_dims(to_float32(self.images[rows]), axis=3)

  def observation_index(self):
    """Every observation is a row of ``images`` (see submission.data.observation_index)."""
    return ObservationIndex(int(self.images.shape[0]), self.rows, self.observations)


def _check(paths):  # pylint: disable=unused-argument
  n = smallnorb_check_headers(os.path.join(registry.data_root(), SMALLNORB_TEMPLATE))
  expected = int(np.prod(SMALLNORB_FACTOR_SIZES))
  if n != expected:
    raise UserError(f"the smallnorb files hold {n} images, expected {expected} "
                    f"({'x'.join(map(str, SMALLNORB_FACTOR_SIZES))})")
  return {"detail": f"{n} images (training + testing), first camera used"}


registry.register(registry.DatasetEntry(
    "smallnorb",
    lambda: SmallNORB(os.path.join(registry.data_root(), SMALLNORB_TEMPLATE), factor_sizes=SMALLNORB_FACTOR_SIZES),
    files=smallnorb_paths(SMALLNORB_TEMPLATE),
    how_to_get="The files come from NYU's norb-v1.0-small page (cs.nyu.edu/~ylclab/data/norb-v1.0-small, gunzip "
               "them), as dlib_download_data fetches them.",
    provenance=registry.OFFICIAL, source="NYU's small NORB",
    factors=tuple(zip(SMALLNORB_FACTOR_NAMES, (5, 9, 18, 6))), observation_shape=[64, 64, 1],
    observation_dtype="float32",
    loader="submission.data.smallnorb.SmallNORB (dlib's fails on NumPy 2 and Pillow >= 10; same observations)",
    check=_check))
