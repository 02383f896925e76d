"""Where the conv β-VAE's training step spends its time: each layer's forward and backward, the loss, the
optimizer, and the whole compiled step, with each piece's FLOPs and GFLOP/s.

    python bench/train_profile.py [--rounds 5] [--repeats 20] [--batch_size 64] [--keras_transposed_convolutions]

The model is ``gin_configs/beta_vae.gin`` (dlib's conv_encoder / deconv_decoder, Bernoulli loss, Adam) on random
binary 64×64×1 images. Every piece is its own ``tf.function``, timed for ``--repeats`` calls per round; the rounds
cycle through all pieces so that the machine's drift (10-30 % per minute on a shared VM) touches each alike, and
the median round is printed. A layer's "gradients" piece is what the step's backward pass computes for it: the
gradients of its input and weights for a given upstream gradient (its forward pass is not needed for them, and
TensorFlow's graph optimiser may leave it out; the first layer's input gradient is not needed by the step). Each
piece pays one function call's dispatch (the flatten and reshape rows, which compute nothing, show its size),
so the pieces add up to more than the whole step, which pays it once.
``--keras_transposed_convolutions`` runs every transposed convolution as Keras' own op (see
``architectures.PhaseSplitConv2DTranspose``), the way the step ran before. The optimizer is timed both as the step
runs it (``models.base.apply_if_finite``: XLA-compiled) and as Keras' plain ``apply_gradients``.
The last line gives the matmul peak (a 2048×2048 float32 matmul) and the step's share of it.
"""

import argparse
import os
import statistics
import time

import numpy as np
import tensorflow as tf

import flops  # noqa: E402  (bench/ is the script's own directory)
from train_throughput import build_model  # noqa: E402
from submission import architectures, cli, losses, train  # noqa: E402
from submission.models import base  # noqa: E402


def layer_pieces(network, inputs):
  """(name, forward, backward, its input, forward FLOPs) for each layer of a keras.Sequential fed ``inputs``."""
  pieces = []
  for layer, forward_flops, layer_inputs in flops.forward_flops(network, inputs):
    upstream = tf.ones_like(layer(layer_inputs))

    def backward(x, layer=layer, upstream=upstream):
      with tf.GradientTape() as tape:
        tape.watch(x)
        y = layer(x)
      return tape.gradient(y, [x] + layer.trainable_variables, output_gradients=upstream)

    pieces.append((layer.name, tf.function(lambda x, layer=layer: layer(x)), tf.function(backward), layer_inputs,
                   forward_flops))
  return pieces


def time_call(fn, args, repeats):
  result = fn(*args)
  start = time.perf_counter()
  for _ in range(repeats):
    result = fn(*args)
  tf.nest.map_structure(lambda t: t.numpy() if hasattr(t, "numpy") else t, result)  # waits for the last call
  return (time.perf_counter() - start) / repeats


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--rounds", type=int, default=5)
  parser.add_argument("--repeats", type=int, default=20)
  parser.add_argument("--batch_size", type=int, default=64)
  parser.add_argument("--keras_transposed_convolutions", action="store_true",
                      help="no phase split: every transposed convolution as Keras' op")
  args = parser.parse_args(argv)

  gin_file = os.path.join(cli.REPOSITORY_ROOT, "gin_configs", "beta_vae.gin")
  with cli.gin_config([gin_file], [f"model.batch_size = {args.batch_size}"]):
    model = build_model()
    if args.keras_transposed_convolutions:
      for layer in model.decoder.layers:
        if isinstance(layer, architectures.PhaseSplitConv2DTranspose):
          layer.split_phases = False
    images = tf.constant((np.random.RandomState(0).uniform(size=[args.batch_size, 64, 64, 1]) > 0.8)
                         .astype(np.float32))
    loop = train.TrainingLoop(model, "unused", random_seed=0)
    seed = loop.step_seed(tf.constant(0, tf.int64))
    codes = model.latent.sample(model.encode(images), seed)
    logits = model.decode(codes)
    gradients = [tf.zeros_like(v) for v in model.vae_variables]

    def loss_backward(images, logits):
      with tf.GradientTape() as tape:
        tape.watch(logits)
        loss = tf.reduce_mean(losses.make_reconstruction_loss(images, logits))
      return tape.gradient(loss, logits)

    pieces = []
    for network, inputs in ((model.encoder, images), (model.decoder, codes)):
      for name, forward, backward, inputs, forward_flops in layer_pieces(network, inputs):
        pieces.append((f"{network.name}/{name} forward", forward, [inputs], forward_flops))
        pieces.append((f"{network.name}/{name} gradients", backward, [inputs], 2 * forward_flops))
    pieces.append(("Bernoulli loss and its gradient", tf.function(loss_backward), [images, logits], 0))
    pieces.append(("optimizer (Adam) update, XLA (as in the step)", tf.function(
        lambda: base.apply_if_finite(tf.constant(True), model.optimizer, gradients, model.vae_variables)), [], 0))
    pieces.append(("optimizer (Adam) update, plain Keras", tf.function(
        lambda: model.optimizer.apply_gradients(zip(gradients, model.vae_variables))), [], 0))
    step_flops = flops.step_flops(model, images)
    pieces.append(("whole step (TrainingLoop.train_iteration)", loop.train_iteration, [images], step_flops))

    rounds = {name: [] for name, _, _, _ in pieces}
    for _ in range(args.rounds):
      for name, fn, fn_args, _ in pieces:
        rounds[name].append(time_call(fn, fn_args, args.repeats))
    peak = flops.matmul_peak_gflops()

  step_seconds = statistics.median(rounds[pieces[-1][0]])
  print(f"{'piece':52s} {'ms':>8s} {'% step':>7s} {'MFLOP':>8s} {'GFLOP/s':>8s}")
  for name, _, _, piece_flops in pieces:
    seconds = statistics.median(rounds[name])
    rate = f"{piece_flops / seconds / 1e9:8.1f}" if piece_flops else f"{'':8s}"
    print(f"{name:52s} {1e3 * seconds:8.2f} {100 * seconds / step_seconds:7.1f} {piece_flops / 1e6:8.1f} {rate}")
  step_rate = step_flops / step_seconds / 1e9
  print(f"step_gflop={step_flops / 1e9:.3f} step_ms={1e3 * step_seconds:.1f} step_gflops_per_s={step_rate:.1f} "
        f"matmul_peak_gflops_per_s={peak:.1f} share_of_peak={step_rate / peak:.3f}")


if __name__ == "__main__":
  main()
