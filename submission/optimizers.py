"""Optimizers with dlib's gin names and TensorFlow 1's argument names, built on Keras 3 optimizers.

dlib's configs bind ``vae_optimizer.optimizer_fn = @vae/AdamOptimizer`` with ``vae/AdamOptimizer.beta1 = 0.9``
etc. (``tf.compat.v1.train.AdamOptimizer``'s names). Keras calls them ``beta_1``/``beta_2``; the update rule
is the same (TF1's ε is added to √v̂ after bias correction of the step size, as in Keras).
"""

import gin
import keras

from submission import cli


def as_rate(learning_rate):
  """Keras refuses an integer rate (``learning_rate = 30`` in gin); it means the same as 30.0. A number must be
  positive and finite (a schedule passes as it is)."""
  if isinstance(learning_rate, keras.optimizers.schedules.LearningRateSchedule):
    return learning_rate
  return float(cli.check_positive_number("a learning rate", learning_rate))


@gin.configurable("AdamOptimizer")
def adam_optimizer(learning_rate=0.001, beta1=0.9, beta2=0.999, epsilon=1e-8, use_locking=False, name="Adam"):
  del use_locking  # TF1 locking has no meaning for Keras optimizers.
  return keras.optimizers.Adam(learning_rate=as_rate(learning_rate), beta_1=beta1, beta_2=beta2, epsilon=epsilon,
                               name=name)


@gin.configurable("GradientDescentOptimizer")
def gradient_descent_optimizer(learning_rate=gin.REQUIRED, use_locking=False, name="GradientDescent"):
  del use_locking
  return keras.optimizers.SGD(learning_rate=as_rate(learning_rate), name=name)


@gin.configurable("MomentumOptimizer")
def momentum_optimizer(learning_rate=gin.REQUIRED, momentum=gin.REQUIRED, use_locking=False, name="Momentum",
                       use_nesterov=False):
  del use_locking
  return keras.optimizers.SGD(learning_rate=as_rate(learning_rate), momentum=momentum, nesterov=use_nesterov,
                              name=name)


@gin.configurable("RMSPropOptimizer")
def rmsprop_optimizer(learning_rate=gin.REQUIRED, decay=0.9, momentum=0.0, epsilon=1e-10, use_locking=False,
                      centered=False, name="RMSProp"):
  del use_locking
  return keras.optimizers.RMSprop(learning_rate=as_rate(learning_rate), rho=decay, momentum=momentum, epsilon=epsilon,
                                  centered=centered, name=name)


@gin.configurable("exponential_decay")
def exponential_decay(learning_rate=gin.REQUIRED, decay_steps=gin.REQUIRED, decay_rate=gin.REQUIRED,
                      staircase=False):
  """TF1's ``exponential_decay`` as a Keras schedule of the optimizer's own update count.

  dlib evaluates its schedules at the global step; the two agree except for FactorVAE with dlib's step count
  (two global steps per update), where ``decay_steps`` counts updates here, i.e. half dlib's global steps.
  """
  return keras.optimizers.schedules.ExponentialDecay(learning_rate, decay_steps, decay_rate, staircase=staircase)


def _make(optimizer_fn, learning_rate):
  if learning_rate is None:
    return optimizer_fn()
  if callable(learning_rate):
    learning_rate = learning_rate()
  return optimizer_fn(learning_rate=learning_rate)


@gin.configurable("vae_optimizer")
def make_vae_optimizer(optimizer_fn=gin.REQUIRED, learning_rate=None):
  """dlib's ``vae_optimizer``: ``learning_rate`` (a value or a schedule) overrides the optimizer's own."""
  return _make(optimizer_fn, learning_rate)


@gin.configurable("discriminator_optimizer")
def make_discriminator_optimizer(optimizer_fn=gin.REQUIRED, learning_rate=None):
  """dlib's ``discriminator_optimizer`` (FactorVAE)."""
  return _make(optimizer_fn, learning_rate)
