"""Weak supervision from pairs: the aggregations against hand-computed cases, dlib's simple_dynamics, the pair stream,
bad settings, and Ada-GVAE learning to keep the changed factor's dimension on a tiny data set."""

import math
import os
import subprocess

import gin
import numpy as np
import pytest
import tensorflow as tf

from conftest import REPOSITORY_ROOT, assert_one_error_line, dlib_config, read_json, run_python
from disentanglement_lib.data.ground_truth import ground_truth_data
from evaluation import sweep
from submission import cli, train
from submission.data import named_data, pairs, registry
from submission.errors import UserError
from submission.models import group_vae, mlvae, registered_models, weak


def posterior(mean, logvar):
  return {"mean": tf.constant(mean, tf.float32), "logvar": tf.constant(logvar, tf.float32)}


# --- the aggregations ----------------------------------------------------------------------------------------------
def test_threshold_averages_the_dimensions_below_the_midpoint_of_the_divergences():
  divergence = tf.constant([[0., 0.1],                       # dlib's weak_vae_test cases: the upper bin is kept
                            [0., 1.],
                            [3., 3.]])                      # all equal: no upper bin, everything averaged
  averaged = weak.averaged_by_threshold(divergence, labels=None).numpy()
  np.testing.assert_array_equal(averaged, [[True, False], [True, False], [True, True]])
  # τ = ½(max + min) = 1 for [0, 1, 2]: δ = τ is kept (dlib's bin 1 starts at the midpoint), only δ = 0 averaged.
  middle = weak.averaged_by_threshold(tf.constant([[0., 1., 2.], [5., 0.5, 1.]]), None).numpy()
  np.testing.assert_array_equal(middle, [[True, False, False], [False, True, True]])
  # dlib's first case: five dimensions at 0 and five at 1.
  halves = weak.averaged_by_threshold(tf.constant([[0.] * 5 + [1.] * 5]), None).numpy()
  np.testing.assert_array_equal(halves, [[True] * 5 + [False] * 5])


def test_labels_average_every_dimension_but_the_labelled_one():
  averaged = weak.averaged_by_label(tf.zeros([3, 4]), tf.constant([2, 0, 7])).numpy()
  np.testing.assert_array_equal(averaged, [[True, True, False, True],
                                           [False, True, True, True],
                                           [False, False, False, False]])  # label ≥ num_latent: dlib averages none


def test_divergence_and_the_two_averages_match_closed_forms():
  first, second = posterior([[0., 1.]], [[0., 0.]]), posterior([[1., 3.]], [[math.log(2.), math.log(3.)]])
  # KL(N(0,1) ‖ N(1,2)) = ½(1/2 + 1/2 − 1 + log 2); KL(N(1,1) ‖ N(3,3)) = ½(1/3 + 4/3 − 1 + log 3)
  np.testing.assert_allclose(weak.posterior_divergence(first, second).numpy(),
                             [[0.5 * math.log(2.), 0.5 * (2. / 3. + math.log(3.))]], rtol=1e-6)
  mean, logvar = group_vae.GroupVAE.average(None, first, second)
  np.testing.assert_allclose(mean.numpy(), [[0.5, 2.]], rtol=1e-6)
  np.testing.assert_allclose(np.exp(logvar.numpy()), [[1.5, 2.]], rtol=1e-6)   # ½(1 + 2), ½(1 + 3)
  mean, logvar = mlvae.MLVAE.average(None, first, second)
  # σ̄² = 2σ1²σ2²/(σ1² + σ2²): 4/3 and 6/4; μ̄ = (μ1σ2² + μ2σ1²)/(σ1² + σ2²): 1/3 and (3 + 3)/4
  np.testing.assert_allclose(np.exp(logvar.numpy()), [[4. / 3., 1.5]], rtol=1e-6)
  np.testing.assert_allclose(mean.numpy(), [[1. / 3., 1.5]], rtol=1e-6)


def build_weak_model(name, num_latent=3, shape=(4, 4, 1)):
  gin.parse_config([f"encoder.num_latent = {num_latent}", "encoder.encoder_fn = @test_encoder",
                    "decoder.decoder_fn = @test_decoder", "reconstruction_loss.loss_fn = @bernoulli_loss",
                    "group_vae.beta = 2.", "mlvae.beta = 2.", "vae_optimizer.optimizer_fn = @AdamOptimizer"])
  return gin.get_configurable(name)().build(list(shape))


@pytest.mark.parametrize("name", ["group_vae_argmax", "mlvae_labels"])
def test_pair_objective_replaces_each_posterior_by_the_average_on_the_averaged_dimensions(name):
  gin.clear_config()
  model = build_weak_model(name)
  # Pair 0: dimension 2 diverges most; pair 1: identical posteriors.
  first = posterior([[0., 0., 0.], [1., 1., 1.]], [[0., 0., 0.], [0., 0., 0.]])
  second = posterior([[0.2, 0., 2.], [1., 1., 1.]], [[0., 0., 0.], [0., 0., 0.]])
  model.encode = lambda images: {key: tf.concat([first[key], second[key]], 0) for key in first}
  batch = {"first": tf.zeros([2, 4, 4, 1]), "second": tf.ones([2, 4, 4, 1]), "labels": tf.constant([2, 1])}
  terms, replaced, _ = model.forward(batch, tf.constant([1, 2], tf.int64), tf.constant(0.))
  # δ of pair 0 = ½Δμ² = [0.02, 0, 2]: τ = 1, so the argmax rule keeps dimension 2; the label (2) names the same.
  # Pair 1: δ all 0: the threshold averages all; the label (1) keeps dimension 1.
  expected_averaged = {"group_vae_argmax": [[True, True, False], [True, True, True]],
                       "mlvae_labels": [[True, True, False], [True, False, True]]}[name]
  averaged = np.array(expected_averaged)
  mean_average = 0.5 * (first["mean"].numpy() + second["mean"].numpy())  # equal variances: both averages agree
  want_first = np.where(averaged, mean_average, first["mean"].numpy())
  want_second = np.where(averaged, mean_average, second["mean"].numpy())
  np.testing.assert_allclose(replaced["mean"].numpy(), np.concatenate([want_first, want_second]), atol=1e-6)
  np.testing.assert_allclose(replaced["logvar"].numpy(), 0., atol=1e-6)
  # kl_loss = ½ mean KL(q̃1) + ½ mean KL(q̃2) = mean over the 2B rows of ½|μ̃|² (unit variances); regulariser β·KL.
  kl = 0.5 * np.sum(np.concatenate([want_first, want_second]) ** 2, axis=1).mean()
  np.testing.assert_allclose(terms["kl_loss"].numpy(), kl, rtol=1e-5)
  np.testing.assert_allclose(terms["regularizer"].numpy(), 2. * kl, rtol=1e-5)
  np.testing.assert_allclose(terms["averaged_dimensions"].numpy(), averaged.sum(1).mean())
  np.testing.assert_allclose(terms["loss"].numpy(), terms["reconstruction_loss"].numpy() + 2. * kl, rtol=1e-5)
  gin.clear_config()


def test_family_configurables_hold_settings_and_cannot_be_trained():
  gin.clear_config()
  gin.parse_config("group_vae.beta = 1.")
  with pytest.raises(UserError, match="group_vae_labels or group_vae_argmax"):
    gin.get_configurable("group_vae")()
  assert gin.get_configurable("group_vae_argmax")().beta == 1.  # the family's binding reaches its models
  gin.clear_config()
  # So the table of models lists the family's models, not the family.
  assert {"group_vae_labels", "group_vae_argmax", "mlvae_labels", "mlvae_argmax"} <= set(registered_models())
  assert not {"group_vae", "mlvae"} & set(registered_models())


def test_weak_loss_is_dlibs_hook_calling_its_loss_fn_on_a_pairs_codes():
  gin.clear_config()
  with gin.unlock_config():
    gin.bind_parameter("weak_loss.loss_fn", lambda z1, z2, labels: (z1 - z2) * labels)
  try:
    assert weak.make_weak_loss(5., 3., 2.) == 4.
  finally:
    gin.clear_config()


# --- the pairs -----------------------------------------------------------------------------------------------------
def draw_dynamics(k, force_change, num=4000, sizes=(5,) * 10, seed=0):
  random_state = np.random.RandomState(seed)
  factors = np.stack([random_state.randint(n, size=num) for n in sizes], axis=1)
  with gin.unlock_config():
    gin.bind_parameter("dynamics.k", k)
    gin.bind_parameter("dynamics.force_change", force_change)
  try:
    changed, labels = pairs.simple_dynamics(factors, list(sizes), random_state)
  finally:
    gin.clear_config()
  return factors, changed, labels


@pytest.mark.parametrize("k", [1, 3])
def test_pairs_change_exactly_one_or_k_factors_and_label_one_of_them(k):
  factors, changed, labels = draw_dynamics(k, force_change=True)
  differ = factors != changed
  counts = differ.sum(axis=1)
  # dlib changes n ∈ {1, k} factors, each with probability ½; force_change makes each of them differ.
  assert set(counts) == {1, k}
  assert abs(np.mean(counts == 1) - (1. if k == 1 else 0.5)) < 0.03
  assert differ[np.arange(len(labels)), labels].all()
  assert np.bincount(labels, minlength=10).min() > 0  # every factor gets changed


def test_random_k_draws_k_from_one_to_num_factors_minus_one():
  factors, changed, _ = draw_dynamics(-1, force_change=True, sizes=(4,) * 6)
  counts = (factors != changed).sum(axis=1)
  # n = 1 with probability ½ + ½·1/5, else k' ∈ {2, …, 5}: never all six factors.
  assert set(counts) == {1, 2, 3, 4, 5}
  assert abs(np.mean(counts == 1) - 0.6) < 0.03


def test_dlibs_rule_may_redraw_a_factors_own_value():
  factors, changed, labels = draw_dynamics(1, force_change=False)
  counts = (factors != changed).sum(axis=1)
  assert set(counts) == {0, 1}
  # The labelled factor kept its value with probability 1/5 (5 values, drawn uniformly).
  kept = factors[np.arange(len(labels)), labels] == changed[np.arange(len(labels)), labels]
  assert abs(kept.mean() - 0.2) < 0.03
  np.testing.assert_array_equal(counts == 0, kept)


class Stripes(ground_truth_data.GroundTruthData):
  """A tiny data set: factor f sets the grey level of image row f (value / (n − 1)), so each factor has its own
  pixels and a linear VAE can represent it in one dimension."""

  sizes = (4, 4, 4)

  @property
  def num_factors(self):
    return len(self.sizes)

  @property
  def factors_num_values(self):
    return list(self.sizes)

  @property
  def observation_shape(self):
    return [len(self.sizes), 4, 1]

  def sample_factors(self, num, random_state):
    return np.stack([random_state.randint(n, size=num) for n in self.sizes], axis=1)

  def sample_observations_from_factors(self, factors, random_state):
    levels = np.asarray(factors, np.float64) / (np.array(self.sizes) - 1.)
    return np.repeat(levels[:, :, None, None], 4, axis=2)


@pytest.fixture
def stripes_registered():
  """``dataset.name = 'weak_test_stripes'`` for one test (registered at import, it showed in every other test's
  view of the registry, e.g. ``submission.data verify``)."""
  registry.register(registry.DatasetEntry(
      "weak_test_stripes", Stripes, provenance=registry.GENERATED, factors=tuple((f"row {i}", 4) for i in range(3)),
      observation_shape=[3, 4, 1], observation_dtype="float64", loader="tests/test_weak.py"))
  yield
  registry.unregister("weak_test_stripes")


def test_pair_batches_are_the_observations_of_factors_one_step_apart_and_resume_from_any_batch():
  data = Stripes()
  gin.parse_config("dynamics.k = 2")
  try:
    batch, (c1, c2) = pairs.sample_pairs(data, 64, np.random.RandomState(3))
    np.testing.assert_array_equal(batch["first"], data.sample_observations_from_factors(c1, None).astype(np.float32))
    np.testing.assert_array_equal(batch["second"], data.sample_observations_from_factors(c2, None).astype(np.float32))
    assert batch["labels"].dtype == np.int32 and batch["labels"].shape == (64,)
    whole = list(train.batch_dataset(data, 5, seed=9, num_batches=4, kind=pairs.PAIRS))
    tail = list(train.batch_dataset(data, 5, seed=9, first_batch=1, num_batches=3, kind=pairs.PAIRS))
    expected = [pairs.sample_pairs(data, 5, np.random.RandomState([9, i]))[0] for i in range(4)]
  finally:
    gin.clear_config()
  assert len(whole) == 4 and len(tail) == 3
  for got, want in zip(whole + tail, expected + expected[1:]):
    assert set(got) == {"first", "second", "labels"}
    for key in want:
      np.testing.assert_array_equal(got[key].numpy(), want[key])


@pytest.mark.parametrize("config, binding, message", [
    ("gin_configs/ada_gvae.gin", "dynamics.k = 11",
     "dynamics.k must be -1 (drawn per pair) or a number of factors from 1 to 10, got 11"),
    ("gin_configs/ada_gvae.gin", "dynamics.k = 0", "got 0"),
    ("gin_configs/beta_vae.gin", "model.model = @group_vae_argmax()", "bindings for `dynamics` not provided"),  # no k
])
def test_bad_dynamics_is_one_error_line_and_leaves_no_directory(config, binding, message, tmp_path):
  model_dir = str(tmp_path / "model")
  process = run_python(["-m", "submission.train", "--model_dir", model_dir, "--gin_config", config,
                        "--gin_bindings", "dataset.name = 'dummy_data'", "group_vae.beta = 1.", binding])
  assert_one_error_line(process, message)
  assert not os.path.exists(model_dir)


def test_dynamics_checks_against_the_data_set():
  with pytest.raises(UserError, match="needs at least 2 factors"):
    pairs.check_dynamics([4], -1, False)
  with pytest.raises(UserError, match="needs every factor to have 2 values or more"):
    pairs.check_dynamics([4, 1], 1, True)
  with pytest.raises(UserError, match="got True"):
    pairs.check_dynamics([4, 4], True, False)


# --- learning ------------------------------------------------------------------------------------------------------
def kept_dimension_matches(encoder, data, num_pairs=600, seed=5):
  """How often Ada-GVAE's kept set (the dimensions not averaged) is exactly the changed factor's dimension, for
  pairs that change one factor: (match rate, chance, number of distinct factor dimensions). A factor's dimension
  is the one most often kept when it changes, found on half the pairs and scored on the other half; chance is the
  same score with the changed factors shuffled across the pairs (a kept set blind to which factor changed)."""
  gin.parse_config(["dynamics.k = 1", "dynamics.force_change = True"])
  try:
    batch, (c1, c2) = pairs.sample_pairs(data, num_pairs, np.random.RandomState(seed))
  finally:
    gin.clear_config()
  changed = np.argmax(c1 != c2, axis=1)
  first, second = (encoder(images=tf.constant(batch[key], tf.float32)) for key in ("first", "second"))
  kept = ~weak.averaged_by_threshold(weak.posterior_divergence(first, second), None).numpy()
  fit, score = slice(0, num_pairs // 2), slice(num_pairs // 2, None)

  def rate(factors):
    dimension = [np.bincount(np.argmax(kept[fit][factors[fit] == f], axis=1), minlength=kept.shape[1]).argmax()
                 for f in range(data.num_factors)]
    want = np.zeros_like(kept[score])
    want[np.arange(len(want)), [dimension[f] for f in factors[score]]] = True
    return np.mean(np.all(kept[score] == want, axis=1)), len(set(dimension))

  (matched, distinct), (chance, _) = rate(changed), rate(np.random.RandomState(seed).permutation(changed))
  return matched, chance, distinct


def test_ada_gvae_comes_to_keep_exactly_the_changed_factors_dimension(tmp_path, stripes_registered):
  """Trained on pairs of the tiny Stripes set (one factor changed per pair, 4 latent dimensions, linear networks),
  Ada-GVAE keeps exactly the changed factor's own dimension and averages the rest, far more often than chance,
  with a dimension of its own for each factor. The control, the same model after one step, does not: a random
  encoder's divergences also depend on which factor changed, so matching only a little above chance would not
  show learning."""
  bindings = ["dataset.name = 'weak_test_stripes'", "model.model = @group_vae_argmax()", "group_vae.beta = 1.",
              "dynamics.k = 1", "encoder.num_latent = 4", "encoder.encoder_fn = @test_encoder",
              "decoder.decoder_fn = @test_decoder", "reconstruction_loss.loss_fn = @bernoulli_loss",
              "vae_optimizer.optimizer_fn = @AdamOptimizer", "AdamOptimizer.learning_rate = 0.01",
              "model.batch_size = 32", "model.random_seed = 0", "model.eval_steps = 1",
              "train_loop.log_every_steps = 500", "train_loop.checkpoint_every_steps = 5000",
              "checkpoint_images.enabled = False"]
  data = named_data.load("weak_test_stripes")
  scores = {}
  for name, steps in (("control", 1), ("trained", 1500)):
    model_dir = str(tmp_path / name)
    train.train_with_gin(model_dir, gin_bindings=bindings + [f"model.training_steps = {steps}"])
    scores[name] = kept_dimension_matches(
        tf.saved_model.load(os.path.join(model_dir, "tfhub")).signatures["gaussian_encoder"], data)

  def learned(matched, chance, distinct):
    return matched > 0.9 and matched > chance + 0.5 and distinct == data.num_factors

  assert learned(*scores["trained"]), scores
  assert not learned(*scores["control"]), scores


# --- the pipeline --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("config, bindings", [
    ("config/tests/methods/weakly_supervised/train_test.gin", []),  # @group_vae_argmax(), dynamics.k = -1
    # One of dlib's methods/weak/train_weak_test.py cases, on its unsupervised test config.
    ("config/tests/methods/unsupervised/train_test.gin",
     ["model.model = @mlvae_labels()", "dynamics.k = 2", "mlvae.beta = 1."]),
])
def test_dlibs_weak_test_configs_train_unchanged(config, bindings, tmp_path):
  model_dir = str(tmp_path / "model")
  train.train_with_gin(model_dir, gin_config_files=[dlib_config(config)],
                       gin_bindings=bindings + ["model.eval_steps = 2"])
  results = read_json(os.path.join(model_dir, "results", "json", "train_results.json"))
  assert results["global_step"] == 2
  assert {"reconstruction_loss", "elbo", "regularizer", "kl_loss", "loss"} <= set(results)
  np.testing.assert_allclose(results["loss"], results["reconstruction_loss"] + results["regularizer"], rtol=1e-5)


@pytest.mark.parametrize("config", ["ada_gvae", "gvae", "ada_mlvae", "mlvae"])
def test_each_weak_gin_config_draws_pairs_with_a_random_number_of_changed_factors(config):
  """The paper's k = Rnd; each model training on its config: tests/test_registered_models.py."""
  with cli.gin_config([os.path.join(REPOSITORY_ROOT, "gin_configs", f"{config}.gin")]):
    assert gin.query_parameter("dynamics.k") == -1 and gin.query_parameter("model.name") == config


def test_run_local_trains_ada_gvae_on_pairs_exports_scores_and_shows_pairs(tmp_path):
  output = str(tmp_path / "run")
  process = subprocess.run(
      [os.path.join(REPOSITORY_ROOT, "run_local.sh"), "gin_configs/ada_gvae.gin", "--output", output,
       "--dataset", "dummy_data", "--steps", "4", "--metrics", "mig",
       "--gin_bindings", "model.batch_size = 8", "model.eval_steps = 1", "train_loop.log_every_steps = 2",
       "--metric_bindings", "mig.num_train = 200"],
      capture_output=True, text=True, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"), timeout=900,
      cwd=REPOSITORY_ROOT)
  assert process.returncode == 0, process.stderr
  assert "[train] GroupVAEArgmax" in process.stdout and "averaged_dimensions=" in process.stdout
  assert set(read_json(os.path.join(output, "scores.json"))) == {"mig"}
  signatures = tf.saved_model.load(os.path.join(output, "model", "tfhub")).signatures
  assert {"gaussian_encoder", "decoder", "reconstructions"} <= set(signatures)  # single images, as every model's
  record = read_json(os.path.join(output, "visualizations", "pictures.json"))
  assert len(record["pair_changed_factors"]) == 8
  assert os.path.isfile(os.path.join(output, "visualizations", "pairs.png"))
  with open(os.path.join(output, "report.html")) as f:
    assert "Training pairs" in f.read()


def test_weakly_supervised_study_file_numbers_points_and_seeds_as_documented():
  _, points = sweep.load_sweep(os.path.join(REPOSITORY_ROOT, "gin_configs", "sweeps", "weakly_supervised_study.toml"))
  assert len(points) == 5 * 4 * 2 * 6 * 10
  pipeline_seeds = [int(np.random.RandomState(s).randint(2**32)) for s in range(10)]  # dlib's reproduce script
  by_num = {p["model_num"]: p for p in points}
  # model_num = 480·dataset + 120·model + 60·(k = Rnd) + 10·β index + seed index
  point = by_num[480 * 3 + 120 * 1 + 60 * 1 + 10 * 2 + 7]
  assert point["gin_file"] == "gin_configs/ada_gvae.gin"
  for binding in ("dataset.name = 'shapes3d'", "dynamics.k = -1", "group_vae.beta = 4.0",
                  f"model.random_seed = {pipeline_seeds[7]}"):
    assert binding in point["bindings"], point
  assert by_num[0]["gin_file"] == "gin_configs/gvae.gin" and "dynamics.k = 1" in by_num[0]["bindings"]
  assert by_num[480 * 5 - 1]["gin_file"] == "gin_configs/ada_mlvae.gin"
