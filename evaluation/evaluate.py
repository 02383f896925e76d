"""Evaluation: dlib's ``evaluate_with_gin`` on TF2 — one representation × one metric config.

    python -m evaluation.evaluate --representation_dir REP --output_dir OUT --gin_config METRIC.gin [...]

Loads ``REP/tfhub`` (signature ``representation``) once, calls the metric function bound to
``evaluation.evaluation_fn`` (dlib's, unchanged, with dlib's own metric gin files, or one of the project's in
``evaluation/metrics/``), and writes ``OUT/results`` as dlib does
(``json/evaluation_results.json``, ``aggregate/evaluation.json``, ...), atomically.
"""

import inspect
import os
import sys
import time

import gin
import numpy as np
import tensorflow as tf

from evaluation import representation_cache, unsupervised_scores
from evaluation.metrics import dci_parallel, table
from submission import cli, layout, output_lock
from submission.data import named_data
from submission.errors import UserError
from submission.postprocess import resolve_auto_dataset
from submission.atomic import atomic_directory
from submission.layout import EXPORT_DIR, RESULTS_DIR
from submission.results import check_output_dir, check_saved_model, write_results

# Importing every metric's module registers its gin name (dlib's mig, dci, beta_vae_sklearn, ... and the project's
# dci_es, infomec, ...), as dlib's evaluate.py does for its own.
table.register_all()


def load_representation_signature(representation_dir):
  """The exported ``representation`` signature of a postprocess output directory."""
  path = os.path.join(representation_dir, EXPORT_DIR)
  check_saved_model(path, "postprocess the model (again) first (submission.postprocess)")
  signatures = tf.saved_model.load(path).signatures
  if "representation" not in signatures:
    raise UserError(f"{path} has no 'representation' signature (it has {', '.join(sorted(signatures))}): pass a "
                    f"postprocess output directory, e.g. OUT/postprocessed/mean, not the model")
  return signatures["representation"]


def representation_function_of(signature, observation_shape=None):
  """numpy images [n, ...] → numpy codes [n, d] float32. With ``observation_shape`` (the data's), a
  representation made for images of another shape is refused."""
  expected = list(signature.structured_input_signature[1]["images"].shape[1:])
  if observation_shape is not None and list(observation_shape) != expected:
    raise UserError(f"the representation takes images of shape {expected}, but the data set's are "
                    f"{list(observation_shape)}; check dataset.name")

  def representation_function(images):
    return signature(images=tf.convert_to_tensor(images, tf.float32))["default"].numpy()

  return representation_function


def load_representation_function(representation_dir, observation_shape=None):
  return representation_function_of(load_representation_signature(representation_dir), observation_shape)


def call_metric(evaluation_fn, data, representation_function, random_seed, artifact_dir):
  """dlib's calling convention: ``artifact_dir`` only for metrics that accept it."""
  parameters = inspect.signature(inspect.unwrap(evaluation_fn)).parameters
  accepts_artifacts = "artifact_dir" in parameters or any(
      p.kind == inspect.Parameter.VAR_KEYWORD for p in parameters.values())
  kwargs = {"artifact_dir": artifact_dir} if accepts_artifacts else {}
  return evaluation_fn(data, representation_function, random_state=np.random.RandomState(random_seed), **kwargs)


def evaluate_with_gin(representation_dir, output_dir, overwrite=False, gin_config_files=None, gin_bindings=None):
  with output_lock.claim(output_dir), cli.gin_config(gin_config_files, gin_bindings):
    return evaluate(representation_dir, output_dir, overwrite)


@gin.configurable("evaluation", denylist=["model_dir", "output_dir", "overwrite"])
def evaluate(model_dir, output_dir, overwrite=False, evaluation_fn=gin.REQUIRED, random_seed=gin.REQUIRED,
             name=""):
  """dlib's ``evaluation`` configurable; ``model_dir`` is the representation directory, as in dlib."""
  start = time.time()
  check_output_dir(output_dir, overwrite)
  signature = load_representation_signature(model_dir)  # before a data set of gigabytes is loaded
  resolve_auto_dataset(model_dir, layout.POSTPROCESS)
  data = named_data.load()
  representation_function = representation_function_of(signature, data.observation_shape)
  images_needed = representation_cache.images_to_encode()
  data, representation_function = representation_cache.cached_inputs(
      model_dir, named_data.dataset_name(), data, representation_function, images_needed,
      representation_cache.cache_setting())
  progress = representation_cache.ImageProgress(representation_cache.metric_name() or "evaluate", images_needed)
  representation_function = representation_cache.counting(representation_function, progress)
  artifact_dir = os.path.join(model_dir, "artifacts", name)
  # dlib's unsupervised scores are NaN, and dlib refuses to write them, for codes with a constant column (a pruned
  # dimension): evaluation.unsupervised_scores computes them as dlib does, defined there.
  evaluation_fn = unsupervised_scores.replacement_for(evaluation_fn)
  with dci_parallel.fits_in_parallel():  # dlib's DCI fits its factors at once, with dlib's numbers
    scores = dict(call_metric(evaluation_fn, data, representation_function, random_seed, artifact_dir))
  scores["elapsed_time"] = time.time() - start
  with atomic_directory(output_dir) as temporary:
    write_results(os.path.join(temporary, RESULTS_DIR), "evaluation", scores, os.path.join(model_dir, RESULTS_DIR))
  return scores


def main(argv=None):
  parser = cli.ArgumentParser(description="Evaluate a representation with one metric config (dlib's or the project's).")
  parser.add_argument("--representation_dir", required=True, help="a postprocess output directory")
  parser.add_argument("--output_dir", required=True)
  cli.add_gin_arguments(parser, "output_dir")
  args = parser.parse_args(argv)
  scores = cli.main_guard(evaluate_with_gin, args.representation_dir, args.output_dir, args.overwrite,
                          args.gin_config, cli.gin_bindings(args))
  for key, value in scores.items():
    print(f"{key}: {value}")


if __name__ == "__main__":
  main(sys.argv[1:])
