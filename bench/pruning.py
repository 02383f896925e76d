"""Benchmark: does PVAE prune 32 initial latent dimensions towards a data set's number of factors?

    python bench/pruning.py [--steps N] [--dataset dsprites_full] [--num_latent 32] [--output DIR]
                            [--quick_metrics] [--eval_steps N] [--resume | --overwrite]

Trains, with the same settings (gin_configs/pvae.gin: dlib's conv networks, batch 64, Adam 1e-4, Bernoulli loss,
λ_od = 20, λ_d = 2, ``--num_latent`` dimensions), two models through the whole pipeline (train → mean
representation → dlib's metrics):

* PVAE (``gin_configs/pvae.gin``): DIP-VAE-I with hard-concrete L0 gates (τ = 0.1, β = 0.05);
* an unpruned DIP-VAE-I (``gin_configs/dip_vae_i.gin`` with ``dip_vae.lambda_od = 20``,
  ``dip_vae.lambda_d_factor = 0.1``, i.e. λ_d = 2, and the same latent size).

It prints PVAE's number of active dimensions (deterministic gate > 0) and expected L0 over training (from the
TensorBoard summaries), the number of active units of both models (Burda et al. 2016: Var_x E[z_j | x] > 0.01,
over 1000 observations) and the five scores of dlib's unsupervised study (BetaVAE, FactorVAE, MIG, DCI, SAP)
side by side. Data sets with known factors: rendered dSprites (``dsprites_full``: 5 factors;
``dsprites_noshape``: 4), read from $DISENTANGLEMENT_LIB_DATA (``python -m submission.data generate dsprites``).
``--quick_metrics`` binds the ``--quick`` preset's small metric sample sizes (``evaluation/metrics/table.py``; the
scores are then not comparable to dlib's).

Smoke run (seconds on CPU; numbers meaningless):
    python bench/pruning.py --steps 20 --dataset dummy_data --num_latent 8 --eval_steps 2 --quick_metrics \\
        --batch_size 8 --output /tmp/pruning_smoke --overwrite
"""

import argparse
import os
import sys
import time

import numpy as np

REPOSITORY_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from evaluation import evaluate, pipeline  # noqa: E402
from evaluation.metrics import table  # noqa: E402
from submission import cli, layout  # noqa: E402
from submission.layout import RunLayout  # noqa: E402
from submission.data import named_data  # noqa: E402
from submission.training_curves import read_scalars  # noqa: E402

PVAE_CONFIG = os.path.join(REPOSITORY_ROOT, "gin_configs", "pvae.gin")
DIP_CONFIG = os.path.join(REPOSITORY_ROOT, "gin_configs", "dip_vae_i.gin")
METRICS = table.DEFAULT_METRICS
ACTIVE_UNIT_THRESHOLD = 0.01
ACTIVE_UNIT_SAMPLES = 1000
MAX_TRAJECTORY_ROWS = 20


def scalar_series(event_dir):
  """{tag: [(step, value), ...]} from a run's TensorBoard event files."""
  return {tag: list(zip(*steps_values)) for tag, steps_values in read_scalars(event_dir).items()}


def active_units(representation_dir, data, seed=0):
  """(number of dimensions with Var_x E[z_j | x] > 0.01, latent size), over ACTIVE_UNIT_SAMPLES observations."""
  representation = evaluate.load_representation_function(representation_dir, data.observation_shape)
  codes = representation(data.sample_observations(ACTIVE_UNIT_SAMPLES, np.random.RandomState(seed)))
  return int(np.sum(np.var(codes, axis=0) > ACTIVE_UNIT_THRESHOLD)), codes.shape[1]


def subsample(points, rows=MAX_TRAJECTORY_ROWS):
  if len(points) <= rows:
    return points
  keep = np.unique(np.round(np.linspace(0, len(points) - 1, rows)).astype(int))
  return [points[i] for i in keep]


def run(args):
  start = time.time()
  log_every = args.log_every or max(1, args.steps // 50)
  common = [f"encoder.num_latent = {args.num_latent}", f"model.batch_size = {args.batch_size}",
            f"model.random_seed = {args.seed}", f"model.eval_steps = {args.eval_steps}",
            f"train_loop.log_every_steps = {log_every}"]
  runs = {
      "PVAE": (PVAE_CONFIG, common),
      "DIP-VAE-I": (DIP_CONFIG, common + ["model.name = 'dip_vae_i_unpruned'", "dip_vae.lambda_od = 20.",
                                          "dip_vae.lambda_d_factor = 0.1"]),
  }
  metric_bindings = list(table.QUICK_METRIC_BINDINGS) if args.quick_metrics else []
  print(f"[bench] {args.dataset}, {args.steps} steps, {args.num_latent} initial dimensions, batch {args.batch_size}, "
        f"seed {args.seed}, metrics {'quick' if args.quick_metrics else 'dlib sizes'}; output {args.output}",
        flush=True)
  scores, units, trajectories, data = {}, {}, {}, None
  for name, (config, bindings) in runs.items():
    output = os.path.join(args.output, name.lower().replace("-", "_"))
    print(f"\n[bench] === {name} ===", flush=True)
    scores[name] = pipeline.run_pipeline(config, output, dataset=args.dataset, steps=args.steps, metrics=METRICS,
                                         resume=args.resume, overwrite=args.overwrite, gin_bindings=bindings,
                                         metric_bindings=metric_bindings)
    data = data or named_data.load(args.dataset)  # once the pipeline has made sure the data set exists
    units[name] = active_units(os.path.join(output, "postprocessed", "mean"), data, args.seed)
    trajectories[name] = scalar_series(layout.checkpoint_dir(RunLayout(output).model))

  print(f"\n[bench] PVAE gates over training ({args.num_latent} initial dimensions; active = deterministic "
        f"gate > 0, expected L0 = sum_j P(gate_j != 0))")
  series = trajectories["PVAE"]
  expected = dict(series.get("expected_l0", []))
  print(f"{'step':>9}  {'active':>6}  {'expected_l0':>11}  {'loss':>10}")
  loss = dict(series.get("loss", []))
  for step, active in subsample(series.get("num_active_dims", [])):
    nan = float("nan")
    print(f"{step:>9}  {active:>6.0f}  {expected.get(step, nan):>11.2f}  {loss.get(step, nan):>10.2f}")

  width = 34
  names = list(runs)
  print(f"\n{'':<{width}}" + "".join(f"{n:>12}" for n in names))
  print(f"{'active units (Var E[z|x] > 0.01)':<{width}}" +
        "".join(f"{f'{units[n][0]}/{units[n][1]}':>12}" for n in names))
  for metric in METRICS:
    for key, _ in pipeline.headline(metric, scores[names[0]][metric]).items():
      row = [scores[n][metric].get(key, float("nan")) for n in names]
      print(f"{metric + '.' + key:<{width}}" + "".join(f"{v:>12.4f}" for v in row))
  print(f"\n[bench] done in {time.time() - start:.0f}s; runs under {args.output}")
  return scores, units, trajectories


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--steps", type=int, default=300000, help="training steps per model (default: dlib's 300k)")
  parser.add_argument("--dataset", default="dsprites_full", help="data set with known factors")
  parser.add_argument("--num_latent", type=int, default=32, help="latent dimensions at initialisation")
  parser.add_argument("--batch_size", type=int, default=64)
  parser.add_argument("--seed", type=int, default=0, help="model.random_seed of both runs")
  parser.add_argument("--eval_steps", type=int, default=1000, help="model.eval_steps (dlib: 1000)")
  parser.add_argument("--log_every", type=int, help="TensorBoard/progress interval (default: steps/50)")
  parser.add_argument("--output", default=os.path.join("output", "bench_pruning"), help="output directory")
  parser.add_argument("--quick_metrics", action="store_true", help="small metric sample sizes (smoke runs)")
  parser.add_argument("--resume", action="store_true", help="continue runs already in --output")
  parser.add_argument("--overwrite", action="store_true", help="replace runs already in --output")
  args = parser.parse_args(argv)
  if args.steps < 1 or args.num_latent < 1 or args.batch_size < 2:
    parser.error("--steps and --num_latent must be >= 1, --batch_size >= 2")
  cli.main_guard(run, args)


if __name__ == "__main__":
  main(sys.argv[1:])
