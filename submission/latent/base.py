"""The interface every latent space implements.

A model is encoder trunk → latent space → decoder. The latent space owns the encoder heads and everything that
depends on the geometry of the code: how head outputs become posterior parameters, how to draw a
reparameterised sample, the KL to its prior, the representation exported for the metrics, and prior samples.
Samplers take an optional stateless seed (a [2] int tensor): training and the sampled representation pass one so
runs are reproducible and resumable; ``None`` draws from TensorFlow's global generator.

Each latent space declares what it is: ``kind``, its gin name (``@hypersphere``, ...), ``geometry``, where its
codes lie, and ``posterior``, the family of q(z|x) its parameters describe (DIAGONAL_GAUSSIAN: ``mean`` and ``logvar`` of a diagonal Gaussian over
the code, and so on). A model whose objective reads a family's parameters declares that family
(``GaussianEncoderModel.posterior``) and is refused any other latent space when it is built (``check_posterior``).
"""

import keras
import tensorflow as tf

from submission.errors import UserError


def standard_normal(shape, seed=None, dtype=tf.float32):
  """N(0, I) draws, stateless when ``seed`` is given."""
  if seed is None:
    return tf.random.normal(shape, dtype=dtype)
  return tf.random.stateless_normal(shape, seed=seed, dtype=dtype)


def derived_seed(seed, stream):
  """A stateless seed for another random stream of the same step (None stays None)."""
  return None if seed is None else tf.random.experimental.stateless_fold_in(seed, stream)


def split_seed(seed, num):
  """``num`` independent stateless seeds from one (or ``num`` Nones)."""
  if seed is None:
    return [None] * num
  return tf.unstack(tf.random.experimental.stateless_split(seed, num))


# The shapes the codes lie on (what traversals, pictures and the model card go by).
EUCLIDEAN, SPHERE, TORUS = "euclidean", "sphere", "torus"

# The families of q(z|x) the latent spaces' parameters describe.
DIAGONAL_GAUSSIAN = "diagonal Gaussian"       # {"mean", "logvar"} over the code itself
FULL_COVARIANCE_GAUSSIAN = "full-covariance Gaussian"
DIFFUSION = "diffusion on a manifold"
EMBEDDED = "embedded manifold"


def latent_kinds(posterior):
  """The gin names of the latent spaces whose posterior is ``posterior``, sorted."""
  found, pending = set(), [LatentSpace]
  while pending:
    cls = pending.pop()
    pending.extend(cls.__subclasses__())
    if cls.kind and cls.posterior == posterior:
      found.add(cls.kind)
  return sorted(found)


def check_posterior(latent, posterior, model_name):
  """A UserError unless ``latent``'s posterior is ``posterior`` (None accepts any), naming the accepted kinds."""
  if posterior is None or latent.posterior == posterior:
    return
  raise UserError(f"{model_name} needs a latent space with a {posterior} posterior, but {latent.kind} has a "
                  f"{latent.posterior} one; latent_space.factory must name one of "
                  f"{', '.join('@' + kind for kind in latent_kinds(posterior))} or be left unbound")


def resolve_latent_space(space, binding):
  """A LatentSpace from a gin value that is one or a factory returning one (``@hypersphere`` or
  ``@hypersphere()``). ``binding`` names the gin parameter in errors."""
  if not isinstance(space, LatentSpace) and callable(space):
    space = space()
  if not isinstance(space, LatentSpace):
    raise UserError(f"{binding} must name a latent space (or a factory returning one), got {space!r}")
  return space


class LatentSpace(keras.layers.Layer):
  """Base class. ``configure(num_latent)`` creates the heads; ``call(features)`` returns posterior params."""

  kind = None             # the gin name a config uses for this latent space
  posterior = None        # one of the families above
  geometry = EUCLIDEAN    # where the codes lie: EUCLIDEAN, SPHERE (unit-norm codes) or TORUS (unit-norm pairs)

  def configure(self, num_latent):
    raise NotImplementedError

  @property
  def code_size(self):
    """Width of a latent vector as the decoder sees it (and as the representation is exported)."""
    raise NotImplementedError

  def sample(self, params, seed=None):
    raise NotImplementedError

  def kl(self, params):
    """KL(q(z|x) ‖ p(z)) per example, shape [B]."""
    raise NotImplementedError

  def representation(self, params):
    """The deterministic code exported by ``mean_representation``."""
    raise NotImplementedError

  def gaussian_encoder_outputs(self, params):
    """(mean, logvar) for dlib's ``gaussian_encoder`` signature."""
    raise NotImplementedError

  def sample_prior(self, num, seed=None):
    raise NotImplementedError

  def training_params(self, params, seed=None):
    """The posterior parameters the training objective uses; by default those of ``call``, unchanged.

    A latent space whose parameters are random themselves (the L0 gates of ``latent.l0_gate``) draws them here,
    stateless when ``seed`` is given; ``call`` then gives the deterministic version used for export.
    """
    del seed
    return params

  def penalty(self, params):
    """A term the latent space adds to the model's regulariser (e.g. an L0 penalty on gates); 0 by default."""
    del params
    return tf.constant(0.)

  def summaries(self, params):
    """Extra scalars worth logging (e.g. mean log t); a dict of batch means."""
    del params
    return {}
