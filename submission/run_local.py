"""``./run_local.sh``'s command line: the arguments are checked before TensorFlow is imported, then
``submission.pipeline`` runs.

    python -m submission.run_local GIN_FILE [--dataset NAME] [--steps N] [--output DIR] [--metrics LIST]
                                            [--resume] [--overwrite] [--time_budget S] [--gin_bindings B ...]
                                            [--metric_bindings B ...] [--no_representation_cache]
                                            [--metric_workers N] [--quick]

Importing TensorFlow costs 10-15 s; checking the gin file, the numbers, the metric names and the output directory
first answers a typo in about a second.
"""

import argparse
import os
import sys
import tempfile

from evaluation import workers
from submission import cli, job_estimate
from submission.errors import UserError
from submission.study import DEFAULT_METRICS, metric_config

# Metrics evaluated at once, each in its own process with cores/N threads (bench/metric_suite.py measures the
# suite with 1 and 2 workers; on 2 cores DCI's boosting runs beside the others).
DEFAULT_METRIC_WORKERS = min(2, workers.cpu_count())

ENVIRONMENT_HELP = """environment variables:
  DISENTANGLEMENT_LIB_DATA  where data sets are read (run_local.sh default: ./data); a missing dSprites file
                            is rendered there, any other missing data set is an error naming the path
  TF_CPP_MIN_LOG_LEVEL      TensorFlow's log level (run_local.sh default: 2, warnings and errors only)
  CUDA_VISIBLE_DEVICES      which GPUs TensorFlow may use (training prints the device it uses)

output: OUT/model, OUT/postprocessed/mean, OUT/metrics/mean/<metric>, OUT/visualizations,
        OUT/scores.json and OUT/scores.csv (dlib's layout, see README), OUT/report.html (open it in a browser)"""


def check_run(gin_file, output_dir, steps, metrics, resume, overwrite, time_budget, metric_workers=1):
  """The checks of a pipeline run that need no TensorFlow; a UserError for the first that fails."""
  if metric_workers < 1:
    raise UserError(f"--metric_workers must be at least 1, got {metric_workers}")
  if not os.path.isfile(gin_file):
    raise UserError(f"gin config {gin_file} does not exist")
  if steps is not None and steps < 1:
    raise UserError(f"--steps must be at least 1, got {steps}")
  if time_budget is not None and time_budget <= 0:
    raise UserError(f"--time_budget must be a positive number of seconds, got {time_budget:g}")
  if not metrics:
    raise UserError(f"--metrics names no metric; give one or more of {', '.join(DEFAULT_METRICS)}, ...")
  for metric in metrics:
    metric_config(metric)
  if os.path.exists(output_dir) and not (resume or overwrite):
    raise UserError(f"output directory {output_dir} already exists; pass --resume to continue it or "
                    f"--overwrite to replace it")
  # The output's parent receives the temporary siblings an output is written to (and an --overwrite's new run).
  check_writable(os.path.dirname(os.path.abspath(output_dir)), f"output directory {output_dir}")


def check_writable(directory, purpose):
  """A UserError unless ``directory`` exists and takes new entries, or could be created; ``purpose`` names what
  it is for in the message."""
  existing = directory
  while not os.path.exists(existing):
    existing = os.path.dirname(existing)
  if not os.path.isdir(existing):
    raise UserError(f"cannot create {purpose}: {existing} is a file, not a directory")
  try:
    os.rmdir(tempfile.mkdtemp(dir=existing, prefix=".write-test-"))
  except OSError as e:
    raise UserError(f"cannot create {purpose}: {existing} is not writable ({e.strerror})") from e


def main(argv=None):
  parser = cli.ArgumentParser(
      prog="run_local.sh", description="Train a model, export its mean representation and score it with "
      "disentanglement_lib's metrics (dlib's unsupervised_study_v1 configs).",
      formatter_class=argparse.RawDescriptionHelpFormatter, epilog=ENVIRONMENT_HELP)
  parser.add_argument("gin_file", help="model config, e.g. gin_configs/deltavae.gin")
  parser.add_argument("--dataset", help="override dataset.name (e.g. dsprites_full, cars3d, mpi3d_toy)")
  parser.add_argument("--steps", type=int, help="override model.training_steps")
  parser.add_argument("--output", help="output directory (default: output/<gin file name>)")
  parser.add_argument("--metrics", default=",".join(DEFAULT_METRICS),
                      help="comma-separated dlib metric config names (default: %(default)s)")
  parser.add_argument("--resume", action="store_true", help="continue an interrupted run in the output directory")
  parser.add_argument("--overwrite", action="store_true", help="replace an existing output directory")
  parser.add_argument("--quick", action="store_true",
                      help=f"a first look on a CPU: {job_estimate.QUICK_STEPS} steps (unless --steps) and small "
                      f"metric samples; scores marked quick")
  parser.add_argument("--time_budget", type=float, help="stop training after this many seconds, then export")
  parser.add_argument("--gin_bindings", nargs="+", action="append", default=[], help="extra model gin bindings")
  cli.add_metric_bindings_arguments(parser)
  parser.add_argument("--metric_workers", type=int, default=DEFAULT_METRIC_WORKERS,
                      help="metrics evaluated at once, each in its own process (default: %(default)s)")
  args = parser.parse_args(argv)
  output = args.output or os.path.join("output", os.path.splitext(os.path.basename(args.gin_file))[0])
  metrics = [m.strip() for m in args.metrics.split(",") if m.strip()]
  steps, metric_bindings = args.steps, cli.metric_bindings(args)
  if args.quick:
    steps = job_estimate.QUICK_STEPS if steps is None else steps
    metric_bindings = list(job_estimate.QUICK_METRIC_BINDINGS) + metric_bindings  # the user's come later: they win
  run = dict(dataset=args.dataset, steps=steps, metrics=metrics, resume=args.resume, overwrite=args.overwrite,
             time_budget=args.time_budget, gin_bindings=cli.gin_bindings(args), metric_bindings=metric_bindings,
             metric_workers=args.metric_workers, preset=job_estimate.QUICK_PRESET if args.quick else None)
  cli.main_guard(check_run, args.gin_file, output, steps, metrics, args.resume, args.overwrite,
                 args.time_budget, args.metric_workers)
  if args.quick:
    print(job_estimate.describe_quick(steps), flush=True)
  from submission import pipeline  # pylint: disable=import-outside-toplevel  (TensorFlow: only once checked)
  cli.main_guard(pipeline.run_pipeline, args.gin_file, output, **run)


if __name__ == "__main__":
  main(sys.argv[1:])
