"""Postprocessing: dlib's ``postprocess_with_gin`` on TF2 — a trained model → its representation function.

    python -m submission.postprocess --model_dir MODEL --output_dir OUT --gin_config FILE [--gin_bindings ...]

Writes ``OUT/tfhub``, a SavedModel with one signature ``representation`` {images} → {default}, and
``OUT/results`` (the model's results tree copied forward plus ``postprocess`` entries), atomically: the whole
``OUT`` appears only when complete.

``postprocess.postprocess_fn`` is ``@mean_representation`` or ``@sampled_representation``; both go through the
model's own latent space (the model exports ``mean_representation`` / ``sampled_representation``), so a
hyperspherical or gated model exports its own kind of code. Unlike dlib, which ignores it, the sampled
representation is seeded by ``postprocess.random_seed``: the exported module carries a random generator
initialised from it, so a freshly loaded module gives the same draws for the same sequence of calls.
``dataset.name = "auto"`` is resolved from the model's card (``model_card.json``, written at export) and recorded
in postprocess.gin (the data itself is not loaded: neither method needs it); the card is copied into ``OUT``.
"""

import os
import sys
import time

import gin
import tensorflow as tf

from submission import cli, layout, model_card, output_lock
from submission.data import named_data
from submission.errors import UserError
from submission.atomic import atomic_directory
from submission.layout import EXPORT_DIR, RESULTS_DIR
from submission.results import check_output_dir, check_saved_model, gin_value, write_results


class Representation(tf.Module):
  """The exported ``representation`` function around a loaded model."""

  def __init__(self, model, transform, observation_shape, random_seed):
    super().__init__(name="representation")
    self.model = model
    self.generator = tf.random.Generator.from_seed(random_seed)
    self.transform = transform
    spec = tf.TensorSpec([None] + list(observation_shape), tf.float32, name="images")
    self.representation = tf.function(self._representation, input_signature=[spec])

  def _representation(self, images):
    return {"default": self.transform(self.model, images, self.generator)}


@gin.configurable("mean_representation", allowlist=[])
def mean_representation():
  """The posterior's location (μ for Gaussians, μ_Z on the sphere, ...)."""
  return lambda model, images, generator: model.mean_representation(images)["default"]


@gin.configurable("sampled_representation", allowlist=[])
def sampled_representation():
  """One draw from the posterior per call, seeded by ``postprocess.random_seed``."""

  def transform(model, images, generator):
    return model.sampled_representation(images, generator.make_seeds(1)[:, 0])["default"]

  return transform


def recorded_dataset(step_dir, step):
  """The data set ``step_dir`` was made from: its model card's, or, in a directory another tool made, the
  ``dataset.name`` of the gin config dlib records for ``step``; None when neither says."""
  card = model_card.read(step_dir)
  if card is not None:
    return card.dataset
  gin_file = layout.step_gin(step_dir, step)
  return gin_value(gin_file, "dataset.name") if os.path.isfile(gin_file) else None


def resolve_auto_dataset(step_dir, step):
  """dlib's ``dataset.name = "auto"``: the data set of the previous step (``recorded_dataset``), bound for this one."""
  if gin.query_parameter("dataset.name") == "auto":
    name = recorded_dataset(step_dir, step)
    if name is None:
      raise UserError(f"dataset.name is 'auto' but {step_dir} records no data set (neither {layout.MODEL_CARD_FILE} "
                      f"nor {os.path.relpath(layout.step_gin(step_dir, step), step_dir)}): the previous step did not "
                      f"finish (re-run it, e.g. training with --resume)")
    with gin.unlock_config():
      gin.bind_parameter("dataset.name", name)
  return named_data.dataset_name()


def observation_shape(loaded_model):
  return loaded_model.signatures["gaussian_encoder"].structured_input_signature[1]["images"].shape[1:]


def postprocess_with_gin(model_dir, output_dir, overwrite=False, gin_config_files=None, gin_bindings=None):
  with output_lock.claim(output_dir), cli.gin_config(gin_config_files, gin_bindings):
    return postprocess(model_dir, output_dir, overwrite)


@gin.configurable("postprocess", denylist=["model_dir", "output_dir", "overwrite"])
def postprocess(model_dir, output_dir, overwrite=False, postprocess_fn=gin.REQUIRED, random_seed=gin.REQUIRED,
                name=""):
  """dlib's ``postprocess`` configurable. ``name`` is only recorded."""
  del name
  start = time.time()
  module_path = os.path.join(model_dir, EXPORT_DIR)
  check_saved_model(module_path, "train the model (again) first (submission.train, --resume re-exports it)")
  check_output_dir(output_dir, overwrite)
  card = model_card.require(model_dir)
  resolve_auto_dataset(model_dir, layout.TRAIN)
  loaded = tf.saved_model.load(module_path)
  module = Representation(loaded, postprocess_fn(), observation_shape(loaded), random_seed)
  with atomic_directory(output_dir) as temporary:
    tf.saved_model.save(module, os.path.join(temporary, EXPORT_DIR),
                        signatures={"representation": module.representation})
    write_results(os.path.join(temporary, RESULTS_DIR), "postprocess",
                  {"elapsed_time": time.time() - start}, os.path.join(model_dir, RESULTS_DIR))
    card.write(temporary)  # what the representation was made from, for evaluation and the cache
  return output_dir


def main(argv=None):
  parser = cli.ArgumentParser(description="Export a trained model's representation (dlib's postprocess).")
  parser.add_argument("--model_dir", required=True, help="a train step's output directory")
  parser.add_argument("--output_dir", required=True)
  cli.add_gin_arguments(parser, "output_dir")
  args = parser.parse_args(argv)
  cli.main_guard(postprocess_with_gin, args.model_dir, args.output_dir, args.overwrite, args.gin_config,
                 cli.gin_bindings(args))


if __name__ == "__main__":
  main(sys.argv[1:])
