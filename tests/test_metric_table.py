"""The metric table (evaluation/metrics/table.py): every row is consistent with its config and function, and a
metric the project defines runs by name from the commands exactly as a dlib one does."""

import inspect
import os
import sys

import gin
import pytest

from conftest import FAST_ARCHITECTURE, REPOSITORY_ROOT, read_json
from evaluation import batch, job_estimate, pipeline_checks
from evaluation import evaluate  # noqa: F401  (registers ``evaluation`` and, through the table, every metric)
from evaluation.metrics import table
from submission.errors import UserError

PROJECT_METRICS = ("dci_es", "infomec", "mig_sup", "dcimig")


def configured():
  return [metric for metric in table.METRICS if metric.config]


@pytest.mark.parametrize("metric", configured(), ids=lambda m: m.name)
def test_each_row_matches_its_config_and_function(metric):
  path = table.metric_config(metric.name)
  assert os.path.isfile(path), path
  settings = job_estimate.metric_settings(path, [])
  assert settings["evaluation.evaluation_fn"] == f"@{metric.configurable}"
  # The quick preset binds only this metric's own sample sizes, each of which the config binds too.
  for binding in metric.quick:
    key = binding.split("=")[0].strip()
    assert key.startswith(metric.configurable + ".") and key in settings, binding
  if metric.encoded_images is not None:
    full = job_estimate.encoded_images(settings)
    quick = job_estimate.encoded_images(job_estimate.metric_settings(path, metric.quick))
    assert full and quick and quick * 10 <= full, (full, quick)  # the quick preset is far smaller
  function = gin.config._REGISTRY.get_match(metric.configurable).wrapped  # pylint: disable=protected-access
  assert inspect.getmodule(function).__name__ == metric.module


def test_defaults_schedule_and_errors():
  assert table.DEFAULT_METRICS == ("beta_vae_sklearn", "factor_vae_metric", "mig", "dci", "sap_score")
  assert sorted(["mig", "sap_score", "dci_es", "beta_vae_sklearn", "dci"], key=table.longest_first)[:3] == [
      "dci", "dci_es", "beta_vae_sklearn"]
  assert table.QUICK_METRIC_BINDINGS == job_estimate.QUICK_METRIC_BINDINGS
  with pytest.raises(UserError, match="unknown metric 'nope'.*dci_es"):
    table.metric_config("nope")
  assert table.headline("dci_es", {"explicitness": 0.5, "size": 1., "other": 2.}) == {"explicitness": 0.5, "size": 1.}
  assert table.label("dci_es", "explicitness") == "DCI-ES E"
  assert table.headline_keys("unknown_metric", ["a", "elapsed_time", "b"]) == ["a", "b"]


def test_project_metrics_are_named_like_dlib_ones_by_every_command():
  configs = batch.metric_configs(list(PROJECT_METRICS))
  assert {name: paths[0] for name, paths in configs.items()} == {
      name: os.path.join(REPOSITORY_ROOT, "evaluation", "metrics", "configs", name + ".gin") for name in PROJECT_METRICS}
  for name in PROJECT_METRICS:
    assert pipeline_checks.metric_config(name) == configs[name][0]
  assert table.config_label("mig") == "dlib:config/unsupervised_study_v1/metric_configs/mig.gin"
  assert table.config_label("dci_es") == "evaluation/metrics/configs/dci_es.gin"


def test_the_study_page_and_collector_carry_the_new_scores():
  from evaluation import aggregate, collect_study  # pylint: disable=import-outside-toplevel
  records = [{"metric": "dci_es", "evaluation_results.explicitness": 0.9, "evaluation_results.size": 0.5,
              "evaluation_results.best_capacity": 4, "evaluation_results.disentanglement": 0.3},
             {"metric": "mig", "evaluation_results.discrete_mig": 0.1, "evaluation_results.elapsed_time": 3.}]
  assert aggregate.headline_scores(records) == [
      ("dci_es", "evaluation_results.disentanglement"), ("dci_es", "evaluation_results.explicitness"),
      ("dci_es", "evaluation_results.size"), ("mig", "evaluation_results.discrete_mig")]
  runs = [{"metrics": {"infomec": {"infom": 0.5, "infoe": 0.2, "infoc": 0.4}, "mig": {"discrete_mig": 0.1}}}]
  assert collect_study.headlines(runs) == [("mig", "discrete_mig", "MIG"), ("infomec", "infom", "InfoM"),
                                           ("infomec", "infoe", "InfoE"), ("infomec", "infoc", "InfoC")]


def test_the_pipeline_scores_project_metrics_by_name(tmp_path):
  """``run_local --metrics dci_es,...`` end to end on a tiny model: each metric's headline keys in scores.json."""
  from applications import run_local  # pylint: disable=import-outside-toplevel
  output = str(tmp_path / "run")
  run_local.run_local(os.path.join(REPOSITORY_ROOT, "gin_configs", "beta_vae.gin"), output, dataset="dummy_data",
                      steps=2, metrics=list(PROJECT_METRICS),
                      gin_bindings=FAST_ARCHITECTURE + ["model.batch_size = 8", "model.eval_steps = 1"],
                      metric_bindings=["dci_es.num_train = 100", "dci_es.num_test = 50", "dci_es.capacities = (1, 2)",
                                       "dci_es.num_trees = 5", "infomec.num_train = 100", "mig_sup.num_train = 100",
                                       "dcimig.num_train = 100"])
  scores = read_json(os.path.join(output, "scores.json"))
  for name in PROJECT_METRICS:
    assert list(scores[name]) == [key for key, _ in table.BY_NAME[name].headline], name
  page = open(os.path.join(output, "report.html")).read()
  assert "explicitness (DCI-ES E)" in page and "evaluation/metrics/configs/infomec.gin" in page


if __name__ == "__main__":
  sys.exit(pytest.main([__file__]))
