"""Shared fixtures: quiet TensorFlow, the repository root, a subprocess runner, tiny trained models."""

import json
import os
import subprocess
import sys

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPOSITORY_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPOSITORY_ROOT not in sys.path:
  sys.path.insert(0, REPOSITORY_ROOT)

import submission.compat  # noqa: E402,F401  (before any dlib import in the tests)
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


def stateless_seed(a, b=0):
  """A stateless-RNG seed tensor [a, b] (int64), as the models' steps receive."""
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  return tf.constant([a, b], dtype=tf.int64)


def run_python(args, env=None, timeout=600):
  """Runs ``python args...`` from the repository root; returns the CompletedProcess (text)."""
  full_env = dict(os.environ, PYTHONPATH=REPOSITORY_ROOT, TF_CPP_MIN_LOG_LEVEL="2")
  full_env.update(env or {})
  return subprocess.run([sys.executable] + list(args), cwd=REPOSITORY_ROOT, env=full_env, capture_output=True,
                        text=True, timeout=timeout)


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
