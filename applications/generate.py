"""Samples from a trained model's own prior, decoded and saved as one grid image.

    python -m applications.generate MODEL_DIR --out FILE.png [--num N] [--seed S]

MODEL_DIR is a training output directory (``tfhub/`` and ``results/``; a pipeline output directory holding
``model/`` works too). Latents come from the exported ``prior_latents`` signature {num, seed} → {latent_vectors}:
N(0, I) for the Gaussian models, the uniform distribution on the sphere or torus for ΔVAE, Σ ~ IW(Ψ, ν) then
z ~ N(0, Σ) for CHyVAE, and so on, each model's latent space deciding. They are decoded with the ``decoder``
signature and turned into pixel means the way the model's loss reads the decoder output
(``reconstruction_activation`` in ``MODEL_DIR/model_card.json``: sigmoid for 'logits', tanh/2 + 0.5
for 'tanh'), through ``applications.visualize.TrainedModel``. The grid has ceil(√N) columns and 2-pixel white
gutters between tiles (``applications.visualize.grid``); the PNG is written to a temporary file and renamed into
place. The same seed gives the same picture.
"""

import os
import sys

import numpy as np

from applications import visualize
from submission import cli, layout
from submission.atomic import atomic_path
from submission.errors import UserError
from submission.layout import RunLayout

MAX_SAMPLES = 4096


def resolve_model_dir(model_dir):
  """``model_dir`` itself, or its ``model/`` subdirectory when given a pipeline output directory."""
  for candidate in (model_dir, RunLayout(model_dir).model):
    if os.path.isdir(layout.export_dir(candidate)):
      return candidate
  raise UserError(f"{model_dir} holds no exported model ({layout.export_dir(model_dir)} does not exist); "
                  f"pass a training output directory")


def generate(model_dir, out, num=64, seed=0):
  if not 1 <= num <= MAX_SAMPLES:
    raise UserError(f"--num must be between 1 and {MAX_SAMPLES}, got {num}")
  if not 0 <= seed < 2**63:
    raise UserError(f"--seed must be a non-negative integer below 2**63, got {seed}")
  if not out.lower().endswith(".png"):
    raise UserError(f"--out must name a .png file, got {out}")
  directory = os.path.dirname(os.path.abspath(out))
  if not os.path.isdir(directory):
    raise UserError(f"the directory of --out, {directory}, does not exist")
  model_dir = resolve_model_dir(model_dir)
  model = visualize.TrainedModel(model_dir)
  picture = visualize.to_pil(visualize.grid(visualize.near_square(model.decode(model.prior(num, [seed, 0])))))
  with atomic_path(out) as temporary:
    picture.save(temporary, format="PNG")
  print(f"[generate] {num} prior samples of {model_dir} (seed {seed}) written to {out}")
  return np.asarray(picture)


def main(argv=None):
  parser = cli.ArgumentParser(description="Decode samples from a trained model's prior into a PNG grid.")
  parser.add_argument("model_dir", help="training output directory (with tfhub/ and results/)")
  parser.add_argument("--out", required=True, help="PNG file to write")
  parser.add_argument("--num", type=int, default=64, help="number of samples (default %(default)s)")
  parser.add_argument("--seed", type=int, default=0, help="random seed (default %(default)s)")
  args = parser.parse_args(argv)
  cli.main_guard(generate, args.model_dir, args.out, num=args.num, seed=args.seed)


if __name__ == "__main__":
  main(sys.argv[1:])
