"""The project's loaders for the real data sets where dlib 1.5's loader is broken or wasteful today.

Each class returns the same observations as dlib's loader for the same file and the same random state
(dlib's factor order, ``num_factors``, ``factors_num_values`` and random-number consumption), and keeps the
pixels in memory as compactly as the file allows, converting to float32 one batch at a time:

=================  ======================================================  ======================================
data set           what is wrong with dlib's loader on today's stack        what this module does
=================  ======================================================  ======================================
shapes3d           reads a non-public ``.npz``; casts all 480,000 images to  reads the public ``3dshapes.h5`` (flat
                   float32 (22 GiB)                                          layout) or dlib's ``.npz``; uint8 kept
mpi3d_*            factor sizes hard-coded per name (a 6x6 "realistic" file  sizes inferred from the number of images;
                   would be indexed wrongly); float64 observations           uint8 kept, float32 observations
cars3d             ``PIL.Image.ANTIALIAS`` (removed in Pillow 10) and        same resize (Lanczos thumbnail to 64x64);
                   ``thumbnail((64, 64, 3))`` (a ValueError since Pillow     uint8 kept (216 MB instead of 1.7 GB);
                   7); object id = unsorted directory-listing position      object id = position in the *sorted*
                                                                             list of ``*.mat`` file names
smallnorb          ``int(np.frombuffer(..., 1))`` is a TypeError on NumPy 2; own NORB reader; the same resize, kept as
                   ``PIL.Image.ANTIALIAS``                                   int16 (dlib: float64)
scream_dsprites    ``thumbnail((350, 274, 3))`` is a ValueError since        dlib's class with the thumbnail size
                   Pillow 7                                                  passed as the 2-tuple Pillow expects
=================  ======================================================  ======================================

Pixel values: dlib divides by 255 in float32 (Shapes3D: ``astype(np.float32) / 255.``) or in float64 and then
casts to float32 (Cars3D, SmallNORB) or keeps float64 (MPI3D). For every int16 value v (so every byte),
``float32(v) / float32(255)`` equals ``float32(v / 255.)`` exactly (checked exhaustively in
tests/test_data_loaders.py), so ``to_float32`` (the fast float32 division) gives dlib's observations bit for bit
(MPI3D: dlib's float64 values rounded to float32).

SmallNORB keeps dlib's pixel quirk on purpose: dlib reads the bytes as int8, Pillow turns that into a 32-bit
"I" image (reading the bytes as unsigned) and the Lanczos resize in mode "I" does not clamp, so a few pixels
fall slightly outside [0, 1]. Reproducing it keeps observations equal to dlib's.

Errors about the files (wrong shapes, counts, truncation) are UserErrors naming the file.
"""

import os
import zipfile

import numpy as np
from PIL import Image

from disentanglement_lib.data.ground_truth import dsprites as dlib_dsprites
from disentanglement_lib.data.ground_truth import ground_truth_data, util
from submission.data.observation_index import ObservationIndex
from submission.errors import UserError

IMAGE_SHAPE = (64, 64, 3)


def to_float32(pixels):
  """``pixels / 255`` as float32: a new array, equal to dlib's values (see the module docstring)."""
  out = np.asarray(pixels).astype(np.float32)
  out /= np.float32(255.)
  return out


class _UInt8Images(ground_truth_data.GroundTruthData):
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


def _load_npz_arrays(path, keys):
  try:
    with np.load(path, encoding="latin1") as data:
      missing = [k for k in keys if k not in data.files]
      if missing:
        raise UserError(f"{path} has no array {missing[0]!r} (it has {', '.join(sorted(data.files))})")
      return [data[k] for k in keys]
  except (zipfile.BadZipFile, OSError, ValueError, EOFError) as e:
    raise UserError(f"cannot read {path} as a .npz file: {e}") from e


# ------------------------------------------------------------------------------------------------------------
# Shapes3D
# ------------------------------------------------------------------------------------------------------------
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


class Shapes3D(_UInt8Images):
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
      images, labels = _load_npz_arrays(path, ["images", "labels"])
      sizes = grid_sizes if images.ndim == 9 else shapes3d_sizes_from_labels(labels, path)
      images = images.reshape((-1,) + IMAGE_SHAPE)
    super().__init__(images, sizes)
    self.labels = np.asarray(labels).reshape(-1, 6)


# ------------------------------------------------------------------------------------------------------------
# MPI3D
# ------------------------------------------------------------------------------------------------------------
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


class MPI3D(_UInt8Images):
  """MPI3D (toy, realistic, real) with the factor sizes the file has, inferred from its number of images.

  dlib hard-codes [4,4,2,3,3,40,40] for toy and realistic and [6,6,2,3,3,40,40] for real; here 460,800 images
  mean 4 colours x 4 shapes and 1,036,800 images 6 x 6, whatever the name. Images stay uint8 (5.3 GiB for
  460,800, 12.7 GiB for 1,036,800); observations are float32 [64, 64, 3] (dlib: float64 of the same values).
  """

  def __init__(self, path):
    sizes, _ = mpi3d_check_header(path)
    (images,) = _load_npz_arrays(path, ["images"])
    super().__init__(images, sizes)


# ------------------------------------------------------------------------------------------------------------
# Cars3D
# ------------------------------------------------------------------------------------------------------------
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


class Cars3D(_UInt8Images):
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


# ------------------------------------------------------------------------------------------------------------
# SmallNORB
# ------------------------------------------------------------------------------------------------------------
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


# ------------------------------------------------------------------------------------------------------------
# Scream dSprites
# ------------------------------------------------------------------------------------------------------------
class ScreamDSprites(dlib_dsprites.ScreamDSprites):
  """dlib's ScreamDSprites with the one broken call fixed: ``thumbnail((350, 274))`` instead of
  ``thumbnail((350, 274, 3))``, which Pillow >= 7 rejects. Everything else (sampling, observations) is dlib's.
  """

  def __init__(self, latent_factor_indices=None, scream_path=None):
    dlib_dsprites.DSprites.__init__(self, latent_factor_indices)  # pylint: disable=non-parent-init-called
    self.data_shape = [64, 64, 3]
    with open(scream_path or dlib_dsprites.SCREAM_PATH, "rb") as f:
      scream = Image.open(f)
      scream.thumbnail((350, 274))
      self.scream = np.array(scream) * 1. / 255.
    if self.scream.ndim != 3 or self.scream.shape[2] != 3 or min(self.scream.shape[:2]) <= 64:
      raise UserError(f"{scream_path or dlib_dsprites.SCREAM_PATH}: expected an RGB image larger than 64x64 "
                      f"after thumbnail((350, 274)), got {list(self.scream.shape)}")
