"""dlib's unsupervised_study_v1 as this project scores it: its metric and postprocess configs, the five metrics the
pipeline runs by default and each metric's headline numbers.

Free of TensorFlow imports, so that batch evaluation, sweeps and aggregation can use it without loading TF.
"""

import os

from disentanglement_lib.utils import resources
from submission.errors import UserError

DEFAULT_METRICS = ("beta_vae_sklearn", "factor_vae_metric", "mig", "dci", "sap_score")
# Started first when metrics run concurrently, longest first (measured with bench/metric_suite.py: DCI's
# single-threaded gradient boosting outlasts the rest together; BetaVAE builds the representation cache).
LONGEST_METRICS = ("dci", "beta_vae_sklearn", "factor_vae_metric")


def longest_first(metric):
  """Sort key: LONGEST_METRICS in their order, then every other metric (a stable sort keeps their order)."""
  return LONGEST_METRICS.index(metric) if metric in LONGEST_METRICS else len(LONGEST_METRICS)
METRIC_CONFIG_DIR = "config/unsupervised_study_v1/metric_configs"
POSTPROCESS_CONFIG = "config/unsupervised_study_v1/postprocess_configs/mean.gin"
# Keys of each metric's headline numbers, as dlib's functions return them.
HEADLINE_KEYS = {
    "beta_vae_sklearn": ("eval_accuracy",),
    "factor_vae_metric": ("eval_accuracy",),
    "mig": ("discrete_mig",),
    "dci": ("disentanglement", "completeness", "informativeness_test"),
    "sap_score": ("SAP_score",),
    "modularity_explicitness": ("modularity_score", "explicitness_score_test"),
    "unsupervised": ("gaussian_total_correlation", "mutual_info_score"),
}


# dlib metric configurable → the images it encodes, from its sample-size parameters (read from each function's
# sampling loop; ``p(name)`` is the int bound to ``<configurable>.<name>``).
_ENCODED_IMAGES = {
    "beta_vae_sklearn": lambda p: 2 * p("batch_size") * (p("num_train") + p("num_eval")),  # pairs per point
    "factor_vae_score": lambda p: p("batch_size") * (p("num_train") + p("num_eval")) + p("num_variance_estimate"),
    "mig": lambda p: p("num_train"),
    "dci": lambda p: p("num_train") + p("num_test"),
    "sap_score": lambda p: p("num_train") + p("num_test"),
    "modularity_explicitness": lambda p: p("num_train") + p("num_test"),
    "irs": lambda p: p("num_train"),
    "unsupervised_metrics": lambda p: p("num_train"),
}


def encoded_images(function, parameter):
  """How many images the dlib metric configurable ``function`` encodes, with ``parameter(name)`` giving its bound
  sample sizes; None for a metric not listed or a size ``parameter`` cannot give (KeyError or ValueError)."""
  if function not in _ENCODED_IMAGES:
    return None
  try:
    return int(_ENCODED_IMAGES[function](lambda name: int(parameter(name))))
  except (KeyError, ValueError, TypeError):
    return None


def metric_config(metric):
  """The installed dlib's ``metric_configs/<metric>.gin``; a UserError naming the known ones otherwise."""
  path = resources.get_file(os.path.join(METRIC_CONFIG_DIR, metric + ".gin"))
  if not os.path.exists(path):
    known = sorted(f[:-4] for f in os.listdir(os.path.dirname(path)) if f.endswith(".gin"))
    raise UserError(f"unknown metric {metric!r}; dlib's unsupervised_study_v1 has: {', '.join(known)}")
  return path


def headline_keys(metric, numeric_keys):
  """The keys a score table shows for ``metric``: its HEADLINE_KEYS, else every one of ``numeric_keys`` (in their
  order) but ``elapsed_time``."""
  return HEADLINE_KEYS.get(metric) or [key for key in numeric_keys if key != "elapsed_time"]


def headline(metric, values):
  """{key: value} of ``metric``'s headline numbers among its results ``values``."""
  keys = headline_keys(metric, [k for k, v in values.items() if isinstance(v, (int, float))])
  return {key: values[key] for key in keys if key in values}
