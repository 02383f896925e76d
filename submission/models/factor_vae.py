"""FactorVAE (Kim & Mnih 2018), dlib's ``factor_vae``.

VAE loss = reconstruction + KL + γ·TC, TC ≈ mean_b (D(z_b)_0 − D(z_b)_1) from a discriminator trained
alternately (same forward pass, its own optimizer) to tell q(z) (column 0) from the product of its marginals,
sampled by permuting each latent column across the batch (column 1):
    discriminator objective = ½ mean log p(z)_0 + ½ mean log p(z_shuffled)_1,   p = clip(softmax(D), 1e-6, 1 − 1e-6).

Step counting, chosen deliberately: dlib 1.5 passes the global step to both optimizers, so every iteration
advances it by 2 and ``model.training_steps = N`` performs only N/2 updates of each network (≈150k for the
study's 300k). By default (``factor_vae.dlib_step_count = True``) this is kept, so a dlib config trains the same
number of updates as the published models and reports the same ``global_step``. With ``False`` one iteration
counts one step.
"""

import gin
import tensorflow as tf

from submission import architectures, optimizers
from submission.latent.base import split_seed
from submission.models.base import GaussianEncoderModel, apply_if_finite, with_loss_scaling

_CLIP = 1e-6


def shuffle_codes(z, seed=None):
  """Permutes each latent dimension independently across the batch."""
  keys = tf.random.uniform(tf.shape(z)) if seed is None else tf.random.stateless_uniform(tf.shape(z), seed)
  permutation = tf.argsort(keys, axis=0)
  return tf.transpose(tf.gather(tf.transpose(z), tf.transpose(permutation), batch_dims=1))


def discriminator_probabilities(logits):
  return tf.clip_by_value(tf.nn.softmax(logits), _CLIP, 1. - _CLIP)


@gin.configurable("factor_vae")
class FactorVAE(GaussianEncoderModel):
  """L_vae = reconstruction + KL + γ·TC; the discriminator maximises its log-likelihood."""

  def __init__(self, gamma=gin.REQUIRED, dlib_step_count=True):
    super().__init__(name="factor_vae")
    self.gamma = gamma
    self.steps_per_iteration = 2 if dlib_step_count else 1

  def _build_extra(self):
    self.discriminator = architectures.discriminator_settings()()
    self.discriminator_optimizer = with_loss_scaling(optimizers.make_discriminator_optimizer())
    self.discriminator(tf.zeros([1, self.latent.code_size]))
    self.discriminator_optimizer.build(self.discriminator.trainable_variables)

  def discriminator_logits(self, z):
    return tf.cast(self.discriminator(z), tf.float32)

  def total_correlation(self, z):
    logits = self.discriminator_logits(z)
    return tf.reduce_mean(logits[:, 0] - logits[:, 1])

  def regularizer(self, kl_loss, params, z_sampled, step):
    return kl_loss + self.gamma * self.total_correlation(z_sampled)

  def discriminator_loss(self, z, seed):
    """−(½ mean log p(z)_0 + ½ mean log p(z_shuffled)_1)."""
    p_joint = discriminator_probabilities(self.discriminator_logits(z))
    p_marginals = discriminator_probabilities(self.discriminator_logits(shuffle_codes(z, seed)))
    return -(0.5 * tf.reduce_mean(tf.math.log(p_joint[:, 0])) + 0.5 * tf.reduce_mean(tf.math.log(p_marginals[:, 1])))

  def forward(self, images, seed, step):
    terms, params, z = super().forward(images, seed, step)
    del terms["elbo"]  # dlib reports no ELBO for FactorVAE: its loss is not one.
    return terms, params, z

  def train_step(self, images, seed, step):
    forward_seed, shuffle_seed = split_seed(seed, 2)
    with tf.GradientTape(persistent=True) as tape:
      terms, _, z = self.forward(images, forward_seed, step)
      discriminator_loss = self.discriminator_loss(z, shuffle_seed)
      scaled_vae_loss = self.optimizer.scale_loss(terms["loss"])
      scaled_discriminator_loss = self.discriminator_optimizer.scale_loss(discriminator_loss)
    vae_variables = self.vae_variables
    discriminator_variables = self.discriminator.trainable_variables
    vae_gradients = tape.gradient(scaled_vae_loss, vae_variables)
    discriminator_gradients = tape.gradient(scaled_discriminator_loss, discriminator_variables)
    del tape
    finite = tf.logical_and(tf.math.is_finite(terms["loss"]), tf.math.is_finite(discriminator_loss))
    apply_if_finite(finite, self.optimizer, vae_gradients, vae_variables)
    apply_if_finite(finite, self.discriminator_optimizer, discriminator_gradients, discriminator_variables)
    terms["discriminator_loss"] = discriminator_loss
    terms["finite"] = finite
    return terms

  def checkpoint_items(self):
    items = super().checkpoint_items()
    items.update(discriminator=self.discriminator, discriminator_optimizer=self.discriminator_optimizer)
    return items
