"""./run_local.sh end to end at a tiny size: score table, files, resume, bad input."""

import csv
import json
import os
import subprocess

from conftest import REPOSITORY_ROOT

TINY = ["--dataset", "dummy_data", "--steps", "4", "--metrics", "mig,sap_score",
        "--gin_bindings", "model.batch_size = 8", "model.eval_steps = 1", "train_loop.log_every_steps = 2",
        "--metric_bindings", "mig.num_train = 200", "sap_score.num_train = 200", "sap_score.num_test = 100"]


def run_local(*args):
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
  return subprocess.run([os.path.join(REPOSITORY_ROOT, "run_local.sh"), *args], capture_output=True, text=True,
                        env=env, timeout=900, cwd=REPOSITORY_ROOT)


def test_run_local_trains_exports_scores_and_resumes(tmp_path):
  output = str(tmp_path / "run")
  first = run_local("gin_configs/beta_vae.gin", "--output", output, *TINY)
  assert first.returncode == 0, first.stderr
  assert "[train] step 4/4" in first.stdout
  for directory in ("model/tfhub", "model/results/aggregate", "postprocessed/mean/tfhub",
                    "metrics/mean/mig/results/aggregate", "metrics/mean/sap_score/results/aggregate"):
    assert os.path.isdir(os.path.join(output, directory)), directory
  with open(os.path.join(output, "scores.json")) as f:
    scores = json.load(f)
  assert set(scores) == {"mig", "sap_score"}
  with open(os.path.join(output, "metrics/mean/mig/results/json/evaluation_results.json")) as f:
    assert scores["mig"]["discrete_mig"] == json.load(f)["discrete_mig"]
  with open(os.path.join(output, "scores.csv")) as f:
    rows = list(csv.DictReader(f))
  assert [(r["metric"], r["score"]) for r in rows] == [("mig", "discrete_mig"), ("sap_score", "SAP_score")]
  assert "mig.discrete_mig" in first.stdout and "sap_score.SAP_score" in first.stdout
  # Each metric's progress reaches the terminal (the metrics run in worker processes, not into pair logs).
  assert "[mig] 200/200 images (100 %)" in first.stderr and "[sap_score] " in first.stderr
  pictures = os.listdir(os.path.join(output, "visualizations"))
  assert {"reconstructions.png", "samples.png", "traversals.gif", "training_curves.png"} <= set(pictures)
  assert "pictures in" in first.stdout
  # The whole job's estimate after the first logged windows, with the CPU advice (no GPU here), and the report.
  assert first.stdout.count("[estimate] whole job about") == 1 and "no GPU: for a first look" in first.stdout
  assert first.stdout.index("[train] step 2/4") < first.stdout.index("[estimate]") < first.stdout.index("[train] done")
  assert f"report: {os.path.join(output, 'report.html')}" in first.stdout
  assert os.path.isfile(os.path.join(output, "report.html")) and os.path.isfile(os.path.join(output, "reproduce.sh"))

  again = run_local("gin_configs/beta_vae.gin", "--output", output, *TINY)
  assert again.returncode == 2 and again.stderr.strip().startswith("error: output directory")

  resumed = run_local("gin_configs/beta_vae.gin", "--output", output, "--resume", *TINY)
  assert resumed.returncode == 0, resumed.stderr
  assert "[train]" not in resumed.stdout and "[evaluate" not in resumed.stdout  # everything was complete
  assert "mig.discrete_mig" in resumed.stdout

  # Another metric setting on --resume: only that metric is evaluated again, with the new setting.
  changed = [a if a != "mig.num_train = 200" else "mig.num_train = 150" for a in TINY]
  rescored = run_local("gin_configs/beta_vae.gin", "--output", output, "--resume", *changed)
  assert rescored.returncode == 0, rescored.stderr
  assert "[train]" not in rescored.stdout and "[evaluate] mig on " in rescored.stdout and "sap_score on " not in rescored.stdout
  with open(os.path.join(output, "metrics/mean/mig/results/json/evaluation_config.json")) as f:
    assert json.load(f)["mig.num_train"] == "150"


def test_run_local_help_and_bad_metric(tmp_path):
  shown = run_local("--help")
  assert shown.returncode == 0
  for option in ("--dataset", "--steps", "--output", "--metrics", "--resume", "--time_budget"):
    assert option in shown.stdout
  bad = run_local("gin_configs/beta_vae.gin", "--output", str(tmp_path / "x"), "--metrics", "no_such_metric")
  assert bad.returncode == 2
  assert bad.stderr.strip().splitlines() == [bad.stderr.strip()] and "no_such_metric" in bad.stderr
  assert not os.path.exists(tmp_path / "x")


def test_missing_dsprites_is_rendered_and_other_missing_data_named(tmp_path, monkeypatch, capsys):
  import pytest  # pylint: disable=import-outside-toplevel
  from submission.data import dsprites_render, named_data  # pylint: disable=import-outside-toplevel
  from submission.errors import UserError  # pylint: disable=import-outside-toplevel
  monkeypatch.setenv("DISENTANGLEMENT_LIB_DATA", str(tmp_path))
  rendered = []

  def small_render(data_dir, progress=True):  # the real call writes 3.1 GB; same code path, reduced grid
    path = os.path.join(data_dir, dsprites_render.DSPRITES_FILE)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    dsprites_render._write_npz(path, dsprites_render._subgrid_possible_values([1, 3, 2, 2, 2, 2]), progress=False)
    rendered.append(path)
    return path

  monkeypatch.setattr(dsprites_render, "write_dsprites_npz", small_render)
  named_data.make_missing("dsprites_full")  # what the pipeline calls before training
  assert rendered == [os.path.join(str(tmp_path), dsprites_render.DSPRITES_FILE)]
  assert "not found: making it (dSprites re-rendered by submission.data.dsprites_render" in capsys.readouterr().out
  assert named_data.missing_paths("dsprites_full") == []
  named_data.make_missing("dsprites_full")  # present now: nothing to do
  assert len(rendered) == 1
  with pytest.raises(UserError, match=os.path.join(str(tmp_path), "cars")):
    named_data.make_missing("cars3d")
  with pytest.raises(UserError, match="scream.jpg"):  # the generator cannot make the scream image
    named_data.make_missing("scream_dsprites")
  assert len(rendered) == 1
