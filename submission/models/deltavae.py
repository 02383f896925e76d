"""ΔVAE (diffusion VAE) with capacity annealing: the NeurIPS 2019 challenge submission of Pérez Rey.

Objective per data point (Pérez Rey 2019, eq. 2, minimised here as a loss):

    L(x) = E_{z ~ q(z|x)}[−log p(x | z)] + β·|KL(q(z | x) ‖ U(S^d)) − C(step)|,
    C(step) = C_min + (C_max − C_min)·min(1, step / capacity_steps),

with q(z | x) the heat kernel on S^d at (μ_Z(x), t(x)), sampled by an L-step projected random walk and with the
closed-form small-t KL of the paper's eq. 3 (see ``submission.latent.diffusion``). The loss is averaged over the batch.

Choices (``docs/models/deltavae.md`` §3 and §7):
* |KL − C| is taken per example, then averaged, as eq. 2 is written per data point (the authors' code also puts
  |KL − C| in the per-sample loss). dlib's AnnealedVAE instead takes |mean KL − C|. For the sphere the KL depends
  only on each example's log t.
* β weights only the capacity term (the paper's table calls it the "strength of the capacity annealing"). With
  ``capacity=False`` or β = 0 the objective is the plain negative ELBO, reconstruction + KL (the ΔVAE paper's
  objective and the authors' code default), so β = 0 never switches the KL off.
* The paper says C rises linearly "each epoch" from C_min to C_max; the number of steps is not published. The
  default ``capacity_steps = 100000`` is dlib's AnnealedVAE ``iteration_threshold`` in the unsupervised study, whose
  capacity-annealing settings the paper cites (Locatello et al.). C grows per step (not per epoch) and stays at
  C_max afterwards.
* The KL has a floor set by the log-t bound: KL ≥ KL(log_t_max) (≈ 13.99 nats for d = 10 and log t ≤ −5). While
  C is below that floor, |KL − C| = KL − C, whose gradient is the plain KL's.
"""

import gin
import tensorflow as tf

from submission.errors import UserError
from submission.latent import diffusion
from submission.latent.base import DIFFUSION, resolve_latent_space
from submission.models.base import GaussianEncoderModel


def capacity_schedule(step, c_min, c_max, capacity_steps):
  """C(step) = c_min + (c_max − c_min)·clip(step / capacity_steps, 0, 1); C = c_max when capacity_steps <= 0."""
  step = tf.cast(step, tf.float32)
  if capacity_steps <= 0:
    return tf.fill(tf.shape(step), float(c_max))
  fraction = tf.clip_by_value(step / float(capacity_steps), 0., 1.)
  return float(c_min) + (float(c_max) - float(c_min)) * fraction


@gin.configurable("deltavae")
class DeltaVAE(GaussianEncoderModel):
  """L = reconstruction + β·|KL − C(step)|, or reconstruction + KL when capacity is off or β = 0.

  ``latent_space``: a diffusion latent space instance or a callable returning one (gin: ``@hypersphere`` or
  ``@torus``, optionally with ``()``); default the hypersphere with its ``hypersphere.*`` bindings.
  """

  posterior = DIFFUSION

  def __init__(self, latent_space=None, beta=1.0, c_min=0., c_max=15., capacity_steps=100000, capacity=True):
    super().__init__(name="deltavae")
    if beta < 0:
      raise UserError(f"deltavae.beta must be >= 0, got {beta}")
    self._latent_space = latent_space
    self.beta = float(beta)
    self.c_min = float(c_min)
    self.c_max = float(c_max)
    self.capacity_steps = capacity_steps
    self.capacity = bool(capacity)

  @property
  def uses_capacity(self):
    return self.capacity and self.beta > 0

  def make_latent_space(self):
    return resolve_latent_space(self._latent_space or diffusion.hypersphere, "deltavae.latent_space")

  def capacity_at(self, step):
    return capacity_schedule(step, self.c_min, self.c_max, self.capacity_steps)

  def regularizer(self, kl_loss, params, z_sampled, step):
    if not self.uses_capacity:
      return kl_loss
    kl_per_example = self.latent.kl(params)
    return self.beta * tf.reduce_mean(tf.abs(kl_per_example - self.capacity_at(step)))

  def forward(self, images, seed, step):
    terms, params, z = super().forward(images, seed, step)
    if self.uses_capacity:
      terms["capacity"] = self.capacity_at(step)
    return terms, params, z
