"""Bad input and faults on the main job (README, "What bad input gets"): one line and a non-zero exit, and nothing
complete is ever lost — above all a complete run under an --overwrite that fails at any stage."""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import gin
import numpy as np
import pytest
import tensorflow as tf

from conftest import (FAST_ARCHITECTURE, REPOSITORY_ROOT, assert_one_error_line, dlib_config, read_json,
                      run_python)
from applications import run_local
from evaluation import evaluate, pipeline_checks, representation_cache
from submission import cli, disk_checks, model_card, optimizers, output_lock, train
from submission.data import dsprites_render, named_data
from submission.errors import UserError

GIN_FILE = os.path.join(REPOSITORY_ROOT, "gin_configs", "beta_vae.gin")
MODEL_BINDINGS = FAST_ARCHITECTURE + ["model.batch_size = 8", "model.eval_steps = 1", "train_loop.log_every_steps = 1",
                                      "train_loop.checkpoint_every_steps = 2"]
TINY_RUN = dict(dataset="dummy_data", steps=2, metrics=["mig"], gin_bindings=MODEL_BINDINGS,
                metric_bindings=["mig.num_train = 100"])


def files_of(directory):
  """{relative path: bytes} of every file under ``directory``, hidden ones included."""
  found = {}
  for root, _, names in os.walk(directory):
    for name in names:
      path = os.path.join(root, name)
      with open(path, "rb") as f:
        found[os.path.relpath(path, directory)] = f.read()
  return found


def siblings(directory):
  """Everything next to ``directory`` but itself (an --overwrite's temporary or renamed-aside copies)."""
  parent = os.path.dirname(directory)
  return sorted(set(os.listdir(parent)) - {os.path.basename(directory)})


@pytest.fixture(scope="module")
def complete_run(tmp_path_factory):
  """A complete tiny run (model, representation, one metric, scores, pictures) and its files."""
  output = str(tmp_path_factory.mktemp("complete") / "run")
  run_local.run_local(GIN_FILE, output, **TINY_RUN)
  return output, files_of(output)


@pytest.fixture
def run_copy(complete_run, tmp_path):
  """A private copy of the complete run, for tests that change it."""
  copy = str(tmp_path / "run")
  shutil.copytree(complete_run[0], copy)
  return copy


# --- 1. --overwrite never loses a complete run ------------------------------------------------------------------
def full_disk(*args):
  raise OSError(28, "No space left on device")


FAILING_OVERWRITES = {  # changes to the run, the error, a fault injected into training
    "model binding": (dict(gin_bindings=MODEL_BINDINGS + ["vae.betta = 3."]), "betta", None),
    "metric binding": (dict(metric_bindings=["mig.num_trian = 200"]), "num_trian", None),
    "training": (dict(steps=50), "No space left", full_disk),
}


@pytest.mark.parametrize("stage", sorted(FAILING_OVERWRITES))
def test_an_overwrite_failing_at_any_stage_keeps_the_complete_run(stage, complete_run, capsys, monkeypatch):
  output, files = complete_run
  changes, message, fault = FAILING_OVERWRITES[stage]
  if fault:
    monkeypatch.setattr(train.TrainingLoop, "save", fault)  # at the first checkpoint, after two steps
  with pytest.raises((UserError, OSError), match=message):
    run_local.run_local(GIN_FILE, output, overwrite=True, **dict(TINY_RUN, **changes))
  assert files_of(output) == files
  assert siblings(output) == []
  assert ("[train] step 2/50" in capsys.readouterr().out) == bool(fault)  # bad bindings: found before any step


def new_checkpoints(directory):
  """Checkpoints beyond the complete run's last one (step 2) anywhere under ``directory``."""
  names = [name for _, _, files in os.walk(directory) for name in files]
  return [name for name in names if name.startswith("model.ckpt-") and name.endswith(".index")
          and int(name[len("model.ckpt-"):-len(".index")]) > 2]


def test_an_overwrite_killed_during_training_keeps_the_complete_run(complete_run):
  output, files = complete_run
  command = [sys.executable, "-m", "applications.run_local", GIN_FILE, "--output", output, "--overwrite",
             "--dataset", "dummy_data", "--steps", "100000", "--metrics", "mig", "--gin_bindings", *MODEL_BINDINGS]
  process = subprocess.Popen(command, cwd=REPOSITORY_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
  try:
    deadline = time.time() + 300
    while time.time() < deadline and process.poll() is None and not new_checkpoints(os.path.dirname(output)):
      time.sleep(0.2)
    assert process.poll() is None and new_checkpoints(os.path.dirname(output)), "training did not start"
  finally:
    process.send_signal(signal.SIGKILL)
    process.wait()
  assert files_of(output) == files
  # Beside it: the killed new run and the lock file of its dead writer, both cleared by the next run to own it.
  assert {name.split("-")[0] for name in siblings(output)} == {".run.partial", ".run.lock"}
  with output_lock.claim(output):  # what run_local does first (the run itself is shared with other tests)
    pass
  assert siblings(output) == [] and files_of(output) == files


def test_an_overwrite_that_succeeds_replaces_the_run(run_copy):
  run_local.run_local(GIN_FILE, run_copy, overwrite=True, **dict(TINY_RUN, steps=3))
  assert read_json(os.path.join(run_copy, "model", "results", "json", "train_results.json"))["global_step"] == 3
  assert os.path.isfile(os.path.join(run_copy, "scores.json"))
  assert siblings(run_copy) == []


# --- 2. a learning rate given on --resume is the one training continues with ---------------------------------------
def checkpoint_learning_rates(model_dir):
  reader = tf.train.load_checkpoint(os.path.join(model_dir, "tf_checkpoint"))
  return [float(reader.get_tensor(name)) for name in reader.get_variable_to_shape_map() if "learning_rate" in name]


def test_a_learning_rate_changed_on_resume_is_used(tmp_path):
  model_dir = str(tmp_path / "model")
  config = [dlib_config("config/tests/methods/unsupervised/train_test.gin")]
  common = FAST_ARCHITECTURE + ["model.batch_size = 4", "model.eval_steps = 1"]
  train.train_with_gin(model_dir, gin_config_files=config, gin_bindings=common + ["model.training_steps = 2"])
  assert checkpoint_learning_rates(model_dir) == [pytest.approx(0.001)]
  train.train_with_gin(model_dir, gin_config_files=config, resume=True, gin_bindings=common + [
      "model.training_steps = 4", "AdamOptimizer.learning_rate = 0.25"])
  assert checkpoint_learning_rates(model_dir) == [0.25]


# --- 3. --resume redoes a representation that is no longer complete -----------------------------------------------
@pytest.mark.parametrize("removed", ["saved_model.pb", "variables"])
def test_resume_redoes_a_broken_representation(removed, run_copy, capsys):
  broken = os.path.join(run_copy, "postprocessed", "mean", "tfhub", removed)
  (shutil.rmtree if os.path.isdir(broken) else os.remove)(broken)
  run_local.run_local(GIN_FILE, run_copy, resume=True, **TINY_RUN)
  assert os.path.exists(broken)
  out = capsys.readouterr().out
  assert "[postprocess]" in out and "[evaluate] mig on " in out and "[train]" not in out


# --- 4. every binding is checked before the first training step ---------------------------------------------------
def test_a_bad_metric_binding_is_found_before_training(tmp_path, capsys):
  output = str(tmp_path / "run")
  with pytest.raises(UserError, match="num_trian"):
    run_local.run_local(GIN_FILE, output, **dict(TINY_RUN, metric_bindings=["mig.num_trian = 200"]))
  assert not os.path.exists(output) and "[train]" not in capsys.readouterr().out


# --- 5. one line instead of a traceback ---------------------------------------------------------------------------
def test_a_hyper_parameter_of_the_wrong_type_is_one_line_and_leaves_nothing(tmp_path):
  model_dir = str(tmp_path / "m")
  process = run_python(["-m", "submission.train", "--model_dir", model_dir, "--gin_config",
                        dlib_config("config/tests/methods/unsupervised/train_test.gin"), "--gin_bindings",
                        "model.eval_steps = 1", "vae.beta = 'x'"])
  assert_one_error_line(process, "cannot be trained with this configuration", "Expected float32")
  assert not os.path.exists(model_dir)  # so that a corrected rerun neither says "exists" nor refuses --resume


def test_a_latent_space_the_model_cannot_use_is_one_line_naming_the_accepted_kinds(tmp_path):
  model_dir = str(tmp_path / "m")
  process = run_python(["-m", "submission.train", "--model_dir", model_dir, "--gin_config",
                        dlib_config("config/tests/methods/unsupervised/train_test.gin"), "--gin_bindings",
                        "model.model = @dip_vae()", "dip_vae.lambda_od = 1.", "dip_vae.lambda_d_factor = 1.",
                        "latent_space.factory = @hypersphere"])
  assert_one_error_line(process, "dip_vae needs a latent space with a diagonal Gaussian posterior",
                        "hypersphere has a diffusion on a manifold one", "@gaussian, @l0_gated_gaussian")
  assert not os.path.exists(model_dir)


def test_an_integer_learning_rate_means_the_float():
  assert float(optimizers.adam_optimizer(learning_rate=30).learning_rate) == 30.
  assert float(optimizers.gradient_descent_optimizer(learning_rate=1).learning_rate) == 1.


def test_an_unwritable_data_directory_is_refused_before_rendering(tmp_path, monkeypatch):
  (tmp_path / "file").write_text("")
  monkeypatch.setenv("DISENTANGLEMENT_LIB_DATA", str(tmp_path / "file" / "data"))
  monkeypatch.setattr(dsprites_render, "write_dsprites_npz", lambda *args, **kwargs: pytest.fail("rendered"))
  with pytest.raises(UserError, match="DISENTANGLEMENT_LIB_DATA.*is a file"):
    named_data.make_missing("dsprites_full")


def test_a_dsprites_file_without_metadata_is_one_error(tmp_path, monkeypatch):
  monkeypatch.setenv("DISENTANGLEMENT_LIB_DATA", str(tmp_path))
  path = os.path.join(str(tmp_path), dsprites_render.DSPRITES_FILE)
  os.makedirs(os.path.dirname(path))
  np.savez(path, imgs=np.zeros((4, 64, 64), np.uint8))
  with pytest.raises(UserError, match="metadata"):
    named_data.load("dsprites_full")


@pytest.mark.parametrize("removed", ["saved_model.pb", "variables"])
def test_evaluating_an_incomplete_saved_model_is_one_error(removed, tiny_trained_model, tmp_path):
  representation_dir = str(tmp_path / "representation")
  shutil.copytree(tiny_trained_model[1], representation_dir)
  broken = os.path.join(representation_dir, "tfhub", removed)
  (shutil.rmtree if os.path.isdir(broken) else os.remove)(broken)
  with pytest.raises(UserError, match="incomplete"):
    evaluate.evaluate_with_gin(representation_dir, str(tmp_path / "out"),
                               gin_config_files=[dlib_config("config/unsupervised_study_v1/metric_configs/mig.gin")])
  assert not os.path.exists(tmp_path / "out")


# --- 5, 6 and 8: what the command line refuses before TensorFlow is imported ---------------------------------------
REFUSED_WITHOUT_TENSORFLOW = {
    "missing gin file": (["no_such.gin"], "no_such.gin does not exist"),
    "negative steps": (["gin_configs/beta_vae.gin", "--steps", "-5"], "--steps must be an integer at least 1"),
    "steps beyond int64": (["gin_configs/beta_vae.gin", "--steps", str(2**63)], "--steps must be an integer"),
    "no metrics": (["gin_configs/beta_vae.gin", "--metrics", ""], "--metrics names no metric"),
    "unknown metric": (["gin_configs/beta_vae.gin", "--metrics", "mig,mgi"], "unknown metric 'mgi'"),
    "zero time budget": (["gin_configs/beta_vae.gin", "--time_budget", "0"], "--time_budget (seconds) must be"),
    "NaN time budget": (["gin_configs/beta_vae.gin", "--time_budget", "nan"], "--time_budget (seconds) must be"),
    "infinite time budget": (["gin_configs/beta_vae.gin", "--time_budget", "inf"], "must be a positive finite number"),
    "resume and overwrite": (["gin_configs/beta_vae.gin", "--resume", "--overwrite"], "pass one"),
    "output exists": (["gin_configs/beta_vae.gin", "--output", "{tmp}"], "already exists"),
    "output in /proc": (["gin_configs/beta_vae.gin", "--output", "/proc/x/run"], "/proc is not writable"),
    "output under a file": (["gin_configs/beta_vae.gin", "--output", "{tmp}/file/run"], "file is a file"),
    "empty data set": (["gin_configs/beta_vae.gin", "--dataset", ""], "--dataset is empty"),
    "empty output": (["gin_configs/beta_vae.gin", "--output", ""], "--output is empty"),
    "empty gin file": ([""], "the gin file is empty"),
    "empty binding": (["gin_configs/beta_vae.gin", "--gin_bindings", " "], "binding of --gin_bindings or "),
    "empty metric binding": (["gin_configs/beta_vae.gin", "--metric_bindings", ""], "binding of --gin_bindings or "),
}


def test_bad_arguments_are_answered_without_importing_tensorflow(tmp_path):
  (tmp_path / "file").write_text("")
  cases = {name: [a.replace("{tmp}", str(tmp_path)) for a in argv]
           for name, (argv, _) in REFUSED_WITHOUT_TENSORFLOW.items()}
  script = ("import contextlib, io, json, sys\nfrom applications import run_local\nanswers = {}\n"
            "for name, argv in json.loads(sys.argv[1]).items():\n"
            "  err = io.StringIO()\n"
            "  with contextlib.redirect_stderr(err):\n"
            "    try:\n      run_local.main(argv)\n    except SystemExit as e:\n      answers[name] = [e.code, err.getvalue()]\n"
            "print(json.dumps({'answers': answers, 'tensorflow': 'tensorflow' in sys.modules}))")
  process = run_python(["-c", script, json.dumps(cases)])
  assert process.returncode == 0, process.stderr
  result = json.loads(process.stdout)
  assert result["tensorflow"] is False
  for name, (_, fragment) in REFUSED_WITHOUT_TENSORFLOW.items():
    code, stderr = result["answers"][name]
    assert code == 2 and stderr.count("\n") == 1 and stderr.startswith("error: ") and fragment in stderr, (name, stderr)
  assert os.listdir(tmp_path) == ["file"]


def test_the_submission_time_budget_is_checked_and_a_too_short_one_warned_about():
  short = run_python(["-m", "applications.aicrowd", "budget", "5", "0"])
  assert short.returncode == 0 and short.stdout.strip() == "0.0"
  assert "warning: SUBMISSION_TIME_BUDGET=5s leaves no training time" in short.stderr
  assert_one_error_line(run_python(["-m", "applications.aicrowd", "budget", "abc", "0"]),
                        "SUBMISSION_TIME_BUDGET must be a number of seconds, got 'abc'")
  assert_one_error_line(run_python(["-m", "applications.aicrowd", "budget", "100", "0", "--reserve", "x"]),
                        "SUBMISSION_EXPORT_RESERVE")


# --- 7. what was made from a model goes the moment the model changes -----------------------------------------------
def test_retraining_removes_the_old_scores_before_the_first_step(run_copy, monkeypatch):
  monkeypatch.setattr(train.TrainingLoop, "save", full_disk)
  with pytest.raises(OSError, match="No space left"):
    run_local.run_local(GIN_FILE, run_copy, resume=True, **dict(TINY_RUN, steps=6))
  # What is made from the model is gone; the model, where it came from and the command that made it stay.
  assert sorted(os.listdir(run_copy)) == ["model", "provenance.json", "reproduce.sh"]


def test_a_refused_resume_keeps_the_scores(run_copy):
  with pytest.raises(UserError, match="another configuration"):
    run_local.run_local(GIN_FILE, run_copy, resume=True,
                          **dict(TINY_RUN, steps=3, gin_bindings=MODEL_BINDINGS + ["vae.beta = 9."]))
  assert os.path.isfile(os.path.join(run_copy, "scores.json"))


def test_a_failing_train_overwrite_keeps_the_old_model(run_copy):
  model_dir = os.path.join(run_copy, "model")
  files = files_of(model_dir)
  with pytest.raises(UserError, match="cannot be trained with this configuration"):
    train.train_with_gin(model_dir, overwrite=True, gin_config_files=[GIN_FILE], gin_bindings=MODEL_BINDINGS + [
        "dataset.name = 'dummy_data'", "model.training_steps = 2", "vae.beta = 'x'"])
  assert files_of(model_dir) == files
  assert not [name for name in os.listdir(run_copy) if name.startswith(".model.")]  # no temporary left behind


# --- 9. nothing complete is deleted before the new work is known to be possible ---------------------------------------
@pytest.mark.parametrize("removed", ["checkpoint files", "checkpoint directory"])
def test_resume_without_a_checkpoint_says_so_and_keeps_everything(removed, run_copy):
  checkpoints = os.path.join(run_copy, "model", "tf_checkpoint")
  if removed == "checkpoint files":
    for name in os.listdir(checkpoints):
      if name.startswith("model.ckpt-"):
        os.remove(os.path.join(checkpoints, name))
  else:
    shutil.rmtree(checkpoints)
  files = files_of(run_copy)
  with pytest.raises(UserError, match="no checkpoint to resume"):
    run_local.run_local(GIN_FILE, run_copy, resume=True, **dict(TINY_RUN, steps=6))
  assert files_of(run_copy) == files


# --- 10. no binding silently without effect ---------------------------------------------------------------------------
WITHOUT_EFFECT = {  # a binding on beta_vae.gin, what the refusal names
    "shadowed by the config's scoped binding": ("AdamOptimizer.learning_rate = 30",
                                                "the config's vae/AdamOptimizer.learning_rate wins"),
    "another model's parameter": ("factor_vae.gamma = 10.", "this model never calls factor_vae"),
    "a scope the model never enters": ("discriminator/AdamOptimizer.learning_rate = 0.1",
                                       "this model never calls AdamOptimizer in scope discriminator"),
}


@pytest.mark.parametrize("case", sorted(WITHOUT_EFFECT))
def test_a_binding_without_effect_is_refused_before_anything_is_written(case, tmp_path):
  binding, message = WITHOUT_EFFECT[case]
  model_dir = str(tmp_path / "model")
  with pytest.raises(UserError, match=f"binding '{binding.split(' =')[0]}' has no effect: {message}"):
    train.train_with_gin(model_dir, gin_config_files=[GIN_FILE], gin_bindings=MODEL_BINDINGS + [
        "dataset.name = 'dummy_data'", "model.training_steps = 2", binding])
  assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("rate", [float("nan"), -0.1, 0])
def test_a_learning_rate_that_cannot_train_is_refused(rate):
  with pytest.raises(UserError, match="a learning rate must be a positive finite number"):
    optimizers.adam_optimizer(learning_rate=rate)


def test_the_scoped_learning_rate_is_the_one_that_counts():
  with cli.gin_config([GIN_FILE], ["vae/AdamOptimizer.learning_rate = 30"]):
    with gin.config_scope("vae"):  # as the models build their optimizer
      assert float(optimizers.make_vae_optimizer().learning_rate) == 30.  # an integer, taken as the float


def test_an_empty_binding_is_refused():
  with pytest.raises(UserError, match="a gin binding is empty"):
    with cli.gin_config([GIN_FILE], ["vae.beta = 2.", ""]):
      pass


# --- 11. bad values get one line, before anything is written ----------------------------------------------------------
BAD_VALUES = {  # a binding on beta_vae.gin, what the refusal says
    "no latent dimension": ("encoder.num_latent = 0", "encoder.num_latent must be an integer at least 1, got 0"),
    "negative latent dimensions": ("encoder.num_latent = -3", "encoder.num_latent must be an integer"),
    "fractional latent dimensions": ("encoder.num_latent = 2.5", "encoder.num_latent must be an integer"),
    "negative seed": ("model.random_seed = -1", "model.random_seed must be an integer from 0 to 4294967295"),
    "empty batches": ("model.batch_size = 0", "model.batch_size must be an integer at least 1, got 0"),
    "fractional steps": ("model.training_steps = 20.5", "model.training_steps must be an integer"),
    "steps as a float": ("model.training_steps = 1e9", "model.training_steps must be an integer"),
    "negative learning rate": ("vae/AdamOptimizer.learning_rate = -0.1", "a learning rate must be a positive finite"),
    "infinite learning rate": ("vae/AdamOptimizer.learning_rate = 1e999", "a learning rate must be a positive"),
    "a list for a number": ("vae.beta = [1., 2.]", "cannot be trained with this configuration"),
}


@pytest.mark.parametrize("case", sorted(BAD_VALUES))
def test_a_bad_value_is_refused_before_anything_is_written(case, tmp_path):
  binding, message = BAD_VALUES[case]
  with pytest.raises(UserError, match=re.escape(message)):
    train.train_with_gin(str(tmp_path / "model"), gin_config_files=[GIN_FILE], gin_bindings=MODEL_BINDINGS + [
        "dataset.name = 'dummy_data'", "model.training_steps = 2", binding])
  assert os.listdir(tmp_path) == []  # so the corrected rerun neither says "exists" nor refuses --resume


def test_a_bad_metric_sample_size_is_refused_before_training(tmp_path, capsys):
  output = str(tmp_path / "run")
  with pytest.raises(UserError, match="mig.num_train must be an integer at least 1, got 0"):
    run_local.run_local(GIN_FILE, output, **dict(TINY_RUN, metric_bindings=["mig.num_train = 0"]))
  assert os.listdir(tmp_path) == [] and "[train]" not in capsys.readouterr().out


GIN_FILES = {  # contents, what the refusal says
    "empty": (b"# nothing bound\n\n", "is empty: it binds nothing"),
    "byte-order mark": (b"\xef\xbb\xbfvae.beta = 2.\n", "starts with a byte-order mark"),
    "binary": (bytes(range(256)), "is not a text file"),
    "include of a missing file": (b"include 'no/such.gin'\n", "Unable to open file: no/such.gin"),
}


@pytest.mark.parametrize("case", sorted(GIN_FILES))
def test_a_gin_file_gin_cannot_read_is_one_line_naming_it(case, tmp_path):
  content, message = GIN_FILES[case]
  gin_file = tmp_path / "model.gin"
  gin_file.write_bytes(content)
  process = run_python(["-m", "applications.run_local", str(gin_file), "--output", str(tmp_path / "run"),
                        "--dataset", "dummy_data", "--steps", "2", "--metrics", "mig"])
  assert_one_error_line(process, str(gin_file) if case != "include of a missing file" else "model.gin", message)
  assert os.listdir(tmp_path) == ["model.gin"]


# --- 12. Ctrl-C and SIGTERM keep the work -----------------------------------------------------------------------------
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_an_interrupt_during_training_writes_a_checkpoint_at_the_current_step(signum, tmp_path):
  model_dir = str(tmp_path / "model")
  command = [sys.executable, "-m", "submission.train", "--model_dir", model_dir, "--gin_config", GIN_FILE,
             "--gin_bindings", *MODEL_BINDINGS, "train_loop.checkpoint_every_steps = 100000",
             "dataset.name = 'dummy_data'", "model.training_steps = 100000"]
  # SIGINT as at a terminal (a shell starts background jobs, pytest maybe among them, with SIGINT ignored).
  process = subprocess.Popen(command, cwd=REPOSITORY_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"),
                             preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
  for line in process.stdout:
    if line.startswith("[train] step 3/"):  # a few steps trained, none checkpointed (every 100000)
      break
  process.send_signal(signum)
  out, err = process.communicate(timeout=300)
  assert process.returncode == 128 + signum, err
  errors = [line for line in err.splitlines() if line.startswith("error: ")]
  assert errors == [f"error: {'terminated (SIGTERM)' if signum == signal.SIGTERM else 'interrupted'}; completed "
                    f"work is kept"], err
  assert "checkpoint written, continue with --resume" in out
  step = int(out.split("[train] interrupted at step ")[1].split(":")[0])
  assert step >= 3
  assert tf.train.latest_checkpoint(os.path.join(model_dir, "tf_checkpoint")).endswith(f"model.ckpt-{step}")



def test_run_sh_passes_sigterm_on_to_training(tmp_path):
  # A grader stops the container with SIGTERM to run.sh: training keeps its steps, and run.sh ends with 143.
  env = {k: v for k, v in os.environ.items() if not k.startswith(("AICROWD_", "SUBMISSION_"))}
  (tmp_path.parent / f"{tmp_path.name}-data").mkdir()  # the grader's data mount (run.sh needs one)
  env.update(AICROWD_OUTPUT_PATH=str(tmp_path), AICROWD_EVALUATION_NAME="exp", AICROWD_DATASET_NAME="dummy_data",
             DISENTANGLEMENT_LIB_DATA=str(tmp_path.parent / f"{tmp_path.name}-data"),
             TF_CPP_MIN_LOG_LEVEL="2", SUBMISSION_GIN=GIN_FILE, SUBMISSION_GIN_BINDINGS="; ".join(
                 MODEL_BINDINGS + ["model.training_steps = 100000", "train_loop.checkpoint_every_steps = 100000"]))
  process = subprocess.Popen([os.path.join(REPOSITORY_ROOT, "run.sh")], cwd=REPOSITORY_ROOT, env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
  for line in process.stdout:
    if line.startswith("[train] step 3/"):
      break
  process.send_signal(signal.SIGTERM)
  out, err = process.communicate(timeout=300)
  assert process.returncode == 143, err
  step = int(out.split("[train] interrupted at step ")[1].split(":")[0])
  assert tf.train.latest_checkpoint(str(tmp_path / "exp" / "model" / "tf_checkpoint")).endswith(f"-{step}")
  assert "error: terminated (SIGTERM); completed work is kept" in err
  assert os.listdir(tmp_path) == ["exp"]  # run.sh's lock is gone with it

# --- 13. damaged derived files are rebuilt or named -------------------------------------------------------------------
def test_a_damaged_metric_result_is_evaluated_again_on_resume(run_copy, capsys):
  results = os.path.join(run_copy, "metrics", "mean", "mig", "results", "json", "evaluation_results.json")
  with open(results, "r+") as f:
    f.truncate(10)
  run_local.run_local(GIN_FILE, run_copy, resume=True, **TINY_RUN)
  assert "discrete_mig" in read_json(results)
  assert "[evaluate] mig on " in capsys.readouterr().out


def test_a_truncated_representation_cache_is_taken_for_missing(tmp_path):
  path = str(tmp_path / "dummy_data.npz")
  np.savez(path, codes=np.zeros((4, 2), np.float32), key=np.array(json.dumps({"count": 4})))
  with open(path, "r+b") as f:
    f.truncate(os.path.getsize(path) // 2)
  assert representation_cache.read_codes(path, {"count": 4}) is None  # so it is built again, not a BadZipFile


def test_a_damaged_model_card_is_named(tmp_path):
  (tmp_path / "model_card.json").write_text('{"format": ')
  with pytest.raises(UserError, match=f"{tmp_path}/model_card.json is damaged"):
    model_card.read(str(tmp_path))


# --- 14. output paths that cannot be made -----------------------------------------------------------------------------
def test_an_output_path_that_cannot_be_made_is_one_line(tmp_path):
  link = tmp_path / "link"
  link.symlink_to(tmp_path / "nowhere")
  with pytest.raises(UserError, match="is a symbolic link to .*nowhere, which does not exist"):
    pipeline_checks.check_run(GIN_FILE, str(link), None, ["mig"], False, False, None)
  with pytest.raises(UserError, match="is 250 bytes long; at most 237 fit"):
    pipeline_checks.check_run(GIN_FILE, str(tmp_path / ("x" * 250)), None, ["mig"], False, False, None)
  with pytest.raises(UserError, match="is 256 bytes long; at most 255 fit"):
    pipeline_checks.check_run(GIN_FILE, str(tmp_path / ("y" * 256) / "run"), None, ["mig"], False, False, None)
  assert os.listdir(tmp_path) == ["link"]


# --- 15. a full disk --------------------------------------------------------------------------------------------------
def test_a_full_disk_at_a_checkpoint_is_one_line_naming_the_path_and_the_space(tmp_path, monkeypatch):
  def full(*args, **kwargs):
    raise tf.errors.ResourceExhaustedError(None, None, "tmp_path/model.ckpt-2_temp; No space left on device")
  monkeypatch.setattr(tf.train.CheckpointManager, "save", full)
  model_dir = str(tmp_path / "model")
  with pytest.raises(UserError, match=f"no space left on the device of {model_dir}/tf_checkpoint for the checkpoint "
                     f"of step 2: it needs about [0-9]+ MB, [0-9]+ MB are free"):
    train.train_with_gin(model_dir, gin_config_files=[GIN_FILE], gin_bindings=MODEL_BINDINGS + [
        "dataset.name = 'dummy_data'", "model.training_steps = 2"])


def test_a_full_disk_at_the_export_is_one_line_naming_the_path_and_the_space(tmp_path, monkeypatch):
  def full(*args, **kwargs):
    raise tf.errors.ResourceExhaustedError(None, None, "variables/variables_temp; No space left on device")
  monkeypatch.setattr(tf.saved_model, "save", full)
  model_dir = str(tmp_path / "model")
  with pytest.raises(UserError, match=f"no space left on the device of {model_dir}/tfhub for the SavedModel: it "
                     f"needs about [1-9][0-9]* MB, [0-9]+ MB are free"):
    train.train_with_gin(model_dir, gin_config_files=[GIN_FILE], gin_bindings=MODEL_BINDINGS + [
        "dataset.name = 'dummy_data'", "model.training_steps = 2"])
  assert not [name for name in os.listdir(model_dir) if "partial" in name]  # the half-written export is removed


def test_rendering_dsprites_on_a_full_disk_is_refused_before_it_starts(tmp_path, monkeypatch):
  monkeypatch.setenv("DISENTANGLEMENT_LIB_DATA", str(tmp_path))
  monkeypatch.setattr(dsprites_render, "write_dsprites_npz", lambda *args, **kwargs: pytest.fail("rendered"))
  usage = shutil.disk_usage(str(tmp_path))
  monkeypatch.setattr(disk_checks.shutil, "disk_usage", lambda path: usage._replace(free=10**9))
  with pytest.raises(UserError, match="not enough space for the dsprites file.*: it needs 3.09 GB, 1.00 GB"):
    named_data.make_missing("dsprites_full")
