"""Every registered model through one list: each model of ``submission.models.registered_models()`` (gin's registry,
the one table of models) trains with its shipped config in gin_configs/, shrunk to a few steps on dlib's dummy_data,
resumes bit-exactly, exports, postprocesses and is scored by one metric; a model whose objective reads one family
of posterior is refused a latent space of another, in one line. A model added to the registry is covered here
without a test of its own, and its case fails until gin_configs/ ships a config that trains it."""

import functools
import inspect
import os
import shutil

import gin
import numpy as np
import pytest
import tensorflow as tf

from conftest import (FAST_ARCHITECTURE, REPOSITORY_ROOT, STUDY, TINY_BINDINGS, dlib_config,
                      latest_checkpoint_variables, read_json)
from evaluation import evaluate
from submission import cli, layout, postprocess, train
from submission.errors import UserError
from submission.latent import base as latent_base
from submission.models import registered_models
from submission.models.base import GaussianEncoderModel

SHIPPED_CONFIGS = os.path.join(REPOSITORY_ROOT, "gin_configs")
# The shipped config shrunk: TINY_BINDINGS' few steps and batches of dummy_data on dlib's smallest networks, no
# TensorBoard pictures (the conv networks train the same code, only slower).
SHRUNK = TINY_BINDINGS + FAST_ARCHITECTURE + ["checkpoint_images.enabled = False"]
TRAINING_STEPS = next(int(b.split("=")[1]) for b in TINY_BINDINGS if b.startswith("model.training_steps"))
MIG = dlib_config(f"{STUDY}/metric_configs/mig.gin")


@functools.lru_cache(maxsize=None)
def shipped_configs():
  """{gin name of a model: the gin_configs/*.gin files that train it, sorted}."""
  found = {}
  for file_name in sorted(os.listdir(SHIPPED_CONFIGS)):
    if file_name.endswith(".gin"):
      path = os.path.join(SHIPPED_CONFIGS, file_name)
      with cli.gin_config([path]):
        found.setdefault(gin.query_parameter("model.model").configurable.name, []).append(path)
  return found


def test_every_shipped_config_trains_a_registered_model():
  assert set(shipped_configs()) <= set(registered_models()), shipped_configs()


def latent_space_binding(name, cls):
  """The gin parameter that chooses ``cls``'s latent space, or None when the model makes its own."""
  if "latent_space" in inspect.signature(cls.__init__).parameters:
    return f"{name}.latent_space"
  if cls.make_latent_space is GaussianEncoderModel.make_latent_space:
    return "latent_space.factory"
  return None


@pytest.mark.parametrize("name", sorted(registered_models()))
def test_registered_model_trains_resumes_exports_postprocesses_and_scores(name, tmp_path):
  configs = shipped_configs().get(name)
  assert configs, f"model {name} is registered but no gin_configs/*.gin trains it (model.model = @{name}())"
  config = configs[0]
  cls = registered_models()[name]

  # The latent space: a model whose objective reads one family of posterior is refused another, in one line.
  binding = latent_space_binding(name, cls)
  if cls.posterior is not None and binding is not None:
    other = next(p for p in (latent_base.DIAGONAL_GAUSSIAN, latent_base.DIFFUSION) if p != cls.posterior)
    wrong = latent_base.latent_kinds(other)[0]
    with cli.gin_config([config], SHRUNK + [f"{binding} = @{wrong}"]):
      with pytest.raises(UserError) as refused:
        gin.query_parameter("model.model").scoped_configurable_fn().build([64, 64, 1])
    message = str(refused.value)
    assert "\n" not in message and f"{cls.posterior} posterior, but {wrong} has" in message, message

  # Train; at the first log after a checkpoint, copy the run as a run killed there would have left it.
  whole, resumed = str(tmp_path / "whole"), str(tmp_path / "resumed")

  def copy_once_checkpointed(*_):  # a log comes before the checkpoint of its step: the copy holds an earlier one
    if not os.path.exists(resumed) and tf.train.latest_checkpoint(layout.checkpoint_dir(whole)):
      shutil.copytree(whole, resumed)

  results = train.train_with_gin(whole, gin_config_files=[config], gin_bindings=SHRUNK,
                                 on_log=copy_once_checkpointed)
  assert results["global_step"] == TRAINING_STEPS
  assert all(np.isfinite(value) for key, value in results.items() if key != "uuid"), results
  assert read_json(layout.model_card(whole))["model"] == name

  # Resume: the killed run continued ends bit for bit as the uninterrupted one (weights, optimizer state, counters).
  copied_at = int(tf.train.latest_checkpoint(layout.checkpoint_dir(resumed)).rsplit("-", 1)[1])
  assert 0 < copied_at < TRAINING_STEPS
  train.train_with_gin(resumed, gin_config_files=[config], gin_bindings=SHRUNK, resume=True)
  reference, continued = latest_checkpoint_variables(whole), latest_checkpoint_variables(resumed)
  assert set(reference) == set(continued)
  for key in reference:
    np.testing.assert_array_equal(continued[key], reference[key], err_msg=key)
  with cli.gin_config([config], SHRUNK):
    steps_per_iteration = gin.query_parameter("model.model").scoped_configurable_fn().steps_per_iteration
  iterations = [value for key, value in reference.items() if key.endswith("iterations/.ATTRIBUTES/VARIABLE_VALUE")]
  assert iterations and all(value == TRAINING_STEPS // steps_per_iteration for value in iterations), iterations

  # Export: dlib's signatures and the project's agree on the code's width and the images' shape.
  module = tf.saved_model.load(layout.export_dir(whole))
  images = tf.random.stateless_uniform([3, 64, 64, 1], seed=[0, 1])
  encoded = module.signatures["gaussian_encoder"](images=images)
  assert encoded["mean"].shape == encoded["logvar"].shape and encoded["mean"].shape[0] == 3
  code = module.signatures["mean_representation"](images=images)["default"]
  prior = module.signatures["prior_latents"](num=tf.constant(3), seed=tf.constant([2, 3], tf.int64))
  assert prior["latent_vectors"].shape == code.shape
  assert module.signatures["decoder"](latent_vectors=code)["images"].shape == images.shape
  assert module.signatures["reconstructions"](images=images)["images"].shape == images.shape

  # Postprocess: the representation is the exported model's mean representation; one metric scores it.
  representation_dir, metric_dir = str(tmp_path / "mean"), str(tmp_path / "mig")
  postprocess.postprocess_with_gin(whole, representation_dir,
                                   gin_config_files=[dlib_config(f"{STUDY}/postprocess_configs/mean.gin")])
  representation = evaluate.load_representation_signature(representation_dir)
  np.testing.assert_allclose(representation(images=images)["default"].numpy(), code.numpy(), rtol=1e-6, atol=1e-6)
  evaluate.evaluate_with_gin(representation_dir, metric_dir, gin_config_files=[MIG],
                             gin_bindings=["mig.num_train = 100"])
  assert 0. <= read_json(layout.step_results(metric_dir, layout.EVALUATION))["discrete_mig"] <= 1.
