"""``./run_local.sh``'s command line: the arguments are checked before TensorFlow is imported, then
``evaluation.pipeline`` runs, and the pictures and the run's page are drawn.

    python -m applications.run_local GIN_FILE [--dataset NAME] [--steps N] [--output DIR] [--metrics LIST]
                                              [--resume] [--overwrite] [--time_budget S] [--gin_bindings B ...]
                                              [--metric_bindings B ...] [--no_representation_cache]
                                              [--metric_workers N] [--quick]

Importing TensorFlow costs 10-15 s; checking the gin file, the numbers, the metric names and the output directory
first answers a typo in about a second.
"""

import argparse
import os
import shlex
import sys

from evaluation.pipeline_checks import DEFAULT_METRIC_WORKERS, claim_run
from evaluation import job_estimate
from submission import cli, output_lock
from submission.layout import RunLayout
from evaluation.metrics.table import DEFAULT_METRICS

ENVIRONMENT_HELP = """environment variables:
  DISENTANGLEMENT_LIB_DATA  where data sets are read (run_local.sh default: ./data); a missing dSprites file
                            is rendered there, any other missing data set is an error naming the path
  TF_CPP_MIN_LOG_LEVEL      TensorFlow's log level (run_local.sh default: 2, warnings and errors only)
  CUDA_VISIBLE_DEVICES      which GPUs TensorFlow may use (training prints the device it uses)

output: OUT/model, OUT/postprocessed/mean, OUT/metrics/mean/<metric>, OUT/visualizations,
        OUT/scores.json and OUT/scores.csv (dlib's layout, see README), OUT/report.html (open it in a browser)"""


def run_local(gin_file, output_dir, **options):
  """The whole job: ``evaluation.pipeline.run_pipeline(gin_file, output_dir, **options)``, then the pictures
  (``OUT/visualizations``, drawn when missing), ``OUT/reproduce.sh`` and ``OUT/report.html``. Returns the scores."""
  from applications import report  # pylint: disable=import-outside-toplevel  (TensorFlow: only once checked)
  from evaluation import pipeline  # pylint: disable=import-outside-toplevel
  with output_lock.claim(output_dir):  # the pictures and the page too are this run's to write
    scores = pipeline.run_pipeline(gin_file, output_dir, **options)
    command = run_local_command(gin_file, output_dir, {
        "quick": options.get("preset") == job_estimate.QUICK_PRESET, "dataset": options.get("dataset"),
        "steps": options.get("steps"), "metrics": ",".join(options.get("metrics", DEFAULT_METRICS)),
        "time_budget": options.get("time_budget"), "gin_bindings": list(options.get("gin_bindings", ())),
        "metric_bindings": list(options.get("metric_bindings", ()))})
    page = report.write_run_report(output_dir, command)  # draws the pictures first when they are missing
  pictures = RunLayout(output_dir).pictures
  print(f"pictures in {pictures}: " + ", ".join(sorted(os.listdir(pictures))))
  print(f"report: {page}")
  return scores


def run_local_command(gin_file, output_dir, options):
  """The ``./run_local.sh`` command line of a run; ``options`` maps each option to its value (None and empty
  values are left out, True is a bare flag, lists are one option with several arguments)."""
  words = ["./run_local.sh", gin_file, "--output", output_dir]
  for option, value in options.items():
    if value is None or value is False or value == [] or value == ():
      continue
    words.append(f"--{option}")
    if value is not True:
      words += [str(v) for v in value] if isinstance(value, (list, tuple)) else [str(value)]
  return " ".join(shlex.quote(word) for word in words)


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
                      help="comma-separated metric names (evaluation/metrics/table.py: dlib's unsupervised_study_v1 "
                      "configs and the project's dci_es, infomec, mig_sup, dcimig; default: %(default)s)")
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
  for name, value in (("the gin file", args.gin_file), ("--dataset", args.dataset), ("--output", args.output)):
    cli.main_guard(cli.check_not_empty, name, [value])
  cli.main_guard(cli.check_not_empty, "a binding of --gin_bindings or --metric_bindings",
                 cli.gin_bindings(args) + cli.metric_bindings(args))
  output = args.output or os.path.join("output", os.path.splitext(os.path.basename(args.gin_file))[0])
  metrics = [m.strip() for m in args.metrics.split(",") if m.strip()]
  steps, metric_bindings = args.steps, cli.metric_bindings(args)
  if args.quick:
    steps = job_estimate.QUICK_STEPS if steps is None else steps
    metric_bindings = list(job_estimate.QUICK_METRIC_BINDINGS) + metric_bindings  # the user's come later: they win
  run = dict(dataset=args.dataset, steps=steps, metrics=metrics, resume=args.resume, overwrite=args.overwrite,
             time_budget=args.time_budget, gin_bindings=cli.gin_bindings(args), metric_bindings=metric_bindings,
             metric_workers=args.metric_workers, preset=job_estimate.QUICK_PRESET if args.quick else None)
  # Claimed before TensorFlow is imported, so that a second writer of the output stops at once; the pipeline
  # claims it again (this process already holds it).
  claim = cli.main_guard(claim_run, args.gin_file, output, steps, metrics, args.resume, args.overwrite,
                         args.time_budget, args.metric_workers)
  with claim:
    if args.quick:
      print(job_estimate.describe_quick(steps), flush=True)
    cli.main_guard(run_local, args.gin_file, output, **run)


if __name__ == "__main__":
  main(sys.argv[1:])
