"""GaussianEncoderModel: the shared VAE objective, training step and export surface of every model.

A model is encoder trunk → latent space → decoder (see ``submission.latent``). The base computes, like dlib's
``BaseVAE.model_fn``:

    reconstruction_loss = mean_b ℓ(x_b, dec(z_b)),   z_b ~ q(z | x_b)
    kl_loss             = mean_b KL(q(z | x_b) ‖ p(z))
    regularizer         = self.regularizer(kl_loss, params, z, step)      (each model's own)
                          + self.latent.penalty(params)                    (0 but for gated latent spaces)
    loss                = reconstruction_loss + regularizer
    elbo                = −(reconstruction_loss + kl_loss)                 (dlib reports the negative ELBO's negative)

A subclass states only its regulariser (and, where it needs one, its latent space or an extra network).

Mixed precision (``train_loop.mixed_precision``, off by default): networks built under Keras' ``mixed_float16``
policy compute in float16, while the latent space (heads, sampling, KL) stays float32 and decoder logits are cast
to float32 before the loss; optimizers are wrapped in a LossScaleOptimizer.
"""

import contextlib

import gin
import keras
import tensorflow as tf

from submission import architectures, losses, optimizers
from submission.data.batches import OBSERVATIONS
from submission.latent.base import check_posterior, resolve_latent_space
from submission.latent.gaussian import gaussian


@gin.configurable("latent_space")
def gaussian_latent_space(factory=None):
  """The Gaussian models' latent space: dlib's unless gin names another Gaussian one, e.g.
  ``latent_space.factory = @l0_gated_gaussian`` puts PVAE's L0 gates on ``vae``, ``beta_tc_vae``, ...
  (``@name`` or ``@name()``)."""
  return resolve_latent_space(factory or gaussian, "latent_space.factory")


class GaussianEncoderModel(tf.Module):
  """Base of all models. Construct with hyper-parameters (gin), then ``build(observation_shape)``."""

  # How far one training iteration advances the global step (FactorVAE may count two, as dlib does).
  steps_per_iteration = 1
  # The family of q(z|x) whose parameters the objective reads (``submission.latent.base``); None: any latent space.
  posterior = None
  # What one training batch is (``submission.data.batches``): single observations, or pairs for the weak models.
  batches = OBSERVATIONS

  @classmethod
  def holds_family_settings(cls):
    """True for a registered class that only holds settings a family of models shares (``group_vae.beta``): it is
    no model of its own and cannot be trained."""
    return False

  def make_latent_space(self):
    """The latent space; ``latent_space`` (gin) unless a model says otherwise."""
    return gaussian_latent_space()

  def build(self, observation_shape):
    """Creates networks and optimizers; called once the data's shape is known."""
    self.observation_shape = list(observation_shape)
    self.num_latent, encoder_fn = architectures.encoder_settings()
    self.encoder = encoder_fn()
    with dtype_policy("float32"):
      self.latent = self.make_latent_space()
      check_posterior(self.latent, self.posterior, self.name)
      self.latent.configure(self.num_latent)
    self.decoder = architectures.decoder_settings()(self.observation_shape)
    self.optimizer = with_loss_scaling(optimizers.make_vae_optimizer())
    self._build_extra()
    images = tf.zeros([1] + self.observation_shape)
    params = self.encode(images)
    self.decode(self.latent.sample(params))
    self.optimizer.build(self.vae_variables)
    return self

  def _build_extra(self):
    """Hook for models with extra networks or optimizers."""

  @property
  def vae_variables(self):
    return self.encoder.trainable_variables + self.latent.trainable_variables + self.decoder.trainable_variables

  # --- forward pieces -------------------------------------------------------------------------------------
  def encode(self, images):
    """Posterior parameters for a batch of images."""
    return self.latent(self.encoder(images))

  def decode(self, latent_vectors):
    """Decoder logits, shape [B] + observation_shape (float32 also under mixed precision)."""
    return tf.cast(self.decoder(latent_vectors), tf.float32)

  def gaussian_encoder(self, images):
    """dlib's (z_mean, z_logvar)."""
    return self.latent.gaussian_encoder_outputs(self.encode(images))

  def regularizer(self, kl_loss, params, z_sampled, step):
    """The model's regulariser (a scalar); ``step`` is the global step as float32."""
    raise NotImplementedError

  # --- objective ------------------------------------------------------------------------------------------
  def forward(self, images, seed, step):
    """One pass over a batch (``batches``): the loss terms (batch means) and the pieces later terms may need."""
    return self.objective(images, self.latent.training_params(self.encode(images), seed), seed, step)

  def objective(self, images, params, seed, step):
    """The loss terms of reconstructing ``images`` from codes drawn from the posterior ``params``."""
    z = self.latent.sample(params, seed)
    reconstruction_loss = tf.reduce_mean(losses.make_reconstruction_loss(images, self.decode(z)))
    kl_loss, regularizer = self.kl_and_regularizer(params, z, seed, step)
    regularizer += self.latent.penalty(params)
    terms = {
        "reconstruction_loss": reconstruction_loss,
        "elbo": -(reconstruction_loss + kl_loss),
        "regularizer": regularizer,
        "kl_loss": kl_loss,
        "loss": reconstruction_loss + regularizer,
    }
    terms.update(self.latent.summaries(params))
    return terms, params, z

  def kl_and_regularizer(self, params, z_sampled, seed, step):
    """(kl_loss, regularizer): the batch-mean KL to the prior and the model's regulariser of it."""
    del seed
    kl_loss = tf.reduce_mean(self.latent.kl(params))
    return kl_loss, self.regularizer(kl_loss, params, z_sampled, step)

  def evaluation_terms(self, images, seed, step):
    """The scalars averaged over the evaluation batches (of ``batches``) after training (dlib's EVAL metrics)."""
    return self.forward(images, seed, step)[0]

  def train_step(self, images, seed, step):
    """One update on a batch (``batches``). Returns the loss terms and ``finite``; a non-finite loss leaves every variable unchanged."""
    with tf.GradientTape() as tape:
      terms, _, _ = self.forward(images, seed, step)
      scaled_loss = self.optimizer.scale_loss(terms["loss"])
    variables = self.vae_variables
    gradients = tape.gradient(scaled_loss, variables)
    finite = tf.math.is_finite(terms["loss"])
    apply_if_finite(finite, self.optimizer, gradients, variables)
    terms["finite"] = finite
    return terms

  def checkpoint_items(self):
    """Everything a checkpoint must hold to resume training exactly."""
    return {"encoder": self.encoder, "latent": self.latent, "decoder": self.decoder, "optimizer": self.optimizer}


@contextlib.contextmanager
def dtype_policy(name):
  """Keras layers created inside use the dtype policy ``name`` ("float32", "mixed_float16"); the global policy is
  restored afterwards."""
  previous = keras.mixed_precision.dtype_policy()
  keras.mixed_precision.set_dtype_policy(name)
  try:
    yield
  finally:
    keras.mixed_precision.set_dtype_policy(previous)


def with_loss_scaling(optimizer):
  """Wraps the optimizer in a LossScaleOptimizer under mixed precision (float16 gradients would underflow)."""
  if keras.mixed_precision.dtype_policy().compute_dtype == "float16":
    return keras.optimizers.LossScaleOptimizer(optimizer)
  return optimizer


def apply_if_finite(finite, optimizer, gradients, variables):
  """Applies the update only when the loss was finite, so a NaN never reaches the weights.

  The update is compiled with XLA, which fuses an optimizer's handful of element-wise ops per variable into a few
  kernels (Adam's update of the conv β-VAE's 26 variables takes half the time on CPU, bench/train_profile.py).
  Only the update: XLA runs the networks' convolutions slower than oneDNN does on CPU (the whole step compiled
  took 2.7× as long).
  """

  @tf.function(jit_compile=True)
  def update(gradients):
    optimizer.apply_gradients(zip(gradients, variables))

  def apply():
    update(gradients)
    return tf.constant(True)

  tf.cond(finite, apply, lambda: tf.constant(False))
