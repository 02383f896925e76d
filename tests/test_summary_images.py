"""TensorBoard images at each checkpoint: reconstructions and a traversal grid beside the scalars."""

import io
import os

import gin
import numpy as np
from PIL import Image

from conftest import FAST_ARCHITECTURE, REPOSITORY_ROOT, TINY_BINDINGS

IMAGE, PAD, NUM_LATENT = 64, 2, 4  # dummy_data's 64×64 images, the grid's padding, FAST_ARCHITECTURE's code size


def logged_images(event_dir):
  """{(tag, step): PIL image} of every image summary in the run's event files."""
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  from submission.training_curves import read_events  # pylint: disable=import-outside-toplevel
  images = {}
  for name in sorted(os.listdir(event_dir)):
    if name.startswith("events.out.tfevents"):
      for event in read_events(os.path.join(event_dir, name)):
        for value in event.summary.value:
          if value.metadata.plugin_data.plugin_name == "images":
            encoded = tf.make_ndarray(value.tensor)[2]  # [width, height, png]
            images[(value.tag, event.step)] = Image.open(io.BytesIO(encoded))
  return images


def test_each_checkpoint_writes_reconstructions_and_a_traversal_grid(tmp_path):
  from submission import summary_images, train  # pylint: disable=import-outside-toplevel
  model_dir = str(tmp_path / "model")
  train.train_with_gin(model_dir, gin_config_files=[os.path.join(REPOSITORY_ROOT, "gin_configs", "beta_vae.gin")],
                       gin_bindings=TINY_BINDINGS + FAST_ARCHITECTURE + ["checkpoint_images.num_images = 3",
                                                                         "checkpoint_images.num_values = 5"])
  images = logged_images(os.path.join(model_dir, "tf_checkpoint"))
  assert sorted(images) == [(tag, step) for tag in (summary_images.RECONSTRUCTIONS_TAG, summary_images.TRAVERSALS_TAG)
                            for step in (3, 6)]  # every 3 steps, as checkpoints
  for step in (3, 6):
    reconstructions = images[(summary_images.RECONSTRUCTIONS_TAG, step)]
    assert reconstructions.size == (3 * IMAGE + 2 * PAD, 2 * IMAGE + PAD)    # 3 inputs over their reconstructions
    traversals = images[(summary_images.TRAVERSALS_TAG, step)]
    assert traversals.size == (5 * IMAGE + 4 * PAD, NUM_LATENT * IMAGE + (NUM_LATENT - 1) * PAD)  # values × dims
  # The same inputs at every checkpoint; the model (so the reconstructions) changes between them.
  first, last = (np.asarray(images[(summary_images.RECONSTRUCTIONS_TAG, s)]) for s in (3, 6))
  assert np.array_equal(first[:IMAGE], last[:IMAGE]) and not np.array_equal(first[IMAGE:], last[IMAGE:])


def test_checkpoint_images_can_be_switched_off():
  from submission import summary_images  # pylint: disable=import-outside-toplevel
  gin.parse_config("checkpoint_images.enabled = False")
  assert summary_images.checkpoint_images(model=None, data=None, seed=0) is None
