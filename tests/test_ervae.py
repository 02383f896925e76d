"""Tests for the ER-VAE: the embedded-manifold latent space (submission.latent.embedded), the embedding fit
(submission.fit_embedding), the model (submission.models.ervae), its gin config and the circle benchmark (bench/)."""

import importlib.util
import json
import math
import os

import gin
import numpy as np
import pytest
import scipy.stats
import tensorflow as tf

from conftest import REPOSITORY_ROOT, stateless_seed
from submission import fit_embedding as fit_lib
from evaluation import pipeline
from submission import train as train_lib
from submission.errors import UserError
from submission.latent import embedded as E
from submission.latent import manifolds as M
from submission.models.ervae import ERVAE
from test_pipeline import METRICS

CONFIG = os.path.join(REPOSITORY_ROOT, "gin_configs", "ervae.gin")
BENCH = os.path.join(REPOSITORY_ROOT, "bench", "ervae_circle.py")
# Significance level of the goodness-of-fit tests: with fixed seeds they are deterministic; the negative controls
# show each test rejects a law that is off.
ALPHA = 1e-3



def _latent(manifold="torus", dim=2, **kwargs):
  space = E.EmbeddedManifoldLatent(manifold=manifold, **kwargs)
  space.configure(dim)
  return space


def _angles(z):
  pairs = np.asarray(z).reshape(len(z), -1, 2)
  return np.mod(np.arctan2(pairs[..., 1], pairs[..., 0]), 2 * np.pi)


def _chi2_uniform_p(values, bins):
  counts, _ = np.histogram(values, bins=bins, range=(0., 2 * np.pi))
  return scipy.stats.chisquare(counts).pvalue




@pytest.fixture(scope="module")
def learned_circle(tmp_path_factory):
  """A short WAE fit of the circle (seed 0, 600 steps), saved as submission.fit_embedding saves it."""
  network, description = fit_lib.fit_embedding("circle", steps=600, eval_samples=1000, seed=0)
  directory = fit_lib.save_embedding(str(tmp_path_factory.mktemp("emb") / "circle"), network, description)
  return network, description, directory


# --- the projection sends the hidden prior to the uniform law on M ---------------------------------------------------
@pytest.mark.parametrize("hidden_prior", ["uniform", "normal"])
def test_circle_projection_pushes_the_prior_to_the_uniform_law(hidden_prior):
  space = _latent("circle", 1, hidden_prior=hidden_prior)
  z = space.sample_prior(20000, stateless_seed(1)).numpy()
  np.testing.assert_allclose(np.linalg.norm(z, axis=1), 1., atol=1e-6)
  assert _chi2_uniform_p(_angles(z)[:, 0], 40) > ALPHA
  # Negative control: a slightly non-uniform law (u² instead of u on 20% of the draws) is rejected.
  u = np.random.RandomState(2).uniform(size=20000)
  u[:4000] = u[:4000]**2
  assert _chi2_uniform_p(2 * np.pi * u, 40) < ALPHA


def test_torus_projection_is_uniform_and_independent_per_circle():
  z = _latent("torus", 2).sample_prior(20000, stateless_seed(3)).numpy()
  assert z.shape == (20000, 4)
  angles = _angles(z)
  counts, _, _ = np.histogram2d(angles[:, 0], angles[:, 1], bins=8, range=[[0, 2 * np.pi]] * 2)
  assert scipy.stats.chisquare(counts.ravel()).pvalue > ALPHA
  assert float(tf.reduce_max(M.Torus(2).distance(z))) < 1e-6


@pytest.mark.parametrize("d", [1, 2, 3, 5])
def test_sphere_projection_pushes_the_prior_to_the_uniform_law(d):
  # Under the uniform law on S^d every coordinate satisfies (1 + x_i)/2 ~ Beta(d/2, d/2) (uniform for S²).
  z = _latent("sphere", d).sample_prior(20000, stateless_seed(4)).numpy()
  assert z.shape == (20000, d + 1)
  np.testing.assert_allclose(np.linalg.norm(z, axis=1), 1., atol=1e-5)
  if d == 1:
    assert _chi2_uniform_p(_angles(z)[:, 0], 40) > ALPHA
    return
  for i in range(d + 1):
    p = scipy.stats.kstest((1. + z[:, i]) / 2., scipy.stats.beta(d / 2., d / 2.).cdf).pvalue
    assert p > ALPHA / (d + 1), (i, p)
  np.testing.assert_allclose(np.cov(z.T), np.eye(d + 1) / (d + 1), atol=0.01)
  # Negative control: the naive hyperspherical map with *uniform* polar angles is rejected.
  u = tf.random.stateless_uniform([20000, d], seed=stateless_seed(5))
  naive = tf.concat([tf.cos(math.pi * u[:, :1]), tf.sin(math.pi * u[:, :1]) * M.sphere_from_unit_cube(u[:, 1:])], 1)
  assert scipy.stats.kstest((1. + naive.numpy()[:, 0]) / 2., scipy.stats.beta(d / 2., d / 2.).cdf).pvalue < ALPHA


def test_parse_manifold_and_dimension_checks():
  assert M.parse_manifold("circle").spec == "circle" and M.parse_manifold("torus:3").ambient_dim == 6
  assert M.parse_manifold("sphere:4").ambient_dim == 5 and M.parse_manifold(" Torus:1 ").spec == "circle"
  for bad in ("donut", "torus", "torus:x", "sphere:0", "circle:2", "torus:-1"):
    with pytest.raises(UserError, match="manifold|positive"):
      M.parse_manifold(bad)
  with pytest.raises(UserError, match="encoder.num_latent"):
    _latent("circle", 3)
  with pytest.raises(UserError, match="encoder.num_latent"):
    _latent("torus:2", 3)


# --- the KL in the hidden space ------------------------------------------------------------------------------------
def test_normal_hidden_kl_is_the_gaussian_closed_form_and_agrees_with_monte_carlo():
  space = _latent("torus", 3, hidden_prior="normal")
  mean = np.array([[0.3, -1.2, 0.], [2., 0.5, -0.1]], np.float32)
  logvar = np.array([[-1., 0.4, -3.], [0., -0.5, 1.]], np.float32)
  params = {"mean": tf.constant(mean), "logvar": tf.constant(logvar)}
  expected = 0.5 * np.sum(mean**2 + np.exp(logvar) - logvar - 1., axis=1)
  np.testing.assert_allclose(space.kl(params).numpy(), expected, rtol=1e-6)
  draws = 100000
  tiled = {k: tf.repeat(v, draws, axis=0) for k, v in params.items()}
  h = space.sample_hidden(tiled, stateless_seed(6))
  log_ratio = tf.reshape(space.hidden_log_prob(tiled, h) - space.hidden_log_prior(h), [2, draws]).numpy()
  standard_error = log_ratio.std(1) / math.sqrt(draws)
  assert np.all(np.abs(log_ratio.mean(1) - expected) < 4 * standard_error), (log_ratio.mean(1), expected)


def test_beta_kl_to_uniform_is_the_negative_entropy_and_agrees_with_monte_carlo():
  space = _latent("torus", 2, hidden_prior="uniform")
  a = np.array([[1., 3.], [1.5, 40.], [8., 1.2]], np.float32)
  b = np.array([[1., 2.], [7., 60.], [1., 1.01]], np.float32)
  params = {"concentration1": tf.constant(a), "concentration0": tf.constant(b)}
  kl = space.kl(params).numpy()
  np.testing.assert_allclose(kl, -scipy.stats.beta(a, b).entropy().sum(1), rtol=1e-4, atol=1e-5)
  assert abs(float(E.beta_kl_to_uniform(tf.ones([1, 1]), tf.ones([1, 1]))[0])) < 1e-6  # Beta(1, 1) is the prior
  draws = 100000
  tiled = {k: tf.repeat(v, draws, axis=0) for k, v in params.items()}
  h = space.sample_hidden(tiled, stateless_seed(7))
  assert float(tf.reduce_min(h)) >= E.SAMPLE_EPSILON and float(tf.reduce_max(h)) <= 1. - E.SAMPLE_EPSILON
  np.testing.assert_array_equal(space.hidden_log_prior(h).numpy(), 0.)
  log_ratio = tf.reshape(space.hidden_log_prob(tiled, h), [3, draws]).numpy()
  standard_error = log_ratio.std(1) / math.sqrt(draws)
  assert np.all(np.abs(log_ratio.mean(1) - kl) < 4 * standard_error + 1e-4), (log_ratio.mean(1), kl)


def test_beta_head_floor_and_reparameterised_gradients():
  space = _latent("torus", 3, hidden_prior="uniform", min_concentration=1.)
  features = tf.random.stateless_normal([64, 8], seed=stateless_seed(8)) * 50.
  params = space(features)
  for key in ("concentration1", "concentration0"):
    assert params[key].shape == (64, 3) and float(tf.reduce_min(params[key])) >= 1.
  with tf.GradientTape() as tape:
    z = space.sample(space(features), stateless_seed(9))
    value = tf.reduce_sum(tf.random.stateless_normal(z.shape, seed=stateless_seed(10)) * z)
  gradient = tape.gradient(value, space.concentration.kernel)
  assert np.all(np.isfinite(gradient.numpy())) and np.abs(gradient.numpy()).max() > 1e-6
  a, b = space(features), space(features)
  np.testing.assert_array_equal(space.sample(a, stateless_seed(11)).numpy(), space.sample(b, stateless_seed(11)).numpy())


# --- the group action ----------------------------------------------------------------------------------------------
def test_group_action_rotates_by_the_encoded_angle_and_stays_on_the_torus():
  space = _latent("torus", 3, group_action=True)
  params = space(tf.random.stateless_normal([128, 16], seed=stateless_seed(12)))
  rotation = params["rotation"].numpy().reshape(128, 3, 2)
  np.testing.assert_allclose(np.linalg.norm(rotation, axis=2), 1., atol=1e-6)
  encoded_angle = np.arctan2(rotation[..., 1], rotation[..., 0])
  h = space.sample_hidden(params, stateless_seed(13))
  unrotated, z = space.embedding_map(h).numpy(), space.sample(params, stateless_seed(13)).numpy()
  np.testing.assert_allclose(np.linalg.norm(z.reshape(128, 3, 2), axis=2), 1., atol=1e-5)
  turned = np.angle(np.exp(1j * (_angles(z) - _angles(unrotated) - encoded_angle)))
  assert np.abs(turned).max() < 1e-4
  # The exported location is rotated too; without the group action it is f(location) itself.
  location = space.embedding_map(space.hidden_location(params)).numpy()
  np.testing.assert_allclose(space.representation(params).numpy(), M.rotate_pairs(location, params["rotation"]),
                             atol=1e-6)
  assert np.abs(np.angle(np.exp(1j * (_angles(space.representation(params)) - _angles(location)
                                      - encoded_angle)))).max() < 1e-4


def test_rotate_pairs_against_rotation_matrices():
  rng = np.random.RandomState(14)
  z, alpha = rng.randn(5, 4).astype(np.float32), rng.uniform(0, 2 * np.pi, (5, 2))
  rotation = np.stack([np.cos(alpha), np.sin(alpha)], -1).reshape(5, 4).astype(np.float32)
  expected = np.stack([np.einsum("ij,j->i", [[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]], z[n, 2 * c:2 * c + 2])
                       for n in range(5) for c in range(2) for t in [alpha[n, c]]]).reshape(5, 4)
  np.testing.assert_allclose(M.rotate_pairs(tf.constant(z), tf.constant(rotation)).numpy(), expected, atol=1e-5)
  # A rotation keeps every pair's radius, hence the distance to the torus, for points off it too (a learned f).
  np.testing.assert_allclose(M.Torus(2).distance(M.rotate_pairs(z, rotation)).numpy(), M.Torus(2).distance(z),
                             atol=1e-5)


def test_group_action_on_a_sphere_is_an_error():
  with pytest.raises(UserError, match="rotation per circle"):
    _latent("sphere", 2, group_action=True)


def test_gaussian_encoder_logvar_is_the_delta_method_variance():
  # Projection on the circle, Beta hidden: z = (cos 2πu, sin 2πu), dz/du = 2π(−sin, cos), Var u = ab/((a+b)²(a+b+1)).
  space = _latent("circle", 1, hidden_prior="uniform")
  a, b = np.array([[2.], [5.], [1.]], np.float32), np.array([[3.], [1.5], [9.]], np.float32)
  params = {"concentration1": tf.constant(a), "concentration0": tf.constant(b)}
  mean, logvar = space.gaussian_encoder_outputs(params)
  u = a / (a + b)
  var_u = a * b / ((a + b)**2 * (a + b + 1))
  np.testing.assert_allclose(mean.numpy(), np.concatenate([np.cos(2 * np.pi * u), np.sin(2 * np.pi * u)], 1),
                             atol=1e-6)
  expected = np.concatenate([np.sin(2 * np.pi * u)**2, np.cos(2 * np.pi * u)**2], 1) * 4 * np.pi**2 * var_u
  np.testing.assert_allclose(np.exp(logvar.numpy()), expected + E.VARIANCE_FLOOR, rtol=1e-4, atol=1e-9)


# --- the learned embedding -----------------------------------------------------------------------------------------
def test_short_fit_keeps_prior_samples_close_to_the_circle(learned_circle):
  # Bound: mean distance < 0.1. An untrained f sits near the origin (distance ≈ 1) and the 2-to-1 "fold" the WAE
  # must escape maps onto a diameter (≈ 0.43); 3000 steps reach ≈ 0.015 (see submission/fit_embedding.py).
  network, description, _ = learned_circle
  quality = description["quality"]
  assert quality["mean_distance"] < 0.1, quality
  assert quality["mmd"] < 0.05, quality
  assert description["projection_quality"]["mean_distance"] < 1e-6
  assert abs(description["projection_quality"]["mmd"]) < 0.01  # the estimator's noise floor
  again = fit_lib.embedding_quality(network, M.parse_manifold("circle"), "uniform", 1000, seed=0)
  assert again == pytest.approx(quality, rel=1e-5, abs=1e-6)
  untrained = E.embedding_network(1, 2, [256, 256], "relu")
  assert fit_lib.embedding_quality(untrained, M.parse_manifold("circle"), "uniform", 1000)["mean_distance"] > 0.5


def test_saved_embedding_loads_frozen_into_the_latent_space_and_serves_a_torus(learned_circle):
  network, description, directory = learned_circle
  assert sorted(os.listdir(directory)) == [E.EMBEDDING_FILE, E.WEIGHTS_FILE]
  with open(os.path.join(directory, E.EMBEDDING_FILE)) as f:
    assert json.load(f) == description
  h = tf.random.stateless_uniform([50, 1], seed=stateless_seed(15))
  circle = _latent("circle", 1, embedding=directory)
  np.testing.assert_allclose(circle.embedding_map(h).numpy(), network(h).numpy(), atol=1e-6)
  torus = _latent("torus", 3, embedding=directory, group_action=True)
  h3 = tf.random.stateless_uniform([50, 3], seed=stateless_seed(16))
  expected = np.concatenate([network(h3[:, i:i + 1]).numpy() for i in range(3)], axis=1)
  np.testing.assert_allclose(torus.embedding_map(h3).numpy(), expected, atol=1e-6)
  params = torus(tf.random.stateless_normal([8, 5], seed=stateless_seed(17)))
  assert torus.code_size == 6 and torus.sample(params, stateless_seed(18)).shape == (8, 6)
  assert not any("embedding" in v.path for v in torus.trainable_variables)  # f is frozen
  assert any("embedding" in v.path for v in torus.non_trainable_variables)  # ...but saved with the model
  assert float(torus.summaries(params)["manifold_distance"]) < 0.3


def test_embedding_mismatches_are_one_line_errors(learned_circle, tmp_path):
  _, _, directory = learned_circle
  with pytest.raises(UserError, match="hidden prior"):
    _latent("circle", 1, embedding=directory, hidden_prior="normal")
  with pytest.raises(UserError, match="embeds circle, not sphere:2"):
    _latent("sphere", 2, embedding=directory)
  with pytest.raises(UserError, match="fit_embedding"):
    _latent("circle", 1, embedding=str(tmp_path / "nothing"))


def test_fit_embedding_command_line(tmp_path, capsys):
  out = str(tmp_path / "emb")
  fit_lib.main(["--manifold", "sphere:2", "--out", out, "--steps", "3", "--eval-samples", "64",
                "--widths", "16,16", "--prior", "normal"])
  printed = capsys.readouterr().out
  assert "learned f" in printed and "projection" in printed and out in printed
  description = E.read_embedding_description(out)
  assert (description["manifold"], description["hidden_prior"], description["hidden_dim"],
          description["ambient_dim"], description["widths"]) == ("sphere:2", "normal", 2, 3, [16, 16])
  assert set(description["quality"]) == {"mean_distance", "max_distance", "mmd"}
  assert description["training"]["steps"] == 3
  assert not [f for f in os.listdir(tmp_path) if f.startswith(".")]  # no temporary directory left behind
  for argv, fragment in ((["--manifold", "sphere:2", "--out", out], "already exists"),
                         (["--manifold", "klein", "--out", str(tmp_path / "k")], "unknown manifold")):
    with pytest.raises(SystemExit) as exit_info:
      fit_lib.main(argv)
    assert exit_info.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and fragment in lines[0], lines
  assert not os.path.exists(tmp_path / "k")


def test_mmd_is_near_zero_for_one_law_and_large_for_two():
  x = tf.random.stateless_normal([500, 2], seed=stateless_seed(19))
  y = tf.random.stateless_normal([500, 2], seed=stateless_seed(20))
  for kernel in fit_lib.KERNELS:
    same, shifted = float(fit_lib.mmd(x, y, kernel, 4.)), float(fit_lib.mmd(x, y + 1., kernel, 4.))
    assert abs(same) < 0.02 and shifted > 0.2, (kernel, same, shifted)


# --- the model and its config --------------------------------------------------------------------------------------
def test_config_parses_to_the_documented_model():
  gin.parse_config_files_and_bindings([CONFIG], [])
  assert gin.query_parameter("encoder.num_latent") == 10
  model = ERVAE()
  space = model.make_latent_space()
  space.configure(10)
  assert isinstance(space, E.EmbeddedManifoldLatent) and model.beta == 1.
  assert (space.manifold.spec, space.embedding, space.hidden_prior, space.group_action) == (
      "torus:10", "projection", "uniform", True)
  assert space.code_size == 20


def test_missing_learned_embedding_stops_training_with_the_fix_and_writes_nothing(tmp_path):
  model_dir = tmp_path / "model"
  with pytest.raises(UserError, match="fit_embedding --manifold circle"):
    train_lib.train_with_gin(str(model_dir), gin_config_files=[CONFIG], gin_bindings=[
        "dataset.name = 'dummy_data'", f"embedded_manifold.embedding = '{tmp_path / 'no_such_embedding'}'"])
  assert not model_dir.exists()


def test_image_run_lowers_the_loss_and_the_five_metrics_evaluate(tmp_path):
  # gin_configs/ervae.gin as it is, on dlib's dummy_data with dlib's small test networks and 3 circles (the conv
  # networks and 10 circles train the same code, only slower). dummy_data is noise: the reconstruction term sits at
  # its floor (≈ 4096·ln 2) from the start, so training lowers the loss by collapsing the posterior onto the prior
  # (KL → 0), which is the right answer for noise.
  bindings = ["encoder.encoder_fn = @test_encoder", "decoder.decoder_fn = @test_decoder", "encoder.num_latent = 3",
              "model.batch_size = 8", "model.eval_steps = 2", "train_loop.log_every_steps = 10",
              "vae/AdamOptimizer.learning_rate = 0.001"]
  initial = train_lib.train_with_gin(str(tmp_path / "initial"), gin_config_files=[CONFIG],
                                     gin_bindings=bindings + ["dataset.name = 'dummy_data'",
                                                              "model.training_steps = 0"])
  metrics = tuple(pipeline.DEFAULT_METRICS)
  small = [binding for metric in metrics for binding in METRICS[metric][1]]
  scores = pipeline.run_pipeline(CONFIG, str(tmp_path / "run"), dataset="dummy_data", steps=20, metrics=metrics,
                                 gin_bindings=bindings, metric_bindings=small)
  with open(tmp_path / "run" / "model" / "results" / "json" / "train_results.json") as f:
    final = json.load(f)
  assert final["global_step"] == 20 and final["manifold_distance"] < 1e-5
  assert final["loss"] < initial["loss"] - 0.1, (initial["loss"], final["loss"])
  assert final["kl_loss"] < 0.1 * initial["kl_loss"], (initial["kl_loss"], final["kl_loss"])
  assert set(scores) == set(metrics)
  for metric in metrics:
    headline = pipeline.headline(metric, scores[metric])
    assert headline and all(np.isfinite(v) for v in headline.values()), (metric, scores[metric])
  module = tf.saved_model.load(str(tmp_path / "run" / "model" / "tfhub"))
  images = tf.random.stateless_uniform([4, 64, 64, 1], seed=stateless_seed(21))
  representation = module.signatures["mean_representation"](images=images)["default"].numpy()
  assert representation.shape == (4, 6)
  np.testing.assert_allclose(np.linalg.norm(representation.reshape(4, 3, 2), axis=2), 1., atol=1e-5)
  encoded = module.signatures["gaussian_encoder"](images=images)
  np.testing.assert_allclose(encoded["mean"].numpy(), representation, atol=1e-6)


# --- the benchmark -------------------------------------------------------------------------------------------------
def test_circle_benchmark_runs_end_to_end_at_tiny_size(learned_circle, tmp_path, capsys):
  spec = importlib.util.spec_from_file_location("ervae_circle", BENCH)
  bench = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(bench)
  out = str(tmp_path / "bench.json")
  bench.main(["--size", "tiny", "--embedding", learned_circle[2], "--json", out])
  printed = capsys.readouterr().out
  with open(out) as f:
    results = json.load(f)
  assert list(results["models"]) == list(bench.MODELS)
  for name, row in results["models"].items():
    assert name in printed
    assert np.isfinite(row["elbo"]) and np.isfinite(row["iwae"])
    assert row["iwae"] >= row["elbo"] - 1e-3  # log-mean-exp ≥ mean on the same draws
  assert results["settings"]["size"] == "tiny" and "IWAE (k=" in printed
