"""Training throughput: the full training loop vs the bare compiled train step, and the bare step vs a PyTorch peer.

    python bench/train_throughput.py --model MODEL [--steps N] [--batch_size 64] [--block 50]
        [--torch_peer SCRIPT --torch_python PYTHON [--peer_rounds 4] [--peer_steps 100]]

MODEL is any gin_configs/<MODEL>.gin. The model trains with its config's architecture forced to dlib's
conv_encoder/deconv_decoder, batch 64, on in-memory random binary images of dSprites' shape (64×64×1) served
through the same input pipeline as real training (``submission.train.batch_dataset``: whole batches sampled
from a GroundTruthData, prefetched). Prints (before the peer comparison, if asked for)

    steps_per_s=<x> bare_steps_per_s=<y>

— the full loop (``TrainingLoop.run``: input pipeline, step, NaN checks, logging every 100 steps, checkpoints every
1000 and at the end) vs the same compiled step called on one fixed batch already in memory. Both rates count
global steps (FactorVAE advances two per iteration) and exclude the warm-up iterations, which trace.

The two are measured interleaved: after the warm-up, every ``--block`` loop iterations the input stream pauses the
loop and runs a block of bare steps, whose time is taken out of the loop's. On a shared 2-core VM the speed of the
same compiled step drifts by 10-30 % within a minute, so rates measured one after the other compare the machine's
moods, not the loop; alternating blocks puts both under the same conditions. The bare blocks restore the global
step afterwards, so the loop's logging and checkpoint schedule are those of a normal run. While a bare block runs,
the prefetch buffer refills, which could hide a slow input pipeline for up to ``prefetch_batches`` iterations per
block (4 of the default 50); the time the loop spent waiting for input is therefore printed as well
(``input_wait``, a share of the loop's time).

With ``--torch_peer`` (the PyTorch peer script: dlib's conv β-VAE step written in PyTorch, printing
``train_steps_per_s=<x>``, run by ``--torch_python``, an interpreter of a separate environment with torch; this
project never needs torch), the bare step and the peer then alternate ``--peer_rounds`` times, ``--peer_steps``
steps each, in the same run, for the same reason; each round's ratio is printed and, as the last lines, the median
ratio and the step's FLOP rate (FLOPs from the layer shapes, ``bench/flops.py``) as a share of the machine's
measured float32 matmul peak:

    peer_ratio=<median bare / peer> bare_steps_per_s=<median> peer_steps_per_s=<median>
    step_gflop=<g> step_gflops_per_s=<r> matmul_peak_gflops_per_s=<p> share_of_peak=<r / p>
"""

import argparse
import itertools
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

import gin
import numpy as np
import tensorflow as tf

import flops  # noqa: E402  (bench/ is the script's own directory)
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


def build_model():
  """The model of the active gin config, built on dSprites' shape (call inside the gin scope)."""
  model = gin.query_parameter("model.model").scoped_configurable_fn()
  tf.keras.utils.set_random_seed(0)
  return model.build(InMemoryData.observation_shape)


def build_loop(model_dir):
  """The model of the active gin config, built, in a TrainingLoop (call inside the gin scope: steps trace there)."""
  return train.TrainingLoop(build_model(), model_dir, random_seed=0), train.loop_settings()


class InterleavedStream:
  """The loop's input stream, timing the loop and pausing it every ``block`` iterations for a block of bare steps.

  The clock starts after ``warmup`` iterations. ``loop_seconds`` (set when the loop has returned, see ``finish``)
  is the loop's wall time without the bare blocks; ``bare_seconds`` the bare blocks' own; ``input_seconds`` the
  loop's time spent waiting for the next batch.
  """

  def __init__(self, stream, loop, images, warmup, block):
    self.stream, self.loop, self.images, self.warmup, self.block = stream, loop, images, warmup, block
    self.bare_iterations, self.bare_seconds, self.paused_seconds, self.input_seconds = 0, 0., 0., 0.
    self.start = None

  def bare_block(self):
    step = self.loop.global_step.numpy()  # also waits for the loop's last iteration to finish
    paused = time.perf_counter()
    for _ in range(self.block):
      terms = self.loop.train_iteration(self.images)
    float(terms["loss"])  # waits for the last bare step
    self.bare_seconds += time.perf_counter() - paused
    self.bare_iterations += self.block
    self.loop.global_step.assign(step)
    self.paused_seconds += time.perf_counter() - paused

  def __iter__(self):
    batches = iter(self.stream)
    for index in itertools.count():
      if index == self.warmup:
        self.start = time.perf_counter()
      elif index > self.warmup and (index - self.warmup) % self.block == 0:
        self.bare_block()
      waiting = time.perf_counter()
      batch = next(batches, None)
      if batch is None:
        return
      if self.start is not None:
        self.input_seconds += time.perf_counter() - waiting
      yield batch

  def finish(self):
    self.loop_seconds = time.perf_counter() - self.start - self.paused_seconds


def bare_rate(loop, images, steps):
  """Global steps per second of ``steps`` bare iterations on a batch already in memory."""
  start = time.perf_counter()
  for _ in range(steps):
    terms = loop.train_iteration(images)
  float(terms["loss"])  # waits for the last step
  return steps * loop.model.steps_per_iteration / (time.perf_counter() - start)


def peer_rate(python, script, steps):
  """The PyTorch peer's training steps per second, run in its own process for ``steps`` timed steps."""
  run = subprocess.run([python, script, str(steps)], capture_output=True, text=True, check=False)
  found = re.search(r"train_steps_per_s=([0-9.]+)", run.stdout)
  if run.returncode or not found:
    sys.exit(f"the PyTorch peer failed ({python} {script}): {(run.stderr or run.stdout).strip()[-300:]}")
  return float(found.group(1))


def compare_with_peer(loop, images, args):
  """Alternating rounds of the bare step and the peer; prints each round and the medians."""
  bare_rates, peer_rates = [], []
  for index in range(args.peer_rounds):
    bare_rates.append(bare_rate(loop, images, args.peer_steps))
    peer_rates.append(peer_rate(args.torch_python, args.torch_peer, args.peer_steps))
    print(f"round {index + 1}: bare_steps_per_s={bare_rates[-1]:.2f} peer_steps_per_s={peer_rates[-1]:.2f} "
          f"ratio={bare_rates[-1] / peer_rates[-1]:.3f}", flush=True)
  ratio = statistics.median(b / p for b, p in zip(bare_rates, peer_rates))
  print(f"peer_ratio={ratio:.3f} bare_steps_per_s={statistics.median(bare_rates):.2f} "
        f"peer_steps_per_s={statistics.median(peer_rates):.2f}")
  return statistics.median(bare_rates)


def print_share_of_peak(model, images, steps_per_s):
  step_flops = flops.step_flops(model, images)
  rate = step_flops * steps_per_s / model.steps_per_iteration / 1e9
  peak = flops.matmul_peak_gflops()
  print(f"step_gflop={step_flops / 1e9:.3f} step_gflops_per_s={rate:.1f} matmul_peak_gflops_per_s={peak:.1f} "
        f"share_of_peak={rate / peak:.3f}")


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--model", default="beta_vae", help="a gin_configs/<MODEL>.gin name")
  parser.add_argument("--steps", type=int, default=300, help="timed loop iterations (and as many bare ones)")
  parser.add_argument("--batch_size", type=int, default=64)
  parser.add_argument("--warmup", type=int, default=20, help="untimed iterations first (tracing)")
  parser.add_argument("--block", type=int, default=50, help="iterations per alternating loop / bare block")
  parser.add_argument("--torch_peer", help="the PyTorch peer script (prints train_steps_per_s=<x>)")
  parser.add_argument("--torch_python", help="the Python interpreter (with torch) that runs --torch_peer")
  parser.add_argument("--peer_rounds", type=int, default=4, help="alternating bare / peer rounds")
  parser.add_argument("--peer_steps", type=int, default=100, help="timed steps per round, each side")
  args = parser.parse_args(argv)
  if args.steps < args.block or args.steps % args.block:
    parser.error("--steps must be a positive multiple of --block")
  if bool(args.torch_peer) != bool(args.torch_python):
    parser.error("--torch_peer and --torch_python go together")

  gin_file = os.path.join(cli.REPOSITORY_ROOT, "gin_configs", args.model + ".gin")
  bindings = ["encoder.encoder_fn = @conv_encoder", "decoder.decoder_fn = @deconv_decoder",
              f"model.batch_size = {args.batch_size}"]
  with tempfile.TemporaryDirectory() as model_dir, cli.gin_config([gin_file], bindings):
    loop, settings = build_loop(model_dir)
    data = InMemoryData()
    images = tf.constant(data.sample_observations(args.batch_size, np.random.RandomState(0)))
    stream = train.batch_dataset(data, args.batch_size, seed=1, first_batch=loop.iteration(),
                                 prefetch=settings["prefetch_batches"])
    timed = InterleavedStream(stream, loop, images, args.warmup, args.block)
    per_iteration = loop.model.steps_per_iteration
    total = int(loop.global_step.numpy()) + (args.warmup + args.steps) * per_iteration
    loop.run(timed, total, settings, time.time())
    timed.finish()
    # Bare blocks run between loop blocks only, so there is one block fewer of them: rates, not totals, compare.
    full = args.steps * per_iteration / timed.loop_seconds
    bare = timed.bare_iterations * per_iteration / timed.bare_seconds
    print(f"model={args.model} batch_size={args.batch_size} steps={args.steps} block={args.block} "
          f"ratio={full / bare:.3f} input_wait={timed.input_seconds / timed.loop_seconds:.4f}")
    print(f"steps_per_s={full:.2f} bare_steps_per_s={bare:.2f}", flush=True)
    if args.torch_peer:
      print_share_of_peak(loop.model, images, compare_with_peer(loop, images, args))


if __name__ == "__main__":
  main()
