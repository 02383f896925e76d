"""Pictures of a trained model: reconstructions, latent traversals, prior samples and training curves.

    python -m applications.visualize MODEL_DIR [--out DIR] [--num_images N] [--seed S] [--num_frames F]
                                               [--overwrite]

``MODEL_DIR`` is a train step's output (``tfhub/`` with the signatures of ``submission.export``,
``model_card.json``, ``tf_checkpoint/`` with the TensorBoard summaries). The pictures go to ``--out``
(default ``MODEL_DIR/../visualizations``, beside ``model/`` as dlib's ``dlib_reproduce`` lays it out), written
into a temporary directory that replaces ``--out`` only when every file is complete:

    reconstructions.png        row 1: N inputs; row 2: each one's reconstruction (decode(z), z ~ q(z|x))
    samples.png                N decodings of prior draws (``prior_latents`` → ``decoder``), a near-square grid
    traversals.png             the first image's traversals: one row per latent dimension, one column per value
    traversals/dim_XX.png      one file per latent dimension: one row per image, one column per value
    pairs.png                  (models trained on pairs only) a few pairs drawn as training drew them (the
                               recorded ``dynamics``): row 1 the first observations, row 2 the second
    traversals.gif             animation: one row per image, one column per latent dimension; frame t moves every
                               dimension to the t-th point of a closed cycle that starts at the image's own code;
                               a bar under the grid shows the position in the cycle
    training_curves.png        each scalar the training loop logged (the loss terms), against the step
    periodic_loops.json, .png  (dSprites and its colour, noise and scream variants only) whether the mean
                               representation turns the heart's orientation into a loop: the winding numbers of the
                               orientation sweeps and their picture (``evaluation.periodicity``)
    pictures.json              what the pictures show: the latent geometry (and its description), the number of
                               traversed dimensions and the pruned ones, and per pair the factors that differ
                               (read by ``applications.report``)

Images are pixel means: sigmoid of the decoder's logits, or tanh/2 + 1/2 when the model was trained with
``reconstruction_loss.activation = 'tanh'`` (read from the model card), as dlib's ``visualize_model`` does.

Latent traversals follow the latent geometry the model card names (Euclidean, hypersphere or torus): see
``submission.traversal``.
"""

import math
import os
import sys

import gin
import matplotlib
import numpy as np
import tensorflow as tf
from PIL import Image

import submission.train  # noqa: F401  (registers every configurable a model's train.gin names)
from evaluation import periodicity
from submission import cli, layout, losses, model_card
from submission.atomic import atomic_directory, write_json_atomically
from submission.data import named_data, pairs
from submission.errors import UserError
from submission.layout import PICTURES_RECORD, RunLayout
from submission.results import check_output_dir
from submission.training_curves import read_scalars
from submission.traversal import (PADDING, PADDING_VALUE, cycle_positions, describe_geometry, grid,
                                  grid_positions, near_square, num_traversal_dimensions, pruned_dimensions,
                                  traverse)

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the non-interactive backend)

BAR_HEIGHT = 4               # the animation's progress bar
CURVE_PANEL_INCHES = (4., 3.)
CURVE_DPI = 100
NOT_LOSS_TERMS = ("steps_per_second",)
DECODE_BATCH = 256


# --- images (pure NumPy / PIL) -----------------------------------------------------------------------------------
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
    module_path = layout.export_dir(model_dir)
    if not os.path.exists(module_path):
      raise UserError(f"{module_path} does not exist: {model_dir} is not a trained model directory (submission.train)")
    self.card = model_card.require(model_dir)
    self.activation, self.dataset_name = self.card.reconstruction_activation, self.card.dataset
    self.geometry, self.code_size = self.card.geometry, self.card.code_size
    self.signatures = tf.saved_model.load(module_path).signatures

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
def training_pairs(model_dir, data, dataset_name, num, seed):
  """(first, second, [names of the factors that differ, per pair]) for ``num`` pairs drawn as the model's training
  drew them (its recorded ``dynamics``), or None when it trained on single observations."""
  train_gin = layout.step_gin(model_dir, "train")
  if not os.path.isfile(train_gin):  # exported elsewhere: nothing says how it trained
    return None
  with cli.gin_config([train_gin]):
    if gin.query_parameter("model.model").configurable.wrapped.batches is not pairs.PAIRS:
      return None
    batch, (first_factors, second_factors) = pairs.sample_pairs(data, num, np.random.RandomState([seed, 3]))
  names = [name for name, _ in named_data.entry(dataset_name).factors or ()] or [
      f"factor {i}" for i in range(first_factors.shape[1])]
  changed = [[names[i] for i in np.flatnonzero(a != b)] for a, b in zip(first_factors, second_factors)]
  return batch["first"], batch["second"], changed


def visualize(model_dir, output_dir=None, num_images=16, seed=0, num_traversal_images=3, num_values=9,
              num_frames=20, fps=10, overwrite=False):
  """Writes the pictures listed in the module docstring; returns their paths (after the atomic rename)."""
  if num_images < 1 or num_traversal_images < 1 or num_values < 2 or num_frames < 2:
    raise UserError("need num_images >= 1, num_traversal_images >= 1, num_values >= 2 and num_frames >= 2")
  model_dir = os.path.normpath(model_dir)
  output_dir = output_dir or RunLayout(os.path.dirname(model_dir)).pictures
  check_output_dir(output_dir, overwrite)
  model = TrainedModel(model_dir)
  data = named_data.load(model.dataset_name)
  random_state = np.random.RandomState(seed)
  inputs = np.asarray(data.sample_observations(max(num_images, num_traversal_images), random_state), np.float32)

  geometry = model.geometry
  prior_draws = model.prior(256, [seed, 1])  # a closed L0 gate gives exact zeros in every draw
  print(f"[visualize] latent geometry: {describe_geometry(geometry, model.code_size)}", flush=True)
  tf.random.set_seed(seed)  # the reconstructions signature draws z ~ q(z|x) from TF's global generator
  pictures = {
      "reconstructions.png": grid(np.stack([inputs[:num_images], model.reconstruct(inputs[:num_images])])),
      "samples.png": grid(near_square(model.decode(model.prior(num_images, [seed, 2])))),
  }
  record = {}
  drawn_pairs = training_pairs(model_dir, data, model.dataset_name, min(num_images, 8), seed)
  if drawn_pairs is not None:
    first, second, record["pair_changed_factors"] = drawn_pairs
    pictures["pairs.png"] = grid(np.stack([first, second]))
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

  series = {tag: s for tag, s in read_scalars(layout.checkpoint_dir(model_dir)).items()
            if tag not in NOT_LOSS_TERMS}
  factors = periodicity.sweep_factors(model.dataset_name)
  loops = (periodicity.orientation_loops(data, factors, model.locations, seed)
           if periodicity.heart_sweeps_apply(factors) else None)
  with atomic_directory(output_dir) as temporary:
    for name, image in pictures.items():
      save_png(image, os.path.join(temporary, name))
    save_gif(frames, os.path.join(temporary, "traversals.gif"), fps)
    names = list(pictures) + ["traversals.gif", PICTURES_RECORD]
    write_json_atomically(os.path.join(temporary, PICTURES_RECORD), {
        "geometry": geometry, "geometry_description": describe_geometry(geometry, model.code_size),
        "num_traversal_dimensions": len(dimensions), "pruned_dimensions": pruned_dimensions(prior_draws), **record})
    if loops is not None:
      print(f"[visualize] periodic factor: {periodicity.describe(loops['summary'])}", flush=True)
      write_json_atomically(os.path.join(temporary, layout.LOOPS_RECORD), loops)
      periodicity.plot_loops({f"{model.dataset_name}: heart orientation": loops},
                             os.path.join(temporary, layout.LOOPS_PICTURE))
      names += [layout.LOOPS_RECORD, layout.LOOPS_PICTURE]
    if series:
      plot_curves(series, os.path.join(temporary, "training_curves.png"))
      names.append("training_curves.png")
    else:
      print(f"[visualize] no training summaries in {layout.checkpoint_dir(model_dir)}: no training curves",
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
