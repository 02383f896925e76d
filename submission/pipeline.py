"""The whole dlib pipeline for one model: train → postprocess (mean) → evaluate → score table.

    python -m submission.pipeline GIN_FILE [--dataset NAME] [--steps N] [--output DIR] [--metrics LIST]
                                           [--resume] [--overwrite] [--time_budget S] [--gin_bindings B ...]

(``./run_local.sh`` runs this after preparing the environment.) Layout under the output directory, as dlib's
``dlib_reproduce`` writes it:

    model/                          train step (tf_checkpoint/, tfhub/, results/)
    postprocessed/mean/             representation (tfhub/, results/)
    metrics/mean/<metric>/results/  one per metric config
    visualizations/                 reconstructions, traversals (PNG, GIF), prior samples, training curves
    scores.json, scores.csv         the score table
    report.html, reproduce.sh       the run's page (evaluation.report) and the command that made it

Metrics are dlib's own ``unsupervised_study_v1`` metric configs, unchanged.
"""

import argparse
import csv
import json
import os
import shutil
import sys
import time

import gin
import tensorflow as tf

import submission.compat  # noqa: F401  (must precede dlib imports)
from disentanglement_lib.utils import resources
from evaluation import batch, evaluate, report, visualize
from submission import cli, job_estimate, postprocess, train
from submission.atomic import atomic_file
from submission.data import dsprites_render, named_data
from submission.errors import UserError
from submission.study import DEFAULT_METRICS, POSTPROCESS_CONFIG, headline, metric_config


ENVIRONMENT_HELP = """environment variables:
  DISENTANGLEMENT_LIB_DATA  where data sets are read (run_local.sh default: ./data); a missing dSprites file
                            is rendered there, any other missing data set is an error naming the path
  TF_CPP_MIN_LOG_LEVEL      TensorFlow's log level (run_local.sh default: 2, warnings and errors only)
  CUDA_VISIBLE_DEVICES      which GPUs TensorFlow may use (training prints the device it uses)

output: OUT/model, OUT/postprocessed/mean, OUT/metrics/mean/<metric>, OUT/visualizations,
        OUT/scores.json and OUT/scores.csv (dlib's layout, see README), OUT/report.html (open it in a browser)"""


def ensure_dataset(name):
  """Renders dSprites when its file is missing (the main command must work offline on a fresh machine); for any
  other missing data set, one line naming the expected path and where the official files come from."""
  missing = named_data.missing_paths(name)
  dsprites_file = os.path.join(named_data.data_root(), named_data.DSPRITES_FILE)
  if missing == [dsprites_file]:
    print(f"[data] {dsprites_file} not found: rendering dSprites there (a re-rendering in the official format, "
          f"not DeepMind's file; about 30 s, 3.1 GB)", flush=True)
    dsprites_render.write_dsprites_npz(named_data.data_root())
  elif missing:
    raise UserError(named_data.missing_message(name))


def run_pipeline(gin_file, output_dir, dataset=None, steps=None, metrics=DEFAULT_METRICS, resume=False,
                 overwrite=False, time_budget=None, gin_bindings=(), metric_bindings=(), preset=None):
  """Runs every step not already complete; returns {metric: {key: value}}. ``preset`` ('quick') marks the
  scores and the report (the caller has applied the preset's settings)."""
  if not os.path.isfile(gin_file):
    raise UserError(f"gin config {gin_file} does not exist")
  configs = {metric: metric_config(metric) for metric in metrics}
  if os.path.exists(output_dir) and not (resume or overwrite):
    raise UserError(f"output directory {output_dir} already exists; pass --resume to continue it or "
                    f"--overwrite to replace it")
  bindings = list(gin_bindings)
  if dataset:
    bindings.append(f"dataset.name = '{dataset}'")
  if steps is not None:
    bindings.append(f"model.training_steps = {int(steps)}")
  if time_budget is not None:
    bindings.append(f"train_loop.time_budget_seconds = {float(time_budget)}")

  model_dir = os.path.join(output_dir, "model")
  representation_dir = os.path.join(output_dir, "postprocessed", "mean")
  pictures_dir = os.path.join(output_dir, "visualizations")
  if overwrite and os.path.exists(output_dir):
    shutil.rmtree(output_dir)
  with cli.gin_config([gin_file], bindings):
    dataset_name, training_steps = named_data.dataset_name(), gin.query_parameter("model.training_steps")
    batch_size = gin.query_parameter("model.batch_size")
    trained = training_complete(model_dir, training_steps)
    if trained:
      train.check_same_configuration(model_dir)
  if not trained:
    ensure_dataset(dataset_name)
    estimate = job_estimate.JobEstimate(configs, metric_bindings, batch_size,
                                        bool(tf.config.list_physical_devices("GPU")))
    train.train_with_gin(model_dir, gin_config_files=[gin_file], gin_bindings=bindings, resume=resume,
                         on_log=estimate)
    for derived in (representation_dir, os.path.join(output_dir, "metrics"), pictures_dir):
      shutil.rmtree(derived, ignore_errors=True)  # made from an earlier state of the model
  if not os.path.isdir(representation_dir):
    print("[postprocess] mean representation", flush=True)
    postprocess.postprocess_with_gin(model_dir, representation_dir, gin_config_files=[resources.get_file(
        POSTPROCESS_CONFIG)])

  scores = {}
  comparer = batch.ConfigComparer({metric: [config] for metric, config in configs.items()}, metric_bindings)
  for index, (metric, config) in enumerate(configs.items(), 1):
    metric_dir = os.path.join(output_dir, "metrics", "mean", metric)
    pair = batch.Pair(representation_dir, metric, (config,), tuple(metric_bindings), metric_dir)
    if not comparer.is_complete(pair):
      print(f"[evaluate {index}/{len(configs)}] {metric} ...", flush=True)
      start = time.time()
      evaluate.evaluate_with_gin(representation_dir, metric_dir, overwrite=True, gin_config_files=[config],
                                 gin_bindings=list(metric_bindings))
      print(f"[evaluate {index}/{len(configs)}] {metric} done in {time.time() - start:.0f}s", flush=True)
    with open(os.path.join(metric_dir, batch.RESULTS_FILE)) as f:
      scores[metric] = json.load(f)
  write_score_table(output_dir, scores, preset)
  if not os.path.isdir(pictures_dir):
    visualize.visualize(model_dir, pictures_dir)
  print(f"pictures in {pictures_dir}: " + ", ".join(sorted(os.listdir(pictures_dir))))
  command = report.run_local_command(gin_file, output_dir, {
      "quick": preset == job_estimate.QUICK_PRESET, "dataset": dataset, "steps": steps, "metrics": ",".join(metrics),
      "time_budget": time_budget,
      "gin_bindings": list(gin_bindings), "metric_bindings": list(metric_bindings)})
  print(f"report: {report.write_run_report(output_dir, command)}")
  return scores


def training_complete(model_dir, training_steps):
  """Training finished (results written) and reached ``training_steps`` (a time budget may have stopped it)."""
  results_file = os.path.join(model_dir, "results", "json", "train_results.json")
  if not os.path.exists(results_file):
    return False
  with open(results_file) as f:
    return json.load(f).get("global_step", 0) >= training_steps


def write_score_table(output_dir, scores, preset=None):
  """scores.json ({metric: {key: value}}, plus "preset": "quick" for a quick run), scores.csv and the table."""
  rows = [(metric, key, value) for metric, values in scores.items() for key, value in headline(metric, values).items()]
  table = {metric: headline(metric, values) for metric, values in scores.items()}
  with atomic_file(os.path.join(output_dir, "scores.json")) as f:
    json.dump(dict(table, preset=preset) if preset else table, f, indent=2)
  with atomic_file(os.path.join(output_dir, "scores.csv")) as f:
    writer = csv.writer(f)
    writer.writerow(["metric", "score", "value"])
    writer.writerows(rows)
  width = max([len(f"{m}.{k}") for m, k, _ in rows] + [10])
  print("\n" + "score".ljust(width) + "  value")
  print("-" * (width + 9))
  for metric, key, value in rows:
    print(f"{metric}.{key}".ljust(width) + f"  {value:.4f}")
  if preset:
    print(f"({preset} preset: not comparable to dlib-size scores)")
  print(f"\nscores written to {os.path.join(output_dir, 'scores.json')} and scores.csv")


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
  parser.add_argument("--metric_bindings", nargs="+", action="append", default=[],
                      help="extra gin bindings for every metric (e.g. mig.num_train=1000)")
  args = parser.parse_args(argv)
  output = args.output or os.path.join("output", os.path.splitext(os.path.basename(args.gin_file))[0])
  metrics = [m.strip() for m in args.metrics.split(",") if m.strip()]
  steps, metric_bindings = args.steps, cli.flatten(args.metric_bindings)
  if args.quick:
    steps = job_estimate.QUICK_STEPS if steps is None else steps
    print(job_estimate.describe_quick(steps), flush=True)
    metric_bindings = list(job_estimate.QUICK_METRIC_BINDINGS) + metric_bindings  # the user's come later: they win
  cli.main_guard(run_pipeline, args.gin_file, output, dataset=args.dataset, steps=steps, metrics=metrics,
                 resume=args.resume, overwrite=args.overwrite, time_budget=args.time_budget,
                 gin_bindings=cli.gin_bindings(args), metric_bindings=metric_bindings,
                 preset=job_estimate.QUICK_PRESET if args.quick else None)


if __name__ == "__main__":
  main(sys.argv[1:])
