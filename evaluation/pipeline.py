"""dlib's pipeline for one model: train → postprocess (mean) → evaluate → score table, each step skipped when its
output is complete and current.

    run_pipeline(gin_file, output_dir, ...)     (``./run_local.sh`` through ``applications.run_local``, and every
                                                 point of ``evaluation.sweep``)

It writes ``model/``, ``postprocessed/mean/``, ``metrics/mean/<metric>/``, ``scores.json``, ``scores.csv`` and
``provenance.json`` under the output directory (``submission.layout``, as dlib's ``dlib_reproduce`` lays them
out); the pictures and the run's page are the applications' (``applications.run_local``).

Metrics are named in ``evaluation/metrics/table.py``: dlib's own ``unsupervised_study_v1`` metric configs,
unchanged, and the project's (``dci_es``, ``infomec``, ``mig_sup``, ``dcimig``).
"""

import csv
import json
import os
import shutil

import gin
import tensorflow as tf

from disentanglement_lib.utils import resources
from evaluation import batch, job_estimate, workers
from evaluation.metrics import table
from evaluation.metrics.table import DEFAULT_METRICS, headline, metric_config
from evaluation.pipeline_checks import DEFAULT_METRIC_WORKERS, claim_run
from submission import cli, layout, postprocess, provenance, train
from submission.atomic import atomic_directory, atomic_file
from submission.data import named_data
from submission.errors import UserError
from submission.layout import RunLayout
from submission.results import saved_model_complete
from submission.study import POSTPROCESS_CONFIG


def run_pipeline(gin_file, output_dir, dataset=None, steps=None, metrics=DEFAULT_METRICS, resume=False,
                 overwrite=False, time_budget=None, gin_bindings=(), metric_bindings=(),
                 metric_workers=DEFAULT_METRIC_WORKERS, preset=None):
  """Runs every step not already complete; returns {metric: {key: value}}. ``preset`` ('quick') marks the
  scores (the caller has applied the preset's settings)."""
  with claim_run(gin_file, output_dir, steps, metrics, resume, overwrite, time_budget, metric_workers):
    return _run_pipeline(gin_file, output_dir, dataset, steps, metrics, resume, overwrite, time_budget,
                         gin_bindings, metric_bindings, metric_workers, preset)


def _run_pipeline(gin_file, output_dir, dataset, steps, metrics, resume, overwrite, time_budget, gin_bindings,
                  metric_bindings, metric_workers, preset):
  if overwrite and os.path.exists(output_dir):
    # The complete old run stays in place until the new one is: the new run is made beside it, then renamed over it.
    with atomic_directory(output_dir) as new_output_dir:
      scores = run_pipeline(gin_file, new_output_dir, dataset, steps, metrics, time_budget=time_budget,
                            gin_bindings=gin_bindings, metric_bindings=metric_bindings,
                            metric_workers=metric_workers, preset=preset)
    print(f"[overwrite] the new run replaced {output_dir} (the paths above are its temporary name)", flush=True)
    return scores
  configs = {metric: metric_config(metric) for metric in metrics}
  # Every metric binding is checked here, before hours of training could be lost to a typo in one.
  comparer = batch.ConfigComparer({metric: [config] for metric, config in configs.items()}, metric_bindings)
  bindings = list(gin_bindings)
  if dataset:
    bindings.append(f"dataset.name = '{dataset}'")
  if steps is not None:
    bindings.append(f"model.training_steps = {int(steps)}")
  if time_budget is not None:
    bindings.append(f"train_loop.time_budget_seconds = {float(time_budget)}")

  run = RunLayout(output_dir)
  model_dir, representation_dir = run.model, run.representation
  with cli.gin_config([gin_file], bindings):
    dataset_name, training_steps = named_data.dataset_name(), gin.query_parameter("model.training_steps")
    batch_size = gin.query_parameter("model.batch_size")
    trained = training_complete(model_dir, training_steps)
    train.check_same_configuration(model_dir)
    if not trained and os.path.isdir(model_dir):
      train.check_checkpoint(model_dir)  # before what was made from the model is removed below
    if not trained:  # inside the run's gin config: the files a data set needs may depend on it
      named_data.make_missing(dataset_name)  # makes a missing generated file (e.g. dSprites' rendering); else one error
  if not trained:
    remove_outputs(output_dir, RunLayout.MODEL_OUTPUTS)  # made from the model that training is about to change
    estimate = job_estimate.JobEstimate(configs, metric_bindings, batch_size,
                                        bool(tf.config.list_physical_devices("GPU")))
    train.train_with_gin(model_dir, gin_config_files=[gin_file], gin_bindings=bindings, resume=resume,
                         on_log=estimate)
    provenance.record(output_dir, dataset_name)
  if not representation_complete(representation_dir):
    remove_outputs(output_dir, RunLayout.REPRESENTATION_OUTPUTS)
    print("[postprocess] mean representation", flush=True)
    postprocess.postprocess_with_gin(model_dir, representation_dir, gin_config_files=[resources.get_file(
        POSTPROCESS_CONFIG)])

  scores = evaluate_metrics(representation_dir, output_dir, configs, metric_bindings, comparer, metric_workers)
  write_score_table(output_dir, scores, preset)
  return scores


def evaluate_metrics(representation_dir, output_dir, configs, metric_bindings, comparer, metric_workers):
  """Evaluates the metrics not already complete (``metric_workers`` at a time, longest first); returns their
  results {metric: {key: value}}."""
  pairs = {metric: batch.Pair(representation_dir, metric, (config,), tuple(metric_bindings),
                              RunLayout(output_dir).metric(metric))
           for metric, config in configs.items()}
  todo = sorted((pair for pair in pairs.values() if not comparer.is_complete(pair)),
                key=lambda pair: table.longest_first(pair.metric))
  workers_used = min(metric_workers, len(todo))
  backend = workers.LocalBackend(workers_used) if workers_used > 1 else workers.InProcessBackend()
  summary = batch.run_batch(todo, backend, label="evaluate", logs=False)  # each metric's progress on the terminal
  if summary["failed"]:
    failed = summary["failures"][0]
    raise UserError(f"{failed['task']} failed: {cli.one_line(failed['error'])} (details: {failed['error_file']})")
  return {metric: read_results(pair.output_dir) for metric, pair in pairs.items()}


def read_results(metric_dir):
  with open(layout.step_results(metric_dir, layout.EVALUATION)) as f:
    return json.load(f)


def remove_outputs(output_dir, names):
  for path in (os.path.join(output_dir, name) for name in names):
    if os.path.isdir(path):
      shutil.rmtree(path)
    elif os.path.exists(path):
      os.remove(path)


def representation_complete(representation_dir):
  return saved_model_complete(layout.export_dir(representation_dir)) and os.path.isfile(
      layout.step_results(representation_dir, layout.POSTPROCESS))


def training_complete(model_dir, training_steps):
  """Training finished (results and SavedModel written) and reached ``training_steps`` (a time budget may have
  stopped it)."""
  results_file = layout.step_results(model_dir, layout.TRAIN)
  if not (os.path.exists(results_file) and saved_model_complete(layout.export_dir(model_dir))):
    return False
  with open(results_file) as f:
    return json.load(f).get("global_step", 0) >= training_steps


def write_score_table(output_dir, scores, preset=None):
  """scores.json ({metric: {key: value}}, plus "preset": "quick" for a quick run), scores.csv and the table."""
  rows = [(metric, key, value) for metric, values in scores.items() for key, value in headline(metric, values).items()]
  table = {metric: headline(metric, values) for metric, values in scores.items()}
  run = RunLayout(output_dir)
  with atomic_file(run.scores_json) as f:
    json.dump(dict(table, preset=preset) if preset else table, f, indent=2)
  with atomic_file(run.scores_csv) as f:
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
  print(f"\nscores written to {run.scores_json} and scores.csv")
