"""Samples from a trained model's own prior, decoded and saved as one grid image.

    python -m submission.generate MODEL_DIR --out FILE.png [--num N] [--seed S]

MODEL_DIR is a training output directory (``tfhub/`` and ``results/``; a pipeline output directory holding
``model/`` works too). Latents come from the exported ``prior_latents`` signature {num, seed} → {latent_vectors}:
N(0, I) for the Gaussian models, the uniform distribution on the sphere or torus for ΔVAE, Σ ~ IW(Ψ, ν) then
z ~ N(0, Σ) for CHyVAE, and so on, each model's latent space deciding. They are decoded with the ``decoder``
signature and turned into pixel means the way the model's loss reads the decoder output
(``reconstruction_loss.activation`` in ``MODEL_DIR/results/gin/train.gin``: sigmoid for 'logits', tanh/2 + 0.5
for 'tanh'). The grid has ceil(√N) columns, 2-pixel white gutters, one row per ceil(√N) samples; the PNG is
written to a temporary file and renamed into place. The same seed gives the same picture.
"""

import argparse
import math
import os
import sys
import uuid

import numpy as np
import tensorflow as tf
from PIL import Image

from submission import cli
from submission.errors import UserError
from submission.results import EXPORT_DIR, RESULTS_DIR, gin_value

GUTTER = 2
MAX_SAMPLES = 4096


def resolve_model_dir(model_dir):
  """``model_dir`` itself, or its ``model/`` subdirectory when given a pipeline output directory."""
  for candidate in (model_dir, os.path.join(model_dir, "model")):
    if os.path.isdir(os.path.join(candidate, EXPORT_DIR)):
      return candidate
  raise UserError(f"{model_dir} holds no exported model ({os.path.join(model_dir, EXPORT_DIR)} does not exist); "
                  f"pass a training output directory")


def decoder_activation(model_dir):
  """``reconstruction_loss.activation`` from the model's train.gin ('logits', dlib's default, if not recorded)."""
  train_gin = os.path.join(model_dir, RESULTS_DIR, "gin", "train.gin")
  activation = gin_value(train_gin, "reconstruction_loss.activation") if os.path.exists(train_gin) else None
  activation = activation or "logits"
  if activation not in ("logits", "tanh"):
    raise UserError(f"{train_gin} sets reconstruction_loss.activation = {activation!r}; expected 'logits' or 'tanh'")
  return activation


def pixel_means(decoder_output, activation):
  """NumPy version of ``submission.losses.pixel_means``: sigmoid for 'logits', tanh/2 + 0.5 for 'tanh'."""
  x = np.asarray(decoder_output, np.float64)
  if activation == "logits":
    return 1. / (1. + np.exp(-x))
  return np.tanh(x) / 2. + 0.5


def sample_images(model_dir, num, seed):
  """Pixel means [num, H, W, C] in [0, 1] of decoded prior samples."""
  module = tf.saved_model.load(os.path.join(model_dir, EXPORT_DIR))
  missing = {"prior_latents", "decoder"} - set(module.signatures)
  if missing:
    raise UserError(f"{model_dir} exports no {' or '.join(sorted(missing))} signature; re-export it with this "
                    f"version of submission.train")
  latents = module.signatures["prior_latents"](num=tf.constant(num, tf.int32),
                                               seed=tf.constant([seed, 0], tf.int64))["latent_vectors"]
  decoded = module.signatures["decoder"](latent_vectors=latents)["images"].numpy()
  return pixel_means(decoded, decoder_activation(model_dir))


def image_grid(images, gutter=GUTTER):
  """uint8 [rows·(H+g)+g, cols·(W+g)+g, C] with a white background; tile k at row k // cols, column k % cols."""
  num, height, width, channels = images.shape
  cols = math.ceil(math.sqrt(num))
  rows = math.ceil(num / cols)
  grid = np.full((rows * (height + gutter) + gutter, cols * (width + gutter) + gutter, channels), 255, np.uint8)
  tiles = np.rint(np.clip(images, 0., 1.) * 255.).astype(np.uint8)
  for k in range(num):
    top = gutter + (k // cols) * (height + gutter)
    left = gutter + (k % cols) * (width + gutter)
    grid[top:top + height, left:left + width] = tiles[k]
  return grid


def write_png(grid, path):
  if grid.shape[-1] not in (1, 3):
    raise UserError(f"cannot save {grid.shape[-1]}-channel images as PNG (1 or 3 channels)")
  picture = Image.fromarray(grid[..., 0] if grid.shape[-1] == 1 else grid)
  directory = os.path.dirname(os.path.abspath(path))
  if not os.path.isdir(directory):
    raise UserError(f"the directory of --out, {directory}, does not exist")
  temporary = os.path.join(directory, f".{os.path.basename(path)}.partial-{uuid.uuid4().hex[:8]}")
  try:
    picture.save(temporary, format="PNG")
    os.replace(temporary, path)
  finally:
    if os.path.exists(temporary):
      os.remove(temporary)
  return path


def generate(model_dir, out, num=64, seed=0):
  if not 1 <= num <= MAX_SAMPLES:
    raise UserError(f"--num must be between 1 and {MAX_SAMPLES}, got {num}")
  if not 0 <= seed < 2**63:
    raise UserError(f"--seed must be a non-negative integer below 2**63, got {seed}")
  if not out.lower().endswith(".png"):
    raise UserError(f"--out must name a .png file, got {out}")
  model_dir = resolve_model_dir(model_dir)
  grid = image_grid(sample_images(model_dir, num, seed))
  write_png(grid, out)
  print(f"[generate] {num} prior samples of {model_dir} (seed {seed}) written to {out}")
  return grid


def main(argv=None):
  parser = argparse.ArgumentParser(description="Decode samples from a trained model's prior into a PNG grid.")
  parser.add_argument("model_dir", help="training output directory (with tfhub/ and results/)")
  parser.add_argument("--out", required=True, help="PNG file to write")
  parser.add_argument("--num", type=int, default=64, help="number of samples (default %(default)s)")
  parser.add_argument("--seed", type=int, default=0, help="random seed (default %(default)s)")
  args = parser.parse_args(argv)
  cli.main_guard(generate, args.model_dir, args.out, num=args.num, seed=args.seed)


if __name__ == "__main__":
  main(sys.argv[1:])
