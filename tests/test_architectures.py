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
