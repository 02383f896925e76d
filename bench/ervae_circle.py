"""Benchmark: the ER-VAE paper's toy task (Golikov & Kretov 2018, §4) — five VAEs on a circle seen through a random MLP.

    python bench/ervae_circle.py [--size tiny|full] [--steps N] [--batch-size B] [--test-points N]
                                 [--iwae-samples K] [--embedding DIR] [--embedding-steps N]
                                 [--hidden-prior uniform|normal] [--min-concentration C] [--likelihood-std S]
                                 [--feature-dim D]
                                 [--width W] [--learning-rate LR] [--seed S] [--json PATH]

Data (Golikov & Kretov 2018, §4, "as the toy task of Davidson et al. 2018, but without noise"): φ ~ U(0, 2π), the point
(cos φ, sin φ) ∈ S¹ ⊂ R², pushed through a fixed random MLP with one hidden layer of 100 ReLU units (Xavier-uniform
weights) into R^D. Every batch is freshly drawn; the held-out test set is a separate fixed draw.

Five models, trained alike (same encoder trunk, decoder, optimiser, steps, batches; objective = negative ELBO):
    VAE, Gaussian d=1                 ``GaussianLatent`` (submission/latent/gaussian.py), 1 latent
    VAE, Gaussian d=2                 ``GaussianLatent``, 2 latents
    ER-VAE, learned f                 ``EmbeddedManifoldLatent`` (submission/latent/embedded.py) on the circle,
                                      f = the decoder of a WAE-MMD fitted here (``submission.fit_embedding.fit_embedding``)
                                      or loaded with ``--embedding DIR``
    ER-VAE, projection                the same with the exact map h ↦ (cos 2πh, sin 2πh)
    ER-VAE, learned f + group action  learned f, z = R(x)·f(h) with a rotation angle from the encoder (paper §3)
The ER-VAEs use the paper's hidden space: Beta posterior on [0, 1] with a uniform prior (``--hidden-prior normal``:
Gaussian posterior with a N(0, 1) prior instead).

Printed per model: the held-out ELBO and the importance-weighted bound (Burda et al. 2016), both in nats per test
point, from the same K samples per point:
    log w_k = log p(x | z_k) + log p(h_k) − log q(h_k | x),   z_k = [R(x)·] f(h_k),   h_k ~ q(h | x)
    ELBO ≈ mean_k log w_k,      IWAE_K = log (1/K) Σ_k w_k   (≥ the ELBO estimate from the same draws).
Change of variables (paper §2): the weights are computed in the hidden space. Without the group action this is
exact for the model h ~ p(h), x ~ p(x | f(h)) — the density ratio of z = f(h) under the induced p and q on M is the
hidden ratio, since both carry the same volume factor √det g(h). With the group action, the induced prior
density at R(x)·f(h) equals the one at f(h) only if the prior on M is rotation-invariant; that is exact for the
projection and holds for a learned f as far as f pushes p(h) to the uniform law (the WAE fit reports the MMD).
For the Gaussian VAEs h = z. The Beta samples are clipped into [1e-6, 1 − 1e-6] (see embedded.py).

Choices where the paper is silent (options above): feature dimension D = 100 (Davidson et al.'s toy maps into
R^100); the data MLP's output layer also Xavier-uniform, all biases zero, and the features standardised to zero
mean and unit variance (a fixed affine map, part of the random transformation); Gaussian likelihood with a fixed
standard deviation (default 0.1): the data are noise-free, and with a learned variance the likelihood of a 1-d
curve in R^D is unbounded; encoder trunk and decoder with two hidden layers of ``--width`` ReLU units each; Adam.

Sizes: ``tiny`` is a smoke test (numbers meaningless; ~20 s after imports). ``full`` (the default) fits f for 3000
WAE steps, trains each model for 20000 steps of batch 128 and evaluates K = 1000 on 5000 test points. Estimated
20–40 min on 2 idle CPU cores, extrapolated from runs measured under load (10–20 ms per training step, ~1 min of
evaluation per model; a 3000-step run took 12 min with the machine's load average near 8). Any size's setting
can be overridden by the options.
"""

import argparse
import math
import os
import sys
import tempfile
import time

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

from submission import cli, fit_embedding, provenance  # noqa: E402
from submission.atomic import write_json_atomically  # noqa: E402
from submission.errors import UserError  # noqa: E402
from submission.latent import embedded  # noqa: E402
from submission.latent.gaussian import GaussianLatent  # noqa: E402

SIZES = {
    "tiny": dict(steps=20, batch_size=32, test_points=32, iwae_samples=8, embedding_steps=40, width=100),
    "full": dict(steps=20000, batch_size=128, test_points=5000, iwae_samples=1000, embedding_steps=3000, width=100),
}
DATA_HIDDEN_UNITS = 100
MODELS = ("VAE, Gaussian d=1", "VAE, Gaussian d=2", "ER-VAE, learned f", "ER-VAE, projection",
          "ER-VAE, learned f + group action")


# --- data ---------------------------------------------------------------------------------------------------------
def xavier_uniform(rng, fan_in, fan_out):
  limit = math.sqrt(6. / (fan_in + fan_out))
  return rng.uniform(-limit, limit, size=(fan_in, fan_out))


class CircleData:
  """Uniform points on S¹ through a fixed random ReLU MLP (2 → 100 → D), standardised per feature."""

  def __init__(self, feature_dim, seed):
    rng = np.random.RandomState(seed)
    self.w1 = xavier_uniform(rng, 2, DATA_HIDDEN_UNITS)
    self.w2 = xavier_uniform(rng, DATA_HIDDEN_UNITS, feature_dim)
    grid = np.linspace(0., 2. * np.pi, 100000, endpoint=False)  # the exact moments under the uniform angle
    raw = self._raw(grid)
    self.mean, self.std = raw.mean(0), raw.std(0)
    self.feature_dim = feature_dim

  def _raw(self, angles):
    points = np.stack([np.cos(angles), np.sin(angles)], axis=1)
    return np.maximum(points @ self.w1, 0.) @ self.w2

  def features(self, angles):
    return ((self._raw(angles) - self.mean) / self.std).astype(np.float32)

  def sample(self, num, rng):
    return self.features(rng.uniform(0., 2. * np.pi, size=num))


# --- models -------------------------------------------------------------------------------------------------------
def repeat_params(params, k):
  """Each posterior parameter repeated k times along the batch (example i's copies are rows i·k … i·k + k − 1)."""
  return {key: tf.repeat(value, k, axis=0) for key, value in params.items()}


class ToyVAE(tf.Module):
  """MLP encoder trunk → a latent space from submission/latent → MLP decoder; Gaussian likelihood of fixed std."""

  def __init__(self, latent, num_latent, feature_dim, width, likelihood_std):
    super().__init__()
    self.encoder = keras.Sequential([keras.layers.Dense(width, activation="relu"),
                                     keras.layers.Dense(width, activation="relu")])
    self.latent = latent
    self.latent.configure(num_latent)
    self.decoder = keras.Sequential([keras.layers.Dense(width, activation="relu"),
                                     keras.layers.Dense(width, activation="relu"),
                                     keras.layers.Dense(feature_dim)])
    self.log_std = math.log(likelihood_std)
    self.decoder(self.latent.sample(self.latent(self.encoder(tf.zeros([1, feature_dim])))))

  @property
  def variables_to_train(self):
    return self.encoder.trainable_variables + self.latent.trainable_variables + self.decoder.trainable_variables

  def log_likelihood(self, x, z):
    """log N(x; dec(z), σ² I), [B]."""
    residual = (x - self.decoder(z)) * math.exp(-self.log_std)
    return -0.5 * tf.reduce_sum(tf.square(residual) + 2. * self.log_std + math.log(2. * math.pi), axis=1)

  def negative_elbo(self, x, seed):
    params = self.latent(self.encoder(x))
    z = self.latent.sample(params, seed)
    return -tf.reduce_mean(self.log_likelihood(x, z)) + tf.reduce_mean(self.latent.kl(params))

  def draw(self, params, seed):
    """(z, log p(h) − log q(h | x)) with the ratio taken in the hidden space (see the module docstring)."""
    if isinstance(self.latent, embedded.EmbeddedManifoldLatent):
      h = self.latent.sample_hidden(params, seed)
      return self.latent.embed(params, h), self.latent.hidden_log_prior(h) - self.latent.hidden_log_prob(params, h)
    z = self.latent.sample(params, seed)
    log_ratio = (embedded.standard_normal_log_prob(z)
                 - embedded.diagonal_normal_log_prob(z, params["mean"], params["logvar"]))
    return z, log_ratio

  def log_weights(self, x, k, seed):
    """log w [B, k] for K = k importance samples per point."""
    params = repeat_params(self.latent(self.encoder(x)), k)
    z, log_ratio = self.draw(params, seed)
    log_w = self.log_likelihood(tf.repeat(x, k, axis=0), z) + log_ratio
    return tf.reshape(log_w, [-1, k])


def make_latent(name, embedding_dir, hidden_prior, min_concentration):
  """(latent space, num_latent) for one of MODELS."""
  if name.startswith("VAE"):
    return GaussianLatent(name="latent"), int(name[-1])
  embedding = embedded.PROJECTION if name.endswith("projection") else embedding_dir
  return embedded.EmbeddedManifoldLatent(manifold="circle", embedding=embedding, hidden_prior=hidden_prior,
                                         group_action=name.endswith("group action"),
                                         min_concentration=min_concentration, name="latent"), 1


def train(model, data, steps, batch_size, learning_rate, seed):
  optimizer = keras.optimizers.Adam(learning_rate)
  variables = model.variables_to_train
  base_seed = tf.constant([seed, 0xC1C], tf.int64)

  @tf.function
  def step_fn(x, step):
    with tf.GradientTape() as tape:
      loss = model.negative_elbo(x, tf.random.experimental.stateless_fold_in(base_seed, step))
    optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
    return loss

  rng = np.random.RandomState([seed, 1])
  loss = float("nan")
  for step in range(steps):
    loss = float(step_fn(data.sample(batch_size, rng), tf.constant(step, tf.int64)))
  return loss


def evaluate(model, test_x, k, seed, chunk_rows=50000):
  """(ELBO, IWAE_k) in nats per test point, averaged over ``test_x``."""
  chunk = max(1, chunk_rows // k)
  log_weights = tf.function(model.log_weights)
  elbo_sum, iwae_sum = 0., 0.
  for start in range(0, len(test_x), chunk):
    log_w = log_weights(test_x[start:start + chunk], k, tf.constant([seed, start], tf.int64))
    elbo_sum += float(tf.reduce_sum(tf.reduce_mean(log_w, axis=1)))
    iwae_sum += float(tf.reduce_sum(tf.reduce_logsumexp(log_w, axis=1) - math.log(k)))
  return elbo_sum / len(test_x), iwae_sum / len(test_x)


# --- the benchmark ------------------------------------------------------------------------------------------------
def run(settings):
  start = time.time()
  data = CircleData(settings["feature_dim"], settings["seed"])
  test_x = data.sample(settings["test_points"], np.random.RandomState([settings["seed"], 2]))
  results = {"settings": dict(settings), "models": {}}
  with tempfile.TemporaryDirectory() as scratch:
    embedding_dir = settings["embedding"]
    if embedding_dir is None:
      print(f"[ervae_circle] fitting f: WAE-MMD on the circle, {settings['embedding_steps']} steps", flush=True)
      network, description = fit_embedding.fit_embedding("circle", hidden_prior=settings["hidden_prior"],
                                                 steps=settings["embedding_steps"], seed=settings["seed"])
      embedding_dir = fit_embedding.save_embedding(os.path.join(scratch, "embedding"), network, description)
    else:
      description = embedded.read_embedding_description(embedding_dir)
    results["embedding_quality"] = description["quality"]
    print(f"[ervae_circle] f: mean distance to S¹ {description['quality']['mean_distance']:.4f}, "
          f"MMD² {description['quality']['mmd']:.2e}", flush=True)
    for name in MODELS:
      model_start = time.time()
      keras.utils.set_random_seed(settings["seed"])
      latent, num_latent = make_latent(name, embedding_dir, settings["hidden_prior"], settings["min_concentration"])
      model = ToyVAE(latent, num_latent, settings["feature_dim"], settings["width"], settings["likelihood_std"])
      final_loss = train(model, data, settings["steps"], settings["batch_size"], settings["learning_rate"],
                         settings["seed"])
      elbo, iwae = evaluate(model, test_x, settings["iwae_samples"], settings["seed"])
      results["models"][name] = {"elbo": elbo, "iwae": iwae, "final_train_loss": final_loss,
                                 "seconds": time.time() - model_start}
      print(f"[ervae_circle] {name}: ELBO {elbo:.3f}, IWAE {iwae:.3f} ({time.time() - model_start:.0f}s)",
            flush=True)
  results["seconds"] = time.time() - start
  return results


def format_table(results):
  k = results["settings"]["iwae_samples"]
  width = max(len(name) for name in MODELS)
  lines = [f"{'model'.ljust(width)}  {'ELBO':>10}  {f'IWAE (k={k})':>14}", "-" * (width + 28)]
  for name, row in results["models"].items():
    lines.append(f"{name.ljust(width)}  {row['elbo']:>10.3f}  {row['iwae']:>14.3f}")
  return "\n".join(lines)


def parse_settings(argv):
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--size", choices=sorted(SIZES), default="full")
  parser.add_argument("--steps", type=int, help="training steps per model")
  parser.add_argument("--batch-size", type=int)
  parser.add_argument("--test-points", type=int)
  parser.add_argument("--iwae-samples", type=int, help="K, importance samples per test point")
  parser.add_argument("--embedding-steps", type=int, help="WAE steps when f is fitted here")
  parser.add_argument("--width", type=int, help="hidden units per layer of the VAEs' encoder and decoder")
  parser.add_argument("--embedding", help="a `python -m submission.fit_embedding --manifold circle` output")
  parser.add_argument("--hidden-prior", choices=embedded.HIDDEN_PRIORS, default="uniform")
  parser.add_argument("--min-concentration", type=float, default=embedded.MIN_CONCENTRATION,
                      help="floor of the Beta posterior's a and b (see submission/latent/embedded.py)")
  parser.add_argument("--likelihood-std", type=float, default=0.1)
  parser.add_argument("--feature-dim", type=int, default=100)
  parser.add_argument("--learning-rate", type=float, default=1e-3)
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--json", help="also write the results here")
  args = parser.parse_args(argv)
  settings = dict(SIZES[args.size], size=args.size)
  for key in ("steps", "batch_size", "test_points", "iwae_samples", "embedding_steps", "width"):
    if getattr(args, key) is not None:
      settings[key] = getattr(args, key)
  settings.update(embedding=args.embedding, hidden_prior=args.hidden_prior, min_concentration=args.min_concentration,
                  likelihood_std=args.likelihood_std,
                  feature_dim=args.feature_dim, learning_rate=args.learning_rate, seed=args.seed)
  for key in ("steps", "batch_size", "test_points", "iwae_samples", "embedding_steps", "width", "feature_dim"):
    if settings[key] < 1:
      raise UserError(f"--{key.replace('_', '-')} must be positive, got {settings[key]}")
  if settings["batch_size"] < 2 or settings["likelihood_std"] <= 0:
    raise UserError("--batch-size must be at least 2 and --likelihood-std positive")
  return settings, args.json


def main(argv):
  settings, json_path = parse_settings(argv)
  print(f"[ervae_circle] size {settings['size']}: {settings['steps']} steps of batch {settings['batch_size']} per "
        f"model, {settings['test_points']} test points, K = {settings['iwae_samples']}, hidden prior "
        f"{settings['hidden_prior']}, likelihood std {settings['likelihood_std']}", flush=True)
  results = run(settings)
  print()
  print(format_table(results))
  print(f"\n[ervae_circle] done in {results['seconds']:.0f}s (nats per test point; higher is better)")
  if json_path:
    commit, dirty = provenance.git_commit()
    write_json_atomically(json_path, dict(results, commit=commit, dirty=dirty))


if __name__ == "__main__":
  cli.main_guard(main, sys.argv[1:])
