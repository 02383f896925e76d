"""Shared fixtures: quiet TensorFlow, the repository root, a subprocess runner, tiny trained models."""

import glob
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPOSITORY_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

import submission  # noqa: E402,F401  (loads the compat layer dlib needs, before any dlib import)
from disentanglement_lib.utils import resources  # noqa: E402

STUDY = "config/unsupervised_study_v1"


def dlib_config(relative_path):
  """Absolute path of a config file shipped inside the installed disentanglement_lib."""
  path = resources.get_file(relative_path)
  assert os.path.exists(path), path
  return path


def read_json(path):
  with open(path) as f:
    return json.load(f)


def latest_checkpoint_variables(model_dir):
  """Every numeric tensor of ``model_dir``'s latest checkpoint (weights, optimizer slots, step counters)."""
  import numpy as np  # pylint: disable=import-outside-toplevel
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  from submission import layout  # pylint: disable=import-outside-toplevel
  reader = tf.train.load_checkpoint(layout.checkpoint_dir(model_dir))
  tensors = {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()
             if "save_counter" not in name}
  return {name: value for name, value in tensors.items() if np.asarray(value).dtype.kind in "fiu"}


def stateless_seed(a, b=0):
  """A stateless-RNG seed tensor [a, b] (int64), as the models' steps receive."""
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  return tf.constant([a, b], dtype=tf.int64)


def run_python(args, env=None, timeout=600):
  """Runs ``python args...`` from the repository root; returns the CompletedProcess (text)."""
  full_env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
  full_env.update(env or {})
  return subprocess.run([sys.executable] + list(args), cwd=REPOSITORY_ROOT, env=full_env, capture_output=True,
                        text=True, timeout=timeout)


# What TensorFlow's C++ side prints at import whatever TF_CPP_MIN_LOG_LEVEL says (absl's "before InitializeLog"
# notice and its I/W-prefixed lines): not the program's output.
TENSORFLOW_START_UP_LOG = re.compile(r"^(WARNING: All log messages before absl::InitializeLog|[IWE]\d{4} )")


def assert_one_error_line(process, *fragments):
  """The process failed with exit status 2 and one ``error:`` line containing every fragment."""
  assert process.returncode == 2, (process.stdout, process.stderr)
  lines = [line for line in process.stderr.strip().splitlines()
           if line.strip() and not TENSORFLOW_START_UP_LOG.match(line)]
  assert len(lines) == 1 and lines[0].startswith("error: "), process.stderr
  for fragment in fragments:
    assert fragment in lines[0], lines[0]


def kill_worker_when(parent_pid, condition, timeout=300, roots=None):
  """Kills (SIGKILL) the first process under ``roots`` (default: ``parent_pid``; Ray's workers are the raylet's
  children) that has a task log open (so is mid-task) for which ``condition(log_path)`` holds, while ``parent_pid``
  runs; once it is gone returns that log path, or None if there was none before ``timeout``."""
  deadline = time.time() + timeout
  while time.time() < deadline and os.path.exists(f"/proc/{parent_pid}"):
    for pid in descendant_pids(roots or [parent_pid]):
      for log in open_files(pid):
        if log.endswith(".log") and condition(log):
          os.kill(pid, signal.SIGKILL)
          while open_files(pid):  # a zombie holds no files: a retry of the task cannot be mistaken for it
            time.sleep(0.05)
          return log
    time.sleep(0.05)
  return None


def descendant_pids(roots):
  """The children, grandchildren, … of the processes ``roots`` (those that have gone meanwhile have none)."""
  found, unvisited = [], list(roots)
  while unvisited:
    pid = unvisited.pop()
    children = []
    for thread_children in glob.glob(f"/proc/{pid}/task/*/children"):  # a child belongs to the thread that forked it
      try:
        with open(thread_children) as f:
          children += [int(child) for child in f.read().split()]
      except OSError:
        pass
    found += children
    unvisited += children
  return found


def open_files(pid):
  """Paths of the files ``pid`` has open (none if it has gone meanwhile)."""
  try:
    descriptors = os.listdir(f"/proc/{pid}/fd")
  except OSError:
    return []
  paths = []
  for descriptor in descriptors:
    try:
      paths.append(os.readlink(f"/proc/{pid}/fd/{descriptor}"))
    except OSError:
      pass
  return paths


@pytest.fixture(autouse=True)
def clean_gin():
  """Every test starts and ends with an empty gin config (a failed test must not leak bindings)."""
  import gin  # pylint: disable=import-outside-toplevel
  gin.clear_config()
  yield
  gin.clear_config()


# A tiny, fast training setup on dlib's dummy_data (64×64 noise, 10 factors of 5 values).
TINY_BINDINGS = [
    "dataset.name = 'dummy_data'",
    "model.batch_size = 8",
    "model.training_steps = 6",
    "model.eval_steps = 2",
    "train_loop.log_every_steps = 3",
    "train_loop.checkpoint_every_steps = 3",
]
# dlib's smallest networks, for tests that train several models.
FAST_ARCHITECTURE = ["encoder.encoder_fn = @test_encoder", "decoder.decoder_fn = @test_decoder",
                     "encoder.num_latent = 4"]


@pytest.fixture(scope="session")
def tiny_trained_model(tmp_path_factory):
  """A β-VAE trained for a few steps with dlib's shared.gin (conv architecture), plus its mean representation."""
  from submission import postprocess, train  # pylint: disable=import-outside-toplevel
  root = tmp_path_factory.mktemp("tiny")
  model_dir = str(root / "model")
  train.train_with_gin(model_dir, gin_config_files=[dlib_config(f"{STUDY}/model_configs/shared.gin")],
                       gin_bindings=TINY_BINDINGS)
  representation_dir = str(root / "postprocessed" / "mean")
  postprocess.postprocess_with_gin(model_dir, representation_dir,
                                   gin_config_files=[dlib_config(f"{STUDY}/postprocess_configs/mean.gin")])
  return model_dir, representation_dir


def with_data_mount(env):
  """``env`` with an existing DISENTANGLEMENT_LIB_DATA: run.sh refuses to start without its data mount (as the grader
  gives it one), and the dummy_data runs of the tests read nothing from it. An existing directory is kept."""
  if not os.path.isdir(os.path.join(REPOSITORY_ROOT, env.get("DISENTANGLEMENT_LIB_DATA", "data"))):
    env["DISENTANGLEMENT_LIB_DATA"] = tempfile.mkdtemp(prefix="data-mount-")
  return env
