"""Networks with disentanglement_lib's layer specs and gin names.

dlib's encoder functions return ``(means, log_var)``. Here an encoder function returns only the shared trunk
(image → features); the latent space adds its own heads (``means``/``log_var`` for the Gaussian, a location
and a log-scale for the hypersphere, ...), so every architecture serves every latent space. Layer names, sizes,
activations and initialisers (Glorot-uniform kernels, zero biases, "same" padding) follow dlib's
``methods/shared/architectures.py`` and the β-VAE / FactorVAE papers' tables.
"""

import gin
import numpy as np
import keras
import tensorflow as tf
from keras import layers

from submission import cli


@gin.configurable("encoder", allowlist=["num_latent", "encoder_fn"])
def encoder_settings(num_latent=gin.REQUIRED, encoder_fn=gin.REQUIRED):
  """dlib's ``encoder`` configurable: the latent size and the encoder trunk."""
  return cli.check_integer("encoder.num_latent", num_latent), encoder_fn


@gin.configurable("decoder", allowlist=["decoder_fn"])
def decoder_settings(decoder_fn=gin.REQUIRED):
  """dlib's ``decoder`` configurable."""
  return decoder_fn


@gin.configurable("discriminator", allowlist=["discriminator_fn"])
def discriminator_settings(discriminator_fn=gin.REQUIRED):
  """dlib's ``discriminator`` configurable (FactorVAE)."""
  return discriminator_fn


@gin.configurable("conv_encoder", allowlist=[])
def conv_encoder():
  """β-VAE paper Table 1, row 3: four strided convolutions and a 256-unit dense layer."""
  return keras.Sequential([
      layers.Conv2D(32, 4, strides=2, padding="same", activation="relu", name="e1"),
      layers.Conv2D(32, 4, strides=2, padding="same", activation="relu", name="e2"),
      layers.Conv2D(64, 2, strides=2, padding="same", activation="relu", name="e3"),
      layers.Conv2D(64, 2, strides=2, padding="same", activation="relu", name="e4"),
      layers.Flatten(),
      layers.Dense(256, activation="relu", name="e5"),
  ], name="encoder")


@gin.configurable("fc_encoder", allowlist=[])
def fc_encoder():
  """β-VAE paper Table 1, row 1: two 1200-unit ReLU layers."""
  return keras.Sequential([
      layers.Flatten(),
      layers.Dense(1200, activation="relu", name="e1"),
      layers.Dense(1200, activation="relu", name="e2"),
  ], name="encoder")


@gin.configurable("test_encoder", allowlist=[])
def test_encoder():
  """dlib's test encoder: linear heads straight on the flattened image."""
  return keras.Sequential([layers.Flatten()], name="encoder")


@gin.configurable("deconv_decoder", allowlist=[])
def deconv_decoder(output_shape):
  """β-VAE paper Table 1, row 3 mirrored; returns logits of shape ``output_shape``."""
  return keras.Sequential([
      layers.Dense(256, activation="relu", name="dense"),
      layers.Dense(1024, activation="relu", name="dense_1"),
      layers.Reshape((4, 4, 64)),
      layers.Conv2DTranspose(64, 4, strides=2, padding="same", activation="relu", name="conv2d_transpose"),
      layers.Conv2DTranspose(32, 4, strides=2, padding="same", activation="relu", name="conv2d_transpose_1"),
      layers.Conv2DTranspose(32, 4, strides=2, padding="same", activation="relu", name="conv2d_transpose_2"),
      PhaseSplitConv2DTranspose(output_shape[2], 4, strides=2, padding="same", name="conv2d_transpose_3"),
      layers.Reshape(tuple(output_shape)),
  ], name="decoder")


@gin.configurable("fc_decoder", allowlist=[])
def fc_decoder(output_shape):
  """β-VAE paper Table 1, row 1 decoder: three 1200-unit tanh layers."""
  return keras.Sequential([
      layers.Dense(1200, activation="tanh", name="dense"),
      layers.Dense(1200, activation="tanh", name="dense_1"),
      layers.Dense(1200, activation="tanh", name="dense_2"),
      layers.Dense(int(np.prod(output_shape)), name="dense_3"),
      layers.Reshape(tuple(output_shape)),
  ], name="decoder")


@gin.configurable("test_decoder", allowlist=[])
def test_decoder(output_shape):
  """dlib's test decoder: one linear layer."""
  return keras.Sequential([
      layers.Dense(int(np.prod(output_shape)), name="d1"),
      layers.Reshape(tuple(output_shape)),
  ], name="decoder")


@gin.configurable("fc_discriminator", allowlist=[])
def fc_discriminator():
  """FactorVAE paper App. A: six 1000-unit leaky-ReLU (slope 0.2, TF1's default) layers, two logits."""
  stack = [layers.Flatten()]
  for i in range(1, 7):
    stack.append(layers.Dense(1000, name=f"d{i}"))
    stack.append(layers.LeakyReLU(negative_slope=0.2))
  stack.append(layers.Dense(2, name="logits"))
  return keras.Sequential(stack, name="discriminator")


# Below this many output channels, oneDNN's transposed convolution (a convolution's input gradient) runs an order of
# magnitude below the machine's FLOP rate on CPUs: dlib's last decoder layer (32 → 1 channel) took 15 % of the conv
# β-VAE's step. Wider layers run faster as they are (bench/train_profile.py).
NARROW_TRANSPOSED_CONV_CHANNELS = 3


class PhaseSplitConv2DTranspose(layers.Conv2DTranspose):
  """Keras' Conv2DTranspose (same kernel variable, initialiser and maths) whose forward pass, for a narrow 4×4,
  stride-2, "same" layer on a CPU, is computed as a stride-1 convolution of each output phase.

  Output pixel 2m + r of a stride-2 transposed convolution receives input pixels m - 1 and m (r = 0: kernel taps 3
  and 1) or m and m + 1 (r = 1: taps 2 and 0) along each axis: a 2×2 stride-1 convolution of the input padded by
  one, with the four (r_row, r_col) phases as 4 × filters output channels, then depth-to-space and a one-pixel
  crop. The same products are summed (in another order), so outputs agree to float rounding. The gradients are
  TensorFlow's own for the transposed convolution (a strided convolution and its filter gradient), which are fast.
  On GPUs, and for wider layers, the layer is exactly Keras' Conv2DTranspose.
  """

  def __init__(self, filters, kernel_size, **kwargs):
    super().__init__(filters, kernel_size, **kwargs)
    self.split_phases = (filters <= NARROW_TRANSPOSED_CONV_CHANNELS and not tf.config.list_physical_devices("GPU")
                         and self.kernel_size == (4, 4) and self.strides == (2, 2) and self.padding == "same"
                         and self.data_format == "channels_last" and self.dilation_rate == (1, 1)
                         and self.output_padding is None)

  def call(self, inputs):
    if not self.split_phases:
      return super().call(inputs)
    # A tensor, not the variable: a custom gradient sees the read kernel (cast to the compute dtype) as its input.
    outputs = transposed_conv_by_phases(inputs, tf.convert_to_tensor(self.kernel))
    if self.use_bias:
      outputs = outputs + self.bias
    return self.activation(outputs) if self.activation is not None else outputs


@tf.custom_gradient
def transposed_conv_by_phases(inputs, kernel):
  """``tf.nn.conv2d_transpose(inputs, kernel, stride 2, "SAME")`` for a [4, 4, out, in] kernel, by phases (see
  PhaseSplitConv2DTranspose)."""
  out_channels, in_channels = kernel.shape[2], kernel.shape[3]
  taps = tf.reshape(kernel, [2, 2, 2, 2, out_channels, in_channels])  # [row block, row phase, col block, col phase]
  taps = tf.reverse(taps, [0, 2])  # a window's first input pixel meets the later block of taps
  taps = tf.reshape(tf.transpose(taps, [0, 2, 5, 1, 3, 4]), [2, 2, in_channels, 4 * out_channels])
  padded = tf.pad(inputs, [[0, 0], [1, 1], [1, 1], [0, 0]])
  outputs = tf.nn.depth_to_space(tf.nn.conv2d(padded, taps, strides=1, padding="VALID"), 2)[:, 1:-1, 1:-1, :]

  def gradient(upstream):
    strides = [1, 2, 2, 1]
    return (tf.nn.conv2d(upstream, kernel, strides=strides, padding="SAME"),
            tf.raw_ops.Conv2DBackpropFilter(input=upstream, filter_sizes=tf.shape(kernel), out_backprop=inputs,
                                            strides=strides, padding="SAME"))

  return outputs, gradient
