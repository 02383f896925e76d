"""TensorBoard images at each checkpoint: reconstructions next to their inputs and a latent traversal grid, written
to the run's summaries beside the scalars, so ``tensorboard --logdir OUT/model/tf_checkpoint`` shows how the model
learns.

The same few images (drawn once, from their own seed) are shown at every checkpoint, and the traversals follow the
latent geometry as the final pictures do (``submission.traversal``). The cost is one encoder and one decoder call
on a few dozen images per checkpoint; ``checkpoint_images.enabled = False`` switches it off.
"""

import gin
import numpy as np
import tensorflow as tf

from submission import losses, traversal

RECONSTRUCTIONS_TAG = "images/reconstructions"
TRAVERSALS_TAG = "images/traversals"


@gin.configurable("checkpoint_images")
def image_settings(enabled=True, num_images=8, num_values=7):
  """Whether checkpoints write TensorBoard images, how many inputs they reconstruct and how many values each
  traversal row shows."""
  return dict(enabled=enabled, num_images=num_images, num_values=num_values)


class CheckpointImages:
  """Writes the images of one model at each checkpoint into the summary writer it is given."""

  def __init__(self, model, inputs, num_values, seed):
    self.model = model
    self.inputs = tf.constant(inputs, tf.float32)
    self.num_values = num_values
    self.seed = tf.constant([seed, 0x1A6E], tf.int64)
    self.activation = losses.reconstruction_activation()

  def pixels(self, codes):
    logits = tf.cast(self.model.decode(tf.constant(codes, tf.float32)), tf.float32)
    return losses.pixel_means(logits, self.activation).numpy()

  def pictures(self):
    """{tag: [H, W, ch] image}: inputs over reconstructions, and the first input's traversal of every dimension."""
    params = self.model.encode(self.inputs)
    reconstructed = self.pixels(self.model.latent.sample(params, self.seed))
    geometry = self.model.latent.geometry
    code = self.model.latent.representation(params).numpy()[:1].astype(np.float64)
    positions = traversal.grid_positions(geometry, self.num_values)
    rows = [self.pixels(traversal.traverse(code, j, positions, geometry)[0])
            for j in range(traversal.num_traversal_dimensions(geometry, code.shape[1]))]
    return {RECONSTRUCTIONS_TAG: traversal.grid(np.stack([self.inputs.numpy(), reconstructed])),
            TRAVERSALS_TAG: traversal.grid(np.stack(rows))}

  def write(self, writer, step):
    with writer.as_default(step=step):
      for tag, image in self.pictures().items():
        tf.summary.image(tag, image[None], max_outputs=1)
    writer.flush()


def checkpoint_images(model, data, seed):
  """The CheckpointImages of ``model`` on a few of ``data``'s observations, or None when switched off."""
  settings = image_settings()
  if not settings["enabled"]:
    return None
  inputs = data.sample_observations(settings["num_images"], np.random.RandomState(seed % 2**32))
  return CheckpointImages(model, np.asarray(inputs, np.float32), settings["num_values"], seed)
