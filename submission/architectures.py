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
from keras import layers


@gin.configurable("encoder", allowlist=["num_latent", "encoder_fn"])
def encoder_settings(num_latent=gin.REQUIRED, encoder_fn=gin.REQUIRED):
  """dlib's ``encoder`` configurable: the latent size and the encoder trunk."""
  return num_latent, encoder_fn


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
      layers.Conv2DTranspose(output_shape[2], 4, strides=2, padding="same", name="conv2d_transpose_3"),
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
