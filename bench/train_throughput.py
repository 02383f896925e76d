"""Training throughput: the full training loop vs the bare compiled train step.

    python bench/train_throughput.py --model MODEL [--steps N] [--batch_size 64]

MODEL is any gin_configs/<MODEL>.gin. The model trains with its config's architecture forced to dlib's
conv_encoder/deconv_decoder, batch 64, on in-memory random binary images of dSprites' shape (64×64×1) served
through the same input pipeline as real training (``submission.train.batch_dataset``: whole batches sampled
from a GroundTruthData, prefetched). Prints as its last line

    steps_per_s=<x> bare_steps_per_s=<y>

— the full loop (input pipeline, step, NaN checks, logging every 100 steps, checkpoints every 1000) vs the same
compiled step called on one fixed batch, half of its steps timed before the loop and half after (the step rate
drifts as the weights train). The loop should reach at least 0.9 of the bare rate.
"""

import argparse
import os
import sys
import tempfile
import time

import gin
import numpy as np
import tensorflow as tf

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from submission import cli, train  # noqa: E402


class InMemoryData:
  """A GroundTruthData of dSprites' shape: 5 factors, random binary images held as uint8."""

  factors_num_values = [3, 6, 40, 32, 32]
  num_factors = 5
  observation_shape = [64, 64, 1]

  def __init__(self, num_images=20000, seed=0):
    self.images = (np.random.RandomState(seed).uniform(size=(num_images, 64, 64, 1)) > 0.8).astype(np.uint8)

  def sample_factors(self, num, random_state):
    return np.stack([random_state.randint(n, size=num) for n in self.factors_num_values], axis=1)

  def sample_observations_from_factors(self, factors, random_state):
    index = np.ravel_multi_index(factors.T, self.factors_num_values) % len(self.images)
    return self.images[index].astype(np.float32)

  def sample_observations(self, num, random_state):
    return self.sample_observations_from_factors(self.sample_factors(num, random_state), random_state)


def build_loop(model_dir):
  """The model of the active gin config, built, in a TrainingLoop (call inside the gin scope: steps trace there)."""
  model = gin.query_parameter("model.model").scoped_configurable_fn()
  tf.keras.utils.set_random_seed(0)
  model.build(InMemoryData.observation_shape)
  return train.TrainingLoop(model, model_dir, random_seed=0), train.loop_settings()


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--model", default="beta_vae", help="a gin_configs/<MODEL>.gin name")
  parser.add_argument("--steps", type=int, default=300, help="timed steps for each measurement")
  parser.add_argument("--batch_size", type=int, default=64)
  parser.add_argument("--warmup", type=int, default=20)
  args = parser.parse_args(argv)

  gin_file = os.path.join(cli.REPOSITORY_ROOT, "gin_configs", args.model + ".gin")
  bindings = ["encoder.encoder_fn = @conv_encoder", "decoder.decoder_fn = @deconv_decoder",
              f"model.batch_size = {args.batch_size}"]
  with tempfile.TemporaryDirectory() as model_dir, cli.gin_config([gin_file], bindings):
    loop, settings = build_loop(model_dir)
    data = InMemoryData()
    per_iteration = loop.model.steps_per_iteration

    # Bare: the compiled step alone, on one fixed batch already on the device. The step rate drifts as the
    # weights train (seen on CPU), so it is measured before and after the loop and the two are averaged.
    images = tf.constant(data.sample_observations(args.batch_size, np.random.RandomState(0)))
    for _ in range(args.warmup):
      loop.train_iteration(images)

    def bare_seconds(steps):
      start = time.perf_counter()
      for _ in range(steps):
        terms = loop.train_iteration(images)
      float(terms["loss"])  # wait for the last step
      return time.perf_counter() - start

    bare_time = bare_seconds(args.steps // 2)

    # Full loop: input pipeline, NaN checks, logging and checkpoints, as in training.
    first = int(loop.global_step.numpy())
    stream = train.batch_dataset(data, args.batch_size, seed=1, first_batch=loop.iteration(),
                                 prefetch=settings["prefetch_batches"])
    total = first + (args.warmup + args.steps) * per_iteration
    timer = {}

    class TimedStream:
      """Starts the clock after the warm-up iterations, so both rates exclude tracing."""

      def __iter__(self):
        for index, batch in enumerate(stream):
          if index == args.warmup:
            timer["start"] = time.perf_counter()
          yield batch

    loop.run(TimedStream(), total, settings, time.time())
    full = args.steps * per_iteration / (time.perf_counter() - timer["start"])
    bare_time += bare_seconds(args.steps - args.steps // 2)
    bare = args.steps * per_iteration / bare_time

  print(f"model={args.model} batch_size={args.batch_size} steps={args.steps} ratio={full / bare:.3f}")
  print(f"steps_per_s={full:.2f} bare_steps_per_s={bare:.2f}")


if __name__ == "__main__":
  main()
