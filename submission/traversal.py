"""Latent traversals and image grids (pure NumPy): how a code moves along one latent dimension, by the latent
space's geometry. Used by the pictures (``applications.visualize``) and by the TensorBoard images written at each
checkpoint (``submission.summary_images``).

Latent traversals start from the posterior location of a few images (the ``mean_representation``, which is
what the decoder sees without noise) and move one "dimension" of the decoder input, in a way that depends on
the latent geometry. The geometry is not guessed from the code: it is the one the latent space declares
(``LatentSpace.geometry``), which the pictures read from the model card and the checkpoint images from the model:

* Euclidean (the Gaussian models, PVAE's gated Gaussian): coordinate j takes the values linspace(-2, 2) — the
  prior N(0, 1)'s central 95% interval, dlib's "fixed interval" traversal. The animation runs the same interval
  as a triangle wave starting at the image's own value (dlib's ``cycle_interval``).
* Hypersphere S^d ⊂ R^(d+1) (ΔVAE, ER-VAE on a sphere): there is one traversal per ambient coordinate j (the
  d+1 columns of the representation the metrics read). Coordinate j cannot change alone without leaving the
  sphere, so the code moves along the great circle through z and e_j — the rotation in the plane spanned by z
  and e_j: z(θ) = cos θ·z + sin θ·u, u = (e_j − z_j z)/‖e_j − z_j z‖. Along it z_j sweeps its whole range
  [−1, 1] while the other coordinates keep their ratios, which is the nearest on-manifold analogue of "vary one
  coordinate, keep the others". (If z = ±e_j, u points to e_{j+1} instead.)
* Torus (S¹)^k ⊂ R^(2k) as (cos, sin) pairs (ΔVAE torus, ER-VAE circle/torus): one traversal per circle,
  rotating that pair by θ and leaving the other circles where they are.
  For both manifolds θ runs over the whole circle (the manifold is compact, there is no "±2"): the PNG columns
  are V angles spaced 2π/V apart and centred on θ = 0 (the image's own code is the middle column for odd V),
  and the animation goes once round, θ = 2πt/F.

ER-VAE's learned embeddings lie near, not exactly on, the manifold; traversals then run on the exact manifold (the
start is projected onto it first).
"""

import math

import numpy as np

from submission.latent.base import EUCLIDEAN, SPHERE, TORUS  # noqa: F401  (the geometries traversals follow)
GAUSSIAN_RANGE = (-2., 2.)   # the N(0, 1) prior's central 95.4% interval
PADDING = 2                  # pixels between the tiles of a grid
PADDING_VALUE = 1.           # white, as dlib's visualize_util


# --- latent geometry and traversals (pure NumPy) ----------------------------------------------------------------
def num_traversal_dimensions(geometry, code_size):
  """Coordinates for Euclidean codes and spheres (ambient coordinates), circles for tori."""
  return code_size // 2 if geometry == TORUS else code_size


def describe_geometry(geometry, code_size):
  if geometry == SPHERE:
    return (f"hypersphere S^{code_size - 1} in R^{code_size}: each traversal follows the great circle through the "
            f"code and e_j")
  if geometry == TORUS:
    return f"torus of {code_size // 2} circles: each traversal rotates one circle"
  return f"Euclidean R^{code_size}: each traversal sets one coordinate to values in {list(GAUSSIAN_RANGE)}"


def pruned_dimensions(prior_samples):
  """Coordinates whose prior draws are all exactly 0: dimensions an L0 gate has closed (PVAE's gated prior is
  N(0, m̂_j), so a closed gate m̂_j = 0 gives exact zeros; no ungated prior ever does)."""
  return [int(j) for j in np.flatnonzero(np.all(np.asarray(prior_samples) == 0., axis=0))]


def grid_positions(geometry, num_values):
  """The V positions of the PNG traversals: coordinate values (Euclidean) or angles (sphere, torus)."""
  if geometry == EUCLIDEAN:
    return np.linspace(GAUSSIAN_RANGE[0], GAUSSIAN_RANGE[1], num_values)
  return -math.pi + 2. * math.pi * (np.arange(num_values) + 0.5) / num_values


def cycle_positions(geometry, start_values, num_frames):
  """[B, F] positions of a closed animation cycle for each start (B values of the traversed coordinate).

  Euclidean: a triangle wave over GAUSSIAN_RANGE that starts at the image's own (clipped) value, goes up to the
  top, down to the bottom and back. Manifolds: the angles 2πt/F, once round from the image's own code.
  """
  start_values = np.asarray(start_values, dtype=np.float64)
  if geometry != EUCLIDEAN:
    return np.tile(2. * math.pi * np.arange(num_frames) / num_frames, [len(start_values), 1])
  low, high = GAUSSIAN_RANGE
  start_phase = (np.clip(start_values, low, high) - low) / (high - low)       # in [0, 1]
  phase = (start_phase[:, None] + 2. * np.arange(num_frames)[None, :] / num_frames) % 2.
  return low + (high - low) * np.where(phase <= 1., phase, 2. - phase)


def great_circle(codes, coordinate, angles):
  """[B, V, n] points cos θ·z + sin θ·u on the great circle through each z and e_coordinate (unit vectors)."""
  z = codes / np.linalg.norm(codes, axis=-1, keepdims=True)
  n = z.shape[1]

  def toward(index):
    direction = np.zeros_like(z)
    direction[:, index] = 1.
    return direction - z[:, index:index + 1] * z

  u = toward(coordinate)
  degenerate = np.linalg.norm(u, axis=-1) < 1e-6      # z = ±e_j: any tangent direction will do
  u[degenerate] = toward((coordinate + 1) % n)[degenerate]
  u /= np.linalg.norm(u, axis=-1, keepdims=True)
  angles = np.asarray(angles)[..., None]
  return np.cos(angles) * z[:, None, :] + np.sin(angles) * u[:, None, :]


def rotate_circle(codes, circle, angles):
  """[B, V, 2k] codes whose circle ``circle`` (columns 2i, 2i+1) is rotated by each angle, the rest unchanged."""
  pairs = codes[:, 2 * circle:2 * circle + 2]
  start = np.arctan2(pairs[:, 1], pairs[:, 0])[:, None]
  result = np.repeat(codes[:, None, :], np.shape(angles)[-1], axis=1).astype(np.float64)
  result[:, :, 2 * circle] = np.cos(start + angles)
  result[:, :, 2 * circle + 1] = np.sin(start + angles)
  return result


def traverse(codes, dimension, positions, geometry):
  """[B, V, n] decoder inputs: ``codes`` [B, n] moved along ``dimension`` to ``positions`` ([V] or [B, V])."""
  codes = np.asarray(codes, dtype=np.float64)
  positions = np.broadcast_to(np.asarray(positions, dtype=np.float64), (len(codes), np.shape(positions)[-1]))
  if geometry == SPHERE:
    return great_circle(codes, dimension, positions)
  if geometry == TORUS:
    return rotate_circle(codes, dimension, positions)
  result = np.repeat(codes[:, None, :], positions.shape[1], axis=1)
  result[:, :, dimension] = positions
  return result


# --- images (pure NumPy / PIL) -----------------------------------------------------------------------------------
def grid_size(rows, cols, height, width, padding=PADDING):
  """(height, width) in pixels of a ``rows`` × ``cols`` grid of height × width tiles."""
  return rows * height + (rows - 1) * padding, cols * width + (cols - 1) * padding


def grid(tiles, padding=PADDING, value=PADDING_VALUE):
  """[R, C, H, W, ch] tiles → one [H', W', ch] image with ``padding`` pixels of ``value`` between tiles."""
  tiles = np.asarray(tiles, dtype=np.float32)
  rows, cols, height, width, channels = tiles.shape
  out_height, out_width = grid_size(rows, cols, height, width, padding)
  image = np.full((out_height, out_width, channels), value, dtype=np.float32)
  for r in range(rows):
    for c in range(cols):
      top, left = r * (height + padding), c * (width + padding)
      image[top:top + height, left:left + width] = tiles[r, c]
  return image


def near_square(images, value=PADDING_VALUE):
  """[N, H, W, ch] → [R, C, H, W, ch] with C = ceil(√N) columns, empty tiles filled with ``value``."""
  cols = max(1, math.ceil(math.sqrt(len(images))))
  rows = math.ceil(len(images) / cols)
  filler = np.full((rows * cols - len(images),) + images.shape[1:], value, dtype=np.float32)
  return np.concatenate([images, filler]).reshape((rows, cols) + images.shape[1:])
