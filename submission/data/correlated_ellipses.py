"""CorrelatedEllipses (Ansari & Soh, AAAI 2019): one filled ellipse whose four factors are pairwise correlated.

Recipe (``docs/models/chyvae.md`` §4, the authors' ``synthetic.py``):

* factors (x, y, scale, rotation) = z ~ N(0, C), C = [[1, .5, 0, 0], [.5, 1, 0, 0], [0, 0, 1, .5], [0, 0, .5, 1]],
  so ρ(x, y) = ρ(scale, rotation) = 0.5 and the two pairs are independent;
* u = (clip(z, −1, 1) + 1)/2 ∈ [0, 1] (≈15.9% point masses at 0 and at 1 for every factor; ρ ≈ 0.46 after
  clipping), then "floor to grid", value = grid[digitize(v, grid) − 1], on
  x, y: linspace(0, 1, 32), centre pixel round(v·156 + 50) ∈ {50, 55, ..., 206} of a 256×256 canvas;
  scale: s = u/2 + 0.5 on linspace(0.5, 1, 6), half-axes (round(50·s), round(25·s)) px;
  rotation: u·360 on linspace(0, 360, 40) degrees (0° and 360° give the same image);
* a filled ellipse (intensity 255) drawn with OpenCV's ``cv2.ellipse(img, centre, axes, angle, 0, 360, 255, -1)`` on
  a black 256×256 uint8 canvas, resized to 64×64 with ``INTER_AREA``; observations are uint8 / 255.

OpenCV is not a dependency: ``render_ellipse_mask`` re-implements, in integer arithmetic, the path that call takes
(OpenCV's ``ellipse`` → ``EllipseEx`` → ``ellipse2Poly`` → ``FillConvexPoly`` + ``Line2``: the angle rounded to whole
degrees, a 72-gon from OpenCV's float sine table, 16-bit fixed-point vertices, scan-line fill and 8-connected edges),
and ``INTER_AREA`` at an exact 4× reduction is the mean of each 4×4 block rounded half-to-even. Centres are whole
pixels, so the 256-pixel mask of a (scale, rotation) pair only moves with the centre: each image is one of
6·40 masks, reduced at one of 4×4 sub-block phases and placed at a block offset. That makes rendering vectorised
(all 245,760 images take seconds) and identical whether rendered on demand or read from the cache. Checked once
against OpenCV itself (``opencv-python-headless`` 3.4.18 and 5.0.0, the recipe's calls): all 245,760 images are
identical, byte for byte, including those where the ellipse leaves the canvas.

Sampling (dlib's ``GroundTruthData``): ``sample_factors`` draws from the correlated joint above and returns grid
indices, so the metrics see the correlated distribution, as in the paper; dlib's FactorVAE metric then fixes one
factor by copying the first row's value into the batch, exactly as the authors' ``conditional_sample`` does.
Observations come from the cached grid of all 32·32·6·40 = 245,760 factor combinations,
``$DISENTANGLEMENT_LIB_DATA/correlated_ellipses/correlated_ellipses_v1_32x32x6x40.npy`` (uint8 [N, 64, 64, 1],
0.94 GiB, memory-mapped), this family's generated file: the registry's one mechanism makes it (written atomically,
a temporary file renamed into place) on first load, before training in the pipeline, or with ``python -m
submission.data generate correlated_ellipses``. With ``correlated_ellipses.lazy = True`` (gin), or for the whole
process with ``render_on_demand()``, no cache is needed and each batch is rendered on demand (same pixels); tests
use that, or a smaller ``sizes`` grid.
"""

import math
import os
import sys
import time

import gin
import numpy as np

from disentanglement_lib.data.ground_truth import ground_truth_data
from submission.atomic import atomic_path
from submission.data import registry
from submission.data.observation_index import ObservationIndex
from submission.data.stored_images import to_float32
from submission.errors import UserError

NAME = "correlated_ellipses"
FACTOR_NAMES = ("x", "y", "scale", "rotation")
FACTOR_SIZES = (32, 32, 6, 40)
CORRELATION = 0.5
FACTOR_COVARIANCE = np.array([[1., CORRELATION, 0., 0.], [CORRELATION, 1., 0., 0.],
                              [0., 0., 1., CORRELATION], [0., 0., CORRELATION, 1.]])
CANVAS = 256
IMAGE_SIZE = 64
REDUCTION = CANVAS // IMAGE_SIZE  # INTER_AREA at exactly 4×: 4×4 blocks
CACHE_VERSION = 1  # bump when the pixels change, so stale caches are not reused

# OpenCV fixed point (drawing.cpp): 16 fractional bits.
_XY_SHIFT = 16
_XY_ONE = 1 << _XY_SHIFT
_HALF = _XY_ONE >> 1
# OpenCV's SinTable: sin of whole degrees 0..450 as 7-decimal float32 literals.
_SIN_TABLE = np.round(np.sin(np.deg2rad(np.arange(451))), 7).astype(np.float32).astype(np.float64)
# Local canvas for one mask: the centre at (_LOCAL_CENTRE, _LOCAL_CENTRE), a multiple of 4 so that sub-block phases
# line up; 128 px holds every ellipse of the grid (half-axes ≤ 50 px) with its outline.
_LOCAL = 128
_LOCAL_CENTRE = 64
_PATCH_BLOCKS = (_LOCAL + REDUCTION - 1) // REDUCTION + 1  # 33 blocks cover the local canvas at any phase
_PAD_BLOCKS = 4  # 64-px images are assembled on a (64 + 2·4)-px canvas, then cropped


# --- factor grids and the correlated factor distribution ----------------------------------------------------------
def factor_grids(sizes=FACTOR_SIZES):
  """The grid values of each factor: x, y ∈ [0, 1], scale ∈ [0.5, 1], rotation ∈ [0°, 360°]."""
  nx, ny, ns, nr = sizes
  return (np.linspace(0., 1., nx), np.linspace(0., 1., ny), np.linspace(0.5, 1., ns), np.linspace(0., 360., nr))


def sample_clipped_latents(num, random_state):
  """u = (clip(z, −1, 1) + 1)/2 for z ~ N(0, C): the continuous factors in [0, 1] before snapping, [num, 4]."""
  z = random_state.multivariate_normal(np.zeros(4), FACTOR_COVARIANCE, size=num)
  return 0.5 * (np.clip(z, -1., 1.) + 1.)


def snap_to_grid(u, sizes=FACTOR_SIZES):
  """Grid indices [num, 4] of clipped latents u: floor to grid, index = digitize(v, grid) − 1, as the recipe does."""
  grids = factor_grids(sizes)
  values = (u[:, 0], u[:, 1], u[:, 2] / 2. + 0.5, u[:, 3] * 360.)
  indices = [np.clip(np.digitize(v, grid) - 1, 0, len(grid) - 1) for v, grid in zip(values, grids)]
  return np.stack(indices, axis=1).astype(np.int64)


def ellipse_parameters(factor_indices, sizes=FACTOR_SIZES):
  """cv2.ellipse arguments per row of grid indices: centre x, centre y (px), half-axes (px), angle (degrees)."""
  grid_x, grid_y, grid_scale, grid_rotation = factor_grids(sizes)
  f = np.asarray(factor_indices)
  # Python's round (half to even) as in the recipe; np.rint is the same rule.
  centre_x = np.rint(grid_x[f[:, 0]] * 156. + 50.).astype(np.int64)
  centre_y = np.rint(grid_y[f[:, 1]] * 156. + 50.).astype(np.int64)
  scale = grid_scale[f[:, 2]]
  axes = np.stack([np.rint(50. * scale), np.rint(25. * scale)], axis=1).astype(np.int64)
  return centre_x, centre_y, axes, grid_rotation[f[:, 3]]


# --- OpenCV's filled-ellipse rasteriser, ported -------------------------------------------------------------------
def _c_div(a, b):
  """C integer division (truncates toward zero)."""
  q = abs(a) // abs(b)
  return q if (a >= 0) == (b >= 0) else -q


def _ellipse_polygon(centre, axes, angle):
  """EllipseEx + ellipse2Poly: the fixed-point vertices of cv2.ellipse's full-arc polygon (first = last)."""
  angle = int(np.rint(angle))  # cv::ellipse rounds the angle to whole degrees (cvRound: half to even)
  while angle < 0:
    angle += 360
  while angle > 360:
    angle -= 360
  width, height = axes[0] << _XY_SHIFT, axes[1] << _XY_SHIFT
  radius = (max(width, height) + _HALF) >> _XY_SHIFT
  delta = 90 if radius < 3 else 30 if radius < 10 else 18 if radius < 15 else 5
  alpha, beta = _SIN_TABLE[450 - angle], _SIN_TABLE[angle]  # cos, sin of the rotation
  cx, cy = float(centre[0] << _XY_SHIFT), float(centre[1] << _XY_SHIFT)
  vertices = []
  for i in range(0, 360 + delta, delta):
    a = min(i, 360)
    x, y = width * _SIN_TABLE[450 - a], height * _SIN_TABLE[a]
    px, py = cx + x * alpha - y * beta, cy + x * beta + y * alpha
    point = []
    for value in (px, py):
      whole = int(np.rint(value / _XY_ONE)) << _XY_SHIFT
      point.append(whole + int(np.rint(value - whole)))
    if not vertices or tuple(point) != vertices[-1]:
      vertices.append(tuple(point))
  return vertices


def _line(mask, p1, p2):
  """OpenCV's Line2: an 8-connected line between fixed-point points (both ends drawn)."""
  (x1, y1), (x2, y2) = p1, p2
  height, width = mask.shape
  dx, dy = x2 - x1, y2 - y1
  ax, ay = abs(dx), abs(dy)
  if ax > ay:
    if dx < 0:
      dy = -dy
      x1, y1, x2, y2 = x2, y2, x1, y1
    x_step, y_step = _XY_ONE, _c_div(dy << _XY_SHIFT, ax | 1)
    count = (x2 - x1) >> _XY_SHIFT
  else:
    if dy < 0:
      dx = -dx
      x1, y1, x2, y2 = x2, y2, x1, y1
    x_step, y_step = _c_div(dx << _XY_SHIFT, ay | 1), _XY_ONE
    count = (y2 - y1) >> _XY_SHIFT
  x1 += _HALF
  y1 += _HALF

  def put(x, y):
    if 0 <= x < width and 0 <= y < height:
      mask[y, x] = 1

  put((x2 + _HALF) >> _XY_SHIFT, (y2 + _HALF) >> _XY_SHIFT)
  if ax > ay:
    x1 >>= _XY_SHIFT
    for _ in range(count + 1):
      put(x1, y1 >> _XY_SHIFT)
      x1 += 1
      y1 += y_step
  else:
    y1 >>= _XY_SHIFT
    for _ in range(count + 1):
      put(x1 >> _XY_SHIFT, y1)
      x1 += x_step
      y1 += 1


def _fill_convex_polygon(mask, vertices):
  """OpenCV's FillConvexPoly (8-connected, shift = 16): the outline with ``_line``, then scan-line spans."""
  height, width = mask.shape
  n = len(vertices)
  p0 = vertices[-1]
  y_min_index = 0
  y_min = y_max = vertices[0][1]
  for i, p in enumerate(vertices):
    if p[1] < y_min:
      y_min, y_min_index = p[1], i
    y_max = max(y_max, p[1])
    _line(mask, p0, p)
    p0 = p
  y_min = (y_min + _HALF) >> _XY_SHIFT
  y_max = min((y_max + _HALF) >> _XY_SHIFT, height - 1)
  if n < 3:
    return
  # Two edges walk down from the top vertex, one each way round the polygon.
  edge_index = [y_min_index, y_min_index]
  edge_step = [1, n - 1]
  edge_x, edge_dx, edge_end = [-_XY_ONE, -_XY_ONE], [0, 0], [y_min, y_min]
  edges_left = n
  y = y_min
  while True:
    for side in (0, 1):
      if y >= edge_end[side]:
        idx0 = edge_index[side]
        idx = (idx0 + edge_step[side]) % n
        while True:
          more = edges_left > 0
          edges_left -= 1
          if not more:
            break
          ty = (vertices[idx][1] + _HALF) >> _XY_SHIFT
          if ty > y:
            xs, xe = vertices[idx0][0], vertices[idx][0]
            edge_end[side] = ty
            edge_dx[side] = _c_div((xe - xs) * 2 + (ty - y), 2 * (ty - y))
            edge_x[side] = xs
            edge_index[side] = idx
            break
          idx0 = idx
          idx = (idx + edge_step[side]) % n
    if edges_left < 0:
      break
    if y >= 0:
      left, right = sorted(edge_x)
      x1, x2 = (left + _HALF) >> _XY_SHIFT, (right + _HALF) >> _XY_SHIFT
      if x2 >= 0 and x1 < width:
        mask[y, max(x1, 0):min(x2, width - 1) + 1] = 1
    edge_x[0] += edge_dx[0]
    edge_x[1] += edge_dx[1]
    y += 1
    if y > y_max:
      break


def render_ellipse_mask(axes, angle, size=_LOCAL, centre=(_LOCAL_CENTRE, _LOCAL_CENTRE)):
  """The {0, 1} mask cv2.ellipse(img, centre, axes, angle, 0, 360, 1, -1) draws on a size×size canvas."""
  mask = np.zeros((size, size), np.uint8)
  _fill_convex_polygon(mask, _ellipse_polygon(tuple(int(c) for c in centre), tuple(int(a) for a in axes), angle))
  return mask


def area_reduce(mask):
  """INTER_AREA at an exact 4× reduction of a {0, 1} mask drawn at 255: round-half-even(255·count/16), uint8."""
  h, w = mask.shape[-2:]
  counts = mask.reshape(mask.shape[:-2] + (h // REDUCTION, REDUCTION, w // REDUCTION, REDUCTION)).sum(axis=(-3, -1))
  return np.rint(counts * (255. / REDUCTION**2)).astype(np.uint8)


# --- vectorised rendering of whole batches ------------------------------------------------------------------------
class EllipseRenderer:
  """Renders grid-index factors to uint8 [N, 64, 64, 1] images from pre-reduced per-shape, per-phase patches."""

  def __init__(self, sizes=FACTOR_SIZES):
    self.sizes = tuple(int(s) for s in sizes)
    _, _, grid_scale, grid_rotation = factor_grids(self.sizes)
    self.patches = np.zeros((len(grid_scale), len(grid_rotation), REDUCTION, REDUCTION, _PATCH_BLOCKS,
                             _PATCH_BLOCKS), np.uint8)
    padded = np.zeros((_PATCH_BLOCKS * REDUCTION, _PATCH_BLOCKS * REDUCTION), np.uint8)
    for s, scale in enumerate(grid_scale):
      axes = (int(np.rint(50. * scale)), int(np.rint(25. * scale)))
      for r, angle in enumerate(grid_rotation):
        mask = render_ellipse_mask(axes, angle)
        for phase_y in range(REDUCTION):
          for phase_x in range(REDUCTION):
            padded[:] = 0
            padded[phase_y:phase_y + _LOCAL, phase_x:phase_x + _LOCAL] = mask
            self.patches[s, r, phase_y, phase_x] = area_reduce(padded)

  def render(self, factor_indices):
    """uint8 images [N, 64, 64, 1] for grid indices [N, 4]."""
    factor_indices = np.asarray(factor_indices, np.int64)
    num = len(factor_indices)
    centre_x, centre_y, _, _ = ellipse_parameters(factor_indices, self.sizes)
    patches = self.patches[factor_indices[:, 2], factor_indices[:, 3], centre_y % REDUCTION,
                           centre_x % REDUCTION]  # [N, 33, 33]
    # Local pixel c ↔ canvas pixel centre − 64 + c; with the phase as left padding, patch block b ↔ image block
    # centre // 4 − 16 + b.
    top = centre_y // REDUCTION - _LOCAL_CENTRE // REDUCTION + _PAD_BLOCKS
    left = centre_x // REDUCTION - _LOCAL_CENTRE // REDUCTION + _PAD_BLOCKS
    side = IMAGE_SIZE + 2 * _PAD_BLOCKS
    if num and (min(top.min(), left.min()) < 0 or max(top.max(), left.max()) + _PATCH_BLOCKS > side):
      raise ValueError("ellipse centre outside the supported canvas range")
    canvas = np.zeros((num, side, side), np.uint8)
    offsets = np.arange(_PATCH_BLOCKS)
    rows = (top[:, None] + offsets)[:, :, None]
    cols = (left[:, None] + offsets)[:, None, :]
    canvas[np.arange(num)[:, None, None], rows, cols] = patches
    crop = slice(_PAD_BLOCKS, _PAD_BLOCKS + IMAGE_SIZE)
    return canvas[:, crop, crop, None]


def all_factor_indices(sizes=FACTOR_SIZES, start=0, stop=None):
  """Grid indices of the flat cache rows start..stop (row-major over x, y, scale, rotation)."""
  stop = int(np.prod(sizes)) if stop is None else stop
  return np.stack(np.unravel_index(np.arange(start, stop), sizes), axis=1).astype(np.int64)


def cache_file_name(sizes=FACTOR_SIZES):
  return f"{NAME}_v{CACHE_VERSION}_{'x'.join(str(s) for s in sizes)}.npy"


def cache_path(data_dir=None, sizes=FACTOR_SIZES):
  """Where the rendered images of a grid of ``sizes`` are kept (default: $DISENTANGLEMENT_LIB_DATA/<name>/)."""
  return os.path.join(data_dir or os.path.join(registry.data_root(), NAME), cache_file_name(sizes))


def open_cache(path, sizes=FACTOR_SIZES):
  """The cache's images, memory-mapped, checked to be uint8 [prod(sizes), 64, 64, 1]; a UserError otherwise."""
  expected = (int(np.prod(sizes)), IMAGE_SIZE, IMAGE_SIZE, 1)
  try:
    images = np.load(path, mmap_mode="r")
  except (OSError, ValueError) as e:
    raise UserError(f"cannot read the {NAME} cache {path} ({e}); delete it to re-render it") from e
  if images.shape != expected or images.dtype != np.uint8:
    raise UserError(f"the {NAME} cache {path} holds {images.dtype} {images.shape}, expected uint8 {expected}; "
                    f"delete it to re-render it")
  return images


def write_cache(path, renderer, chunk_size=8192, progress=True):
  """Renders every factor combination into ``path`` (uint8 .npy), through a temporary file renamed into place."""
  num = int(np.prod(renderer.sizes))
  start = time.time()
  with atomic_path(path) as temporary:
    images = np.lib.format.open_memmap(temporary, mode="w+", dtype=np.uint8,
                                       shape=(num, IMAGE_SIZE, IMAGE_SIZE, 1))
    for first in range(0, num, chunk_size):
      last = min(first + chunk_size, num)
      images[first:last] = renderer.render(all_factor_indices(renderer.sizes, first, last))
      if progress and (last == num or (first // chunk_size) % 8 == 7):
        print(f"[data] rendering {NAME}: {last}/{num} images ({time.time() - start:.0f}s)", file=sys.stderr,
              flush=True)
    images.flush()
    del images
  return path


class CorrelatedEllipses(ground_truth_data.GroundTruthData):
  """dlib GroundTruthData: factors (x, y, scale, rotation) with grid sizes (32, 32, 6, 40), images 64×64×1.

  ``data_dir``: where the cache lives (default ``$DISENTANGLEMENT_LIB_DATA/correlated_ellipses``; it must exist,
  see ``write_cache``). ``lazy``: render each requested batch instead of reading the cache (same pixels; no file
  needed). ``sizes``: a smaller grid for tests (the data set's definition is the default).
  """

  def __init__(self, data_dir=None, lazy=False, sizes=FACTOR_SIZES):
    self.sizes = tuple(int(s) for s in sizes)
    if len(self.sizes) != 4 or min(self.sizes) < 2:
      raise UserError(f"sizes must be four grid sizes >= 2, got {sizes}")
    self._renderer = None
    self.images = None
    self.cache_path = None
    if not lazy:
      self.cache_path = cache_path(data_dir, self.sizes)
      if not os.path.exists(self.cache_path):
        raise UserError(f"the {NAME} cache {self.cache_path} does not exist; make it with `python -m submission.data "
                        f"generate {NAME}` (or write_cache for another grid), or render lazily")
      self.images = open_cache(self.cache_path, self.sizes)

  @property
  def renderer(self):
    """Built on first use (≈1 s): a data set read from its cache never needs it."""
    if self._renderer is None:
      self._renderer = EllipseRenderer(self.sizes)
    return self._renderer

  @property
  def num_factors(self):
    return 4

  @property
  def factors_num_values(self):
    return list(self.sizes)

  @property
  def observation_shape(self):
    return [IMAGE_SIZE, IMAGE_SIZE, 1]

  def sample_factors(self, num, random_state):
    """Grid indices [num, 4] drawn from the correlated, clipped joint (not uniformly over the grid)."""
    return snap_to_grid(sample_clipped_latents(num, random_state), self.sizes)

  def sample_observations_from_factors(self, factors, random_state):
    return self.observations(self.rows(factors, random_state))

  def rows(self, factors, random_state):
    del random_state  # one image per factor combination
    return np.ravel_multi_index(np.asarray(factors, np.int64).T, self.sizes)

  def observations(self, rows):
    if self.images is None:
      images = self.renderer.render(np.stack(np.unravel_index(rows, self.sizes), axis=1))
    else:
      images = self.images[rows]
    return to_float32(images)

  def observation_index(self):
    """Every observation is a point of the factor grid (see submission.data.observation_index)."""
    return ObservationIndex(math.prod(self.sizes), self.rows, self.observations)


_render_on_demand = False  # set for the whole process by render_on_demand()


@gin.configurable(NAME, allowlist=["lazy"])
def rendering_on_demand(lazy=False):
  """Whether batches are rendered on demand instead of read from the cache: gin ``correlated_ellipses.lazy = True``,
  or ``render_on_demand()`` for the whole process."""
  return bool(lazy) or _render_on_demand


def render_on_demand(enabled=True):
  """Makes every load in this process render on demand (``enabled``), including loads made outside a gin config
  (the gin binding reaches only loads made inside one, e.g. not the pipeline's pictures step)."""
  global _render_on_demand  # pylint: disable=global-statement
  _render_on_demand = bool(enabled)


def load():
  """The data set behind ``dataset.name = 'correlated_ellipses'``."""
  return CorrelatedEllipses(lazy=rendering_on_demand())


CACHE_FILE = os.path.join(NAME, cache_file_name())


def required_files():
  """The cache, unless batches are rendered on demand."""
  return () if rendering_on_demand() else (CACHE_FILE,)


def check_cache(paths):
  """Header check for ``python -m submission.data verify``: the cache has the expected shape."""
  if not paths:
    return {"detail": "rendered on demand (no cache needed)", "factors_num_values": list(FACTOR_SIZES)}
  images = open_cache(paths[0])
  return {"detail": f"{paths[0]}: uint8 {list(images.shape)}", "factors_num_values": list(FACTOR_SIZES)}


GENERATOR = registry.Generator(
    NAME, [CACHE_FILE],
    lambda data_dir, progress: write_cache(os.path.join(data_dir, CACHE_FILE), EllipseRenderer(), progress=progress),
    math.prod(FACTOR_SIZES) * IMAGE_SIZE**2 + 4096, "about 15 s, 0.94 GiB",
    f"every image of the {NAME} factor grid, rendered by submission.data.correlated_ellipses", on_load=True)

registry.register(registry.DatasetEntry(
    NAME, load, files=required_files, provenance=registry.GENERATED,
    source="the CHyVAE paper's data set, rendered by submission.data.correlated_ellipses", generator=GENERATOR,
    factors=tuple(zip(FACTOR_NAMES, FACTOR_SIZES)), observation_shape=[IMAGE_SIZE, IMAGE_SIZE, 1],
    observation_dtype="float32",
    loader=(f"submission.data.correlated_ellipses.CorrelatedEllipses: correlated factors, images from the cached "
            f"grid {CACHE_FILE} (or rendered per batch with correlated_ellipses.lazy = True)"),
    check=check_cache))
