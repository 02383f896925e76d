"""FLOPs of a training step from its layer shapes, and the machine's float32 matmul peak to compare them with.

Counted: the multiply-adds (2 FLOPs each) of every convolution, transposed convolution and dense layer of the
encoder trunk and the decoder; element-wise ops, the loss, the optimizer and the latent heads (0.02 % for the
conv β-VAE) are left out. A training step costs three forward passes' worth per layer (forward, gradient of the
input, gradient of the kernel) except for the first layer, whose input needs no gradient.
"""

import time

import keras
import numpy as np
import tensorflow as tf


def layer_flops(layer, input_shape, output_shape):
  """Forward FLOPs of one layer for a batch of ``input_shape`` (0 for layers without multiply-adds)."""
  if isinstance(layer, keras.layers.Conv2DTranspose):  # every input pixel meets the whole kernel
    kernel = layer.kernel.shape  # [k, k, out, in]
    return 2 * int(np.prod(input_shape[:-1])) * int(np.prod(kernel))
  if isinstance(layer, keras.layers.Conv2D):  # every output pixel meets the whole kernel
    kernel = layer.kernel.shape  # [k, k, in, out]
    return 2 * int(np.prod(output_shape)) * int(np.prod(kernel[:-1]))
  if isinstance(layer, keras.layers.Dense):
    return 2 * int(np.prod(input_shape)) * int(layer.kernel.shape[-1])
  return 0


def forward_flops(network, inputs):
  """[(layer, its forward FLOPs, its input)] along a keras.Sequential fed ``inputs``."""
  counts = []
  for layer in network.layers:
    outputs = layer(inputs)
    counts.append((layer, layer_flops(layer, inputs.shape, outputs.shape), inputs))
    inputs = outputs
  return counts


def step_flops(model, images):
  """FLOPs of one training step of a built model on ``images`` (see the module docstring)."""
  codes = model.latent.sample(model.encode(images))
  layers = forward_flops(model.encoder, images) + forward_flops(model.decoder, codes)
  first_with_flops = next(f for _, f, _ in layers if f)
  return 3 * sum(f for _, f, _ in layers) - first_with_flops


def matmul_peak_gflops(size=2048, repeats=10, rounds=5):
  """GFLOP/s of a size×size float32 matmul, the best of ``rounds`` (the machine's attainable peak)."""
  a = tf.random.normal([size, size])
  b = tf.random.normal([size, size])
  multiply = tf.function(lambda: tf.matmul(a, b))
  multiply().numpy()
  best = float("inf")
  for _ in range(rounds):
    start = time.perf_counter()
    for _ in range(repeats):
      product = multiply()
    product.numpy()
    best = min(best, (time.perf_counter() - start) / repeats)
  return 2 * size ** 3 / best / 1e9
