"""Sweeps: the study file's shape and numbering (= dlib's), a tiny sweep run end to end, killed, and resumed."""

import json
import os
import signal
import subprocess
import sys
import time

import gin
import pytest

from conftest import FAST_ARCHITECTURE, REPOSITORY_ROOT, TINY_BINDINGS, kill_worker_when, read_json, run_python
from disentanglement_lib.config.unsupervised_study_v1 import sweep as dlib_sweep
from evaluation import sweep, workers
from evaluation import pipeline  # noqa: F401
from submission import cli, train  # noqa: F401  (train registers the model configurables)
from submission.errors import UserError

STUDY_FILE = os.path.join(REPOSITORY_ROOT, "gin_configs", "sweeps", "unsupervised_study_v1.toml")

def tiny_settings(name):
  """A sweep file's top: the tiny training settings on dummy_data, scored with one cheap metric."""
  return f"""
name = "{name}"
metrics = ["mig"]
metric_bindings = ["mig.num_train = 100"]
bindings = {json.dumps(TINY_BINDINGS + FAST_ARCHITECTURE)}
"""


# 2 models × 2 seeds on dummy_data, a few steps each, scored with one cheap metric; plus one point with a batch
# size of 0 (model_num 10), which must fail alone (found by the point itself: the check before any point starts
# looks for unknown names, not bad values).
TINY_SWEEP = tiny_settings("tiny") + """

[[grid]]
datasets = ["dummy_data"]
seeds = 2

[[grid.models]]
gin = "gin_configs/beta_vae.gin"
sweep = { "vae.beta" = [2.0] }

[[grid.models]]
gin = "gin_configs/beta_tc_vae.gin"
sweep = { "beta_tc_vae.beta" = [3.0] }

[[grid]]
first_model_num = 10
datasets = ["dummy_data"]
seeds = [0]

[[grid.models]]
gin = "gin_configs/beta_vae.gin"
bindings = ["model.batch_size = 0"]
"""


def test_study_file_has_dlibs_shape_and_numbering():
  settings, points = sweep.load_sweep(STUDY_FILE)
  assert settings["metrics"] == sorted(os.path.splitext(f)[0] for f in os.listdir(os.path.dirname(
      pipeline.metric_config("mig"))) if f.endswith(".gin"))  # all 9 study metric configs
  dlib_points = [p for p in points if p["model_num"] < 12600]
  assert [p["model_num"] for p in dlib_points] == list(range(12600))  # 7 data sets × 6 models × 6 values × 50 seeds
  project_points = [p for p in points if p["model_num"] >= 12600]
  assert len(project_points) == 4 * 7 * 6 * 50  # deltavae, chyvae, pvae, ervae
  assert [p["model_num"] for p in project_points] == list(range(12600, 12600 + len(project_points)))
  for model_num in (0, 49, 50, 299, 300, 650, 1000, 1234, 1600, 1799, 1800, 5432, 9000, 12599):
    dlib_bindings, _ = dlib_sweep.UnsupervisedStudyV1().get_model_config(model_num)
    point = points[model_num]
    assert f"model.model_num = {model_num}" in point["bindings"]
    config = effective_config(point)
    for binding in dlib_bindings:  # dlib's model <model_num> and ours bind every one of dlib's keys alike
      key, value = binding.split(" = ", 1)
      assert same_value(config.get(key), value), (model_num, binding, config.get(key))
  for point in project_points[::50]:  # every hyper-parameter value of this project's models is a valid gin binding
    config = effective_config(point)
    swept = point["bindings"][-4]
    assert config[swept.split(" = ")[0]] == swept.split(" = ")[1]
    assert config["model.batch_size"] == "64" and config["model.training_steps"] == "300000"


def effective_config(point):
  """{key: gin text} that the point's gin file plus its bindings bind."""
  with cli.gin_config([sweep.resolve_gin_file(point["gin_file"])], point["bindings"]):
    return cli.parse_gin_text(gin.config_str())


def same_value(mine, theirs):
  if mine is None:
    return False
  try:
    return float(mine) == float(theirs)
  except ValueError:
    return mine.strip("'\"") == theirs.strip("'\"")


def test_sweep_values_become_gin_literals_and_dlib_configs_resolve():
  assert [sweep.gin_literal(v) for v in (1.0, 10, "i", "@vae()", True, [1, "a"])] == [
      "1.0", "10", "'i'", "@vae()", "True", "[1, 'a']"]
  shared = sweep.resolve_gin_file("dlib:config/unsupervised_study_v1/model_configs/shared.gin")
  assert shared.endswith(os.path.join("unsupervised_study_v1", "model_configs", "shared.gin"))
  assert sweep.resolve_gin_file("gin_configs/beta_vae.gin") == os.path.join(REPOSITORY_ROOT, "gin_configs",
                                                                            "beta_vae.gin")
  points = [{"model_num": n} for n in (0, 1, 2, 5, 7)]
  assert [p["model_num"] for p in sweep.select_points(points, "0,2-5")] == [0, 2, 5]
  with pytest.raises(UserError, match="selects no point"):
    sweep.select_points(points, "3-4")
  for out_of_range in ("100-200", "0,8", "0-1000000000000", "5-2"):  # a typo; the last one also never allocated
    with pytest.raises(UserError, match=f"is not a range of the sweep's model numbers \\(0..7\\)"):
      sweep.select_points(points, out_of_range)


def test_sweep_default_metrics_are_the_pipelines(tmp_path):
  sweep_file = tmp_path / "no_metrics.toml"
  sweep_file.write_text(TINY_SWEEP.replace('metrics = ["mig"]\n', ""))
  settings, _ = sweep.load_sweep(str(sweep_file))
  assert settings["metrics"] == list(pipeline.DEFAULT_METRICS)


def test_bad_sweep_files_are_one_clear_error(tmp_path):
  bad = tmp_path / "bad.toml"
  for text, message in ((TINY_SWEEP.replace("seeds = 2", "seedz = 2"), "unknown key"),
                        (TINY_SWEEP.replace("gin_configs/beta_vae.gin", "gin_configs/nope.gin"), "does not exist"),
                        (TINY_SWEEP.replace("[[grid]]\nfirst_model_num = 10", "[[grid]]\nfirst_model_num = 1"),
                         "model_num 1 is already used"),
                        (TINY_SWEEP.replace('metrics = ["mig"]', 'metrics = ["mgi"]'),
                         "grid 1: unknown metric 'mgi'"),  # before any point starts
                        ("grid = 3", "at least one"), ("x = [", "not valid TOML")):
    bad.write_text(text)
    with pytest.raises(UserError, match=message):
      sweep.load_sweep(str(bad))
  missing = tmp_path / "missing.toml"
  result = run_python(["-m", "evaluation.sweep", str(missing)])
  assert result.returncode == 2 and result.stderr.strip() == f"error: sweep file {missing} does not exist"


def test_unknown_names_in_a_sweep_file_are_refused_naming_the_grid_and_model(tmp_path):
  sweep_file = str(tmp_path / "bad.toml")
  for change, message in (
      (('"beta_tc_vae.beta" = [3.0]', '"beta_tc_vae.betta" = [3.0]'),
       "grid 1, model 2: gin configuration: Configurable 'beta_tc_vae' doesn't have a parameter named 'betta'"),
      (('bindings = ["model.batch_size = 0"]', 'bindings = ["vea.beta = 2."]'),
       "grid 2, model 1: gin configuration: No configurable matching 'vea'"),
      (('bindings = ["model.batch_size = 0"]', 'bindings = ["encoder.encoder_fn = @no_such_encoder"]'),
       "grid 2, model 1: gin configuration: No configurable matching reference '@no_such_encoder'"),
      (('bindings = ["model.batch_size = 0"]', 'bindings = ["vae.beta = [1.,"]'),
       "grid 2, model 1: gin configuration: binding 'vae.beta = \\[1.,' has an unclosed bracket"),
      (('datasets = ["dummy_data"]\nseeds = [0]', 'datasets = ["dummy_data", "no_such_data"]\nseeds = [0]'),
       "grid 2, model 1: unknown dataset.name 'no_such_data'; known names: .*dummy_data"),
      (('metric_bindings = ["mig.num_train = 100"]', 'metric_bindings = ["mig.num_trian = 100"]'),
       "grid 1, model 1: gin configuration: Configurable 'mig' doesn't have a parameter named 'num_trian'")):
    with open(sweep_file, "w") as f:
      f.write(TINY_SWEEP.replace(*change))
    _, points = sweep.load_sweep(sweep_file)
    with pytest.raises(UserError, match=f"^{sweep_file}: {message}"):
      sweep.check_settings(sweep.settings_to_check(points))
  _, points = sweep.load_sweep(STUDY_FILE)  # dlib's study: 21,000 points are 60 checks, and all pass
  assert len(sweep.settings_to_check(points)) == 60
  sweep.check_settings(sweep.settings_to_check(points))


def test_a_sweep_with_an_unknown_name_starts_no_point_and_its_dry_run_needs_no_tensorflow(tmp_path):
  sweep_file = tmp_path / "bad.toml"
  sweep_file.write_text(TINY_SWEEP.replace('datasets = ["dummy_data"]\nseeds = [0]', 'datasets = ["no_such_data"]\n'
                                           'seeds = [0]'))
  output = tmp_path / "out"
  result = run_python(["-m", "evaluation.sweep", str(sweep_file), "--output", str(output), "--workers", "1"])
  assert result.returncode == 2, result.stderr
  errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
  assert len(errors) == 1 and errors[0].startswith(f"error: {sweep_file}: grid 2, model 1: unknown dataset.name "
                                                   f"'no_such_data'; known names: "), result.stderr
  assert not os.path.exists(output)  # no point started: no sweep_point.json, no log, no error file
  # The check needs the configurables, which need TensorFlow: a worker does it, so a dry run stays light.
  dry = run_python(["-c", f"import sys\nfrom evaluation import sweep\ntry:\n  sweep.main([{str(sweep_file)!r}, "
                          f"'--dry_run'])\nexcept SystemExit:\n  pass\nprint('tensorflow' in sys.modules)"])
  assert dry.returncode == 0 and dry.stdout.splitlines()[-1] == "False", dry.stdout + dry.stderr


def test_a_point_started_with_other_settings_is_not_touched(tmp_path):
  sweep_file = tmp_path / "tiny.toml"
  sweep_file.write_text(TINY_SWEEP)
  output = tmp_path / "out"
  (output / "0" / "model").mkdir(parents=True)
  (output / "0" / "sweep_point.json").write_text(json.dumps({"gin_file": "gin_configs/beta_vae.gin",
                                                             "bindings": ["vae.beta = 16.0"], "metric_bindings": []}))
  summary = sweep.run_sweep(str(sweep_file), output=str(output), points_spec="0")  # nothing is dispatched
  assert (summary["points"], summary["failed"], summary["completed"]) == (1, 1, 0)
  error = read_json(output / "0.error.json")
  assert error["type"] == "UserError" and "was started with bindings" in error["message"]
  assert sorted(os.listdir(output / "0")) == ["model", "sweep_point.json"]


def test_a_point_another_process_is_writing_keeps_its_record(tmp_path):
  sweep_file = tmp_path / "tiny.toml"
  sweep_file.write_text(TINY_SWEEP)
  output = tmp_path / "out"
  holder = subprocess.Popen([sys.executable, "-c", "import sys, time\nfrom submission import output_lock\n"
                             "output_lock.claim(sys.argv[1])\nprint('held', flush=True)\ntime.sleep(600)",
                             str(output / "0")], cwd=REPOSITORY_ROOT, stdout=subprocess.PIPE, text=True)
  try:
    assert holder.stdout.readline().strip() == "held"
    summary = sweep.run_sweep(str(sweep_file), output=str(output), points_spec="0")
  finally:
    holder.kill()
    holder.wait()
  assert (summary["points"], summary["failed"], summary["completed"]) == (1, 1, 0)
  assert f"is being written by pid {holder.pid}" in read_json(output / "0.error.json")["message"]
  assert not os.path.exists(output / "0" / "sweep_point.json")  # the holder's point is not redefined under it


def test_a_point_that_trained_nothing_takes_the_corrected_definition(tmp_path):
  # A point that failed on its configuration leaves only its sweep_point.json: the fixed sweep file runs it.
  (tmp_path / "0").mkdir()
  (tmp_path / "0" / "sweep_point.json").write_text(json.dumps({"gin_file": "gin_configs/beta_vae.gin",
                                                               "bindings": ["vae.beta = 'x'"], "metric_bindings": []}))
  assert sweep.definition_conflict(str(tmp_path / "0"), {"gin_file": "gin_configs/beta_vae.gin", "bindings": [
      "vae.beta = 2.0"], "metric_bindings": []}) is None


def wait_for(path, process, timeout=600):
  deadline = time.time() + timeout
  while time.time() < deadline and not os.path.exists(path):
    assert process.poll() is None, "the sweep ended before its first point completed"
    time.sleep(0.05)
  assert os.path.exists(path)


def test_tiny_sweep_runs_end_to_end_and_resumes_after_being_killed(tmp_path):
  sweep_file = tmp_path / "tiny.toml"
  sweep_file.write_text(TINY_SWEEP)
  output = tmp_path / "out"
  command = [sys.executable, "-m", "evaluation.sweep", str(sweep_file), "--output", str(output)]
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")

  # Run 1, one worker: killed (the coordinator and its worker, SIGKILL) as soon as point 0 is complete.
  process = subprocess.Popen(command + ["--workers", "1"], cwd=REPOSITORY_ROOT, env=env, start_new_session=True,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
  try:
    wait_for(output / "0" / "scores.json", process)
  finally:
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
  assert not os.path.exists(output / "3" / "scores.json")
  first = {"uuid": read_json(output / "0" / "model" / "results" / "json" / "train_results.json")["uuid"],
           "scores_mtime": os.stat(output / "0" / "scores.json").st_mtime_ns,
           "metric_uuid": read_json(output / "0" / "metrics" / "mean" / "mig" / "results" / "json" /
                                    "evaluation_results.json")["uuid"]}

  # Run 2, two workers: the completed point is skipped, the others run, the bad one fails alone.
  resumed = run_python(["-m", "evaluation.sweep", str(sweep_file), "--output", str(output), "--workers", "2"])
  assert resumed.returncode == 1, resumed.stderr
  assert "5 points, 3 completed, 1 already complete, 1 failed" in resumed.stdout
  assert "FAILED point 10" in resumed.stdout and "model.batch_size must be" in resumed.stdout
  assert read_json(output / "0" / "model" / "results" / "json" / "train_results.json")["uuid"] == first["uuid"]
  assert os.stat(output / "0" / "scores.json").st_mtime_ns == first["scores_mtime"]
  assert read_json(output / "0" / "metrics" / "mean" / "mig" / "results" / "json" /
                   "evaluation_results.json")["uuid"] == first["metric_uuid"]
  error = read_json(output / "10.error.json")
  assert error["type"] == "UserError" and "model.batch_size must be an integer at least 1, got 0" in error["message"]

  # Every point in dlib's layout, trained with its own model, seed and number.
  expected = {0: ("beta_vae", 0, "vae.beta", "2.0"), 1: ("beta_vae", 1, "vae.beta", "2.0"),
              2: ("beta_tc_vae", 0, "beta_tc_vae.beta", "3.0"), 3: ("beta_tc_vae", 1, "beta_tc_vae.beta", "3.0")}
  for model_num, (name, seed, key, value) in expected.items():
    point = output / str(model_num)
    train_config = read_json(point / "model" / "results" / "json" / "train_config.json")
    assert train_config["model.name"] == f"'{name}'" and train_config["model.random_seed"] == str(seed)
    assert train_config["model.model_num"] == str(model_num) and train_config[key] == value
    assert train_config["dataset.name"] == "'dummy_data'"
    assert os.path.isdir(point / "postprocessed" / "mean" / "tfhub")
    aggregate = read_json(point / "metrics" / "mean" / "mig" / "results" / "aggregate" / "evaluation.json")
    assert aggregate["train_config.model.model_num"] == str(model_num)
    assert "discrete_mig" in read_json(point / "scores.json")["mig"]
    assert read_json(point / "sweep_point.json")["bindings"][-3:] == [
        "dataset.name = 'dummy_data'", f"model.random_seed = {seed}", f"model.model_num = {model_num}"]
    assert os.path.exists(str(point) + ".log")

  # Run 3: nothing left to do (the failed point is left out), so no worker starts.
  again = run_python(["-m", "evaluation.sweep", str(sweep_file), "--output", str(output), "--points", "0-3"])
  assert again.returncode == 0, again.stderr
  assert "4 points, 0 completed, 4 already complete, 0 failed" in again.stdout


# Two points: a short one, and a long one whose worker is killed once it has checkpointed past the short one's end.
KILLED_SWEEP = tiny_settings("killed") + """

[[grid]]
datasets = ["dummy_data"]
seeds = [0]

[[grid.models]]
gin = "gin_configs/beta_vae.gin"
sweep = { "model.training_steps" = [6, 100000] }
"""


def trained_past_step_6(log_path):
  checkpoint = latest_checkpoint_step(os.path.join(log_path[:-len(".log")], "model", "tf_checkpoint"))
  return checkpoint is not None and checkpoint > 6


def latest_checkpoint_step(directory):
  steps = [int(name[len("model.ckpt-"):-len(".index")]) for name in (os.listdir(directory) if os.path.isdir(
      directory) else []) if name.startswith("model.ckpt-") and name.endswith(".index")]
  return max(steps, default=None)


def test_a_worker_killed_mid_point_fails_that_point_alone(tmp_path):
  sweep_file = tmp_path / "killed.toml"
  sweep_file.write_text(KILLED_SWEEP)
  output = str(tmp_path / "out")
  process = subprocess.Popen([sys.executable, "-m", "evaluation.sweep", str(sweep_file), "--output", output,
                              "--workers", "2"], cwd=REPOSITORY_ROOT, stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, text=True,
                             env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
  try:
    killed_log = kill_worker_when(process.pid, trained_past_step_6)
    stdout, _ = process.communicate(timeout=600)
  finally:
    process.kill()  # if the long point was never seen (its worker exits once orphaned)
    process.wait()
  assert killed_log is not None, "no worker was seen training the long point"
  killed, = [name for name in os.listdir(output) if os.path.join(output, name + ".log") == killed_log]
  other, = {"0", "1"} - {killed}
  assert process.returncode == 1 and "2 points, 1 completed, 0 already complete, 1 failed" in stdout, stdout
  assert f"FAILED point {killed}" in stdout
  assert "worker process died (exit code -9)" in read_json(os.path.join(output, killed + ".error.json"))["message"]
  assert not os.path.exists(os.path.join(output, killed, "model", "results"))  # its training never counted as done
  assert not os.path.exists(os.path.join(output, killed, "scores.json"))
  assert "discrete_mig" in read_json(os.path.join(output, other, "scores.json"))["mig"]


def test_local_workers_are_capped_at_the_cores_and_zero_is_refused(capsys):
  cores = workers.cpu_count()
  assert workers.make_backend("local", cores + 98).workers == cores
  assert f"--workers {cores + 98} capped at {cores}" in capsys.readouterr().err
  with pytest.raises(UserError, match="--workers must be at least 1, got 0"):
    workers.make_backend("local", 0)
