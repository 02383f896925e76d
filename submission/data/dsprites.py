"""dSprites (Matthey et al. 2017) and dlib's variants of it: ``dataset.name`` = ``dsprites_full``,
``dsprites_noshape``, ``color_dsprites``, ``noisy_dsprites``, ``scream_dsprites``, all read from one file,
``$DISENTANGLEMENT_LIB_DATA/dsprites/dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz`` (plus ``scream/scream.jpg``).

Loaders: dlib's ``DSprites`` classes, unchanged (uint8 in memory); ``scream_dsprites`` through ``ScreamDSprites``
below (dlib's class with its Pillow >= 7 crash fixed). The file is DeepMind's official one or the project's
re-rendering in the same format (``submission.data.dsprites_render``, this family's generator: ``python -m
submission.data generate dsprites``, or the pipeline before training); ``provenance`` tells them apart from the
file's metadata.
"""

import os

import numpy as np
from PIL import Image

from disentanglement_lib.data.ground_truth import dsprites as dlib_dsprites
from submission.data import dsprites_render, registry
from submission.data.stored_images import npz_member_header
from submission.errors import UserError

SCREAM_FILE = os.path.join("scream", "scream.jpg")


def check_dsprites_file(path):
  """Image header and metadata of a dSprites .npz (reads the small metadata member only)."""
  shape, dtype = npz_member_header(path, "imgs")
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
  try:
    with Image.open(paths[1]) as image:
      size, mode = image.size, image.mode
  except OSError as e:
    raise UserError(f"cannot read {paths[1]} as an image: {e}") from e
  if mode != "RGB":
    raise UserError(f"{paths[1]}: a {mode} image, expected RGB")
  return {"detail": f"{result['detail']}; scream image {size[0]}x{size[1]}"}


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


def _point_dlib_at_the_data_root():
  """dlib computes its file paths when its module is imported; here they follow $DISENTANGLEMENT_LIB_DATA now."""
  dlib_dsprites.DSPRITES_PATH = os.path.join(registry.data_root(), dsprites_render.DSPRITES_FILE)
  dlib_dsprites.SCREAM_PATH = os.path.join(registry.data_root(), SCREAM_FILE)
  check_dsprites_file(dlib_dsprites.DSPRITES_PATH)  # dlib's loader would fail on a bad file with a KeyError


def _dlib_loader(cls, indices):
  def make():
    _point_dlib_at_the_data_root()
    return cls(indices)
  return make


def _scream_dsprites():
  _point_dlib_at_the_data_root()
  return ScreamDSprites([1, 2, 3, 4, 5], scream_path=dlib_dsprites.SCREAM_PATH)


# ------------------------------------------------------------------------------------------------------------
# Provenance: DeepMind's file or the project's rendering, from the file's own metadata.
# ------------------------------------------------------------------------------------------------------------
def dsprites_metadata(path):
  """The ``metadata`` dict of a dSprites .npz (reading that small member only); None if it cannot be read."""
  try:
    with np.load(path, encoding="latin1", allow_pickle=True) as data:
      metadata = data["metadata"][()]
  except (OSError, KeyError, ValueError, TypeError):
    return None
  return metadata if isinstance(metadata, dict) else None


def provenance(paths):
  """(kind, sentence) for the dSprites file at ``paths[0]``: RENDERED when its metadata is the project's
  rendering's, OFFICIAL otherwise (DeepMind's file), UNKNOWN when the metadata cannot be read."""
  path = paths[0]
  metadata = dsprites_metadata(path)
  if metadata is None:
    return registry.UNKNOWN, f"{path}: its metadata cannot be read, so its provenance is unknown."
  if metadata.get("description") == dsprites_render.METADATA_DESCRIPTION:
    return registry.RENDERED, (f"{path} is the project's re-rendering of dSprites (submission.data.dsprites_render), "
                               f"not DeepMind's file: scores are close to, not identical with, published dSprites "
                               f"numbers.")
  return registry.OFFICIAL, (f"{path} is not the project's re-rendering (its metadata names "
                             f"{str(metadata.get('author', ''))!r}): DeepMind's official file.")


GENERATOR = registry.Generator(
    "dsprites", [dsprites_render.DSPRITES_FILE],
    lambda data_dir, progress: dsprites_render.write_dsprites_npz(data_dir, progress=progress),
    dsprites_render.RENDERED_BYTES, "about 30 s, 3.1 GB",
    "dSprites re-rendered by submission.data.dsprites_render (not DeepMind's file; put the official one at the "
    "same path to use it instead); read by dataset.name = dsprites_full, dsprites_noshape, color_dsprites, "
    "noisy_dsprites, scream_dsprites")
FACTORS = (("shape", 3), ("scale", 6), ("orientation", 40), ("posX", 32), ("posY", 32))
HOW_TO_GET = ("DeepMind's official file (github.com/deepmind/dsprites-dataset) is read instead when it is at "
              f"{dsprites_render.DSPRITES_FILE}.")
_DLIB = "dlib's {} (unchanged)"


def _entry(name, load, loader, factors=FACTORS, shape=(64, 64, 3), dtype="float64", files=(), how_to_get="",
           check=_check_dsprites):
  return registry.DatasetEntry(
      name, load, files=[dsprites_render.DSPRITES_FILE, *files], how_to_get=f"{HOW_TO_GET} {how_to_get}".strip(),
      provenance=provenance, generator=GENERATOR, factors=factors, observation_shape=list(shape),
      observation_dtype=dtype, loader=loader, check=check,
      # Every variant keeps dSprites' one-channel images (colour, noise and scream are applied per batch).
      memory_bytes=registry.uint8_images_bytes(FACTORS, 1))


registry.register(
    _entry("dsprites_full", _dlib_loader(dlib_dsprites.DSprites, [1, 2, 3, 4, 5]),
           _DLIB.format("DSprites([1, 2, 3, 4, 5])"), shape=(64, 64, 1), dtype="float32"),
    _entry("dsprites_noshape", _dlib_loader(dlib_dsprites.DSprites, [2, 3, 4, 5]),
           _DLIB.format("DSprites([2, 3, 4, 5]); the shape is a random nuisance"), factors=FACTORS[1:],
           shape=(64, 64, 1), dtype="float32"),
    _entry("color_dsprites", _dlib_loader(dlib_dsprites.ColorDSprites, [1, 2, 3, 4, 5]),
           _DLIB.format("ColorDSprites")),
    _entry("noisy_dsprites", _dlib_loader(dlib_dsprites.NoisyDSprites, [1, 2, 3, 4, 5]),
           _DLIB.format("NoisyDSprites")),
    _entry("scream_dsprites", _scream_dsprites,
           "dlib's ScreamDSprites with thumbnail((350, 274)) (dlib's 3-tuple crashes on Pillow >= 7)",
           files=[SCREAM_FILE], check=_check_scream_dsprites,
           how_to_get="The scream image comes from Wikimedia Commons (The_Scream.jpg), as dlib_download_data "
                      "fetches it."))
