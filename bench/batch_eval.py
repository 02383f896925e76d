"""Batch-evaluation throughput: the same (representation × metric) pairs with 1 and with 2 local workers.

    python bench/batch_eval.py [--models 4] [--metrics mig,sap_score,unsupervised,modularity_explicitness]
                               [--metric_bindings B ...] [--work_dir DIR] [--workers_list 1,2]

Trains ``--models`` small models on dlib's dummy_data with dlib's conv architecture (a few steps; they are kept
in ``--work_dir`` for the next run) and exports their mean representations. Then it evaluates every pair with
dlib's own metric configs, unchanged unless ``--metric_bindings`` says otherwise, once per worker count. Each
run starts from empty outputs and includes its workers' start-up (importing TensorFlow), as a real batch does.
The last line is

    pairs_per_min_1=<x> pairs_per_min_2=<y>

On 2 idle cores, 2 workers (1 thread each) should approach twice the rate of 1 worker (2 threads): most of a
pair's time is single-threaded (the metric's sklearn fit and NumPy), and the fixed start-up cost is paid by the
workers in parallel. The 1-minute load average is printed before and after the runs. If it is above about 0.5
per core, other processes shared the cores, and the numbers are "measured under load", not a benchmark.
"""

import argparse
import os
import shutil
import sys
import tempfile
import time


STUDY = "config/unsupervised_study_v1"
TRAIN_BINDINGS = ["dataset.name = 'dummy_data'", "model.batch_size = 8", "model.training_steps = 6",
                  "model.eval_steps = 2", "train_loop.log_every_steps = 3", "train_loop.checkpoint_every_steps = 6"]


def make_representations(work_dir, count):
  """``count`` trained models with their mean representations under work_dir/models/<i> (reused if present)."""
  from disentanglement_lib.utils import resources  # pylint: disable=import-outside-toplevel
  from submission import postprocess, train  # pylint: disable=import-outside-toplevel
  for seed in range(count):
    root = os.path.join(work_dir, "models", str(seed))
    representation = os.path.join(root, "postprocessed", "mean")
    if os.path.isdir(representation):
      continue
    shutil.rmtree(root, ignore_errors=True)
    train.train_with_gin(os.path.join(root, "model"),
                         gin_config_files=[resources.get_file(f"{STUDY}/model_configs/shared.gin")],
                         gin_bindings=TRAIN_BINDINGS + [f"model.random_seed = {seed}"])
    postprocess.postprocess_with_gin(os.path.join(root, "model"), representation,
                                     gin_config_files=[resources.get_file(f"{STUDY}/postprocess_configs/mean.gin")])
  return os.path.join(work_dir, "models", "*", "postprocessed", "mean")


def load_average():
  try:
    return os.getloadavg()[0]
  except OSError:
    return float("nan")


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--models", type=int, default=4)
  parser.add_argument("--metrics", default="mig,sap_score,unsupervised,modularity_explicitness")
  parser.add_argument("--metric_bindings", nargs="*", default=[])
  parser.add_argument("--work_dir", default=os.path.join(tempfile.gettempdir(), "bench_batch_eval"))
  parser.add_argument("--workers_list", default="1,2")
  args = parser.parse_args(argv)

  from evaluation import batch, workers  # pylint: disable=import-outside-toplevel
  os.makedirs(args.work_dir, exist_ok=True)
  pattern = make_representations(args.work_dir, args.models)
  configs = batch.metric_configs([m.strip() for m in args.metrics.split(",") if m.strip()])
  counts = [int(n) for n in args.workers_list.split(",")]
  cores = workers.cpu_count()
  print(f"[bench] {args.models} representations × {len(configs)} metrics ({', '.join(configs)}); {cores} cores; "
        f"load average before: {load_average():.2f}", flush=True)
  rates = {}
  for count in counts:
    output = os.path.join(args.work_dir, f"metrics_{count}_workers")
    shutil.rmtree(output, ignore_errors=True)
    pairs = batch.make_pairs([pattern], configs, args.metric_bindings, output_root=output)
    backend = workers.LocalBackend(workers=count)
    start = time.time()
    summary = batch.run_batch(pairs, backend, label=f"{count} worker(s)")
    seconds = time.time() - start
    if summary["failed"]:
      for failure in summary["failures"]:
        print(f"[bench] FAILED {failure['task']}: {failure['error']}", file=sys.stderr)
      raise SystemExit(f"[bench] {summary['failed']} pairs failed")
    rates[count] = len(pairs) / seconds * 60
    busy = summary["pair_seconds"]
    print(f"[bench] {count} worker(s) × {backend.threads} thread(s): {len(pairs)} pairs in {seconds:.1f} s = "
          f"{rates[count]:.2f} pairs/min (a pair's own time: mean {sum(busy) / len(busy):.1f} s, "
          f"max {max(busy):.1f} s; the rest is worker start-up and waiting)", flush=True)
  print(f"[bench] load average after: {load_average():.2f} (above ~{0.5 * cores:.1f}: measured under load)")
  print(" ".join(f"pairs_per_min_{count}={rate:.2f}" for count, rate in rates.items()))


if __name__ == "__main__":
  main(sys.argv[1:])
