"""dlib's architectures: layer specs checked by parameter counts (docs/dlib_interfaces.md §3) and output shapes."""

import numpy as np
import pytest
import tensorflow as tf

from submission import architectures
from submission.latent.gaussian import GaussianLatent


def encoder_with_heads(encoder_fn, channels, num_latent=10):
  trunk = encoder_fn()
  latent = GaussianLatent()
  latent.configure(num_latent)
  params = latent(trunk(tf.zeros([2, 64, 64, channels])))
  return trunk.count_params() + latent.count_params(), params


@pytest.mark.parametrize("channels,expected", [(1, 309204), (3, 310228)])
def test_conv_encoder_matches_dlib_parameter_count(channels, expected):
  count, params = encoder_with_heads(architectures.conv_encoder, channels)
  assert count == expected
  assert params["mean"].shape == (2, 10) and params["logvar"].shape == (2, 10)


@pytest.mark.parametrize("channels,expected", [(1, 381313), (3, 382339)])
def test_deconv_decoder_matches_dlib_parameter_count(channels, expected):
  decoder = architectures.deconv_decoder([64, 64, channels])
  assert decoder(tf.zeros([2, 10])).shape == (2, 64, 64, channels)
  assert decoder.count_params() == expected


def test_fc_encoder_and_decoder_match_dlib_parameter_count():
  encoder_count, _ = encoder_with_heads(architectures.fc_encoder, 1)
  decoder = architectures.fc_decoder([64, 64, 1])
  assert decoder(tf.zeros([2, 10])).shape == (2, 64, 64, 1)
  assert encoder_count + decoder.count_params() == 14196516


def test_fc_discriminator_matches_dlib_parameter_count_and_leaky_slope():
  discriminator = architectures.fc_discriminator()
  logits = discriminator(tf.zeros([2, 10]))
  assert logits.shape == (2, 2)
  assert discriminator.count_params() == 5018002
  slopes = [float(layer.negative_slope) for layer in discriminator.layers if hasattr(layer, "negative_slope")]
  assert slopes == pytest.approx([0.2] * 6)


def test_test_encoder_and_decoder_are_linear():
  count, params = encoder_with_heads(architectures.test_encoder, 1, num_latent=3)
  assert count == 2 * (64 * 64 * 3 + 3)
  decoder = architectures.test_decoder([64, 64, 1])
  z = np.random.RandomState(0).randn(4, 3).astype(np.float32)
  out = decoder(z).numpy().reshape(4, -1)
  twice = decoder(2 * z).numpy().reshape(4, -1)
  bias = decoder(np.zeros_like(z)).numpy().reshape(4, -1)
  np.testing.assert_allclose(twice - bias, 2 * (out - bias), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("channels,size", [(1, 8), (3, 5)])
def test_phase_split_transposed_convolution_equals_keras_outputs_and_gradients(channels, size):
  rng = np.random.RandomState(0)
  inputs = tf.constant(rng.randn(2, size, size + 1, 6).astype(np.float32))
  upstream = tf.constant(rng.randn(2, 2 * size, 2 * size + 2, channels).astype(np.float32))
  keras_layer = tf.keras.layers.Conv2DTranspose(channels, 4, strides=2, padding="same", activation="relu")
  split_layer = architectures.PhaseSplitConv2DTranspose(channels, 4, strides=2, padding="same", activation="relu")
  keras_layer(inputs)
  split_layer(inputs)
  split_layer.set_weights([w + rng.randn(*w.shape).astype(np.float32) for w in keras_layer.get_weights()])
  keras_layer.set_weights(split_layer.get_weights())  # a non-zero bias, so that its gradient is checked too
  assert split_layer.split_phases == (not tf.config.list_physical_devices("GPU"))
  results = []
  for layer in (keras_layer, split_layer):
    with tf.GradientTape() as tape:
      tape.watch(inputs)
      outputs = layer(inputs)
    results.append([outputs] + tape.gradient(outputs, [inputs, layer.kernel, layer.bias], output_gradients=upstream))
  for expected, got in zip(*results):
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


def test_only_narrow_stride_two_transposed_convolutions_split_phases():
  assert not architectures.PhaseSplitConv2DTranspose(32, 4, strides=2, padding="same").split_phases
  assert not architectures.PhaseSplitConv2DTranspose(1, 3, strides=2, padding="same").split_phases
  decoder = architectures.deconv_decoder([64, 64, 1])
  assert isinstance(decoder.layers[-2], architectures.PhaseSplitConv2DTranspose)
