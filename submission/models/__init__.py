"""Models, each a GaussianEncoderModel variant registered with gin under dlib's (or its paper's) name.

Importing this package registers every model's configurable. The table of models is gin's registry itself
(``registered_models``): a model added with ``@gin.configurable`` in a module imported here is in it.
"""

import inspect

import gin

from submission.models import annealed_vae, beta_tc_vae, beta_vae, dip_vae, factor_vae  # noqa: F401
from submission.models.base import GaussianEncoderModel  # noqa: F401
from submission.models import deltavae  # noqa: F401
from submission.models import pvae  # noqa: F401
from submission.models import chyvae  # noqa: F401
from submission.models import ervae  # noqa: F401
from submission.models import group_vae, mlvae  # noqa: F401  (weakly supervised: trained on pairs)


def registered_models():
  """{gin name: class} of every model ``model.model`` can name (``@vae()``, ``@group_vae_argmax()``, ...), sorted
  by name: the GaussianEncoderModel classes this package registers with gin, but for the configurables that only
  hold a family's shared settings (``GaussianEncoderModel.holds_family_settings``)."""
  found = {}
  for _, configurable in gin.config._REGISTRY.items():  # pylint: disable=protected-access
    cls = configurable.wrapped
    if (configurable.module.startswith(__name__ + ".") and inspect.isclass(cls)
        and issubclass(cls, GaussianEncoderModel) and not cls.holds_family_settings()):
      found[configurable.name] = cls
  return dict(sorted(found.items()))
