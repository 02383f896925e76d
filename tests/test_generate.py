"""applications.generate: decoded prior samples as a PNG grid, for a CHyVAE (hierarchical prior), with sigmoid pixels
or, when the model card records the 'tanh' activation, tanh/2 + 0.5; plus CHyVAE's exported signatures (full-covariance
posterior)."""

import dataclasses
import os
import shutil

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from applications import generate
from conftest import REPOSITORY_ROOT, run_python
from submission import model_card, train
from submission.errors import UserError

TINY = ["dataset.name = 'dummy_data'", "model.training_steps = 2", "model.batch_size = 8", "model.eval_steps = 1",
        "encoder.encoder_fn = @test_encoder", "decoder.decoder_fn = @test_decoder"]


@pytest.fixture(scope="module")
def chyvae_dir(tmp_path_factory):
  model_dir = str(tmp_path_factory.mktemp("chyvae") / "model")
  train.train_with_gin(model_dir, gin_config_files=[os.path.join(REPOSITORY_ROOT, "gin_configs", "chyvae.gin")],
                       gin_bindings=TINY + ["encoder.num_latent = 5", "chyvae.nu = 12."])
  return model_dir


@pytest.fixture(scope="module")
def tanh_model_dir(chyvae_dir, tmp_path_factory):
  """The same exported model, its card saying it was trained with ``reconstruction_loss.activation = 'tanh'``."""
  model_dir = str(tmp_path_factory.mktemp("tanh") / "model")
  shutil.copytree(chyvae_dir, model_dir)
  card = model_card.require(model_dir)
  assert card.reconstruction_activation == "logits"
  dataclasses.replace(card, reconstruction_activation="tanh").write(model_dir)
  return model_dir


def expected_tiles(model_dir, num, seed, activation):
  """Prior samples decoded through the SavedModel and mapped to uint8 pixels, computed here independently."""
  module = tf.saved_model.load(os.path.join(model_dir, "tfhub"))
  latents = module.signatures["prior_latents"](num=tf.constant(num), seed=tf.constant([seed, 0], tf.int64))
  outputs = module.signatures["decoder"](**latents)["images"].numpy().astype(np.float64)
  means = 1. / (1. + np.exp(-outputs)) if activation == "logits" else np.tanh(outputs) / 2. + 0.5
  return np.rint(means * 255.).astype(np.uint8)


def tile(grid, k, cols, size=64, gutter=2):
  top, left = (k // cols) * (size + gutter), (k % cols) * (size + gutter)
  return grid[top:top + size, left:left + size]


def test_cli_writes_the_decoded_prior_grid(chyvae_dir, tmp_path):
  out = str(tmp_path / "samples.png")
  process = run_python(["-m", "applications.generate", chyvae_dir, "--out", out, "--num", "10", "--seed", "3"])
  assert process.returncode == 0, process.stderr
  assert "10 prior samples" in process.stdout
  picture = np.asarray(Image.open(out))
  # 10 samples: 4 columns × 3 rows of 64-px tiles with 2-px white gutters between them.
  assert picture.shape == (3 * 66 - 2, 4 * 66 - 2) and picture.dtype == np.uint8
  tiles = expected_tiles(chyvae_dir, 10, 3, "logits")
  for k in range(10):
    np.testing.assert_allclose(tile(picture, k, 4), tiles[k, ..., 0], atol=1)
  assert np.all(picture[64:66] == 255) and np.all(picture[:, 64:66] == 255)
  assert np.all(tile(picture, 10, 4) == 255) and np.all(tile(picture, 11, 4) == 255)  # unused cells stay white
  assert not [f for f in os.listdir(tmp_path) if f != "samples.png"]  # no temporary file left


def test_same_seed_same_picture_and_pipeline_directories_work(chyvae_dir, tmp_path):
  pipeline_dir = os.path.dirname(chyvae_dir)  # holds model/, as a pipeline output directory does
  a = generate.generate(chyvae_dir, str(tmp_path / "a.png"), num=4, seed=5)
  b = generate.generate(pipeline_dir, str(tmp_path / "b.png"), num=4, seed=5)
  c = generate.generate(chyvae_dir, str(tmp_path / "c.png"), num=4, seed=6)
  np.testing.assert_array_equal(a, b)
  assert not np.array_equal(a, c)
  np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "a.png")), a)


def test_tanh_activation_is_read_from_the_model_card(tanh_model_dir, tmp_path):
  grid = generate.generate(tanh_model_dir, str(tmp_path / "t.png"), num=4, seed=1)
  tiles = expected_tiles(tanh_model_dir, 4, 1, "tanh")
  sigmoid_tiles = expected_tiles(tanh_model_dir, 4, 1, "logits")
  assert np.abs(tiles.astype(int) - sigmoid_tiles).max() > 10
  for k in range(4):
    np.testing.assert_allclose(tile(grid, k, 2), tiles[k, ..., 0], atol=1)


def test_bad_input_is_one_clear_line(chyvae_dir, tmp_path, capsys):
  with pytest.raises(UserError, match="--num must be between 1 and 4096"):
    generate.generate(chyvae_dir, str(tmp_path / "x.png"), num=0)
  with pytest.raises(UserError, match="--out must name a .png file"):
    generate.generate(chyvae_dir, str(tmp_path / "x.jpg"))
  with pytest.raises(UserError, match="does not exist"):
    generate.generate(chyvae_dir, str(tmp_path / "missing" / "x.png"))
  capsys.readouterr()
  with pytest.raises(SystemExit) as stopped:  # the command line: one "error:" line, exit status 2
    generate.main([str(tmp_path / "nothing"), "--out", str(tmp_path / "x.png")])
  assert stopped.value.code == 2
  lines = [line for line in capsys.readouterr().err.strip().splitlines() if line.strip()]
  assert len(lines) == 1 and lines[0].startswith("error: ") and "holds no exported model" in lines[0]
  assert not os.path.exists(tmp_path / "x.png")


def test_chyvae_exports_its_full_covariance_posterior(chyvae_dir):
  # gaussian_encoder = (μ, log diag S); mean_representation = μ; sampled_representation draws N(μ, S).
  module = tf.saved_model.load(os.path.join(chyvae_dir, "tfhub"))
  image = np.random.RandomState(0).uniform(size=(1, 64, 64, 1)).astype(np.float32)
  encoded = module.signatures["gaussian_encoder"](images=image)
  mean, logvar = encoded["mean"].numpy()[0], encoded["logvar"].numpy()[0]
  assert mean.shape == logvar.shape == (5,)
  np.testing.assert_array_equal(module.signatures["mean_representation"](images=image)["default"].numpy()[0], mean)
  n = 20000
  samples = module.signatures["sampled_representation"](
      images=np.repeat(image, n, 0), seed=tf.constant([7, 0], tf.int64))["default"].numpy()
  covariance = np.cov(samples.T)
  np.testing.assert_allclose(samples.mean(0), mean, atol=5 * np.sqrt(np.exp(logvar).max() / n))
  np.testing.assert_allclose(np.diag(covariance), np.exp(logvar), rtol=0.05)
  correlation = covariance / np.sqrt(np.outer(np.diag(covariance), np.diag(covariance)))
  assert np.abs(correlation - np.eye(5)).max() > 0.05  # a full covariance, not a diagonal one
  prior = module.signatures["prior_latents"](num=tf.constant(3), seed=tf.constant([1, 0], tf.int64))
  assert prior["latent_vectors"].shape == (3, 5)
