"""Every path of a run's output tree, dlib's and the project's, spelled once.

A run (``./run_local.sh``, one sweep point) writes, as dlib's ``dlib_reproduce`` does plus the project's own files:

    OUT/
      model/                        the train step: tf_checkpoint/, tfhub/, results/, model_card.json
      postprocessed/mean/           the mean representation: tfhub/, results/, representation_cache/
      metrics/mean/<metric>/        one metric config: results/
      visualizations/               reconstructions, traversals, samples, training curves (+ pictures.json),
                                    and on dSprites the heart's orientation loops (periodic_loops.json, .png)
      scores.json, scores.csv       the score table
      report.html, reproduce.sh     the run's page and the command that made it
      provenance.json               the commit(s) and the data set's provenance
      sweep_point.json              (sweep points only) the point's definition

Every step directory (model, representation, metric) holds dlib's ``results/{gin,json,aggregate}``, e.g.
``results/json/train_results.json`` and ``results/gin/train.gin``; model and representation hold a SavedModel
in ``tfhub/``. A directory of many runs (a sweep, a batch) gathers their scores in ``aggregated_results.{json,csv,
png}`` and ``report.html`` (``evaluation.aggregate``).
"""

import dataclasses
import os

# dlib's names inside a step directory.
EXPORT_DIR = "tfhub"
RESULTS_DIR = "results"
CHECKPOINT_DIR = "tf_checkpoint"
MODEL_CARD_FILE = "model_card.json"
PICTURES_DIR = "visualizations"
SCORES_JSON, SCORES_CSV = "scores.json", "scores.csv"
REPORT_FILE = "report.html"  # a run's page, and a study's
PROVENANCE_FILE = "provenance.json"
REPRESENTATION_CACHE_DIR = "representation_cache"  # in a representation directory: the codes of every observation
AGGREGATED_RESULTS = "aggregated_results"  # evaluation.aggregate's tables and plot, PREFIX.{json,csv,png}
PICTURES_RECORD = "pictures.json"  # in a pictures directory: what was drawn, on which geometry
LOOPS_RECORD, LOOPS_PICTURE = "periodic_loops.json", "periodic_loops.png"  # evaluation.periodicity's measure

# dlib's names of a run's representation and metric trees: <run>/postprocessed/<p>, <run>/metrics/<p>/<metric>.
POSTPROCESSED_DIR = "postprocessed"
METRICS_DIR = "metrics"

# A step's name in dlib's results files: results/json/<step>_results.json and results/gin/<step>.gin.
TRAIN, POSTPROCESS, EVALUATION = "train", "postprocess", "evaluation"


def export_dir(step_dir):
  return os.path.join(step_dir, EXPORT_DIR)


def results_json(step_dir, name):
  """``step_dir/results/json/<name>`` (e.g. ``train_results.json``, ``train_config.json``)."""
  return os.path.join(step_dir, RESULTS_DIR, "json", name)


def step_results(step_dir, step):
  """The results dlib writes for ``step`` (TRAIN, POSTPROCESS, EVALUATION)."""
  return results_json(step_dir, f"{step}_results.json")


def step_gin(step_dir, step):
  """The operative gin config dlib records for ``step``."""
  return os.path.join(step_dir, RESULTS_DIR, "gin", f"{step}.gin")


def step_aggregate(step_dir, step):
  """The flat record of ``step`` dlib writes: its config and results, and every earlier step's (``EVALUATION``'s is
  what dlib's aggregation gathers)."""
  return os.path.join(step_dir, RESULTS_DIR, "aggregate", f"{step}.json")


def representation_cache_dir(representation_dir):
  return os.path.join(representation_dir, REPRESENTATION_CACHE_DIR)


def representation_cache(representation_dir, dataset_name):
  """The cached codes of ``dataset_name``'s observations under the representation of ``representation_dir``."""
  return os.path.join(representation_cache_dir(representation_dir), f"{dataset_name}.npz")


def aggregated_results(directory):
  """The path prefix of ``evaluation.aggregate``'s outputs for the runs under ``directory``."""
  return os.path.join(directory, AGGREGATED_RESULTS)


def checkpoint_dir(model_dir):
  return os.path.join(model_dir, CHECKPOINT_DIR)


def model_card(model_dir):
  return os.path.join(model_dir, MODEL_CARD_FILE)


@dataclasses.dataclass(frozen=True)
class RunLayout:
  """The paths of one run's output directory ``root``."""
  root: str

  # What is made from the trained model, and the part of it made from its representation: removed when the
  # step they come from is redone.
  REPRESENTATION_OUTPUTS = (POSTPROCESSED_DIR, METRICS_DIR, SCORES_JSON, SCORES_CSV, REPORT_FILE)
  MODEL_OUTPUTS = REPRESENTATION_OUTPUTS + (PICTURES_DIR,)

  def path(self, *parts):
    return os.path.join(self.root, *parts)

  @property
  def model(self):
    return self.path("model")

  @property
  def representation(self):
    return self.path(POSTPROCESSED_DIR, "mean")

  def metric(self, name, postprocessing="mean"):
    return self.path(METRICS_DIR, postprocessing, name)

  @property
  def metrics(self):
    return self.path(METRICS_DIR, "mean")

  @property
  def pictures(self):
    return self.path(PICTURES_DIR)

  @property
  def scores_json(self):
    return self.path(SCORES_JSON)

  @property
  def scores_csv(self):
    return self.path(SCORES_CSV)

  @property
  def pictures_record(self):
    return self.path(PICTURES_DIR, PICTURES_RECORD)

  @property
  def report(self):
    return self.path(REPORT_FILE)

  @property
  def command(self):
    return self.path("reproduce.sh")

  @property
  def provenance(self):
    return self.path(PROVENANCE_FILE)

  @property
  def sweep_point(self):
    return self.path("sweep_point.json")
