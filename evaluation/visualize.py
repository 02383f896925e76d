"""Pictures of a trained model: reconstructions, latent traversals, prior samples and training curves.

    python -m evaluation.visualize MODEL_DIR [--out DIR] [--num_images N] [--seed S] [--num_frames F]
                                             [--overwrite]

``MODEL_DIR`` is a train step's output (``tfhub/`` with the signatures of ``submission.export``,
``results/gin/train.gin``, ``tf_checkpoint/`` with the TensorBoard summaries). The pictures go to ``--out``
(default ``MODEL_DIR/../visualizations``, beside ``model/`` as dlib's ``dlib_reproduce`` lays it out), written
into a temporary directory that replaces ``--out`` only when every file is complete:

    reconstructions.png        row 1: N inputs; row 2: each one's reconstruction (decode(z), z ~ q(z|x))
    samples.png                N decodings of prior draws (``prior_latents`` → ``decoder``), a near-square grid
    traversals.png             the first image's traversals: one row per latent dimension, one column per value
    traversals/dim_XX.png      one file per latent dimension: one row per image, one column per value
    traversals.gif             animation: one row per image, one column per latent dimension; frame t moves every
                               dimension to the t-th point of a closed cycle that starts at the image's own code;
                               a bar under the grid shows the position in the cycle
    training_curves.png        each scalar the training loop logged (the loss terms), against the step
    pictures.json              what the pictures show: the latent geometry (and its description), the number of
                               traversed dimensions and the pruned ones (read by ``evaluation.report``)

Images are pixel means: sigmoid of the decoder's logits, or tanh/2 + 1/2 when the model was trained with
``reconstruction_loss.activation = 'tanh'`` (read from train.gin), as dlib's ``visualize_model`` does.

Latent traversals start from the posterior location of a few images (the ``mean_representation``, which is
what the decoder sees without noise) and move one "dimension" of the decoder input, in a way that depends on
the latent geometry, detected from the shape of the code and confirmed on draws from the model's own prior:

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

Detection (``detect_geometry``): torus when the code has 2·num_latent columns and every (cos, sin) pair of the
prior draws has unit norm; sphere when it has num_latent + 1 columns and every prior draw has unit norm;
Euclidean otherwise. The tolerance (0.05) admits ER-VAE's learned embeddings, which lie near, not exactly on,
the manifold; traversals then run on the exact manifold (the start is projected onto it first). A Gaussian
prior never passes the test (all draws of norm 1 ± 0.05 has probability ~0).
"""

import math
import os
import sys

import matplotlib
import numpy as np
import tensorflow as tf
from PIL import Image

from submission import cli, losses
from submission.data import named_data
from submission.errors import UserError
from submission.atomic import atomic_directory, write_json_atomically
from submission.results import EXPORT_DIR, RESULTS_DIR, check_output_dir, gin_value
from submission.train import CHECKPOINT_DIR

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the non-interactive backend)

EUCLIDEAN, SPHERE, TORUS = "euclidean", "sphere", "torus"
GAUSSIAN_RANGE = (-2., 2.)   # the N(0, 1) prior's central 95.4% interval
MANIFOLD_TOLERANCE = 0.05
PADDING = 2                  # pixels between the tiles of a grid
PADDING_VALUE = 1.           # white, as dlib's visualize_util
BAR_HEIGHT = 4               # the animation's progress bar
CURVE_PANEL_INCHES = (4., 3.)
CURVE_DPI = 100
NOT_LOSS_TERMS = ("steps_per_second",)
DECODE_BATCH = 256
PICTURES_RECORD = "pictures.json"


# --- latent geometry and traversals (pure NumPy) ----------------------------------------------------------------
def detect_geometry(prior_samples, num_latent=None, tolerance=MANIFOLD_TOLERANCE):
  """'torus', 'sphere' or 'euclidean' from draws of the prior, [n, code_size] (see the module docstring)."""
  samples = np.asarray(prior_samples, dtype=np.float64)
  code_size = samples.shape[1]
  if code_size % 2 == 0 and num_latent in (None, code_size // 2):
    pair_norms = np.linalg.norm(samples.reshape(len(samples), -1, 2), axis=-1)
    if np.all(np.abs(pair_norms - 1.) < tolerance):
      return TORUS
  if num_latent in (None, code_size - 1):
    if np.all(np.abs(np.linalg.norm(samples, axis=-1) - 1.) < tolerance):
      return SPHERE
  return EUCLIDEAN


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


def with_progress_bar(image, fraction, value=PADDING_VALUE):
  """Adds a bar below ``image`` filled to ``fraction`` of its width (frames of one cycle all differ)."""
  width, channels = image.shape[1], image.shape[2]
  bar = np.full((PADDING + BAR_HEIGHT, width, channels), value, dtype=np.float32)
  bar[PADDING:, :max(1, int(round(fraction * width)))] = 0.5
  return np.concatenate([image, bar], axis=0)


def to_pil(image):
  """[H, W, 1|3] floats in [0, 1] → a PIL image ('L' or 'RGB')."""
  pixels = np.round(np.clip(image, 0., 1.) * 255.).astype(np.uint8)
  return Image.fromarray(pixels[..., 0] if pixels.shape[-1] == 1 else pixels)  # uint8 [H, W] → L, [H, W, 3] → RGB


def save_png(image, path):
  os.makedirs(os.path.dirname(path), exist_ok=True)
  to_pil(image).save(path, format="PNG")


def save_gif(frames, path, fps):
  """An endlessly looping animated GIF of [H, W, ch] frames."""
  os.makedirs(os.path.dirname(path), exist_ok=True)
  images = [to_pil(frame) for frame in frames]
  images[0].save(path, format="GIF", save_all=True, append_images=images[1:], duration=int(round(1000. / fps)),
                 loop=0)


# --- training curves --------------------------------------------------------------------------------------------
def read_events(path):
  """The Event protos of one event file; a file cut short (a killed run) yields what was written whole."""
  records = iter(tf.data.TFRecordDataset(path))
  while True:
    try:
      record = next(records)
    except (StopIteration, tf.errors.DataLossError):
      return
    yield tf.compat.v1.Event.FromString(record.numpy())


def read_scalars(event_dir):
  """{tag: (steps, values)} from the TensorBoard event files in ``event_dir``; a step written twice (a resumed
  run repeats the steps after its last checkpoint) keeps its latest value."""
  latest = {}
  if not os.path.isdir(event_dir):
    return {}
  for name in sorted(os.listdir(event_dir)):
    if not name.startswith("events.out.tfevents"):
      continue
    for event in read_events(os.path.join(event_dir, name)):
      for value in event.summary.value:
        kind = value.WhichOneof("value")
        if kind == "simple_value":
          number = float(value.simple_value)
        elif kind == "tensor" and tf.make_ndarray(value.tensor).size == 1:
          number = float(tf.make_ndarray(value.tensor))
        else:
          continue
        key = (value.tag, int(event.step))
        if key not in latest or event.wall_time >= latest[key][0]:
          latest[key] = (event.wall_time, number)
  series = {}
  for (tag, step), (_, number) in sorted(latest.items()):
    steps, values = series.setdefault(tag, ([], []))
    steps.append(step)
    values.append(number)
  return series


def curve_layout(num_panels):
  """(rows, cols) of the training-curve panels: up to 3 per row."""
  cols = min(3, num_panels)
  return math.ceil(num_panels / cols), cols


def plot_curves(series, path):
  """One panel per logged scalar; the PNG is cols·400 × rows·300 pixels."""
  rows, cols = curve_layout(len(series))
  width, height = CURVE_PANEL_INCHES
  figure, axes = plt.subplots(rows, cols, figsize=(width * cols, height * rows), dpi=CURVE_DPI, squeeze=False)
  for axis in axes.flat[len(series):]:
    axis.set_visible(False)
  for axis, (tag, (steps, values)) in zip(axes.flat, sorted(series.items())):
    axis.plot(steps, values, marker="." if len(steps) < 30 else None)
    axis.set_title(tag)
    axis.set_xlabel("step")
    axis.grid(alpha=0.3)
  figure.tight_layout()
  os.makedirs(os.path.dirname(path), exist_ok=True)
  figure.savefig(path, format="png", dpi=CURVE_DPI)
  plt.close(figure)


# --- the trained model --------------------------------------------------------------------------------------------
class TrainedModel:
  """The exported signatures of a trained model, called with NumPy arrays; decodings are pixel means."""

  def __init__(self, model_dir):
    module_path = os.path.join(model_dir, EXPORT_DIR)
    train_gin = os.path.join(model_dir, RESULTS_DIR, "gin", "train.gin")
    for path in (module_path, train_gin):
      if not os.path.exists(path):
        raise UserError(f"{path} does not exist: {model_dir} is not a trained model directory (submission.train)")
    self.activation = gin_value(train_gin, "reconstruction_loss.activation") or "logits"
    if self.activation not in ("logits", "tanh"):
      raise UserError(f"{train_gin}: reconstruction_loss.activation = {self.activation!r} is neither 'logits' nor "
                      f"'tanh'")
    self.dataset_name = gin_value(train_gin, "dataset.name")
    if not self.dataset_name:
      raise UserError(f"{train_gin} records no dataset.name")
    num_latent = gin_value(train_gin, "encoder.num_latent")
    self.num_latent = int(num_latent) if num_latent not in (None, "None") else None
    self.signatures = tf.saved_model.load(module_path).signatures
    self.code_size = int(self.signatures["decoder"].structured_input_signature[1]["latent_vectors"].shape[1])

  def _batched(self, signature, key, output, array):
    parts = [self.signatures[signature](**{key: tf.constant(array[i:i + DECODE_BATCH], tf.float32)})[output]
             for i in range(0, len(array), DECODE_BATCH)]
    return np.concatenate([p.numpy() for p in parts])

  def pixels(self, logits):
    return losses.pixel_means(tf.constant(logits), self.activation).numpy()

  def decode(self, codes):
    """[..., code_size] → [..., H, W, ch] pixel means."""
    codes = np.asarray(codes, dtype=np.float32)
    flat = codes.reshape(-1, codes.shape[-1])
    images = self.pixels(self._batched("decoder", "latent_vectors", "images", flat))
    return images.reshape(codes.shape[:-1] + images.shape[1:])

  def reconstruct(self, images):
    return self.pixels(self._batched("reconstructions", "images", "images", images))

  def locations(self, images):
    return self._batched("mean_representation", "images", "default", images)

  def prior(self, num, seed):
    return self.signatures["prior_latents"](num=tf.constant(num, tf.int32),
                                            seed=tf.constant(seed, tf.int64))["latent_vectors"].numpy()


# --- the pictures -----------------------------------------------------------------------------------------------
def visualize(model_dir, output_dir=None, num_images=16, seed=0, num_traversal_images=3, num_values=9,
              num_frames=20, fps=10, overwrite=False):
  """Writes the pictures listed in the module docstring; returns their paths (after the atomic rename)."""
  if num_images < 1 or num_traversal_images < 1 or num_values < 2 or num_frames < 2:
    raise UserError("need num_images >= 1, num_traversal_images >= 1, num_values >= 2 and num_frames >= 2")
  model_dir = os.path.normpath(model_dir)
  output_dir = output_dir or os.path.join(os.path.dirname(model_dir), "visualizations")
  check_output_dir(output_dir, overwrite)
  model = TrainedModel(model_dir)
  data = named_data.load(model.dataset_name)
  random_state = np.random.RandomState(seed)
  inputs = np.asarray(data.sample_observations(max(num_images, num_traversal_images), random_state), np.float32)

  prior_draws = model.prior(256, [seed, 1])
  geometry = detect_geometry(prior_draws, model.num_latent)
  print(f"[visualize] latent geometry: {describe_geometry(geometry, model.code_size)}", flush=True)
  tf.random.set_seed(seed)  # the reconstructions signature draws z ~ q(z|x) from TF's global generator
  pictures = {
      "reconstructions.png": grid(np.stack([inputs[:num_images], model.reconstruct(inputs[:num_images])])),
      "samples.png": grid(near_square(model.decode(model.prior(num_images, [seed, 2])))),
  }
  codes = model.locations(inputs[:num_traversal_images]).astype(np.float64)
  if codes.shape[1] != model.code_size:
    raise UserError(f"{model_dir}: mean_representation has {codes.shape[1]} columns but the decoder takes "
                    f"{model.code_size}; traversals need the decoder's own coordinates")
  dimensions = range(num_traversal_dimensions(geometry, model.code_size))
  positions = grid_positions(geometry, num_values)
  per_dimension = [model.decode(traverse(codes, j, positions, geometry)) for j in dimensions]  # [B, V, H, W, ch]
  pictures["traversals.png"] = grid(np.stack([images[0] for images in per_dimension]))
  for j, images in zip(dimensions, per_dimension):
    pictures[os.path.join("traversals", f"dim_{j:02d}.png")] = grid(images)
  cycles = [model.decode(traverse(codes, j, cycle_positions(geometry, codes[:, j], num_frames), geometry))
            for j in dimensions]
  frames = [with_progress_bar(grid(np.stack([c[:, t] for c in cycles], axis=1)), (t + 1) / num_frames)
            for t in range(num_frames)]

  series = {tag: s for tag, s in read_scalars(os.path.join(model_dir, CHECKPOINT_DIR)).items()
            if tag not in NOT_LOSS_TERMS}
  with atomic_directory(output_dir) as temporary:
    for name, image in pictures.items():
      save_png(image, os.path.join(temporary, name))
    save_gif(frames, os.path.join(temporary, "traversals.gif"), fps)
    names = list(pictures) + ["traversals.gif", PICTURES_RECORD]
    write_json_atomically(os.path.join(temporary, PICTURES_RECORD), {
        "geometry": geometry, "geometry_description": describe_geometry(geometry, model.code_size),
        "num_traversal_dimensions": len(dimensions), "pruned_dimensions": pruned_dimensions(prior_draws)})
    if series:
      plot_curves(series, os.path.join(temporary, "training_curves.png"))
      names.append("training_curves.png")
    else:
      print(f"[visualize] no training summaries in {os.path.join(model_dir, CHECKPOINT_DIR)}: no training curves",
            flush=True)
  return [os.path.join(output_dir, name) for name in names]


def main(argv=None):
  parser = cli.ArgumentParser(description="Pictures of a trained model: reconstructions, latent traversals "
                                   "(PNG grids and a GIF), prior samples and training curves.")
  parser.add_argument("model_dir", help="a trained model directory (the train step's output, e.g. output/X/model)")
  parser.add_argument("--out", help="output directory (default: MODEL_DIR/../visualizations)")
  parser.add_argument("--num_images", type=int, default=16, help="images reconstructed and prior samples drawn")
  parser.add_argument("--traversal_images", type=int, default=3, help="images whose codes are traversed")
  parser.add_argument("--num_values", type=int, default=9, help="columns of the traversal PNGs")
  parser.add_argument("--num_frames", type=int, default=20, help="frames of the traversal animation")
  parser.add_argument("--seed", type=int, default=0, help="seed of the images and prior draws shown")
  parser.add_argument("--overwrite", action="store_true", help="replace an existing output directory")
  args = parser.parse_args(argv)
  paths = cli.main_guard(visualize, args.model_dir, args.out, num_images=args.num_images, seed=args.seed,
                         num_traversal_images=args.traversal_images, num_values=args.num_values,
                         num_frames=args.num_frames, overwrite=args.overwrite)
  print("[visualize] wrote:")
  for path in paths:
    print(f"  {path}")


if __name__ == "__main__":
  main(sys.argv[1:])
