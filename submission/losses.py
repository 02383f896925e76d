"""Reconstruction losses with dlib's gin names (``reconstruction_loss``, ``bernoulli_loss``, ``l2_loss``).

Each returns the per-example loss, shape [B]; the model averages over the batch.
"""

import gin
import tensorflow as tf

from submission.errors import UserError

_CLIP = 1e-6


def _flatten(x):
  return tf.reshape(x, [tf.shape(x)[0], -1])


def pixel_means(logits, activation):
  """Maps decoder logits to pixel means the way the loss reads them."""
  if activation == "logits":
    return tf.sigmoid(logits)
  if activation == "tanh":
    return tf.tanh(logits) / 2. + 0.5
  raise UserError(f"reconstruction_loss.activation must be 'logits' or 'tanh', got {activation!r}")


@gin.configurable("bernoulli_loss", allowlist=["subtract_true_image_entropy"])
def bernoulli_loss(true_images, reconstructed_images, activation, subtract_true_image_entropy=False):
  """Σ_pixels cross-entropy of Bernoulli(p(x̂)) with soft targets x in [0, 1].

  With ``subtract_true_image_entropy`` the entropy of Bernoulli(x) is subtracted, so a perfect reconstruction
  of a grey-level image scores 0 (the cross-entropy's lower bound).
  """
  x = _flatten(true_images)
  logits = _flatten(reconstructed_images)
  if activation == "logits":
    loss = tf.reduce_sum(tf.nn.sigmoid_cross_entropy_with_logits(labels=x, logits=logits), axis=1)
  else:
    p = tf.clip_by_value(pixel_means(logits, activation), _CLIP, 1. - _CLIP)
    loss = -tf.reduce_sum(x * tf.math.log(p) + (1. - x) * tf.math.log(1. - p), axis=1)
  if subtract_true_image_entropy:
    q = tf.clip_by_value(x, _CLIP, 1. - _CLIP)
    entropy = -tf.reduce_sum(q * tf.math.log(q) + (1. - q) * tf.math.log(1. - q), axis=1)
    loss -= entropy
  return loss


@gin.configurable("l2_loss", allowlist=[])
def l2_loss(true_images, reconstructed_images, activation):
  """Σ_pixels (x − p(x̂))²."""
  return tf.reduce_sum(tf.square(_flatten(true_images) - _flatten(pixel_means(reconstructed_images, activation))),
                       axis=1)


def reconstruction_activation():
  """How the decoder's output is read as pixels ('logits' or 'tanh'), as the gin config binds it."""
  return gin.get_bindings("reconstruction_loss").get("activation", "logits")


@gin.configurable("reconstruction_loss", denylist=["true_images", "reconstructed_images"])
def make_reconstruction_loss(true_images, reconstructed_images, loss_fn=gin.REQUIRED, activation="logits"):
  """Per-example reconstruction loss, [B]; ``reconstructed_images`` are the decoder's logits."""
  if activation not in ("logits", "tanh"):
    raise UserError(f"reconstruction_loss.activation must be 'logits' or 'tanh', got {activation!r}")
  return loss_fn(true_images, reconstructed_images, activation)
