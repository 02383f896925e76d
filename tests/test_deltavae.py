"""Tests for the ΔVAE: diffusion latent spaces (submission.latent.diffusion) and the model (submission.models.deltavae).

Reference numbers come from docs/models/deltavae.md §2 (log-volumes and the KL table).
"""

import math
import os

import gin
import numpy as np
import pytest
import tensorflow as tf

from conftest import stateless_seed
from submission import train as train_lib
from submission.latent import diffusion as D
from submission.latent import manifolds as M
from submission.models.deltavae import DeltaVAE, capacity_schedule

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SPHERE_CONFIG = os.path.join(ROOT, "gin_configs", "deltavae.gin")
TORUS_CONFIG = os.path.join(ROOT, "gin_configs", "deltavae_torus.gin")



def _latent(kind="sphere", dim=10, **kwargs):
  space = D.HypersphereLatent(**kwargs) if kind == "sphere" else D.TorusLatent(**kwargs)
  space.configure(dim)
  return space




# --- closed forms against docs/models/deltavae.md -------------------------------------------------------------------
@pytest.mark.parametrize("d, expected", [(1, math.log(2 * math.pi)), (2, math.log(4 * math.pi)), (10, 3.031),
                                         (20, -1.228)])
def test_log_volume_sphere(d, expected):
  assert abs(float(D.log_volume_sphere(d)) - expected) < 0.01


@pytest.mark.parametrize("d, log_t, expected", [(10, -5., 13.99), (20, -7.5, 45.45), (2, -10., 9.69),
                                                (10, -7.5, 26.35), (20, -5., 21.03), (2, -3., 2.72)])
def test_sphere_kl_matches_research_table(d, log_t, expected):
  assert abs(float(D.sphere_kl_to_uniform(tf.constant(log_t), d)) - expected) < 0.01


def test_sphere_kl_formula_terms():
  # Pérez Rey 2019, eq. 3, written out term by term in NumPy, for a vector of log t.
  log_t = np.array([-9., -7., -5.5], np.float64)
  d = 7
  log_vol = math.log(2) + (d + 1) / 2 * math.log(math.pi) - math.lgamma((d + 1) / 2)
  expected = -d / 2 * np.log(2 * np.pi * np.exp(log_t)) - d / 2 + log_vol + d * (d - 1) * np.exp(log_t) / 4
  np.testing.assert_allclose(D.sphere_kl_to_uniform(tf.constant(log_t), d).numpy(), expected, rtol=1e-10)


def test_circle_and_torus_kl():
  # Flat circle: the entropy of a Gaussian of variance t against the uniform density 1/(2π).
  log_t = np.array([[-5., -7.5, -6.]], np.float32)
  per_circle = -0.5 * np.log(2 * np.pi * np.exp(log_t)) - 0.5 + np.log(2 * np.pi)
  np.testing.assert_allclose(D.circle_kl_to_uniform(tf.constant(log_t)).numpy(), per_circle, rtol=1e-6)
  np.testing.assert_allclose(D.torus_kl_to_uniform(tf.constant(log_t)).numpy(), per_circle.sum(1), rtol=1e-6)
  assert abs(float(D.circle_kl_to_uniform(tf.constant(-5.))) - 2.919) < 0.001


# --- the random walk ------------------------------------------------------------------------------------------------
def test_sphere_samples_lie_on_the_sphere():
  space = _latent(dim=10, num_steps=5)
  features = tf.random.stateless_normal([256, 32], seed=stateless_seed(1))
  params = space(features)
  z = space.sample(params, stateless_seed(2))
  assert z.shape == (256, 11)
  assert np.max(np.abs(np.linalg.norm(z.numpy(), axis=1) - 1.)) < 1e-5
  assert np.max(np.abs(np.linalg.norm(params["loc"].numpy(), axis=1) - 1.)) < 1e-5
  prior = space.sample_prior(4096, stateless_seed(3)).numpy()
  assert prior.shape == (4096, 11)
  assert np.max(np.abs(np.linalg.norm(prior, axis=1) - 1.)) < 1e-5
  # Uniform on S^10: mean 0 and covariance I/11 (standard errors ≈ 0.005 and ≈ 0.002).
  assert np.max(np.abs(prior.mean(0))) < 0.03
  np.testing.assert_allclose(np.cov(prior.T), np.eye(11) / 11, atol=0.01)


def test_torus_samples_lie_on_their_circles():
  space = _latent("torus", dim=4, num_steps=5)
  features = tf.random.stateless_normal([128, 16], seed=stateless_seed(4))
  params = space(features)
  assert params["loc"].shape == (128, 8) and params["log_t"].shape == (128, 4)
  for z in (space.sample(params, stateless_seed(5)), space.sample_prior(128, stateless_seed(6)), params["loc"]):
    radii = np.linalg.norm(z.numpy().reshape(-1, 4, 2), axis=2)
    assert np.max(np.abs(radii - 1.)) < 1e-5


def test_sphere_walk_spread_matches_brownian_motion():
  # E[geodesic distance²] = d·t − S·t²/6 ≈ d·t (S·t²/6 is 0.15% of d·t here); Monte-Carlo s.e. of the ratio
  # is √(2/d)/√N ≈ 0.2%, and the L = 10 walk is within ~0.5% of Brownian motion (docs/models/deltavae.md §1).
  d, t, n = 10, 1e-3, 50000
  loc = M.nearest_on_sphere(tf.random.stateless_normal([n, d + 1], seed=stateless_seed(7)))
  z = D.projected_random_walk(loc, tf.fill([n, 1], t), 10, stateless_seed(8))
  r2 = np.square(M.sphere_geodesic_distance(tf.cast(loc, tf.float64), tf.cast(z, tf.float64)).numpy())
  ratio = r2.mean() / (d * t)
  assert abs(ratio - 1.) < 0.03, ratio


def test_torus_walk_spread_matches_brownian_motion():
  # Each circle: the angle moves by a wrapped Gaussian of variance t_i.
  n, t = 40000, np.array([1e-3, 4e-3], np.float32)
  space = _latent("torus", dim=2, num_steps=10)
  angles = tf.random.stateless_uniform([n, 2], seed=stateless_seed(9), maxval=2 * math.pi)
  loc = tf.reshape(tf.stack([tf.cos(angles), tf.sin(angles)], axis=-1), [n, 4])
  z = space.sample({"loc": loc, "log_t": tf.math.log(tf.tile(t[None], [n, 1]))}, stateless_seed(10)).numpy()
  pairs, start = z.reshape(n, 2, 2), loc.numpy().reshape(n, 2, 2)
  delta = np.arctan2(pairs[..., 1] * start[..., 0] - pairs[..., 0] * start[..., 1],
                     (pairs * start).sum(-1))
  np.testing.assert_allclose(np.square(delta).mean(0), t, rtol=0.03)


@pytest.mark.parametrize("num_steps", [1, 2, 5, 10])
def test_walk_gradients_wrt_loc_and_t(num_steps):
  # Reparameterised: gradients reach loc and t through all steps, finite, and d/dt agrees with a central finite
  # difference of the same (stateless) walk.
  loc = tf.Variable(M.nearest_on_sphere(tf.random.stateless_normal([64, 6], seed=stateless_seed(11), dtype=tf.float64)))
  t = tf.Variable(tf.fill([64, 1], tf.constant(3e-3, tf.float64)))
  weights = tf.random.stateless_normal([64, 6], seed=stateless_seed(12), dtype=tf.float64)
  seed = stateless_seed(13, num_steps)

  def objective(t_value):
    return tf.reduce_sum(weights * D.projected_random_walk(loc, t_value, num_steps, seed))

  with tf.GradientTape() as tape:
    value = objective(t)
  grad_loc, grad_t = tape.gradient(value, [loc, t])
  for grad in (grad_loc, grad_t):
    assert np.all(np.isfinite(grad.numpy())) and np.any(np.abs(grad.numpy()) > 1e-6)
  h = 1e-7
  numerical = (objective(t + h) - objective(t - h)) / (2 * h)
  np.testing.assert_allclose(float(tf.reduce_sum(grad_t)), float(numerical), rtol=1e-4)


@pytest.mark.parametrize("kind, bounded", [("sphere", True), ("sphere", False), ("torus", True)])
def test_gradients_reach_both_heads(kind, bounded):
  space = _latent(kind, dim=5, num_steps=5, bounded=bounded)
  features = tf.random.stateless_normal([32, 16], seed=stateless_seed(14))
  space(features)  # builds the heads
  weights = tf.random.stateless_normal([32, space.code_size], seed=stateless_seed(15))
  with tf.GradientTape() as tape:
    z = space.sample(space(features), stateless_seed(16))
    value = tf.reduce_sum(weights * z)
  heads = [space.means.kernel, space.log_var.kernel]
  for grad in tape.gradient(value, heads):
    assert grad is not None and np.all(np.isfinite(grad.numpy())) and np.any(np.abs(grad.numpy()) > 1e-6)


def test_stateless_seed_reproducible():
  for kind in ("sphere", "torus"):
    space = _latent(kind, dim=6)
    params = space(tf.random.stateless_normal([16, 8], seed=stateless_seed(17)))
    a, b, c = (space.sample(params, s).numpy() for s in (stateless_seed(18), stateless_seed(18), stateless_seed(19)))
    np.testing.assert_array_equal(a, b)
    assert np.min(np.abs(a - c).max(axis=1)) > 1e-4
    np.testing.assert_array_equal(space.sample_prior(8, stateless_seed(20)).numpy(), space.sample_prior(8, stateless_seed(20)).numpy())


def test_log_t_bounds_and_exports():
  space = _latent(dim=10, log_t_min=-7.5, log_t_max=-5.)
  params = space(100. * tf.random.stateless_normal([64, 8], seed=stateless_seed(21)))  # saturates the tanh both ways
  log_t = params["log_t"].numpy()
  assert log_t.shape == (64, 1) and log_t.min() >= -7.5 and log_t.max() <= -5.
  assert log_t.min() < -7.4 and log_t.max() > -5.1
  mean, logvar = space.gaussian_encoder_outputs(params)
  assert mean.shape == logvar.shape == (64, 11)
  np.testing.assert_array_equal(mean.numpy(), space.representation(params).numpy())
  np.testing.assert_array_equal(logvar.numpy(), np.repeat(log_t, 11, axis=1))
  np.testing.assert_allclose(space.kl(params).numpy(),
                             D.sphere_kl_to_uniform(tf.constant(log_t[:, 0]), 10).numpy(), rtol=1e-6)
  assert abs(float(space.summaries(params)["mean_log_t"]) - log_t.mean()) < 1e-5
  torus = _latent("torus", dim=3)
  tparams = torus(tf.random.stateless_normal([4, 8], seed=stateless_seed(22)))
  _, tlogvar = torus.gaussian_encoder_outputs(tparams)
  np.testing.assert_array_equal(tlogvar.numpy(), np.repeat(tparams["log_t"].numpy(), 2, axis=1))


def test_unbounded_log_t_is_the_linear_head():
  space = _latent(dim=3, bounded=False)
  features = tf.random.stateless_normal([5, 4], seed=stateless_seed(23))
  params = space(features)
  expected = features.numpy() @ space.log_var.kernel.numpy() + space.log_var.bias.numpy()
  np.testing.assert_allclose(params["log_t"].numpy(), expected, rtol=1e-5, atol=1e-6)


# --- the model's objective ------------------------------------------------------------------------------------------
def test_capacity_schedule():
  steps = np.array([0., 1000., 25000., 50000., 100000., 250000.], np.float32)
  c_min, c_max, ramp = 2., 15., 100000
  expected = c_min + (c_max - c_min) * np.clip(steps / ramp, 0., 1.)
  np.testing.assert_allclose(capacity_schedule(tf.constant(steps), c_min, c_max, ramp).numpy(), expected,
                             rtol=1e-6)
  assert float(capacity_schedule(tf.constant(5.), 0., 15., 0)) == 15.


def _model_with_latent(**kwargs):
  model = DeltaVAE(latent_space=D.hypersphere, **kwargs)
  model.latent = model.make_latent_space()
  model.latent.configure(10)
  return model


def test_regularizer_against_numpy():
  log_t = np.array([[-5.], [-6.], [-7.5], [-5.5]], np.float32)
  params = {"loc": M.nearest_on_sphere(tf.ones([4, 11])), "log_t": tf.constant(log_t)}
  kl = -5 * np.log(2 * np.pi * np.exp(log_t[:, 0])) - 5 + 3.0313478 + 90 * np.exp(log_t[:, 0]) / 4
  kl_mean = tf.constant(kl.mean(), tf.float32)
  beta, c_min, c_max, ramp = 2.5, 0., 30., 1000
  model = _model_with_latent(beta=beta, c_min=c_min, c_max=c_max, capacity_steps=ramp)
  for step in (0., 400., 700., 5000.):
    capacity = c_min + (c_max - c_min) * min(1., step / ramp)
    expected = beta * np.mean(np.abs(kl - capacity))
    got = float(model.regularizer(kl_mean, params, None, tf.constant(step)))
    assert abs(got - expected) < 1e-3 * max(1., expected), (step, got, expected)
  # Capacity off, or β = 0: the plain ELBO's KL.
  for off in (_model_with_latent(capacity=False, beta=10.), _model_with_latent(beta=0.)):
    assert abs(float(off.regularizer(kl_mean, params, None, tf.constant(700.))) - kl.mean()) < 1e-4


def test_configs_parse_with_the_seed_values():
  gin.parse_config_files_and_bindings([SPHERE_CONFIG], [])
  assert gin.query_parameter("encoder.num_latent") == 10
  model = DeltaVAE()
  assert (model.beta, model.c_min, model.c_max, model.capacity) == (1., 0., 15., True)
  space = model.make_latent_space()
  assert isinstance(space, D.HypersphereLatent) and space.num_steps == 5
  assert (space.log_t_min, space.log_t_max, space.bounded) == (-7.5, -5., True)
  gin.clear_config()
  gin.parse_config_files_and_bindings([TORUS_CONFIG], [])
  model = DeltaVAE()
  assert isinstance(model.make_latent_space(), D.TorusLatent) and not model.uses_capacity


# --- the real pipeline ----------------------------------------------------------------------------------------------
def test_training_pipeline_lowers_loss_and_exports(tmp_path):
  # Same seed, same eval batches and eval noise: the only difference between the two runs is the training.
  bindings = ["dataset.name = 'dummy_data'", "model.batch_size = 8", "model.eval_steps = 2",
              "train_loop.log_every_steps = 15", "vae/AdamOptimizer.learning_rate = 0.001"]
  initial = train_lib.train_with_gin(str(tmp_path / "initial"), gin_config_files=[SPHERE_CONFIG],
                                     gin_bindings=bindings + ["model.training_steps = 0"])
  trained_dir = str(tmp_path / "trained")
  final = train_lib.train_with_gin(trained_dir, gin_config_files=[SPHERE_CONFIG],
                                   gin_bindings=bindings + ["model.training_steps = 30"])
  for key in ("reconstruction_loss", "elbo", "regularizer", "kl_loss", "loss", "capacity", "mean_log_t"):
    assert key in final and np.isfinite(final[key])
  assert final["global_step"] == 30 and abs(final["capacity"] - 15. * 30 / 100000) < 1e-6
  assert final["loss"] < initial["loss"] - 1., (initial["loss"], final["loss"])
  assert final["kl_loss"] < initial["kl_loss"]

  module = tf.saved_model.load(os.path.join(trained_dir, "tfhub"))
  images = tf.random.stateless_uniform([5, 64, 64, 1], seed=stateless_seed(24))
  representation = module.signatures["mean_representation"](images=images)["default"].numpy()
  assert representation.shape == (5, 11)
  np.testing.assert_allclose(np.linalg.norm(representation, axis=1), 1., atol=1e-5)
  encoded = module.signatures["gaussian_encoder"](images=images)
  np.testing.assert_allclose(encoded["mean"].numpy(), representation, atol=1e-6)
  logvar = encoded["logvar"].numpy()
  assert logvar.shape == (5, 11) and logvar.min() >= -7.5 and logvar.max() <= -5.
  sampled = module.signatures["sampled_representation"](images=images, seed=stateless_seed(25))["default"].numpy()
  np.testing.assert_allclose(np.linalg.norm(sampled, axis=1), 1., atol=1e-5)
