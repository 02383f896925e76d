"""CHyVAE: the full-covariance posterior, the inverse-Wishart prior, and the regulariser against docs/models/chyvae.md's
formulas (NumPy and Monte Carlo). The training run on CorrelatedEllipses is in test_correlated_ellipses.py.

Reference: docs/models/chyvae.md §1 (objective, constant, batch form, large-ν limit) and §3 (prior sampling).
"""

import math
import os

import gin
import numpy as np
import pytest
import tensorflow as tf
from scipy import special, stats

from conftest import REPOSITORY_ROOT, stateless_seed
from submission import cli, train  # noqa: F401  (train registers the `model` configurable chyvae.gin binds)
from submission.errors import UserError
from submission.latent import full_covariance as F
from submission.latent.base import derived_seed
from submission.models import chyvae as M

CONFIG = os.path.join(REPOSITORY_ROOT, "gin_configs", "chyvae.gin")





def random_posterior(rs, batch, d, scale=0.5):
  """μ [B, d], S [B, d, d] positive definite, z' [B, d] (float64)."""
  mean = rs.randn(batch, d)
  a = rs.randn(batch, d, d) * scale
  covariance = a @ np.swapaxes(a, 1, 2) + 0.2 * np.eye(d)
  return mean, covariance, rs.randn(batch, d) * 1.3


def tf_kl_code(mean, covariance, z_prime, psi_scale, nu, batch_form=False):
  function = M.kl_code_batch if batch_form else M.kl_code
  s = tf.constant(covariance)
  return function(tf.constant(mean), s, tf.linalg.cholesky(s), tf.constant(z_prime), psi_scale, nu).numpy()


# --- NumPy references, written from docs/models/chyvae.md ---------------------------------------------------------
def np_kl_code(mean, covariance, z_prime, psi_scale, nu):
  """(ν+1)/2 log|Ψ + z'z'ᵀ| − ½ log|S| + (ν+1)/2 tr[(S + μμᵀ + Ψ)(Ψ + z'z'ᵀ)⁻¹], one example."""
  d = len(mean)
  psi = psi_scale * np.eye(d)
  a = psi + np.outer(z_prime, z_prime)
  return ((nu + 1) / 2 * np.linalg.slogdet(a)[1] - 0.5 * np.linalg.slogdet(covariance)[1]
          + (nu + 1) / 2 * np.trace((covariance + np.outer(mean, mean) + psi) @ np.linalg.inv(a)))


def np_kl_code_batch(mean, covariance, z_prime, psi_scale, nu):
  b, d = mean.shape
  psi = psi_scale * np.eye(d)
  a = psi + z_prime.T @ z_prime
  moments = covariance.sum(0) + mean.T @ mean + psi
  return ((nu + b) / 2 * np.linalg.slogdet(a)[1] - 0.5 * sum(np.linalg.slogdet(s)[1] for s in covariance)
          + (nu + b) / 2 * np.trace(moments @ np.linalg.inv(a)))


def np_constant(psi_scale, nu, d, b=1):
  return (-nu / 2 * d * math.log(psi_scale) + special.multigammaln(nu / 2, d) - special.multigammaln((nu + b) / 2, d)
          - (nu + 2 * b) * d / 2 - b * d / 2 * math.log(2))


def np_gaussian_kl(mean, covariance, sigma_inverse, log_det_sigma):
  """KL(N(μ, S) ‖ N(0, Σ)) for a stack of Σ (given by Σ⁻¹ and log|Σ|)."""
  d = len(mean)
  moments = covariance + np.outer(mean, mean)
  return 0.5 * (np.einsum("nij,ji->n", sigma_inverse, moments) - d + log_det_sigma - np.linalg.slogdet(covariance)[1])


def monte_carlo_hierarchical_kl(mean, covariance, z_prime, psi_scale, nu, num, seed):
  """E_{Σ~q}[Σ_i KL(N(μ_i, S_i) ‖ N(0, Σ))] + KL(q ‖ IW(Ψ, ν)), q = IW(Ψ + Σ_i z'_i z'_iᵀ, ν + b); mean and s.e."""
  b, d = mean.shape
  psi = psi_scale * np.eye(d)
  q = stats.invwishart(df=nu + b, scale=psi + z_prime.T @ z_prime)
  p = stats.invwishart(df=nu, scale=psi)
  sigma = q.rvs(size=num, random_state=seed)
  sigma_inverse = np.linalg.inv(sigma)
  log_det_sigma = np.linalg.slogdet(sigma)[1]
  stacked = np.moveaxis(sigma, 0, -1)
  values = q.logpdf(stacked) - p.logpdf(stacked)
  for i in range(b):
    values = values + np_gaussian_kl(mean[i], covariance[i], sigma_inverse, log_det_sigma)
  return values.mean(), values.std(ddof=1) / math.sqrt(num)


# --- the regulariser ------------------------------------------------------------------------------------------------
def test_regularizer_matches_numpy_formula():
  rs = np.random.RandomState(0)
  for d, nu in ((3, 9.), (10, 33.), (10, 200.)):
    psi_scale = F.inverse_wishart_scale(nu, d)
    mean, covariance, z_prime = random_posterior(rs, 5, d)
    expected = [np_kl_code(mean[i], covariance[i], z_prime[i], psi_scale, nu) for i in range(5)]
    np.testing.assert_allclose(tf_kl_code(mean, covariance, z_prime, psi_scale, nu), expected, rtol=1e-10)
    np.testing.assert_allclose(tf_kl_code(mean, covariance, z_prime, psi_scale, nu, batch_form=True),
                               np_kl_code_batch(mean, covariance, z_prime, psi_scale, nu), rtol=1e-10)
    for b in (1, 4, 50):
      assert float(M.kl_code_constant(psi_scale, nu, d, b)) == pytest.approx(np_constant(psi_scale, nu, d, b),
                                                                             rel=1e-12)
  # In float32 (as trained), the regulariser keeps its value to float32 precision.
  mean, covariance, z_prime = random_posterior(rs, 4, 10)
  s32 = tf.constant(covariance, tf.float32)
  float32 = M.kl_code(tf.constant(mean, tf.float32), s32, tf.linalg.cholesky(s32), tf.constant(z_prime, tf.float32),
                      189., 200.).numpy()
  np.testing.assert_allclose(float32, [np_kl_code(mean[i], covariance[i], z_prime[i], 189., 200.) for i in range(4)],
                             rtol=1e-5)


def test_psi_scale_gives_identity_prior_mean_and_floors_at_one():
  assert F.inverse_wishart_scale(200., 10) == 189.
  assert F.inverse_wishart_scale(33., 10) == 22.
  assert F.inverse_wishart_scale(12., 10) == 1.
  with pytest.raises(UserError, match="nu > d - 1"):
    F.check_degrees_of_freedom(9., 10)


@pytest.mark.parametrize("d, nu, batch", [(3, 9., 1), (4, 12., 1), (3, 8., 4)])
def test_regularizer_plus_constant_is_the_hierarchical_kl_by_monte_carlo(d, nu, batch):
  # chyvae.md §1: KL_code + C = E_{Σ~IW(Ψ+z'z'ᵀ, ν+1)}[KL(N(μ,S) ‖ N(0,Σ))] + KL(IW(Ψ+z'z'ᵀ, ν+1) ‖ IW(Ψ, ν)),
  # and the batch form likewise with IW(Ψ + Σ z'z'ᵀ, ν + b). The right side is estimated with scipy's
  # inverse-Wishart sampler and density, independently of the code under test.
  rs = np.random.RandomState(d * 100 + batch)
  psi_scale = F.inverse_wishart_scale(nu, d)
  mean, covariance, z_prime = random_posterior(rs, batch, d)
  if batch == 1:
    value = tf_kl_code(mean, covariance, z_prime, psi_scale, nu)[0]
  else:
    value = float(tf_kl_code(mean, covariance, z_prime, psi_scale, nu, batch_form=True))
  value += float(M.kl_code_constant(psi_scale, nu, d, batch))
  estimate, standard_error = monte_carlo_hierarchical_kl(mean, covariance, z_prime, psi_scale, nu, 20000, seed=7)
  assert standard_error < 0.02 * abs(estimate)
  assert abs(value - estimate) < 3 * standard_error, (value, estimate, standard_error)
  # The constant matters: without it the two sides are far apart.
  assert abs(value - float(M.kl_code_constant(psi_scale, nu, d, batch)) - estimate) > 100 * standard_error


def test_large_nu_recovers_the_standard_gaussian_kl():
  # docs/models/chyvae.md §1: with Ψ = (ν − d − 1)·I, KL_code + C → KL(N(μ, S) ‖ N(0, I)) as ν → ∞ (d = 4; the doc's own
  # inputs behind 6.7747 are not given, so these inputs are the test's own). The gap shrinks like 1/ν.
  rs = np.random.RandomState(3)
  d = 4
  mean, covariance, z_prime = random_posterior(rs, 1, d)
  standard = F.gaussian_kl_full_covariance(tf.constant(mean), tf.constant(covariance)).numpy()[0]
  expected = 0.5 * (np.trace(covariance[0]) + mean[0] @ mean[0] - d - np.linalg.slogdet(covariance[0])[1])
  assert standard == pytest.approx(expected, rel=1e-12)
  gaps = []
  for nu in (15., 50., 200., 1e4, 1e7):
    psi_scale = F.inverse_wishart_scale(nu, d)
    value = tf_kl_code(mean, covariance, z_prime, psi_scale, nu)[0] + float(M.kl_code_constant(psi_scale, nu, d))
    gaps.append(value - standard)
  assert all(a > b > 0 for a, b in zip(gaps, gaps[1:])), gaps
  assert abs(gaps[-1]) < 1e-4, gaps
  assert gaps[0] > 1.  # at small ν the hyperprior changes the penalty substantially


# --- the posterior and the prior -----------------------------------------------------------------------------------
def _latent(d=4, nu=None):
  space = F.FullCovarianceLatent(nu=nu)
  space.configure(d)
  return space


def test_posterior_heads_against_numpy():
  d = 4
  space = _latent(d)
  features = tf.random.stateless_normal([6, 7], seed=stateless_seed(1), dtype=tf.float32)
  params = space(features)
  x = features.numpy().astype(np.float64)
  mean = x @ space.means.kernel.numpy() + space.means.bias.numpy()
  raw = (x @ space.covariance_factor.kernel.numpy() + space.covariance_factor.bias.numpy()).reshape(6, d, d)
  factor = np.tril(raw, -1) + np.einsum("bi,ij->bij", np.log1p(np.exp(np.diagonal(raw, axis1=1, axis2=2))) + 1e-4,
                                        np.eye(d))
  covariance = factor @ np.swapaxes(factor, 1, 2) + 1e-4 * np.eye(d)
  np.testing.assert_allclose(params["mean"].numpy(), mean, rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(params["covariance"].numpy(), covariance, rtol=1e-4, atol=1e-5)
  np.testing.assert_allclose(params["scale_tril"].numpy(), np.linalg.cholesky(covariance), rtol=1e-4, atol=1e-5)
  mean_out, logvar = space.gaussian_encoder_outputs(params)
  np.testing.assert_array_equal(mean_out.numpy(), params["mean"].numpy())
  np.testing.assert_allclose(logvar.numpy(), np.log(np.diagonal(covariance, axis1=1, axis2=2)), rtol=1e-4, atol=1e-5)
  np.testing.assert_array_equal(space.representation(params).numpy(), params["mean"].numpy())
  kl = 0.5 * (np.trace(covariance, axis1=1, axis2=2) + (mean**2).sum(1) - d - np.linalg.slogdet(covariance)[1])
  np.testing.assert_allclose(space.kl(params).numpy(), kl, rtol=1e-4)
  # The strictly upper part of the raw head output is ignored.
  upper = np.triu(np.ones((d, d)), 1)
  base = F.lower_triangular_factor(tf.constant(raw[:1])).numpy()
  changed = F.lower_triangular_factor(tf.constant(raw[:1] + 5. * upper)).numpy()
  np.testing.assert_array_equal(base, changed)


def test_posterior_samples_have_mean_mu_and_covariance_s():
  d, n = 4, 40000
  rs = np.random.RandomState(2)
  mean, covariance, _ = random_posterior(rs, 1, d)
  params = {"mean": tf.constant(np.repeat(mean, n, 0), tf.float32),
            "scale_tril": tf.constant(np.repeat(np.linalg.cholesky(covariance), n, 0), tf.float32)}
  z = _latent(d).sample(params, stateless_seed(3)).numpy()
  np.testing.assert_allclose(z.mean(0), mean[0], atol=0.03)
  np.testing.assert_allclose(np.cov(z.T), covariance[0], atol=0.05 * np.abs(covariance).max())
  # Stateless: the same seed draws the same, another seed draws anew.
  again = _latent(d).sample(params, stateless_seed(3)).numpy()
  np.testing.assert_array_equal(z, again)
  assert not np.allclose(z, _latent(d).sample(params, stateless_seed(4)).numpy())


def test_gradients_reach_both_heads_through_the_sample():
  space = _latent(4)
  features = tf.random.stateless_normal([8, 5], seed=stateless_seed(5))
  space(features)
  weights = tf.random.stateless_normal([8, 4], seed=stateless_seed(6))
  with tf.GradientTape() as tape:
    value = tf.reduce_sum(weights * space.sample(space(features), stateless_seed(7)))
  for grad in tape.gradient(value, [space.means.kernel, space.covariance_factor.kernel]):
    assert grad is not None and np.all(np.isfinite(grad.numpy())) and np.any(np.abs(grad.numpy()) > 1e-6)


def test_inverse_wishart_sampler_moments():
  # IW(ψI, ν) with d = 3, ν = 12, ψ = 8: E[Σ] = ψI/(ν−d−1) = I, Var(Σ_ii) = 2ψ²/((ν−d−1)²(ν−d−3)) = 1/3,
  # Var(Σ_ij) = ψ²/((ν−d)(ν−d−1)(ν−d−3)) = 0.148 (i ≠ j; scipy's closed form agrees), E[Σ⁻¹] = ν·Ψ⁻¹ = 1.5·I.
  d, nu, n = 3, 12., 100000
  psi_scale = F.inverse_wishart_scale(nu, d)
  sigma = F.sample_inverse_wishart(psi_scale, nu, d, n, stateless_seed(8), dtype=tf.float64).numpy()
  np.testing.assert_allclose(sigma.mean(0), np.eye(d), atol=0.015)
  variance = stats.invwishart(df=nu, scale=psi_scale * np.eye(d)).var()
  assert variance[0, 0] == pytest.approx(1 / 3) and variance[0, 1] == pytest.approx(64 / 432)
  np.testing.assert_allclose(sigma.var(0), variance, rtol=0.06)
  np.testing.assert_allclose(np.linalg.inv(sigma).mean(0), 1.5 * np.eye(d), atol=0.02)
  np.testing.assert_allclose(sigma, np.swapaxes(sigma, 1, 2), atol=1e-12)
  assert np.all(np.linalg.eigvalsh(sigma) > 0)


def test_hierarchical_prior_samples():
  # z ~ N(0, Σ), Σ ~ IW(ψI, ν) per row: E[zzᵀ] = E[Σ] = I and E[z_1⁴] = 3·E[Σ_11²] = 3·(1 + Var Σ_11) = 3.75 for
  # d = 3, ν = 14 (a Gaussian with covariance I would give 3).
  d, nu, n = 3, 14., 200000
  space = _latent(d, nu=nu)
  assert space.psi_scale == 10.
  z = space.sample_prior(n, stateless_seed(9)).numpy()
  assert z.shape == (n, d)
  np.testing.assert_allclose(z.T @ z / n, np.eye(d), atol=0.02)
  assert np.mean(z[:, 0]**4) == pytest.approx(3.75, abs=0.15)
  np.testing.assert_array_equal(z[:5], space.sample_prior(n, stateless_seed(9)).numpy()[:5])
  standard = _latent(d).sample_prior(n, stateless_seed(9)).numpy()
  assert np.mean(standard[:, 0]**4) == pytest.approx(3., abs=0.1)


# --- the model ------------------------------------------------------------------------------------------------------
SMALL = ["encoder.num_latent = 4", "encoder.encoder_fn = @test_encoder", "decoder.decoder_fn = @test_decoder",
         "reconstruction_loss.loss_fn = @bernoulli_loss", "vae_optimizer.optimizer_fn = @AdamOptimizer"]


@pytest.mark.parametrize("batch_form", [False, True])
def test_forward_uses_two_independent_samples_and_reports_terms(batch_form):
  images = tf.random.stateless_uniform([5, 8, 8, 1], seed=stateless_seed(10))
  seed = stateless_seed(11, 3)
  with cli.gin_config(bindings=SMALL):
    model = M.CHyVAE(nu=8., batch_form=batch_form).build([8, 8, 1])
    terms, params, z = model.forward(images, seed, tf.constant(0.))
  np.testing.assert_array_equal(z.numpy(), model.latent.sample(params, seed).numpy())
  z_prime = model.latent.sample(params, derived_seed(seed, M.REGULARIZER_STREAM))
  assert np.min(np.abs(z.numpy() - z_prime.numpy())) > 0.
  args = [params["mean"].numpy().astype(np.float64), params["covariance"].numpy().astype(np.float64),
          z_prime.numpy().astype(np.float64), 3., 8.]
  if batch_form:
    expected = np_kl_code_batch(*args) / 5
    constant = np_constant(3., 8., 4, 5) / 5
  else:
    expected = np.mean([np_kl_code(*(a[i] for a in args[:3]), 3., 8.) for i in range(5)])
    constant = np_constant(3., 8., 4)
  assert float(terms["regularizer"]) == pytest.approx(expected, rel=1e-4)
  assert float(terms["kl_loss"]) == pytest.approx(expected + constant, abs=2e-3 + 1e-5 * abs(expected))
  assert float(terms["loss"]) == pytest.approx(float(terms["reconstruction_loss"] + terms["regularizer"]), rel=1e-6)
  assert float(terms["elbo"]) == pytest.approx(-float(terms["reconstruction_loss"] + terms["kl_loss"]), rel=1e-6)


def test_train_step_updates_the_covariance_head():
  images = tf.random.stateless_uniform([5, 8, 8, 1], seed=stateless_seed(12))
  with cli.gin_config(bindings=SMALL + ["AdamOptimizer.learning_rate = 0.01"]):
    model = M.CHyVAE(nu=8.).build([8, 8, 1])
    before = model.latent.covariance_factor.kernel.numpy().copy()
    terms = model.train_step(images, stateless_seed(13), tf.constant(0.))
  assert bool(terms["finite"])
  assert np.abs(model.latent.covariance_factor.kernel.numpy() - before).max() > 1e-4


def test_config_has_the_authors_values():
  with cli.gin_config([CONFIG]):
    assert gin.query_parameter("chyvae.nu") == 200.
    assert gin.query_parameter("chyvae.batch_form") is False
    assert gin.query_parameter("encoder.num_latent") == 10
    assert gin.query_parameter("model.batch_size") == 50
    assert gin.query_parameter("vae/AdamOptimizer.learning_rate") == 1e-4
    assert gin.query_parameter("vae/AdamOptimizer.epsilon") == 1e-8
    assert gin.query_parameter("dataset.name") == "correlated_ellipses"
    model = M.CHyVAE()
    model.latent = model.make_latent_space()
    model.latent.configure(10)
    assert model.latent.psi_scale == 189.
