"""The challenge submission: run.sh writes the representation where the grader reads it, honours a time budget and
reports progress; the local evaluation scores it; the pictures; the Docker images' lint and install script."""

import json
import math
import os
import re
import shutil
import subprocess
import sys
import tomllib

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from applications import aicrowd, visualize
from conftest import REPOSITORY_ROOT, dlib_config, read_json, run_python, with_data_mount
from disentanglement_lib.evaluation.metrics import irs
from evaluation import evaluate, local_evaluation
from submission import cli, training_curves, traversal
from submission.data import named_data
from submission.errors import UserError

RUN_SH = os.path.join(REPOSITORY_ROOT, "run.sh")
TRAINING_STEPS = 100000          # far more than a 1 s budget allows
IMAGE = 64                       # dummy_data: 64×64×1
CODE_SIZE = 11                   # gin_configs/deltavae.gin: S^10 in R^11
SUBMISSION_BINDINGS = "; ".join([
    "model.batch_size = 8", f"model.training_steps = {TRAINING_STEPS}", "model.eval_steps = 1",
    "train_loop.log_every_steps = 1",
    # dlib's test networks keep the run short; the latent space (the hypersphere) is deltavae.gin's.
    "encoder.encoder_fn = @test_encoder", "decoder.decoder_fn = @test_decoder"])
# Small samples for the metrics: enough to run every code path, not to mean anything.
SMALL_METRICS = ["dci.num_train = 50", "dci.num_test = 25", "factor_vae_score.num_variance_estimate = 100",
                 "factor_vae_score.num_train = 40", "factor_vae_score.num_eval = 20", "factor_vae_score.batch_size = 8",
                 "mig.num_train = 100", "sap_score.num_train = 100", "sap_score.num_test = 50", "irs.num_train = 100"]

FAKE_AICROWD_API = '''
import json, os

class AIcrowdEvents:
  AICROWD_EVENT_INFO = "AICROWD_EVENT_INFO"
  AICROWD_EVENT_ERROR = "AICROWD_EVENT_ERROR"
  AICROWD_EVENT_SUCCESS = "AICROWD_EVENT_SUCCESS"

  def register_event(self, event_type, message="", payload={}, blocking=False):
    with open(os.environ["FAKE_AICROWD_LOG"], "a") as f:
      f.write(json.dumps(dict(event_type=event_type, message=message, payload=payload, blocking=blocking)) + "\\n")
'''


def fake_aicrowd_api(directory):
  """A stand-in ``aicrowd_api`` package that appends each event to $FAKE_AICROWD_LOG."""
  package = os.path.join(directory, "aicrowd_api")
  os.makedirs(package)
  with open(os.path.join(package, "__init__.py"), "w") as f:
    f.write("from . import events\n")
  with open(os.path.join(package, "events.py"), "w") as f:
    f.write(FAKE_AICROWD_API)
  return directory


def run_sh(env_updates, timeout=600):
  env = with_data_mount({k: v for k, v in os.environ.items() if not k.startswith(("AICROWD_", "SUBMISSION_"))})
  env.update(env_updates)
  return subprocess.run([RUN_SH], cwd=REPOSITORY_ROOT, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def submission(tmp_path_factory):
  """One run.sh as the grader runs it (grading, with a fake aicrowd_api), on dummy_data with a 1 s budget."""
  root = tmp_path_factory.mktemp("submission")
  log = str(root / "events.jsonl")
  result = run_sh({
      "AICROWD_OUTPUT_PATH": str(root / "shared"), "AICROWD_EVALUATION_NAME": "exp",
      "AICROWD_DATASET_NAME": "dummy_data", "AICROWD_IS_GRADING": "true",
      "PYTHONPATH": fake_aicrowd_api(str(root / "fake")), "FAKE_AICROWD_LOG": log,
      "SUBMISSION_TIME_BUDGET": "1", "SUBMISSION_GIN_BINDINGS": SUBMISSION_BINDINGS})
  assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
  events = []
  if os.path.exists(log):
    with open(log) as f:
      events = [json.loads(line) for line in f]
  return dict(result=result, experiment=str(root / "shared" / "exp"), events=events)


def dummy_images(num):
  return np.asarray(named_data.load("dummy_data").sample_observations(num, np.random.RandomState(0)), np.float32)


# --- run.sh -------------------------------------------------------------------------------------------------------
def test_run_sh_writes_the_representation_where_the_grader_reads_it(submission):
  representation = os.path.join(submission["experiment"], "representation")
  signature = tf.saved_model.load(os.path.join(representation, "tfhub")).signatures["representation"]
  codes = signature(images=tf.constant(dummy_images(5)))["default"].numpy()
  assert codes.shape == (5, CODE_SIZE)
  np.testing.assert_allclose(np.linalg.norm(codes, axis=1), 1., atol=1e-5)  # ΔVAE's mean: points on S^10
  postprocess_gin = os.path.join(representation, "results", "gin", "postprocess.gin")
  assert "dataset.name = 'dummy_data'" in open(postprocess_gin).read()  # AICROWD_DATASET_NAME reached training
  model = tf.saved_model.load(os.path.join(submission["experiment"], "model", "tfhub"))
  assert model.signatures["gaussian_encoder"](images=tf.constant(dummy_images(2)))["mean"].shape == (2, CODE_SIZE)
  assert "[run.sh] written:" in submission["result"].stdout


def test_time_budget_stops_training_early_and_still_exports(submission):
  results = read_json(os.path.join(submission["experiment"], "model", "results", "json", "train_results.json"))
  # Budget 1 s − the default 60 s reserve → 0 s for the loop, which stops after its first step and exports.
  assert results["global_step"] == 1 < TRAINING_STEPS
  stdout = submission["result"].stdout
  assert "[run.sh] time budget 1s: training stops after 0.0s" in stdout
  assert "time budget of 0.0s reached at step 1; stopping early" in stdout
  assert os.path.isdir(os.path.join(submission["experiment"], "representation", "tfhub"))


def test_run_sh_reports_progress_to_aicrowd_while_grading(submission):
  sent = [(e["event_type"], e["message"], e["payload"].get("training_progress"), e["blocking"])
          for e in submission["events"]]
  assert sent == [("AICROWD_EVENT_INFO", "execution_started", None, False),
                  ("AICROWD_EVENT_INFO", "register_progress", 0.0, False),
                  ("AICROWD_EVENT_INFO", "register_progress", 0.9, False),
                  ("AICROWD_EVENT_INFO", "register_progress", 1.0, False),
                  ("AICROWD_EVENT_SUCCESS", "submit", None, True)]
  assert all(e["payload"]["event_type"] == "disentanglement_challenge:" + e["message"] for e in submission["events"])


def test_run_sh_rejects_a_missing_gin_file_in_one_line(tmp_path):
  result = run_sh({"AICROWD_OUTPUT_PATH": str(tmp_path), "SUBMISSION_GIN": str(tmp_path / "nope.gin")})
  assert result.returncode == 2
  assert result.stderr.strip().splitlines() == [f"error: SUBMISSION_GIN: gin config {tmp_path}/nope.gin does not "
                                                f"exist"]
  assert not os.listdir(tmp_path)


def test_run_sh_rejects_missing_mounts_in_one_line_before_training(tmp_path):
  # The data directory missing (the grader's data volume is not there).
  result = run_sh({"AICROWD_OUTPUT_PATH": str(tmp_path / "out"), "DISENTANGLEMENT_LIB_DATA": str(tmp_path / "no")})
  assert result.returncode == 2 and "[run.sh] training" not in result.stdout
  assert result.stderr.strip().splitlines() == [f"error: DISENTANGLEMENT_LIB_DATA: data directory {tmp_path}/no "
                                                f"does not exist (is the data mounted?)"]
  # An output path that cannot be created (a file in the way; as root, permissions would not stop it).
  (tmp_path / "file").write_text("")
  result = run_sh({"AICROWD_OUTPUT_PATH": str(tmp_path / "file" / "shared"), "DISENTANGLEMENT_LIB_DATA": str(tmp_path)})
  assert result.returncode == 2 and "[run.sh] training" not in result.stdout
  assert result.stderr.strip().splitlines() == [
      f"error: AICROWD_OUTPUT_PATH: {tmp_path}/file/shared/experiment_name is not writable by uid {os.getuid()} (is "
      f"the output volume mounted writable?)"]


def test_run_sh_is_executable_for_the_grader():
  assert os.access(RUN_SH, os.X_OK)


# --- local evaluation -----------------------------------------------------------------------------------------------
def test_local_evaluation_scores_the_submission_like_the_starter_kit(submission):
  representation = os.path.join(submission["experiment"], "representation")
  scores = local_evaluation.local_evaluation(representation, metric_bindings=SMALL_METRICS)
  assert list(scores) == ["dci", "factor_vae_metric", "sap_score", "mig", "irs"]
  assert all(0. <= value <= 1. and math.isfinite(value) for value in scores.values()), scores
  assert read_json(os.path.join(submission["experiment"], "local_evaluation.json")) == scores
  for metric in scores:
    assert os.path.exists(os.path.join(submission["experiment"], "metrics", metric, "results", "aggregate",
                                       "evaluation.json"))
  # IRS through dlib's own function and config, called directly, gives the same number.
  with cli.gin_config([dlib_config("config/sample/irs/irs.gin")], ["dataset.name = 'dummy_data'",
                                                                    "irs.num_train = 100"]):
    direct = irs.compute_irs(named_data.load(), evaluate.load_representation_function(representation),
                             np.random.RandomState(0))
  assert scores["irs"] == pytest.approx(direct["IRS"], rel=1e-9)


def test_local_evaluation_names_a_missing_representation(tmp_path):
  with pytest.raises(UserError, match="does not exist: run ./run.sh first"):
    local_evaluation.local_evaluation(str(tmp_path / "representation"))


# --- pictures ---------------------------------------------------------------------------------------------------------
def open_image(path):
  with Image.open(path) as image:
    image.verify()
  return Image.open(path)


def test_visualize_writes_valid_pictures_of_the_expected_sizes(submission, capsys):
  model_dir = os.path.join(submission["experiment"], "model")
  paths = visualize.visualize(model_dir, num_images=4, num_traversal_images=2, num_values=5, num_frames=6)
  out = os.path.join(submission["experiment"], "visualizations")  # the default: beside model/
  dims = [os.path.join(out, "traversals", f"dim_{j:02d}.png") for j in range(CODE_SIZE)]  # one per coordinate
  assert sorted(paths) == sorted([os.path.join(out, name) for name in (
      "reconstructions.png", "samples.png", "traversals.png", "traversals.gif", "training_curves.png",
      "pictures.json")] + dims)
  assert "latent geometry: hypersphere S^10 in R^11" in capsys.readouterr().out
  assert read_json(os.path.join(out, "pictures.json")) == {
      "geometry": "sphere", "geometry_description": traversal.describe_geometry("sphere", CODE_SIZE),
      "num_traversal_dimensions": CODE_SIZE, "pruned_dimensions": []}
  pad = traversal.PADDING
  expected = {  # (width, height) of grids of 64×64 tiles
      "reconstructions.png": (4 * IMAGE + 3 * pad, 2 * IMAGE + pad),        # 2 rows (inputs, outputs) × 4
      "samples.png": (2 * IMAGE + pad, 2 * IMAGE + pad),                    # 4 prior samples, 2 × 2
      "traversals.png": (5 * IMAGE + 4 * pad, CODE_SIZE * IMAGE + (CODE_SIZE - 1) * pad),  # dims × values
  }
  for name, size in expected.items():
    image = open_image(os.path.join(out, name))
    assert (image.size, image.mode) == (size, "L"), name
  for path in dims:
    assert open_image(path).size == (5 * IMAGE + 4 * pad, 2 * IMAGE + pad)   # images × values
  gif = open_image(os.path.join(out, "traversals.gif"))
  assert gif.format == "GIF" and gif.n_frames == 6
  assert gif.size == (CODE_SIZE * IMAGE + (CODE_SIZE - 1) * pad, 2 * IMAGE + pad + pad + visualize.BAR_HEIGHT)
  # One panel per loss term the training loop logged (here 7 terms: 3 × 3 panels of 400 × 300 pixels).
  results = read_json(os.path.join(model_dir, "results", "json", "train_results.json"))
  terms = set(results) - {"global_step", "elapsed_time", "uuid"}
  logged = training_curves.read_scalars(os.path.join(model_dir, "tf_checkpoint"))
  assert set(logged) - set(visualize.NOT_LOSS_TERMS) == terms and len(terms) == 7
  assert open_image(os.path.join(out, "training_curves.png")).size == (1200, 900)
  with pytest.raises(UserError, match="already exists"):
    visualize.visualize(model_dir)


def test_sphere_traversal_stays_on_the_great_circle_through_e_j():
  rng = np.random.RandomState(1)
  z = rng.randn(3, CODE_SIZE)
  z /= np.linalg.norm(z, axis=1, keepdims=True)
  j = 4
  grid = traversal.traverse(z, j, traversal.grid_positions(traversal.SPHERE, 9), traversal.SPHERE)
  np.testing.assert_allclose(grid[:, 4], z, atol=1e-12)               # the middle column is the image's code
  cycle = traversal.traverse(z, j, traversal.cycle_positions(traversal.SPHERE, np.zeros(3), 720), traversal.SPHERE)
  for points in (grid, cycle):
    np.testing.assert_allclose(np.linalg.norm(points, axis=-1), 1., atol=1e-12)
  np.testing.assert_allclose(cycle[:, 0], z, atol=1e-12)
  np.testing.assert_allclose(cycle[:, :, j].min(axis=1), -1., atol=1e-4)  # coordinate j sweeps [−1, 1]
  np.testing.assert_allclose(cycle[:, :, j].max(axis=1), 1., atol=1e-4)
  others = [k for k in range(CODE_SIZE) if k != j]
  ratios = cycle[:, :, others] / cycle[:, :, others[:1]]                 # the other coordinates keep their ratios
  np.testing.assert_allclose(ratios, np.broadcast_to(ratios[:, :1], ratios.shape), rtol=1e-6, atol=1e-6)
  pole = np.zeros((1, CODE_SIZE))
  pole[0, j] = 1.                                                        # z = e_j: still moves, still on S^10
  moved = traversal.traverse(pole, j, [0., math.pi / 2], traversal.SPHERE)
  np.testing.assert_allclose(np.linalg.norm(moved, axis=-1), 1., atol=1e-12)
  assert moved[0, 1, j] == pytest.approx(0., abs=1e-12)


def test_torus_traversal_rotates_one_circle_only():
  angles = np.array([[0.3, -2.0, 1.1], [2.5, 0.7, -0.4]])
  codes = np.stack([np.cos(angles), np.sin(angles)], axis=-1).reshape(2, 6)
  theta = traversal.cycle_positions(traversal.TORUS, np.zeros(2), 8)
  moved = traversal.traverse(codes, 1, theta, traversal.TORUS)
  assert traversal.num_traversal_dimensions(traversal.TORUS, 6) == 3
  np.testing.assert_array_equal(moved[:, :, [0, 1, 4, 5]], np.repeat(codes[:, None, [0, 1, 4, 5]], 8, axis=1))
  turned = np.arctan2(moved[:, :, 3], moved[:, :, 2])
  np.testing.assert_allclose(np.angle(np.exp(1j * (turned - angles[:, 1:2] - theta))), 0., atol=1e-12)


def test_euclidean_traversal_sets_one_coordinate():
  codes = np.arange(8.).reshape(2, 4)
  values = traversal.grid_positions(traversal.EUCLIDEAN, 5)
  np.testing.assert_array_equal(values, [-2., -1., 0., 1., 2.])
  moved = traversal.traverse(codes, 2, values, traversal.EUCLIDEAN)
  np.testing.assert_array_equal(moved[:, :, 2], np.tile(values, (2, 1)))
  np.testing.assert_array_equal(moved[:, :, [0, 1, 3]], np.repeat(codes[:, None, [0, 1, 3]], 5, axis=1))
  # The animation: a triangle wave over [−2, 2] from each start (clipped into the interval).
  cycle = traversal.cycle_positions(traversal.EUCLIDEAN, np.array([0., 7.]), 8)
  np.testing.assert_allclose(cycle[0], [0., 1., 2., 1., 0., -1., -2., -1.])
  np.testing.assert_allclose(cycle[1], [2., 1., 0., -1., -2., -1., 0., 1.])


def test_grid_places_tiles_with_padding():
  tiles = np.zeros((2, 3, 4, 5, 1))
  image = traversal.grid(tiles)
  assert image.shape == traversal.grid_size(2, 3, 4, 5) + (1,) == (2 * 4 + 2, 3 * 5 + 2 * 2, 1)
  assert image.sum() == image.size - tiles.size          # padding pixels are 1, tiles 0
  square = traversal.near_square(np.zeros((5, 4, 4, 1)))
  assert square.shape == (2, 3, 4, 4, 1) and square[1, 2].min() == 1.   # the sixth tile is empty


def test_read_scalars_keeps_the_latest_value_of_a_repeated_step_and_survives_a_cut_file(tmp_path):
  for values in ({1: 1., 2: 2., 3: 3.}, {3: 30., 4: 40.}):   # a run, then a resumed run repeating step 3
    writer = tf.summary.create_file_writer(str(tmp_path))
    with writer.as_default():
      for step, value in values.items():
        tf.summary.scalar("loss", value, step=step)
    writer.close()
  assert training_curves.read_scalars(str(tmp_path)) == {"loss": ([1, 2, 3, 4], [1., 2., 30., 40.])}
  last = sorted(p for p in os.listdir(tmp_path) if p.startswith("events"))[-1]
  with open(tmp_path / last, "r+b") as f:                     # a killed run: the last record is cut short
    f.truncate(os.path.getsize(tmp_path / last) - 5)
  assert training_curves.read_scalars(str(tmp_path))["loss"][0][:3] == [1, 2, 3]


# --- AIcrowd helpers ----------------------------------------------------------------------------------------------------
def test_is_grading_reads_aicrowd_is_grading():
  assert [aicrowd.is_grading({"AICROWD_IS_GRADING": v}) for v in ("true", "1", "YES", "false", "0", "")] == [
      True, True, True, False, False, False]
  assert not aicrowd.is_grading({})


def test_training_budget_keeps_a_reserve_for_export():
  assert aicrowd.training_budget(3600., 12.) == 3600. - 360. - 12.       # 10% reserve
  assert aicrowd.training_budget(28800., 0.) == 28800. - 900.            # at most 900 s
  assert aicrowd.training_budget(300., 5.) == 300. - 60. - 5.            # at least 60 s
  assert aicrowd.training_budget(30., 2.) == 0.                          # no time left: one step, then export
  assert aicrowd.training_budget(100., 2., reserve_seconds=10.) == 88.
  with pytest.raises(UserError, match="SUBMISSION_TIME_BUDGET"):
    aicrowd.training_budget(-5., 0.)
  with pytest.raises(UserError, match="SUBMISSION_EXPORT_RESERVE"):
    aicrowd.training_budget(100., 0., reserve_seconds=-1.)


def test_events_are_silent_unless_grading_with_aicrowd_api(tmp_path, monkeypatch, capsys):
  log = tmp_path / "events.jsonl"
  monkeypatch.syspath_prepend(fake_aicrowd_api(str(tmp_path / "fake")))
  monkeypatch.setenv("FAKE_AICROWD_LOG", str(log))
  monkeypatch.delenv("AICROWD_IS_GRADING", raising=False)
  assert aicrowd.register_progress(0.5) is False and not log.exists()
  monkeypatch.setenv("AICROWD_IS_GRADING", "true")
  try:
    assert aicrowd.register_progress(0.5) is True
  finally:
    for name in ("aicrowd_api", "aicrowd_api.events"):  # the fake must not outlive this test
      sys.modules.pop(name, None)
  assert json.loads(log.read_text())["payload"] == {"event_type": "disentanglement_challenge:register_progress",
                                                    "training_progress": 0.5}

  class Broken:
    AICROWD_EVENT_ERROR = "AICROWD_EVENT_ERROR"

    def register_event(self, **kwargs):
      raise ConnectionError("redis is gone")

  monkeypatch.setattr(aicrowd, "notifier", lambda environ=None: Broken())
  assert aicrowd.execution_error("boom") is False           # a failed report never stops the run
  assert capsys.readouterr().err.strip().splitlines() == [
      "warning: could not send the AIcrowd event 'execution_error': redis is gone"]


def test_aicrowd_command_line_is_silent_when_not_grading():
  result = run_python(["-m", "applications.aicrowd", "progress", "0.5"], env={"AICROWD_IS_GRADING": ""})
  assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


# --- Docker images and aicrowd.json ----------------------------------------------------------------------------------
DOCKERFILE = os.path.join(REPOSITORY_ROOT, "docker", "Dockerfile")


def hadolint_binary():
  beside_python = os.path.join(os.path.dirname(sys.executable), "hadolint")
  return beside_python if os.access(beside_python, os.X_OK) else shutil.which("hadolint")


def test_dockerfile_passes_hadolint():
  binary = hadolint_binary()
  if binary is None:
    pytest.skip("hadolint is not installed (the [dev] extra: scripts/setup_env.sh dev)")
  result = subprocess.run([binary, DOCKERFILE], capture_output=True, text=True, timeout=120)
  assert (result.returncode, result.stdout + result.stderr) == (0, "")


def read(path):
  with open(os.path.join(REPOSITORY_ROOT, path)) as f:
    return f.read()


def test_one_dockerfile_builds_the_gpu_or_the_cpu_image_with_the_script_the_tests_use():
  text = read("docker/Dockerfile")
  assert sorted(os.listdir(os.path.join(REPOSITORY_ROOT, "docker"))) == ["Dockerfile"]
  assert re.search(r"^ARG TENSORFLOW_VARIANT=gpu$", text, re.M)                        # --build-arg ...=cpu
  assert re.search(r"TENSORFLOW_VARIANT=\$\{TENSORFLOW_VARIANT\}", text)   # setup_env.sh: tensorflow[and-cuda] or -cpu
  assert re.search(r"SUBMISSION_IMAGE=\$\{TENSORFLOW_VARIANT\}", text)    # run.sh: the environment is installed
  assert re.search(r"^RUN scripts/setup_env\.sh$", text, re.M)       # the README's install script, without extras
  assert re.search(r'"\$repo/scripts/setup_env\.sh" ray dev', read("run_tests.sh"))  # ... which the tests run
  # Everything setup_env.sh reads, and every package pyproject.toml installs, are in the image before it runs.
  before_setup = text[:text.index("\nRUN scripts/setup_env.sh\n")]
  with open(os.path.join(REPOSITORY_ROOT, "pyproject.toml"), "rb") as f:
    packages = [name.rstrip("*") + "/" for name in tomllib.load(f)["tool"]["setuptools"]["packages"]["find"]["include"]]
  assert packages == ["submission/", "evaluation/", "applications/"]
  for copied in ["requirements.txt", "requirements-nodeps.txt", "requirements-ray.txt", "requirements-dev.txt",
                 "pyproject.toml", "README.md", "scripts/"] + packages:
    assert re.search(rf"^COPY [^\n]*(\n     [^\n]*)*\b{re.escape(copied)}", before_setup, re.M), copied
  for copied in ("gin_configs/", "run.sh"):
    assert re.search(rf"^COPY .*\b{re.escape(copied)}", text, re.M), copied
  assert re.search(r"^RUN useradd .* aicrowd$", text, re.M) and re.search(r"^USER 1000:1000$", text, re.M)
  assert re.search(r"^WORKDIR /home/aicrowd$", text, re.M)
  assert text.rstrip().endswith('ENTRYPOINT ["/home/aicrowd/run.sh"]')
  assert "DISENTANGLEMENT_LIB_DATA=/home/aicrowd/data" in text


def test_setup_env_installs_the_tensorflow_variant_the_image_asks_for():
  script = read("scripts/setup_env.sh")
  assert 'variant="${TENSORFLOW_VARIANT:-cpu}"' in script
  assert "sed 's/^tensorflow-cpu==/tensorflow[and-cuda]==/'" in script
  assert re.search(r"^tensorflow-cpu==2\.21\.0$", read("requirements.txt"), re.M)


def test_aicrowd_json_names_the_challenge_and_asks_for_a_gpu():
  config = read_json(os.path.join(REPOSITORY_ROOT, "aicrowd.json"))
  assert config["challenge_id"] == config["grader_id"] == "aicrowd-neurips-2019-disentanglement-challenge"
  assert config["gpu"] is True and config["debug"] is False
  assert config["authors"] and config["description"]
