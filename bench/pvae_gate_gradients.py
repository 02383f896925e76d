"""Diagnostic: what moves PVAE's gates? The gradient on log α of each term of a trained PVAE's loss.

    python bench/pvae_gate_gradients.py RUN_DIR [--batches 200] [--learning_rate 1e-4] [--per_gate]

RUN_DIR is a PVAE run (``./run_local.sh gin_configs/pvae.gin`` or a study point): its ``model/results/gin/train.gin``
and latest checkpoint in ``model/tf_checkpoint`` are read, nothing is written. On ``--batches`` minibatches of the
run's data set (batch size and seeds as training draws them, one gate draw per batch), it splits the loss

    L = reconstruction + masked KL + DIP moment penalty + τ·Σ_j P(m_j ≠ 0)

and prints, per term, the mean gradient on log α over the batches (averaged over the gates), the root mean square,
and the share of batches in which the gradient on a gate is non-zero. Then Adam's step per iteration for a
gradient with that mean and RMS, lr·mean/RMS (the steady state of Adam's moments), against lr: it tells a gate that
cannot move (no gradient reaches log α) from one whose gradient points the other way, and how many steps closing a
gate would take at that rate.

Why the split matters: with the hard-concrete temperature β = 0.05 the sampled gate is fractional (and so carries a
reconstruction gradient) only in a few per cent of draws, where dm/dlog α is large (up to (ζ − γ)/(4β) = 6); the
L0 term's gradient is smooth and small (τ·P'(m ≠ 0) ≤ τ/4). Adam divides the sum by the RMS, which the rare large
reconstruction gradients set.

``--per_gate`` adds one row per gate: its log α, the mean gradient of each term, Adam's step/lr for the total, and
what the dimension carries: the variance over the batches of its ungated posterior mean and the mean of its ungated
posterior variance (a dimension the model does not use has a constant mean and variance ≈ 1, the prior's).
"""

import argparse
import os

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import gin  # noqa: E402
import tensorflow as tf  # noqa: E402

from submission import train  # noqa: E402
from submission.data import named_data  # noqa: E402


def load_trained_pvae(run_dir):
  """(model, data, batch_size) of a PVAE run, its weights restored from the run's latest checkpoint."""
  gin.parse_config_files_and_bindings([os.path.join(run_dir, "model", "results", "gin", "train.gin")], [],
                                      skip_unknown=True)
  model = gin.query_parameter("model.model").scoped_configurable_fn()
  data = named_data.load()
  train.build_model(model, list(data.observation_shape))
  if not hasattr(model.latent, "gate"):
    raise SystemExit(f"{run_dir}: not a model with L0 gates ({type(model).__name__})")
  checkpoint_dir = os.path.join(run_dir, "model", "tf_checkpoint")
  latest = tf.train.latest_checkpoint(checkpoint_dir)
  if latest is None:
    raise SystemExit(f"{checkpoint_dir}: no checkpoint")
  tf.train.Checkpoint(**model.checkpoint_items()).restore(latest).expect_partial()
  print(f"restored {latest}")
  return model, data, gin.query_parameter("model.batch_size")


def term_gradients(model, images, seed):
  """{term: gradient on log α} for one minibatch and one gate draw."""
  log_alpha = model.latent.gate.log_alpha
  with tf.GradientTape(persistent=True) as tape:
    terms, params, _ = model.forward(images, seed, tf.constant(0.))
    penalty = model.latent.penalty(params)
    parts = {"reconstruction": terms["reconstruction_loss"], "masked KL": terms["kl_loss"],
             "DIP penalty": terms["regularizer"] - terms["kl_loss"] - penalty, "L0 penalty": penalty,
             "total": terms["loss"]}
  gradients = {name: tape.gradient(value, log_alpha) for name, value in parts.items()}
  del tape
  return {name: np.zeros(log_alpha.shape) if g is None else g.numpy() for name, g in gradients.items()}


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("run_dir")
  parser.add_argument("--batches", type=int, default=200)
  parser.add_argument("--learning_rate", type=float, default=1e-4)
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--per_gate", action="store_true", help="one row per gate (see above)")
  args = parser.parse_args(argv)
  model, data, batch_size = load_trained_pvae(args.run_dir)
  log_alpha = model.latent.gate.log_alpha.numpy()
  print(f"log α: min {log_alpha.min():.3f} mean {log_alpha.mean():.3f} max {log_alpha.max():.3f} "
        f"({log_alpha.size} gates)")
  random_state = np.random.RandomState(args.seed)
  samples = {}
  ungated_means, ungated_variances = [], []
  for b in range(args.batches):
    images = tf.constant(data.sample_observations(batch_size, random_state), tf.float32)
    if args.per_gate:
      params = model.encode(images)
      ungated_means.append(params["ungated_mean"].numpy())
      ungated_variances.append(params["ungated_variance"].numpy())
    for name, g in term_gradients(model, images, tf.constant([args.seed, b], tf.int64)).items():
      samples.setdefault(name, []).append(g)
  print(f"gradient on log α over {args.batches} batches of {batch_size} (positive = towards closing the gate):")
  print(f"{'term':<16}{'mean':>12}{'RMS':>12}{'non-zero':>10}{'Adam step/lr':>14}")
  for name, values in samples.items():
    g = np.stack(values)                       # (batches, gates)
    mean, rms = g.mean(axis=0), np.sqrt((g ** 2).mean(axis=0))
    step = np.divide(mean, rms, out=np.zeros_like(mean), where=rms > 0)
    print(f"{name:<16}{mean.mean():>12.4g}{rms.mean():>12.4g}{(g != 0).mean():>10.3f}{step.mean():>14.4f}")
  total = np.stack(samples["total"])
  step = total.mean(axis=0) / np.sqrt((total ** 2).mean(axis=0))
  per_iteration = args.learning_rate * step
  print(f"Adam's steady step on log α per iteration at lr {args.learning_rate:g}: mean {per_iteration.mean():.3g} "
        f"(min {per_iteration.min():.3g}, max {per_iteration.max():.3g}); a gate closes below log α ≈ −0.12 "
        f"(P(m ≠ 0) < ½ needs log α < β·log(−γ/ζ)).")
  if args.per_gate:
    means = {name: np.stack(values).mean(axis=0) for name, values in samples.items()}
    mean_variance = np.concatenate(ungated_means).var(axis=0)
    posterior_variance = np.concatenate(ungated_variances).mean(axis=0)
    names = [name for name in samples if name != "total"]
    print(f"\nper gate, by log α (mean gradient of each term; Var[μ] and E[σ²] of the ungated posterior):")
    print(f"{'gate':>4}{'log α':>8}" + "".join(f"{name[:14]:>15}" for name in names)
          + f"{'Adam step/lr':>14}{'Var[μ]':>9}{'E[σ²]':>8}")
    for j in np.argsort(log_alpha):
      print(f"{j:>4}{log_alpha[j]:>8.3f}" + "".join(f"{means[name][j]:>15.4g}" for name in names)
            + f"{step[j]:>14.3f}{mean_variance[j]:>9.3f}{posterior_variance[j]:>8.3f}")


if __name__ == "__main__":
  main()
