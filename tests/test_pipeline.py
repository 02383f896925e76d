"""The dlib pipeline on TF2: dlib's own config files, results layout, metric values, resume, reload, bad input."""

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf

from conftest import (REPOSITORY_ROOT, STUDY, TINY_BINDINGS, assert_one_error_line, dlib_config,
                      latest_checkpoint_variables, read_json, run_python)
from disentanglement_lib.config.unsupervised_study_v1 import sweep
from disentanglement_lib.evaluation.metrics import (beta_vae, dci, downstream_task, factor_vae, mig,
                                                    modularity_explicitness, sap_score, unsupervised_metrics)
from disentanglement_lib.utils import results as dlib_results
from evaluation import evaluate
from submission import cli, postprocess, train
from submission.data import named_data

DLIB_TRAIN_KEYS = {"reconstruction_loss", "elbo", "regularizer", "kl_loss", "loss", "global_step", "elapsed_time",
                   "uuid"}


def test_dlib_train_test_gin_trains_unchanged(tmp_path):
  model_dir = str(tmp_path / "model")
  train.train_with_gin(model_dir, gin_config_files=[dlib_config("config/tests/methods/unsupervised/train_test.gin")])
  results = read_json(os.path.join(model_dir, "results", "json", "train_results.json"))
  assert set(results) == DLIB_TRAIN_KEYS
  assert results["global_step"] == 2
  train_gin = dlib_results.gin_dict(os.path.join(model_dir, "results", "gin", "train.gin"))
  # The lines dlib's visualize_model and postprocess's "auto" read back.
  assert train_gin["dataset.name"] == "'dummy_data'"
  assert train_gin["encoder.num_latent"] == "10"
  assert train_gin["reconstruction_loss.activation"] == "'logits'"
  aggregate = read_json(os.path.join(model_dir, "results", "aggregate", "train.json"))
  assert aggregate["train_config.vae.beta"] == "1.0"
  assert aggregate["train_results.global_step"] == 2
  assert os.path.exists(os.path.join(model_dir, "results", "json", "train_config.json"))


# One model of each of the study's six chains (model_idx·50 + seed 0 on dsprites_full), as sweep.py defines them.
STUDY_MODELS = {"beta_vae": 0, "factor_vae": 300, "dip_vae_i": 600, "dip_vae_ii": 900, "beta_tc_vae": 1200,
                "annealed_vae": 1500}


@pytest.mark.parametrize("study_name", sorted(STUDY_MODELS))
def test_study_model_configs_train(study_name, tmp_path):
  """dlib's own study configs train unchanged (each model's export, resume, ...: tests/test_registered_models.py)."""
  bindings, shared_gin = sweep.UnsupervisedStudyV1().get_model_config(STUDY_MODELS[study_name])
  assert f"model.name = '{study_name}'" in bindings
  model_dir = str(tmp_path / study_name)
  overrides = ["dataset.name = 'dummy_data'", "model.training_steps = 4", "model.batch_size = 4",
               "model.eval_steps = 1", "train_loop.log_every_steps = 2"]
  train.train_with_gin(model_dir, gin_config_files=[shared_gin], gin_bindings=bindings + overrides)

  results = read_json(os.path.join(model_dir, "results", "json", "train_results.json"))
  expected_keys = DLIB_TRAIN_KEYS - ({"elbo"} if study_name == "factor_vae" else set())
  assert set(results) == expected_keys
  assert results["global_step"] == 4
  assert all(np.isfinite(results[k]) for k in expected_keys - {"uuid"})


# dlib's function behind each metric config, and sample sizes small enough for a test.
METRICS = {
    "beta_vae_sklearn": (beta_vae.compute_beta_vae_sklearn,
                         ["beta_vae_sklearn.batch_size = 8", "beta_vae_sklearn.num_train = 40",
                          "beta_vae_sklearn.num_eval = 20"]),
    "factor_vae_metric": (factor_vae.compute_factor_vae,
                          ["factor_vae_score.num_variance_estimate = 300", "factor_vae_score.num_train = 40",
                           "factor_vae_score.num_eval = 20", "factor_vae_score.batch_size = 8"]),
    "mig": (mig.compute_mig, ["mig.num_train = 300"]),
    "dci": (dci.compute_dci, ["dci.num_train = 200", "dci.num_test = 100"]),
    "sap_score": (sap_score.compute_sap, ["sap_score.num_train = 200", "sap_score.num_test = 100"]),
    "modularity_explicitness": (modularity_explicitness.compute_modularity_explicitness,
                                ["modularity_explicitness.num_train = 200", "modularity_explicitness.num_test = 100"]),
    "unsupervised": (unsupervised_metrics.unsupervised_metrics, ["unsupervised_metrics.num_train = 300"]),
    "downstream_task_boosted_trees": (downstream_task.compute_downstream_task,
                                      ["downstream_task.num_train = [100]", "downstream_task.num_test = 50"]),
    "downstream_task_logistic_regression": (downstream_task.compute_downstream_task,
                                            ["downstream_task.num_train = [100]", "downstream_task.num_test = 50"]),
}


def test_every_study_metric_config_is_covered():
  shipped = {f[:-4] for f in os.listdir(os.path.dirname(dlib_config(f"{STUDY}/metric_configs/mig.gin")))
             if f.endswith(".gin")}
  assert shipped == set(METRICS)


@pytest.mark.parametrize("metric", sorted(METRICS))
def test_study_metric_config_evaluates_and_equals_dlib_called_directly(metric, tiny_trained_model, tmp_path):
  _, representation_dir = tiny_trained_model
  function, small = METRICS[metric]
  config = dlib_config(f"{STUDY}/metric_configs/{metric}.gin")
  output_dir = str(tmp_path / metric)
  np.random.seed(0)  # sklearn estimators created without random_state draw from NumPy's global generator
  evaluate.evaluate_with_gin(representation_dir, output_dir, gin_config_files=[config], gin_bindings=small)
  written = read_json(os.path.join(output_dir, "results", "json", "evaluation_results.json"))

  representation_function = evaluate.load_representation_function(representation_dir)
  with cli.gin_config([config], small + ["dataset.name = 'dummy_data'"]):
    np.random.seed(0)
    direct = function(named_data.load("dummy_data"), representation_function, np.random.RandomState(0),
                      artifact_dir=None)
  assert set(written) == set(direct) | {"elapsed_time", "uuid"}
  for key, value in direct.items():
    assert written[key] == pytest.approx(float(value), rel=0, abs=0), key

  aggregate = read_json(os.path.join(output_dir, "results", "aggregate", "evaluation.json"))
  groups = {key.split(".")[0] for key in aggregate}
  assert groups == {"train_config", "train_results", "postprocess_config", "postprocess_results",
                    "evaluation_config", "evaluation_results"}
  assert aggregate["evaluation_config.dataset.name"] == "'dummy_data'"
  assert aggregate["evaluation_config.evaluation.evaluation_fn"].startswith("@")


def test_postprocess_writes_dlib_layout_and_representation_signature(tiny_trained_model):
  model_dir, representation_dir = tiny_trained_model
  postprocess_gin = dlib_results.gin_dict(os.path.join(representation_dir, "results", "gin", "postprocess.gin"))
  assert postprocess_gin["dataset.name"] == "'dummy_data'"  # "auto" resolved from train.gin
  assert postprocess_gin["postprocess.postprocess_fn"] == "@mean_representation"
  assert os.path.exists(os.path.join(representation_dir, "results", "gin", "train.gin"))  # copied forward
  assert set(read_json(os.path.join(representation_dir, "results", "json", "postprocess_results.json"))) == {
      "elapsed_time", "uuid"}
  signature = tf.saved_model.load(os.path.join(representation_dir, "tfhub")).signatures["representation"]
  images = np.random.RandomState(1).uniform(size=(5, 64, 64, 1)).astype(np.float32)
  mean = tf.saved_model.load(os.path.join(model_dir, "tfhub")).signatures["gaussian_encoder"](images=images)["mean"]
  np.testing.assert_allclose(signature(images=images)["default"].numpy(), mean.numpy(), rtol=1e-6)


def test_sampled_representation_is_seeded_by_postprocess_random_seed(tiny_trained_model, tmp_path):
  model_dir, _ = tiny_trained_model
  config = dlib_config(f"{STUDY}/postprocess_configs/sampled.gin")
  images = np.random.RandomState(2).uniform(size=(4, 64, 64, 1)).astype(np.float32)
  draws = {}
  for name, seed in (("a", 0), ("b", 0), ("c", 1)):
    out = str(tmp_path / name)
    postprocess.postprocess_with_gin(model_dir, out, gin_config_files=[config],
                                     gin_bindings=[f"postprocess.random_seed = {seed}"])
    signature = tf.saved_model.load(os.path.join(out, "tfhub")).signatures["representation"]
    draws[name] = [signature(images=images)["default"].numpy() for _ in range(2)]
  np.testing.assert_array_equal(draws["a"][0], draws["b"][0])  # same seed, freshly loaded: same draws
  np.testing.assert_array_equal(draws["a"][1], draws["b"][1])
  assert not np.allclose(draws["a"][0], draws["a"][1])  # successive calls draw anew
  assert not np.allclose(draws["a"][0], draws["c"][0])  # another seed, other draws


def train_command(model_dir, steps, *extra):
  bindings = [b for b in TINY_BINDINGS if "training_steps" not in b and "checkpoint_every" not in b]
  return ["-m", "submission.train", "--model_dir", model_dir, "--gin_config",
          dlib_config(f"{STUDY}/model_configs/shared.gin"), "--gin_bindings", *bindings,
          f"model.training_steps = {steps}", "train_loop.checkpoint_every_steps = 5", *extra]


def test_killed_run_resumes_from_its_checkpoint_and_ends_as_the_uninterrupted_run(tmp_path):
  steps = 40
  reference_dir, resumed_dir = str(tmp_path / "reference"), str(tmp_path / "resumed")
  assert run_python(train_command(reference_dir, steps)).returncode == 0

  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
  process = subprocess.Popen([sys.executable] + train_command(resumed_dir, steps), cwd=REPOSITORY_ROOT, env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
  checkpoint_dir = os.path.join(resumed_dir, "tf_checkpoint")
  # Wait for the checkpoint state file, not the first .index: TF writes the state file after the checkpoint's data
  # and index, so a kill between the two leaves a run with no checkpoint on record (which resumes from step 0).
  deadline = time.time() + 300
  while time.time() < deadline and not (os.path.isdir(checkpoint_dir) and tf.train.latest_checkpoint(checkpoint_dir)):
    time.sleep(0.05)
  process.send_signal(signal.SIGKILL)
  process.wait()
  killed_at = int(tf.train.latest_checkpoint(checkpoint_dir).rsplit("-", 1)[1])
  assert 0 < killed_at < steps
  assert not os.path.exists(os.path.join(resumed_dir, "results"))

  resumed = run_python(train_command(resumed_dir, steps, "--resume"))
  assert resumed.returncode == 0, resumed.stderr
  assert f"(step {killed_at})" in resumed.stdout
  reference, continued = latest_checkpoint_variables(reference_dir), latest_checkpoint_variables(resumed_dir)
  assert set(reference) == set(continued)
  for name in reference:
    np.testing.assert_allclose(continued[name], reference[name], rtol=1e-5, atol=1e-6, err_msg=name)


def test_exported_model_reloaded_in_a_fresh_process_matches_the_trained_model(tiny_trained_model, tmp_path):
  model_dir, _ = tiny_trained_model
  images = np.random.RandomState(3).uniform(size=(4, 64, 64, 1)).astype(np.float32)
  latents = np.random.RandomState(4).randn(4, 10).astype(np.float32)
  # The trained model: rebuilt from its train.gin and restored from its checkpoint.
  import keras  # pylint: disable=import-outside-toplevel
  train_gin = os.path.join(model_dir, "results", "gin", "train.gin")
  with cli.gin_config([train_gin]):
    import gin  # pylint: disable=import-outside-toplevel
    model = gin.query_parameter("model.model").scoped_configurable_fn()
    keras.utils.set_random_seed(123)  # a different initialisation, overwritten by the checkpoint
    model.build([64, 64, 1])
  tf.train.Checkpoint(**model.checkpoint_items()).restore(
      tf.train.latest_checkpoint(os.path.join(model_dir, "tf_checkpoint"))).expect_partial()
  mean, logvar = model.gaussian_encoder(images)
  logits = model.decode(latents)

  np.savez(str(tmp_path / "inputs.npz"), images=images, latents=latents)
  script = ("import sys, numpy as np, tensorflow as tf; d = np.load(sys.argv[2]); m = tf.saved_model.load(sys.argv[1]);"
            "e = m.signatures['gaussian_encoder'](images=d['images']);"
            "r = m.signatures['decoder'](latent_vectors=d['latents']);"
            "np.savez(sys.argv[3], mean=e['mean'], logvar=e['logvar'], images=r['images'])")
  done = run_python(["-c", script, os.path.join(model_dir, "tfhub"), str(tmp_path / "inputs.npz"),
                     str(tmp_path / "outputs.npz")])
  assert done.returncode == 0, done.stderr
  outputs = np.load(str(tmp_path / "outputs.npz"))
  np.testing.assert_allclose(outputs["mean"], mean.numpy(), rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(outputs["logvar"], logvar.numpy(), rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(outputs["images"], logits.numpy(), rtol=1e-5, atol=1e-5)


# --- bad input: one clear line, non-zero exit, nothing half-written ---------------------------------------------
def tiny_train(model_dir, *bindings, env=None, extra=()):
  return run_python(["-m", "submission.train", "--model_dir", model_dir, "--gin_config",
                     dlib_config("config/tests/methods/unsupervised/train_test.gin"), "--gin_bindings",
                     "model.eval_steps = 1", *bindings, *extra], env=env)


def test_unknown_gin_configurable_and_parameter(tmp_path):
  assert_one_error_line(tiny_train(str(tmp_path / "a"), "no_such_thing.x = 1"), "no_such_thing")
  assert_one_error_line(tiny_train(str(tmp_path / "b"), "vae.no_such_parameter = 1"), "no_such_parameter")
  assert not os.path.exists(tmp_path / "a") and not os.path.exists(tmp_path / "b")


def test_unknown_dataset_name(tmp_path):
  assert_one_error_line(tiny_train(str(tmp_path / "m"), "dataset.name = 'no_such_data'"), "no_such_data",
                        "dsprites_full")
  assert not os.path.exists(tmp_path / "m")


def test_missing_data_file_names_the_path(tmp_path):
  process = tiny_train(str(tmp_path / "m"), "dataset.name = 'dsprites_full'",
                       env={"DISENTANGLEMENT_LIB_DATA": str(tmp_path / "empty")})
  assert_one_error_line(process, os.path.join(str(tmp_path / "empty"), "dsprites"), "DISENTANGLEMENT_LIB_DATA")
  assert not os.path.exists(tmp_path / "m")


def test_existing_output_directory_without_overwrite(tmp_path):
  model_dir = tmp_path / "m"
  model_dir.mkdir()
  (model_dir / "keep.txt").write_text("mine")
  assert_one_error_line(tiny_train(str(model_dir)), "already exists", "--overwrite")
  assert (model_dir / "keep.txt").read_text() == "mine"


def test_nan_loss_stops_at_its_step_and_keeps_the_last_good_checkpoint(tmp_path):
  model_dir = str(tmp_path / "m")
  process = tiny_train(model_dir, "model.training_steps = 50", "AdamOptimizer.learning_rate = 1e30",
                       "train_loop.checkpoint_every_steps = 1", "train_loop.log_every_steps = 5")
  assert_one_error_line(process, "NaN or infinite at step", "last good checkpoint")
  bad_step = int(process.stderr.split("at step ")[1].split(";")[0])
  checkpoint = tf.train.latest_checkpoint(os.path.join(model_dir, "tf_checkpoint"))
  assert checkpoint is not None and int(checkpoint.rsplit("-", 1)[1]) <= bad_step
  variables = latest_checkpoint_variables(model_dir)
  assert all(np.all(np.isfinite(v)) for v in variables.values() if v.dtype.kind == "f")
  assert not os.path.exists(os.path.join(model_dir, "tfhub"))
  assert not os.path.exists(os.path.join(model_dir, "results"))


def test_evaluation_into_existing_directory_keeps_it(tiny_trained_model, tmp_path):
  _, representation_dir = tiny_trained_model
  out = tmp_path / "metric"
  out.mkdir()
  process = run_python(["-m", "evaluation.evaluate", "--representation_dir", representation_dir, "--output_dir",
                        str(out), "--gin_config", dlib_config(f"{STUDY}/metric_configs/mig.gin")])
  assert_one_error_line(process, "already exists")
  assert os.listdir(out) == []


def test_missing_required_binding_and_bad_hyper_parameter_are_one_line(tmp_path):
  assert_one_error_line(tiny_train(str(tmp_path / "a"), "model.model = @dip_vae()"), "Required bindings",
                        "dip_vae")
  assert_one_error_line(tiny_train(str(tmp_path / "b"), "model.model = @dip_vae()", "dip_vae.lambda_od = 1.",
                                   "dip_vae.lambda_d_factor = 1.", "dip_vae.dip_type = 'iii'"), "dip_type", "'iii'")
  assert_one_error_line(tiny_train(str(tmp_path / "c"), "train_loop.log_every_steps = 0"), "log_every_steps")


def test_resume_with_another_configuration_is_refused(tmp_path):
  model_dir = str(tmp_path / "m")
  assert tiny_train(model_dir).returncode == 0
  before = latest_checkpoint_variables(model_dir)
  process = tiny_train(model_dir, "vae.beta = 8.", extra=["--resume"])
  assert_one_error_line(process, "another configuration", "vae.beta was 1.0, now 8.0", "--overwrite")
  after = latest_checkpoint_variables(model_dir)
  assert all(np.array_equal(before[k], after[k]) for k in before)
  longer = tiny_train(model_dir, "model.training_steps = 4", extra=["--resume"])  # more steps: allowed
  assert longer.returncode == 0, longer.stderr
  assert read_json(os.path.join(model_dir, "results", "json", "train_results.json"))["global_step"] == 4


def test_evaluating_a_model_directory_instead_of_a_representation_is_one_line(tiny_trained_model, tmp_path):
  model_dir, _ = tiny_trained_model
  process = run_python(["-m", "evaluation.evaluate", "--representation_dir", model_dir, "--output_dir",
                        str(tmp_path / "out"), "--gin_config", dlib_config(f"{STUDY}/metric_configs/mig.gin")])
  assert_one_error_line(process, "no 'representation' signature")
  assert not os.path.exists(tmp_path / "out")


def test_batch_stream_draws_batch_i_from_its_own_seed_and_continues_from_any_batch():
  data = named_data.load("dummy_data")
  expected = [data.sample_observations(3, np.random.RandomState([7, i])).astype(np.float32) for i in range(5)]
  whole = [batch.numpy() for batch in train.batch_dataset(data, 3, seed=7, num_batches=5)]
  tail = [batch.numpy() for batch in train.batch_dataset(data, 3, seed=7, first_batch=2, num_batches=3)]
  assert len(whole) == 5 and len(tail) == 3
  for got, want in zip(whole, expected):
    np.testing.assert_array_equal(got, want)
  for got, want in zip(tail, expected[2:]):
    np.testing.assert_array_equal(got, want)
  # Autotuning's model thread made deleting a half-read iterator block for seconds with the GIL held.
  assert train.batch_dataset(data, 3, seed=7).options().autotune.enabled is False
