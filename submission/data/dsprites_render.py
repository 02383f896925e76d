"""Vectorised re-rendering of the dSprites data set in the official ``.npz`` format.

The official file (``dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz`` from
https://github.com/deepmind/dsprites-dataset) holds 737,280 binary 64x64 images, one
per combination of the six latent factors, in row-major factor order (posY varies
fastest).  This module rebuilds a file with exactly that layout and metadata, so
``disentanglement_lib.data.ground_truth.dsprites.DSprites`` loads it unchanged.  The
pixels are *re-rendered* here (they are not DeepMind's pixels); the geometry follows
the measured facts about the official sprites:

* the canvas is 64x64; a pixel ``(row, col)`` covers ``[row, row+1) x [col, col+1)``
 in continuous coordinates and is set iff its centre lies inside the sprite;
* sprite centre: ``x = 16.5 + 32 * posX`` (column, left -> right) and
 ``y = 16.5 + 32 * posY`` (row, top -> bottom), i.e. from the centre of pixel 16
 to the centre of pixel 48;
* sizes at scale 1: square side 18.75 px; ellipse semi-axes 10 px (along x at
 orientation 0) and 5 px; heart 18 px wide (lobes up, tip down at orientation 0).
 Scale multiplies all lengths; rotation and scaling are about the sprite centre
 (for the heart: the centre of its bounding box);
* rotation: a positive ``orientation`` turns the sprite **clockwise as seen on the
 screen** (image y axis pointing down), like LOVE2D's ``love.graphics.draw``
 rotation, with which the original was rendered.  The angle is taken modulo 2*pi,
 so orientation 0 and 2*pi give identical images.

No pixel of any sprite in the official factor grid touches the border rows/columns
(the largest excursion, a square at 45 degrees, keeps rows/columns 0-2 and 62-63 empty).

Public API
----------
``render_sprites(shape_idx, scale, orientation, pos_x, pos_y, out=None)``
  -> uint8 array ``[N, 64, 64]`` with values in {0, 1}.
``write_dsprites_npz(data_dir, chunk_size=8192, progress=True)``
  -> path of ``data_dir/DSPRITES_FILE``.
"""

import datetime
import math
import os
import sys
import time

import numpy as np

from submission.atomic import atomic_file

# --------------------------------------------------------------------------------------
# Official metadata.
# --------------------------------------------------------------------------------------
DSPRITES_FILE = "dsprites/dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz"

IMAGE_SIZE = 64
LATENTS_NAMES = ("color", "shape", "scale", "orientation", "posX", "posY")
LATENTS_SIZES = np.array([1, 3, 6, 40, 32, 32], dtype=np.int64)
NUM_IMAGES = int(np.prod(LATENTS_SIZES))  # 737280


def _official_possible_values():
  return {
      "color": np.array([1.0]),
      "shape": np.array([1.0, 2.0, 3.0]),  # 1 square, 2 ellipse, 3 heart
      "scale": np.linspace(0.5, 1.0, 6),
      "orientation": np.linspace(0.0, 2.0 * np.pi, 40),
      "posX": np.linspace(0.0, 1.0, 32),
      "posY": np.linspace(0.0, 1.0, 32),
  }


LATENTS_POSSIBLE_VALUES = _official_possible_values()

METADATA_TITLE = "dSprites dataset"
METADATA_VERSION = 1
METADATA_AUTHOR = ("re-rendered by submission.data.dsprites_render; original dSprites data "
                   "set by L. Matthey, I. Higgins, D. Hassabis, A. Lerchner (DeepMind)")
METADATA_DESCRIPTION = (
    "RE-RENDERING of the dSprites data set, NOT DeepMind's original file: the pixels were "
    "re-rendered procedurally by submission.data.dsprites_render with the official layout "
    "(same latents, ordering and metadata keys) but approximate sprite geometry. "
    "Procedurally generated 2D shapes, from 6 disentangled latent factors. This dataset uses "
    "6 latents, controlling the color, shape, scale, rotation and position of a sprite. All "
    "possible variations of the latents are present. Ordering along dimension 1 is fixed and "
    "can be mapped back to the exact latent values that generated that image. No noise added.")

# Shape indices accepted by render_sprites (= official shape value - 1).
SHAPE_SQUARE, SHAPE_ELLIPSE, SHAPE_HEART = 0, 1, 2
SHAPE_NAMES = ("square", "ellipse", "heart")

# --------------------------------------------------------------------------------------
# Geometry (pixels, at scale 1).
# --------------------------------------------------------------------------------------
# Sprite centre (continuous coordinates) = POSITION_MIN_PX + POSITION_RANGE_PX * pos: the centre
# of pixel 16 for pos = 0 and of pixel 48 for pos = 1 (step 32/31 px).
POSITION_MIN_PX = 16.5
POSITION_RANGE_PX = 32.0

# Square side: 18.75 px (not e.g. 18.5) so that, with the position grid above, every scale step
# adds pixels to an axis-aligned square at every position ("all pixel outputs different").
SQUARE_SIDE = 18.75
ELLIPSE_SEMI_AXES = (10.0, 5.0)  # (along sprite x, along sprite y)
HEART_WIDTH = 18.0

# Heart = square of side s turned by 45 degrees (half-diagonal d) plus two discs of
# radius s/2 centred on the midpoints of its two upper edges.  In the sprite frame with
# y pointing up and the origin at the square centre: width (1 + sqrt 2) d, y range
# [-d, (1/2 + 1/sqrt 2) d]; we shift so that the bounding-box centre is the origin.
_HEART_D = HEART_WIDTH / (1.0 + math.sqrt(2.0))
_HEART_R2 = _HEART_D * _HEART_D / 2.0  # disc radius^2 = (s/2)^2 = d^2 / 2
_HEART_Y0 = 0.5 * (0.5 * _HEART_D + math.sqrt(_HEART_R2) - _HEART_D)

# Maximum distance of any sprite point from its centre, at scale 1.
_MAX_RADIUS = (
  SQUARE_SIDE / math.sqrt(2.0),
  max(ELLIPSE_SEMI_AXES),
  max(math.hypot(0.5 * _HEART_D, 0.5 * _HEART_D - _HEART_Y0) + math.sqrt(_HEART_R2),
    _HEART_D + _HEART_Y0),
)


def _inside_square(u, v):
  h = 0.5 * SQUARE_SIDE
  return (np.abs(u) <= h) & (np.abs(v) <= h)


def _inside_ellipse(u, v):
  a, b = ELLIPSE_SEMI_AXES
  u = u * (1.0 / a)
  v = v * (1.0 / b)
  return u * u + v * v <= 1.0


def _inside_heart(u, v):
  """u: sprite x (right); v: sprite y (down, image convention)."""
  d = _HEART_D
  x = np.abs(u)           # symmetric about the vertical axis
  y = _HEART_Y0 - v       # y up, origin at the centre of the turned square
  inside = x + np.abs(y) <= d
  dx = x - 0.5 * d
  dy = y - 0.5 * d
  inside |= dx * dx + dy * dy <= _HEART_R2
  return inside


_INSIDE = (_inside_square, _inside_ellipse, _inside_heart)


def render_sprites(shape_idx, scale, orientation, pos_x, pos_y, out=None):
  """Renders a batch of dSprites images.

  Args:
    shape_idx: int array-like [N]: 0 square, 1 ellipse, 2 heart (official shape value - 1).
    scale: float array-like [N]; 1.0 is the official largest size.
    orientation: float array-like [N], radians; positive = clockwise on screen.
    pos_x: float array-like [N]; 0 -> centre on pixel column 16, 1 -> column 48.
    pos_y: float array-like [N]; 0 -> centre on pixel row 16 (top), 1 -> row 48.
    out: optional C-contiguous uint8 array [N, 64, 64] to render into (overwritten).
  All arguments are broadcast against each other (scalars are allowed).

  Returns:
    uint8 array [N, 64, 64] with values in {0, 1} (``out`` if given).
  """
  shape_idx, scale, orientation, pos_x, pos_y = np.broadcast_arrays(
    np.atleast_1d(np.asarray(shape_idx)), np.atleast_1d(np.asarray(scale, np.float64)),
    np.atleast_1d(np.asarray(orientation, np.float64)),
    np.atleast_1d(np.asarray(pos_x, np.float64)), np.atleast_1d(np.asarray(pos_y, np.float64)))
  if shape_idx.ndim != 1:
    raise ValueError("render_sprites expects 1-D factor arrays, got shape %s" % (shape_idx.shape,))
  n = shape_idx.shape[0]
  if not np.issubdtype(shape_idx.dtype, np.integer):
    if not np.all(np.equal(np.mod(shape_idx, 1), 0)):
      raise ValueError("shape_idx must be integral")
    shape_idx = shape_idx.astype(np.int64)
  if n and (shape_idx.min() < 0 or shape_idx.max() > 2):
    raise ValueError("shape_idx must be in {0, 1, 2} (square, ellipse, heart)")
  if n and not (np.all(np.isfinite(scale)) and np.all(scale > 0)):
    raise ValueError("scale must be finite and > 0")
  for name, arr in (("orientation", orientation), ("pos_x", pos_x), ("pos_y", pos_y)):
    if not np.all(np.isfinite(arr)):
      raise ValueError("%s must be finite" % name)

  size = IMAGE_SIZE
  if out is None:
    out = np.zeros((n, size, size), dtype=np.uint8)
  else:
    if out.shape != (n, size, size) or out.dtype != np.uint8 or not out.flags.c_contiguous:
      raise ValueError("out must be a C-contiguous uint8 array of shape %s" % ((n, size, size),))
    out[...] = 0
  if n == 0:
    return out

  cx = POSITION_MIN_PX + POSITION_RANGE_PX * pos_x
  cy = POSITION_MIN_PX + POSITION_RANGE_PX * pos_y
  theta = np.mod(orientation, 2.0 * np.pi)  # 2*pi -> exactly 0
  cos_s = np.cos(theta) / scale
  sin_s = np.sin(theta) / scale

  # Only a square window around each centre can contain sprite pixels: evaluate there.
  radius = np.asarray(_MAX_RADIUS)[shape_idx] * scale
  w = int(min(size, math.ceil(2.0 * float(radius.max())) + 4))
  ar = np.arange(w)
  c0 = np.clip(np.floor(cx).astype(np.int64) - w // 2, 0, size - w)
  r0 = np.clip(np.floor(cy).astype(np.int64) - w // 2, 0, size - w)
  dx = (c0[:, None] + ar + 0.5) - cx[:, None]  # [N, w]: pixel-centre x - sprite centre x
  dy = (r0[:, None] + ar + 0.5) - cy[:, None]  # [N, w]

  # Inverse transform of pixel centres into the sprite frame (u right, v down):
  # screen = R(theta) * scale * sprite with R = [[c, -s], [s, c]] (clockwise on screen
  # for y down), so sprite = R(-theta) * screen / scale.
  inside = np.empty((n, w, w), dtype=bool)
  for k in range(3):
    sel = np.flatnonzero(shape_idx == k)
    if sel.size == 0:
      continue
    if sel.size == n:
      sel = slice(None)
    c = cos_s[sel][:, None, None]
    s = sin_s[sel][:, None, None]
    sx = dx[sel][:, None, :]
    sy = dy[sel][:, :, None]
    u = c * sx + s * sy
    v = c * sy - s * sx
    inside[sel] = _INSIDE[k](u, v)

  flat = ((r0[:, None] + ar) * size)[:, :, None] + (c0[:, None] + ar)[:, None, :]
  np.put_along_axis(out.reshape(n, size * size), flat.reshape(n, w * w),
           inside.reshape(n, w * w).view(np.uint8), axis=1)
  return out


def _render_sprites_full_canvas(shape_idx, scale, orientation, pos_x, pos_y):
  """Unoptimised reference (evaluates every pixel); used by the tests only."""
  shape_idx, scale, orientation, pos_x, pos_y = (
    np.atleast_1d(np.asarray(a)) for a in (shape_idx, scale, orientation, pos_x, pos_y))
  shape_idx, scale, orientation, pos_x, pos_y = np.broadcast_arrays(
    shape_idx, scale, orientation, pos_x, pos_y)
  centres = np.arange(IMAGE_SIZE) + 0.5
  dx = centres[None, None, :] - (POSITION_MIN_PX + POSITION_RANGE_PX * pos_x)[:, None, None]
  dy = centres[None, :, None] - (POSITION_MIN_PX + POSITION_RANGE_PX * pos_y)[:, None, None]
  theta = np.mod(orientation.astype(np.float64), 2.0 * np.pi)[:, None, None]
  s = scale.astype(np.float64)[:, None, None]
  u = (np.cos(theta) / s) * dx + (np.sin(theta) / s) * dy
  v = (np.cos(theta) / s) * dy - (np.sin(theta) / s) * dx
  out = np.zeros((shape_idx.shape[0], IMAGE_SIZE, IMAGE_SIZE), dtype=np.uint8)
  for k in range(3):
    m = shape_idx == k
    out[m] = _INSIDE[k](u[m], v[m])
  return out


# --------------------------------------------------------------------------------------
# Writing the .npz file.
# --------------------------------------------------------------------------------------
def _subgrid_possible_values(latents_sizes):
  """Evenly spaced subset of the official values with the given per-factor sizes.

  Used to write small files in the official format (e.g. for tests).
  """
  latents_sizes = [int(s) for s in latents_sizes]
  if len(latents_sizes) != len(LATENTS_NAMES):
    raise ValueError("need %d sizes" % len(LATENTS_NAMES))
  values = {}
  for name, n, full in zip(LATENTS_NAMES, latents_sizes, LATENTS_SIZES):
    if not 1 <= n <= full:
      raise ValueError("size of %s must be in [1, %d], got %d" % (name, full, n))
    idx = np.round(np.linspace(0, full - 1, n)).astype(np.int64)
    values[name] = LATENTS_POSSIBLE_VALUES[name][idx].copy()
  return values


def _log(progress, msg):
  if progress:
    print("[dsprites_render] " + msg, file=sys.stderr, flush=True)


def _write_npz(path, possible_values, chunk_size=8192, progress=True):
  """Renders every factor combination of ``possible_values`` and writes ``path`` atomically.

  ``possible_values`` maps each name of LATENTS_NAMES to a 1-D float array; the file has
  ``latents_sizes`` = their lengths and rows in row-major factor order.
  """
  t_start = time.time()
  sizes = np.array([len(possible_values[name]) for name in LATENTS_NAMES], dtype=np.int64)
  total = int(np.prod(sizes))
  chunk_size = max(1, int(chunk_size))

  classes = np.stack(np.unravel_index(np.arange(total, dtype=np.int64), tuple(sizes)),
                     axis=1).astype(np.int64)
  values = np.empty((total, len(LATENTS_NAMES)), dtype=np.float64)
  for i, name in enumerate(LATENTS_NAMES):
    values[:, i] = np.asarray(possible_values[name], dtype=np.float64)[classes[:, i]]

  imgs = np.empty((total, IMAGE_SIZE, IMAGE_SIZE), dtype=np.uint8)
  n_chunks = (total + chunk_size - 1) // chunk_size
  report_every = max(1, n_chunks // 20)
  _log(progress, "rendering %d images in %d chunks of %d" % (total, n_chunks, chunk_size))
  for ci, start in enumerate(range(0, total, chunk_size)):
    stop = min(total, start + chunk_size)
    v = values[start:stop]
    render_sprites(np.rint(v[:, 1]).astype(np.int64) - 1, v[:, 2], v[:, 3], v[:, 4], v[:, 5],
                   out=imgs[start:stop])
    if (ci + 1) % report_every == 0 or ci + 1 == n_chunks:
      _log(progress, "chunk %d/%d rendered (%.1f s)" % (ci + 1, n_chunks, time.time() - t_start))

  metadata = {
    "description": METADATA_DESCRIPTION,
    "latents_sizes": sizes.copy(),
    "latents_names": tuple(LATENTS_NAMES),
    "latents_possible_values": {
      name: np.asarray(possible_values[name], dtype=np.float64).copy()
      for name in LATENTS_NAMES},
    "title": METADATA_TITLE,
    "date": datetime.date.today().strftime("%B %Y"),
    "version": METADATA_VERSION,
    "author": METADATA_AUTHOR,
  }

  _log(progress, "writing %s" % path)
  with atomic_file(path, "wb") as f:
    np.savez(f, imgs=imgs, latents_values=values, latents_classes=classes, metadata=metadata)
    f.flush()
    os.fsync(f.fileno())
  _log(progress, "done: %s (%.1f MB) in %.1f s"
       % (path, os.path.getsize(path) / 1e6, time.time() - t_start))
  return path


# The size of the file written below: the uint8 images, the float64 latent values and int64 classes (6 each per
# image), and the metadata (a few kB; 3,090,681,279 bytes in all when measured).
RENDERED_BYTES = 737280 * (64 * 64 + 2 * 6 * 8) + 4096


def write_dsprites_npz(data_dir, chunk_size=8192, progress=True):
  """Writes the full re-rendered dSprites file to ``data_dir/DSPRITES_FILE``.

  Args:
    data_dir: directory used as $DISENTANGLEMENT_LIB_DATA (``dsprites/`` is created).
    chunk_size: images rendered per vectorised call (bounds the temporary memory).
    progress: print a chunk counter on stderr.

  Returns:
    The path of the written file.  The file is written to a temporary file in the same
    directory and moved into place with os.replace, so the final path never holds a
    partial file.  Peak memory is about 3.1 GB (the uint8 image array) plus O(chunk_size).
  """
  path = os.path.join(data_dir, DSPRITES_FILE)
  return _write_npz(path, LATENTS_POSSIBLE_VALUES, chunk_size=chunk_size, progress=progress)

