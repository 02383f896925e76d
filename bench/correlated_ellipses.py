"""CHyVAE vs β-VAE vs FactorVAE on CorrelatedEllipses: the FactorVAE metric and the reconstruction error per model.

    python bench/correlated_ellipses.py [--steps N] [--batch_size 50] [--metric_sizes authors|dlib|tiny]
                                        [--models chyvae,beta_vae,factor_vae] [--output DIR] [--lazy] [--overwrite]

The paper's claim (Ansari & Soh 2019, abstract; docs/models/chyvae.md §5): on CorrelatedEllipses CHyVAE disentangles
better (FactorVAE metric) *and* reconstructs better than β-VAE and FactorVAE. Each model is trained from its own
gin config (gin_configs/{chyvae,beta_vae,factor_vae}.gin) with the same network (dlib's conv encoder / deconv
decoder, d = 10), data, batch size, number of updates (FactorVAE's dlib double step count is switched off), seed and
Adam settings (lr 1e-4), then scored through the project pipeline (train → mean representation → dlib's
``factor_vae_metric`` config). Model hyper-parameters: ν = 200 (the authors' CorrelatedEllipses command), β = 4 and
γ = 30 (the dlib study's middle values; the paper's are not known); --nu/--beta/--gamma override them.

Metric sample sizes (``--metric_sizes``):
  authors  the authors' protocol through dlib's function: 200 images per vote, 800 training and 800 evaluation votes,
           5,000 images for the per-dimension scale (default). dlib's version also prunes collapsed dimensions
           (std < 0.05), which the authors' code does not.
  dlib     dlib's unsupervised_study_v1 config unchanged (64 images per vote, 10,000 + 5,000 votes).
  tiny     a few votes, to check that the script runs.
Reconstruction error: the mean per-image Bernoulli cross-entropy summed over the 4,096 pixels, decoding a posterior
sample, over ``--eval_steps`` batches after training (the train results' ``reconstruction_loss``), in nats.

Runs are kept under --output (default output/bench_correlated_ellipses/<model>); an interrupted or repeated call
continues what is there (--overwrite starts again). The data cache (0.94 GiB, ≈15 s) is rendered on first use into
$DISENTANGLEMENT_LIB_DATA/correlated_ellipses/ (default ./data, as run_local.sh) unless --lazy.
"""

import argparse
import json
import os
import sys
import time

REPOSITORY_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("DISENTANGLEMENT_LIB_DATA", os.path.join(REPOSITORY_ROOT, "data"))  # as run_local.sh

from submission.data import correlated_ellipses  # noqa: E402  (registers dataset.name 'correlated_ellipses')
from evaluation import pipeline  # noqa: E402
from submission import cli  # noqa: E402
from submission.atomic import write_json_atomically  # noqa: E402
from submission.errors import UserError  # noqa: E402

MODELS = {
    "chyvae": ("CHyVAE", "gin_configs/chyvae.gin"),
    "beta_vae": ("β-VAE", "gin_configs/beta_vae.gin"),
    "factor_vae": ("FactorVAE", "gin_configs/factor_vae.gin"),
}
METRIC_SIZES = {
    "authors": ["factor_vae_score.batch_size = 200", "factor_vae_score.num_train = 800",
                "factor_vae_score.num_eval = 800", "factor_vae_score.num_variance_estimate = 5000"],
    "dlib": [],
    "tiny": ["factor_vae_score.batch_size = 8", "factor_vae_score.num_train = 40", "factor_vae_score.num_eval = 20",
             "factor_vae_score.num_variance_estimate = 300"],
}


def model_bindings(model, args):
  """The settings every model shares, plus the one hyper-parameter each has."""
  bindings = [
      "dataset.name = 'correlated_ellipses'",
      f"model.batch_size = {args.batch_size}",
      f"model.eval_steps = {args.eval_steps}",
      f"model.random_seed = {args.seed}",
      "encoder.num_latent = 10",
      "encoder.encoder_fn = @conv_encoder",
      "decoder.decoder_fn = @deconv_decoder",
      "reconstruction_loss.loss_fn = @bernoulli_loss",
      "reconstruction_loss.activation = 'logits'",
      "vae/AdamOptimizer.learning_rate = 0.0001",
      "vae/AdamOptimizer.epsilon = 1e-08",
      f"train_loop.log_every_steps = {max(1, min(1000, args.steps // 10))}",
  ]
  if model == "chyvae":
    bindings.append(f"chyvae.nu = {args.nu}")
  elif model == "beta_vae":
    bindings.append(f"vae.beta = {args.beta}")
  elif model == "factor_vae":
    bindings += [f"factor_vae.gamma = {args.gamma}", "factor_vae.dlib_step_count = False"]
  return bindings


def read_json(path):
  with open(path) as f:
    return json.load(f)


def run(args):
  models = [m.strip() for m in args.models.split(",") if m.strip()]
  unknown = [m for m in models if m not in MODELS]
  if unknown or not models:
    raise UserError(f"unknown --models {','.join(unknown)}; choose from {','.join(MODELS)}")
  if args.steps < 1:
    raise UserError(f"--steps must be positive, got {args.steps}")
  metric_bindings = METRIC_SIZES[args.metric_sizes]
  correlated_ellipses.render_on_demand(args.lazy)  # for every step, including those outside a gin config
  rows = []
  for model in models:
    label, gin_file = MODELS[model]
    output = os.path.join(args.output, model)
    print(f"=== {label}: {args.steps} steps, batch {args.batch_size} -> {output}", flush=True)
    start = time.time()
    scores = pipeline.run_pipeline(os.path.join(REPOSITORY_ROOT, gin_file), output, steps=args.steps,
                                   metrics=("factor_vae_metric",), resume=not args.overwrite,
                                   overwrite=args.overwrite, gin_bindings=model_bindings(model, args),
                                   metric_bindings=metric_bindings)
    trained = read_json(os.path.join(output, "model", "results", "json", "train_results.json"))
    factor_vae = scores["factor_vae_metric"]
    rows.append({
        "model": label, "steps": trained["global_step"],
        "factor_vae_metric": factor_vae["eval_accuracy"], "factor_vae_metric_train": factor_vae["train_accuracy"],
        "active_dimensions": factor_vae.get("num_active_dims"),
        "reconstruction_error": trained["reconstruction_loss"],
        "train_seconds": trained["elapsed_time"], "total_seconds": time.time() - start,
    })
  print_table(rows, args)
  path = os.path.join(args.output, "results.json")
  write_json_atomically(path, {"arguments": vars(args), "rows": rows})
  return rows


def print_table(rows, args):
  print(f"\nCorrelatedEllipses, {args.steps} steps, batch {args.batch_size}, seed {args.seed}, "
        f"FactorVAE metric sizes '{args.metric_sizes}'")
  header = ["model", "steps", "FactorVAE metric", "(train votes)", "active dims", "reconstruction (nats)",
            "train s"]
  print("| " + " | ".join(header) + " |")
  print("|" + "|".join("---" for _ in header) + "|")
  for row in rows:
    active = "" if row["active_dimensions"] is None else str(row["active_dimensions"])
    print(f"| {row['model']} | {row['steps']} | {row['factor_vae_metric']:.3f} | {row['factor_vae_metric_train']:.3f} "
          f"| {active} | {row['reconstruction_error']:.1f} | {row['train_seconds']:.0f} |")


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--steps", type=int, default=150000,
                      help="training steps (updates) per model; default %(default)s, the authors' command")
  parser.add_argument("--batch_size", type=int, default=50, help="default %(default)s (the authors')")
  parser.add_argument("--eval_steps", type=int, default=100,
                      help="batches for the reconstruction error after training (default %(default)s)")
  parser.add_argument("--metric_sizes", choices=sorted(METRIC_SIZES), default="authors")
  parser.add_argument("--models", default=",".join(MODELS), help="comma-separated subset of %(default)s")
  parser.add_argument("--nu", type=float, default=200., help="CHyVAE degrees of freedom (default %(default)s)")
  parser.add_argument("--beta", type=float, default=4., help="β-VAE β (default %(default)s)")
  parser.add_argument("--gamma", type=float, default=30., help="FactorVAE γ (default %(default)s)")
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--output", default=os.path.join("output", "bench_correlated_ellipses"))
  parser.add_argument("--lazy", action="store_true", help="render batches on demand instead of the cached grid")
  parser.add_argument("--overwrite", action="store_true", help="retrain instead of continuing earlier runs")
  args = parser.parse_args(argv)
  cli.main_guard(run, args)


if __name__ == "__main__":
  main(sys.argv[1:])
