"""Time up front: the whole job's estimate and the --quick preset."""

import os

from conftest import dlib_config
from evaluation import evaluate  # noqa: F401  (registers the metric configurables)
from evaluation import job_estimate

METRICS = ("beta_vae_sklearn", "factor_vae_metric", "mig", "dci", "sap_score")


def study_metric_configs():
  return {m: dlib_config(f"config/unsupervised_study_v1/metric_configs/{m}.gin") for m in METRICS}


def test_encoded_images_follow_dlib_sample_sizes_and_the_bindings():
  configs = study_metric_configs()
  counts = {m: job_estimate.encoded_images(job_estimate.metric_settings(c, [])) for m, c in configs.items()}
  assert counts == {"beta_vae_sklearn": 2 * 64 * 15000, "factor_vae_metric": 10000 + 64 * 15000,
                    "mig": 10000, "dci": 15000, "sap_score": 15000}
  quick = {m: job_estimate.encoded_images(job_estimate.metric_settings(c, job_estimate.QUICK_METRIC_BINDINGS))
           for m, c in configs.items()}
  assert quick == {"beta_vae_sklearn": 2 * 64 * 450, "factor_vae_metric": 1000 + 64 * 450, "mig": 1000,
                   "dci": 1500, "sap_score": 1500}
  assert job_estimate.encoded_images({"evaluation.evaluation_fn": "@irs"}) is None


def test_estimate_is_printed_once_at_the_second_window_with_the_cpu_advice(capsys):
  configs = study_metric_configs()
  estimate = job_estimate.JobEstimate(configs, [], batch_size=64, has_gpu=False)
  estimate(100, 0.5, 300000)  # the first window includes compiling the step: not used
  assert capsys.readouterr().out == ""
  estimate(200, 8.0, 300000)
  estimate(300, 8.0, 300000)
  out = capsys.readouterr().out.splitlines()
  training = (300000 - 200) / 8.0
  encoding = (2 * 64 * 15000 + 10000 + 64 * 15000 + 40000) / (8.0 * 64 * job_estimate.ENCODED_PER_TRAINED_IMAGE)
  from submission import cli  # pylint: disable=import-outside-toplevel
  assert out[0].startswith(f"[estimate] whole job about {cli.format_duration(training + encoding)}: training to "
                           f"step 300000 {cli.format_duration(training)} at 8.0 steps/s, then metrics at least "
                           f"{cli.format_duration(encoding)}")
  assert len(out) == 2 and "--quick" in out[1] and "no GPU" in out[1]
  with_gpu = job_estimate.JobEstimate({"irs": configs["mig"]}, [], 64, has_gpu=True).message(0, 10., 1000)
  assert "--quick" not in with_gpu


def test_quick_flag_applies_the_preset_and_marks_the_run(monkeypatch, capsys, tmp_path):
  from applications import run_local  # pylint: disable=import-outside-toplevel
  calls = []
  monkeypatch.setattr(run_local, "run_local", lambda *args, **kwargs: calls.append(kwargs))
  output = ["--output", os.path.join(str(tmp_path), "run")]
  run_local.main(["gin_configs/beta_vae.gin", "--quick", "--metric_bindings", "mig.num_train = 50"] + output)
  run_local.main(["gin_configs/beta_vae.gin", "--quick", "--steps", "10"] + output)
  run_local.main(["gin_configs/beta_vae.gin"] + output)
  assert [c["steps"] for c in calls] == [job_estimate.QUICK_STEPS, 10, None]
  assert calls[0]["metric_bindings"] == list(job_estimate.QUICK_METRIC_BINDINGS) + ["mig.num_train = 50"]
  assert [c["preset"] for c in calls] == ["quick", "quick", None] and calls[2]["metric_bindings"] == []
  out = capsys.readouterr().out
  assert out.count("[quick] preset for a first look") == 2 and "look: 10 training steps" in out


def test_quick_scores_are_marked_in_scores_json_and_the_report(tmp_path):
  from conftest import read_json  # pylint: disable=import-outside-toplevel
  from applications import report  # pylint: disable=import-outside-toplevel
  from evaluation import pipeline  # pylint: disable=import-outside-toplevel
  pipeline.write_score_table(str(tmp_path), {"mig": {"discrete_mig": 0.25, "elapsed_time": 1.}}, "quick")
  assert read_json(os.path.join(tmp_path, "scores.json")) == {"mig": {"discrete_mig": 0.25}, "preset": "quick"}
  assert "quick preset" in report.quick_banner("quick") and report.quick_banner(None) == ""
