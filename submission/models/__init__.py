"""Models, each a GaussianEncoderModel variant registered with gin under dlib's (or its paper's) name.

Importing this package registers every model's configurable.
"""

from submission.models import annealed_vae, beta_tc_vae, beta_vae, dip_vae, factor_vae  # noqa: F401
from submission.models.base import GaussianEncoderModel  # noqa: F401
from submission.models import deltavae  # noqa: F401
from submission.models import pvae  # noqa: F401
from submission.models import chyvae  # noqa: F401
from submission.models import ervae  # noqa: F401
from submission.models import group_vae, mlvae  # noqa: F401  (weakly supervised: trained on pairs)
