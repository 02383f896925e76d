"""Exports a trained model as a TF2 SavedModel at ``model_dir/tfhub`` with dlib's signatures and keys.

dlib's three signatures, each with a leading None batch dimension and float32 inputs:
    gaussian_encoder  {images}         → {mean, logvar}
    decoder           {latent_vectors} → {images}  (logits)
    reconstructions   {images}         → {images}  (logits of decode(sample(q(z|x))), stochastic as in dlib)
and the project's own, used by postprocessing so that every representation goes through the model's own latent
space (not every model is Gaussian):
    mean_representation     {images}                 → {default}
    sampled_representation  {images, seed: int64[2]} → {default}   (stateless: the same seed, the same draw)
    prior_latents           {num: int32, seed}       → {latent_vectors}
Loading: ``tf.saved_model.load(path).signatures["gaussian_encoder"](images=x)``.
"""

import tensorflow as tf

from submission.atomic import atomic_directory

SEED_SPEC = tf.TensorSpec([2], tf.int64, name="seed")
# The signatures' graphs beside the weights: 0.1-0.3 MB measured for the models here (dlib's conv architecture
# included), so 1 MB covers them.
GRAPH_BYTES = 10**6


class ExportedModel(tf.Module):
  """The exported surface of a GaussianEncoderModel."""

  def __init__(self, model):
    super().__init__(name="exported_model")
    self.encoder = model.encoder
    self.latent = model.latent
    self.decoder_network = model.decoder
    self.decode = model.decode
    images = tf.TensorSpec([None] + list(model.observation_shape), tf.float32, name="images")
    latents = tf.TensorSpec([None, model.latent.code_size], tf.float32, name="latent_vectors")
    self.gaussian_encoder = tf.function(self._gaussian_encoder, input_signature=[images])
    self.decoder = tf.function(self._decoder, input_signature=[latents])
    self.reconstructions = tf.function(self._reconstructions, input_signature=[images])
    self.mean_representation = tf.function(self._mean_representation, input_signature=[images])
    self.sampled_representation = tf.function(self._sampled_representation, input_signature=[images, SEED_SPEC])
    self.prior_latents = tf.function(
        self._prior_latents, input_signature=[tf.TensorSpec([], tf.int32, name="num"), SEED_SPEC])

  def _params(self, images):
    return self.latent(self.encoder(images))

  def _gaussian_encoder(self, images):
    mean, logvar = self.latent.gaussian_encoder_outputs(self._params(images))
    return {"mean": mean, "logvar": logvar}

  def _decoder(self, latent_vectors):
    return {"images": self.decode(latent_vectors)}

  def _reconstructions(self, images):
    return {"images": self.decode(self.latent.sample(self._params(images)))}

  def _mean_representation(self, images):
    return {"default": self.latent.representation(self._params(images))}

  def _sampled_representation(self, images, seed):
    return {"default": self.latent.sample(self._params(images), seed)}

  def _prior_latents(self, num, seed):
    return {"latent_vectors": self.latent.sample_prior(num, seed)}

  def signatures(self):
    return {name: getattr(self, name) for name in (
        "gaussian_encoder", "decoder", "reconstructions", "mean_representation", "sampled_representation",
        "prior_latents")}


def saved_model_bytes(model):
  """About the space the SavedModel of ``model`` takes: the weights of its encoder, latent space and decoder (not
  the optimizers' state, which checkpoints hold) plus its graphs. A full disk's message says it."""
  found = {}
  for part in (model.encoder, model.latent, model.decoder):
    for variable in getattr(part, "weights", None) or getattr(part, "variables", ()):
      found[id(variable)] = variable
  return GRAPH_BYTES + sum(int(v.shape.num_elements()) * tf.as_dtype(v.dtype).size for v in found.values())


def export_model(model, export_path):
  """Writes the SavedModel atomically (a temporary directory renamed into place)."""
  module = ExportedModel(model)
  with atomic_directory(export_path) as temporary:
    tf.saved_model.save(module, temporary, signatures=module.signatures())
  return export_path
