"""Each reference model's loss terms against an independent NumPy computation on fixed inputs."""

import math

import gin
import keras
import numpy as np
import pytest
import tensorflow as tf

from submission import cli, losses, train  # train also registers the `model` configurable
from submission.latent import base as latent_base
from submission.latent.gaussian import gaussian_kl
from submission.models import annealed_vae, beta_tc_vae, dip_vae, factor_vae

RNG = np.random.RandomState(0)


# --- NumPy references, written from the papers' formulas -----------------------------------------------------
def np_gaussian_kl(mean, logvar):
  return 0.5 * np.sum(mean**2 + np.exp(logvar) - logvar - 1., axis=1)


def np_bernoulli(x, logits):
  """−log Bernoulli(x | sigmoid(logits)) summed per example, in the stable form log(1 + e^l) − x·l."""
  x, logits = x.reshape(len(x), -1), logits.reshape(len(x), -1)
  return np.sum(np.logaddexp(0., logits) - x * logits, axis=1)


def np_log_normal(s, m, logvar):
  return -0.5 * ((s - m)**2 * np.exp(-logvar) + logvar + np.log(2 * np.pi))


def np_total_correlation(z, mean, logvar):
  batch = len(z)
  values = []
  for j in range(batch):
    log_q = np.array([np_log_normal(z[j], mean[i], logvar[i]) for i in range(batch)])  # [i, l]
    joint = np.log(np.sum(np.exp(log_q.sum(axis=1))))
    product = np.sum(np.log(np.sum(np.exp(log_q), axis=0)))
    values.append(joint - product)
  return np.mean(values)


def np_dip(mean, logvar, lambda_od, lambda_d, dip_type):
  covariance = np.cov(mean.T, bias=True)
  if dip_type == "ii":
    covariance = covariance + np.diag(np.exp(logvar).mean(axis=0))
  off = covariance - np.diag(np.diag(covariance))
  return lambda_od * np.sum(off**2) + lambda_d * np.sum((np.diag(covariance) - 1)**2)


# --- building blocks ------------------------------------------------------------------------------------------
def test_gaussian_kl_matches_dlib_reference_values_and_numpy():
  assert float(tf.reduce_mean(gaussian_kl(tf.zeros([4, 10]), tf.zeros([4, 10])))) == 0.
  assert float(tf.reduce_mean(gaussian_kl(tf.ones([4, 10]), tf.zeros([4, 10])))) == pytest.approx(5.)
  assert float(tf.reduce_mean(gaussian_kl(tf.ones([4, 10]), tf.ones([4, 10])))) == pytest.approx(8.59, abs=5e-3)
  mean, logvar = RNG.randn(6, 5), RNG.randn(6, 5)
  np.testing.assert_allclose(gaussian_kl(mean, logvar), np_gaussian_kl(mean, logvar), rtol=1e-6)


def test_reconstruction_losses_match_numpy():
  x = RNG.uniform(size=(3, 4, 4, 1)).astype(np.float32)
  logits = RNG.randn(3, 4, 4, 1).astype(np.float32)
  np.testing.assert_allclose(losses.bernoulli_loss(x, logits, "logits"), np_bernoulli(x, logits), rtol=1e-5)
  entropy = -np.sum((x * np.log(x) + (1 - x) * np.log(1 - x)).reshape(3, -1), axis=1)
  np.testing.assert_allclose(losses.bernoulli_loss(x, logits, "logits", subtract_true_image_entropy=True),
                             np_bernoulli(x, logits) - entropy, rtol=1e-4)
  p = np.clip(np.tanh(logits) / 2 + 0.5, 1e-6, 1 - 1e-6)
  np.testing.assert_allclose(losses.bernoulli_loss(x, logits, "tanh"),
                             -np.sum((x * np.log(p) + (1 - x) * np.log(1 - p)).reshape(3, -1), axis=1), rtol=1e-5)
  np.testing.assert_allclose(losses.l2_loss(x, logits, "logits"),
                             np.sum(((x - 1 / (1 + np.exp(-logits)))**2).reshape(3, -1), axis=1), rtol=1e-5)
  # A perfect reconstruction of a binary image costs ~0 once the entropy (0 for binary pixels) is subtracted.
  binary = (x > 0.5).astype(np.float32)
  assert float(tf.reduce_max(losses.bernoulli_loss(binary, (binary - 0.5) * 60., "logits"))) < 1e-6


def test_gaussian_log_density_matches_dlib_reference_values():
  assert float(beta_tc_vae.gaussian_log_density(1., 0., 0.)) == pytest.approx(-1.4189, abs=1e-4)
  assert float(beta_tc_vae.gaussian_log_density(1., 1., 0.)) == pytest.approx(-0.919, abs=1e-3)


def test_total_correlation_matches_numpy_and_dlib_reference():
  z, mean, logvar = RNG.randn(7, 3), RNG.randn(7, 3), RNG.randn(7, 3) * 0.3
  assert float(beta_tc_vae.total_correlation(z, mean, logvar)) == pytest.approx(
      np_total_correlation(z, mean, logvar), rel=1e-5)
  # As dlib's vae_test: independent standard normals give −(d − 1)·log(B) (the dropped constant).
  samples = np.random.RandomState(1).randn(2000, 10).astype(np.float32)
  value = float(beta_tc_vae.total_correlation(samples, np.zeros_like(samples), np.zeros_like(samples)))
  assert value == pytest.approx(-9 * math.log(2000), abs=0.1)


def test_dip_regularizer_matches_dlib_reference_values_and_numpy():
  reg = dip_vae.regularize_diag_off_diag_dip
  assert float(reg(tf.ones([10, 10]), 1., 1.)) == pytest.approx(90.)
  assert float(reg(tf.zeros([10, 10]), 1., 1.)) == pytest.approx(10.)
  assert float(reg(tf.eye(10), 1., 1.)) == pytest.approx(0.)
  assert float(reg(2. * tf.eye(10), 1., 1.)) == pytest.approx(10.)
  mean, logvar = RNG.randn(9, 4), RNG.randn(9, 4)
  for dip_type in ("i", "ii"):
    covariance = dip_vae.dip_covariance(mean, logvar, dip_type)
    assert float(reg(covariance, 2., 20.)) == pytest.approx(np_dip(mean, logvar, 2., 20., dip_type), rel=1e-6)


def test_anneal_rises_linearly_then_stays():
  assert [float(annealed_vae.anneal(25., t, 100)) for t in (0, 50, 100, 400)] == [0., 12.5, 25., 25.]


def test_shuffle_codes_permutes_each_column_independently():
  z = tf.reshape(tf.range(64 * 3, dtype=tf.float32), [64, 3])
  shuffled = factor_vae.shuffle_codes(z, tf.constant([1, 2], tf.int64)).numpy()
  for column in range(3):
    assert sorted(shuffled[:, column]) == sorted(z.numpy()[:, column])
  assert not np.array_equal(shuffled, z.numpy())
  orders = [np.argsort(shuffled[:, c]) for c in range(3)]
  assert not np.array_equal(orders[0], orders[1])


# --- whole models: every loss term against NumPy on the model's own weights ------------------------------------
MODEL_BINDINGS = {
    "vae": ["model.model = @vae()", "vae.beta = 4."],
    "annealed_vae": ["model.model = @annealed_vae()", "annealed_vae.gamma = 1000.", "annealed_vae.c_max = 25.",
                     "annealed_vae.iteration_threshold = 100"],
    "factor_vae": ["model.model = @factor_vae()", "factor_vae.gamma = 30.",
                   "discriminator.discriminator_fn = @fc_discriminator"],
    "dip_vae_i": ["model.model = @dip_vae()", "dip_vae.lambda_od = 10.", "dip_vae.lambda_d_factor = 10.",
                  "dip_vae.dip_type = 'i'"],
    "dip_vae_ii": ["model.model = @dip_vae()", "dip_vae.lambda_od = 10.", "dip_vae.lambda_d_factor = 1.",
                   "dip_vae.dip_type = 'ii'"],
    "beta_tc_vae": ["model.model = @beta_tc_vae()", "beta_tc_vae.beta = 6."],
}
COMMON = [
    "encoder.num_latent = 4", "encoder.encoder_fn = @test_encoder", "decoder.decoder_fn = @test_decoder",
    "reconstruction_loss.loss_fn = @bernoulli_loss", "vae_optimizer.optimizer_fn = @AdamOptimizer",
    "discriminator_optimizer.optimizer_fn = @AdamOptimizer",
]


def dense(layer, x):
  kernel, bias = (v.numpy().astype(np.float64) for v in layer.weights)
  return x @ kernel + bias


def np_discriminator(network, z):
  h = z
  for layer in network.layers:
    if isinstance(layer, keras.layers.Dense):
      h = dense(layer, h)
    elif isinstance(layer, keras.layers.LeakyReLU):
      h = np.where(h > 0, h, 0.2 * h)
  return h


def np_softmax_clipped(logits):
  e = np.exp(logits - logits.max(axis=1, keepdims=True))
  return np.clip(e / e.sum(axis=1, keepdims=True), 1e-6, 1 - 1e-6)


@pytest.mark.parametrize("name", sorted(MODEL_BINDINGS))
def test_model_loss_terms_match_numpy(name):
  images = RNG.uniform(size=(6, 4, 4, 1)).astype(np.float32)
  seed = tf.constant([3, 4], tf.int64)
  step = 30.
  with cli.gin_config(bindings=COMMON + MODEL_BINDINGS[name]):
    keras.utils.set_random_seed(0)
    model = gin.query_parameter("model.model").scoped_configurable_fn()
    model.build([4, 4, 1])
    forward_seed = seed
    if name == "factor_vae":  # its train step splits the seed: one for z, one for the shuffle
      forward_seed, shuffle_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
    terms, _, z_tf = model.forward(tf.constant(images), forward_seed, tf.constant(step))
    terms = {k: float(v) for k, v in terms.items()}
    if name == "factor_vae":
      discriminator_loss = float(model.discriminator_loss(z_tf, shuffle_seed))

  x = images.reshape(6, -1).astype(np.float64)
  mean, logvar = dense(model.latent.means, x), dense(model.latent.log_var, x)
  epsilon = tf.random.stateless_normal([6, 4], seed=forward_seed).numpy().astype(np.float64)
  z = mean + np.exp(logvar / 2) * epsilon
  reconstruction = np.mean(np_bernoulli(images.astype(np.float64), dense(model.decoder.layers[0], z)))
  kl = np.mean(np_gaussian_kl(mean, logvar))
  if name == "vae":
    regularizer = 4. * kl
  elif name == "annealed_vae":
    regularizer = 1000. * abs(kl - min(25., 25. * step / 100))
  elif name == "factor_vae":
    logits = np_discriminator(model.discriminator, z)
    regularizer = kl + 30. * np.mean(logits[:, 0] - logits[:, 1])
    z_shuffled = factor_vae.shuffle_codes(z_tf, shuffle_seed).numpy().astype(np.float64)
    expected_discriminator = -(0.5 * np.mean(np.log(np_softmax_clipped(logits)[:, 0])) + 0.5 * np.mean(
        np.log(np_softmax_clipped(np_discriminator(model.discriminator, z_shuffled))[:, 1])))
    assert discriminator_loss == pytest.approx(expected_discriminator, rel=1e-4)
  elif name == "dip_vae_i":
    regularizer = kl + np_dip(mean, logvar, 10., 100., "i")
  elif name == "dip_vae_ii":
    regularizer = kl + np_dip(mean, logvar, 10., 10., "ii")
  else:
    regularizer = kl + 5. * np_total_correlation(z, mean, logvar)

  assert terms["reconstruction_loss"] == pytest.approx(reconstruction, rel=1e-4)
  assert terms["kl_loss"] == pytest.approx(kl, rel=1e-4)
  assert terms["regularizer"] == pytest.approx(regularizer, rel=1e-4, abs=1e-4)
  assert terms["loss"] == pytest.approx(reconstruction + regularizer, rel=1e-4)
  if name == "factor_vae":
    assert "elbo" not in terms
  else:
    assert terms["elbo"] == pytest.approx(-(reconstruction + kl), rel=1e-4)


def test_latent_spaces_declare_their_kind_and_beta_vae_takes_any():
  """(Every registered model that reads one family's parameters refusing another: tests/test_registered_models.py.)"""
  assert latent_base.latent_kinds(latent_base.DIAGONAL_GAUSSIAN) == ["gaussian", "l0_gated_gaussian"]
  assert latent_base.latent_kinds(latent_base.DIFFUSION) == ["hypersphere", "torus"]
  assert latent_base.latent_kinds(latent_base.EMBEDDED) == ["embedded_manifold"]
  for factory in ("@hypersphere", "@gaussian", "@l0_gated_gaussian"):  # β-VAE's objective reads only the KL
    with cli.gin_config(bindings=COMMON + MODEL_BINDINGS["vae"] + [f"latent_space.factory = {factory}"]):
      model = gin.query_parameter("model.model").scoped_configurable_fn().build([4, 4, 1])
      assert model.latent.kind == factory[1:]


def test_factor_vae_counts_two_steps_per_iteration_like_dlib_unless_told_otherwise():
  assert factor_vae.FactorVAE(gamma=1.).steps_per_iteration == 2
  assert factor_vae.FactorVAE(gamma=1., dlib_step_count=False).steps_per_iteration == 1


def test_non_finite_loss_leaves_weights_unchanged():
  with cli.gin_config(bindings=COMMON + MODEL_BINDINGS["vae"]):
    keras.utils.set_random_seed(0)
    model = gin.query_parameter("model.model").scoped_configurable_fn()
    model.build([4, 4, 1])
    before = [v.numpy().copy() for v in model.vae_variables]
    images = np.full((2, 4, 4, 1), np.nan, np.float32)
    terms = model.train_step(tf.constant(images), tf.constant([0, 1], tf.int64), tf.constant(0.))
  assert not bool(terms["finite"])
  for old, new in zip(before, model.vae_variables):
    np.testing.assert_array_equal(old, new.numpy())


def test_conv_vae_step_equals_keras_transposed_convolution_and_adam():
  """The step's speed-ups (the last transposed convolution by phases on CPU, the XLA-compiled update) change no
  maths: the compiled step gives the loss and the updated weights of Keras' own layer and Adam, run eagerly, on
  the same weights and batch."""
  images = tf.constant((RNG.uniform(size=(4, 64, 64, 1)) > 0.8).astype(np.float32))
  seed, step = tf.constant([5, 6], tf.int64), tf.constant(0.)
  bindings = ["model.model = @vae()", "vae.beta = 4.", "encoder.num_latent = 10",
              "encoder.encoder_fn = @conv_encoder", "decoder.decoder_fn = @deconv_decoder",
              "reconstruction_loss.loss_fn = @bernoulli_loss", "vae_optimizer.optimizer_fn = @AdamOptimizer",
              "AdamOptimizer.learning_rate = 1e-4"]
  with cli.gin_config(bindings=bindings):
    keras.utils.set_random_seed(0)
    model = gin.query_parameter("model.model").scoped_configurable_fn()
    model.build([64, 64, 1])
    last = model.decoder.layers[-2]
    assert last.split_phases == (not tf.config.list_physical_devices("GPU"))
    start = [v.numpy() for v in model.vae_variables]
    last.split_phases = False
    expected_weights = [tf.Variable(w) for w in start]
    with tf.GradientTape() as tape:
      expected_terms, _, _ = model.forward(images, seed, step)
    gradients = tape.gradient(expected_terms["loss"], model.vae_variables)
    keras.optimizers.Adam(learning_rate=1e-4, epsilon=1e-8).apply_gradients(zip(gradients, expected_weights))
    last.split_phases = True
    terms = tf.function(model.train_step)(images, seed, step)
  assert bool(terms["finite"])
  assert float(terms["loss"]) == pytest.approx(float(expected_terms["loss"]), rel=1e-6)
  for before, expected, got in zip(start, expected_weights, model.vae_variables):
    # Adam's first update moves each weight by about the learning rate: compare it to 1 % of that.
    np.testing.assert_allclose(got.numpy() - before, expected.numpy() - before, rtol=0, atol=1e-6)
  assert max(float(np.max(np.abs(got.numpy() - before))) for before, got in zip(start, model.vae_variables)) > 5e-5


def test_mixed_precision_trains_with_float32_latent_maths():
  images = tf.constant(RNG.uniform(size=(4, 4, 4, 1)).astype(np.float32))
  with cli.gin_config(bindings=COMMON + MODEL_BINDINGS["factor_vae"]):
    model = gin.query_parameter("model.model").scoped_configurable_fn()
    train.build_model(model, [4, 4, 1], mixed_precision=True)
    assert keras.mixed_precision.dtype_policy().name == "float32"  # restored after the build
    assert model.decoder.layers[0].compute_dtype == "float16"
    assert model.latent.means.compute_dtype == "float32"
    assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
    params = model.encode(images)
    assert params["mean"].dtype == tf.float32 and model.decode(params["mean"]).dtype == tf.float32
    before = [v.numpy().copy() for v in model.vae_variables]
    train_step = tf.function(model.train_step)
    for step in range(3):
      terms = train_step(images, tf.constant([step, 1], tf.int64), tf.constant(float(step)))
      assert bool(terms["finite"]) and np.isfinite(float(terms["loss"]))
  assert any(not np.array_equal(old, new.numpy()) for old, new in zip(before, model.vae_variables))
  assert all(v.dtype == tf.float32 for v in model.vae_variables)
