"""Every fact about each metric the project runs, in one table.

Read by the pipeline (``run_local``), batch evaluation, sweeps, the job estimate, the study collector, the run and
study pages and bench/. Free of TensorFlow imports (batch, sweeps and aggregation read it without loading TF); the
metric functions themselves are imported, for gin to know their names, only by ``evaluation.evaluate`` (through
``register_all``).

One row, a ``Metric``, per metric name (``--metrics NAME``, the output directory ``metrics/mean/NAME``):

* ``config``: its metric gin config, either dlib's (``dlib:`` + a path inside the installed disentanglement_lib,
  used unchanged) or the project's (a file under ``evaluation/metrics/configs/``);
* ``configurable``: the gin name its config binds to ``evaluation.evaluation_fn`` (dlib's names unchanged), and
  ``module``, the module that registers it;
* ``headline``: (result key, label) of the numbers a score table shows, first the main one; empty: every numeric
  result;
* ``encoded_images``: the images it encodes, from its bound sample sizes (``p(name)`` is the int bound to
  ``<configurable>.<name>``), read from the function's sampling loop; None: not modelled;
* ``quick``: its bindings in the ``--quick`` preset (about 1/50 of the config's samples: enough for the numbers to
  move, far too few to compare with dlib-size scores);
* ``rank``: scheduling order when metrics run concurrently, longest first (measured with bench/metric_suite.py:
  DCI's single-threaded gradient boosting outlasts the rest together; BetaVAE builds the representation cache);
* ``default``: among the five the pipeline scores when ``--metrics`` is not given (dlib's unsupervised study).

Adding a metric: its module (a gin configurable with dlib's signature, see ``mig_sup.py``), its config under
``configs/``, and one row here.
"""

import dataclasses
import os
from typing import Callable, Optional, Tuple

from submission.errors import UserError

DLIB = "dlib:"
DLIB_STUDY = DLIB + "config/unsupervised_study_v1/metric_configs/"
CONFIG_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "configs")
UNRANKED = 100


@dataclasses.dataclass(frozen=True)
class Metric:
  name: str
  config: str
  configurable: str
  module: str
  headline: Tuple[Tuple[str, str], ...] = ()
  encoded_images: Optional[Callable] = None
  quick: Tuple[str, ...] = ()
  rank: int = UNRANKED
  default: bool = False

  @property
  def from_dlib(self):
    return self.config.startswith(DLIB)


def _sampled(parameter):
  return lambda p: p(parameter)


def _train_and_test(p):
  return p("num_train") + p("num_test")


_DLIB_METRICS = "disentanglement_lib.evaluation.metrics."
METRICS = tuple([
    Metric("beta_vae_sklearn", DLIB_STUDY + "beta_vae_sklearn.gin", "beta_vae_sklearn", _DLIB_METRICS + "beta_vae",
           (("eval_accuracy", "BetaVAE"),),
           lambda p: 2 * p("batch_size") * (p("num_train") + p("num_eval")),  # a pair of images per point
           ("beta_vae_sklearn.num_train = 300", "beta_vae_sklearn.num_eval = 150"), rank=2, default=True),
    Metric("factor_vae_metric", DLIB_STUDY + "factor_vae_metric.gin", "factor_vae_score",
           _DLIB_METRICS + "factor_vae", (("eval_accuracy", "FactorVAE"),),
           lambda p: p("batch_size") * (p("num_train") + p("num_eval")) + p("num_variance_estimate"),
           ("factor_vae_score.num_variance_estimate = 1000", "factor_vae_score.num_train = 300",
            "factor_vae_score.num_eval = 150"), rank=3, default=True),
    Metric("mig", DLIB_STUDY + "mig.gin", "mig", _DLIB_METRICS + "mig", (("discrete_mig", "MIG"),),
           _sampled("num_train"), ("mig.num_train = 1000",), default=True),
    Metric("dci", DLIB_STUDY + "dci.gin", "dci", _DLIB_METRICS + "dci",
           (("disentanglement", "DCI"), ("completeness", "DCI C"), ("informativeness_test", "DCI I")),
           _train_and_test, ("dci.num_train = 1000", "dci.num_test = 500"), rank=0, default=True),
    Metric("sap_score", DLIB_STUDY + "sap_score.gin", "sap_score", _DLIB_METRICS + "sap_score",
           (("SAP_score", "SAP"),), _train_and_test, ("sap_score.num_train = 1000", "sap_score.num_test = 500"),
           default=True),
    Metric("modularity_explicitness", DLIB_STUDY + "modularity_explicitness.gin", "modularity_explicitness",
           _DLIB_METRICS + "modularity_explicitness",
           (("modularity_score", "Modularity"), ("explicitness_score_test", "Explicitness")), _train_and_test,
           ("modularity_explicitness.num_train = 1000", "modularity_explicitness.num_test = 500")),
    Metric("unsupervised", DLIB_STUDY + "unsupervised.gin", "unsupervised_metrics",
           _DLIB_METRICS + "unsupervised_metrics",
           (("gaussian_total_correlation", "TC (mean rep.)"), ("mutual_info_score", "MI (mean rep.)")),
           _sampled("num_train"), ("unsupervised_metrics.num_train = 1000",)),
    Metric("downstream_task_boosted_trees", DLIB_STUDY + "downstream_task_boosted_trees.gin", "downstream_task",
           _DLIB_METRICS + "downstream_task"),
    Metric("downstream_task_logistic_regression", DLIB_STUDY + "downstream_task_logistic_regression.gin",
           "downstream_task", _DLIB_METRICS + "downstream_task"),
    # DCI-ES's 60 forests on dSprites (12 depths x 5 factors, 100 trees each) are of the order of DCI's boosting
    # (not measured yet at dlib's sizes): started right after it.
    Metric("dci_es", "dci_es.gin", "dci_es", "evaluation.metrics.dci_es",
           (("disentanglement", "DCI-ES D"), ("completeness", "DCI-ES C"), ("informativeness_test", "DCI-ES I"),
            ("explicitness", "DCI-ES E"), ("size", "DCI-ES S")),
           _train_and_test, ("dci_es.num_train = 1000", "dci_es.num_test = 500"), rank=1),
    Metric("infomec", "infomec.gin", "infomec", "evaluation.metrics.infomec",
           (("infom", "InfoM"), ("infoe", "InfoE"), ("infoc", "InfoC")), _sampled("num_train"),
           ("infomec.num_train = 1000",)),
    Metric("mig_sup", "mig_sup.gin", "mig_sup", "evaluation.metrics.mig_sup", (("mig_sup", "MIG-sup"),),
           _sampled("num_train"), ("mig_sup.num_train = 1000",)),
    Metric("dcimig", "dcimig.gin", "dcimig", "evaluation.metrics.dcimig", (("dcimig", "DCIMIG"),),
           _sampled("num_train"), ("dcimig.num_train = 1000",)),
    # IRS with dlib's sample config (the challenge's fifth metric; the NeurIPS 2019 kit shipped a copy of it).
    Metric("irs", DLIB + "config/sample/irs/irs.gin", "irs", _DLIB_METRICS + "irs", (("IRS", "IRS"),),
           _sampled("num_train"), ("irs.num_train = 1000",)),
    # dlib's other metric functions, for configs given by file (--metric_configs): registered, no config here.
    *(Metric(module, "", module, _DLIB_METRICS + module)
      for module in ("fairness", "reduced_downstream_task", "strong_downstream_task", "unified_scores")),
])
BY_NAME = {metric.name: metric for metric in METRICS}
DEFAULT_METRICS = tuple(metric.name for metric in METRICS if metric.default)
QUICK_METRIC_BINDINGS = tuple(binding for metric in METRICS for binding in metric.quick)


def metric(name):
  """The table's row of ``name``; a UserError naming the known ones otherwise."""
  if name not in BY_NAME or not BY_NAME[name].config:
    known = ", ".join(m.name for m in METRICS if m.config)
    raise UserError(f"unknown metric {name!r}; known: {known} (or give a metric gin file)")
  return BY_NAME[name]


def metric_config(name):
  """The metric config file of ``name``: dlib's installed one or the project's."""
  row = metric(name)
  if row.from_dlib:
    from disentanglement_lib.utils import resources  # pylint: disable=import-outside-toplevel
    return resources.get_file(row.config[len(DLIB):])
  return os.path.join(CONFIG_DIR, row.config)


def config_label(name):
  """Where ``name``'s config comes from, for pages: ``dlib: .../mig.gin`` or ``evaluation/metrics/configs/...``."""
  row = metric(name)
  return row.config if row.from_dlib else f"evaluation/metrics/configs/{row.config}"


def longest_first(name):
  """Sort key: the table's ranks (lowest first), then every other metric (a stable sort keeps their order)."""
  return BY_NAME[name].rank if name in BY_NAME else UNRANKED


def headline_keys(name, numeric_keys):
  """The keys a score table shows for ``name``: its headline keys, else every one of ``numeric_keys`` (in their
  order) but ``elapsed_time``."""
  row = BY_NAME.get(name)
  if row is not None and row.headline:
    return [key for key, _ in row.headline]
  return [key for key in numeric_keys if key != "elapsed_time"]


def headline(name, values):
  """{key: value} of ``name``'s headline numbers among its results ``values``."""
  keys = headline_keys(name, [k for k, v in values.items() if isinstance(v, (int, float))])
  return {key: values[key] for key in keys if key in values}


def label(name, key):
  """The short label of one headline number (``DCI-ES E``), else ``name.key``."""
  return dict(BY_NAME[name].headline).get(key, f"{name}.{key}") if name in BY_NAME else f"{name}.{key}"


def encoded_images(configurable, parameter):
  """How many images the metric configurable ``configurable`` encodes, with ``parameter(name)`` giving its bound
  sample sizes; None for a metric not modelled or a size ``parameter`` cannot give (KeyError or ValueError)."""
  rows = [m for m in METRICS if m.configurable == configurable and m.encoded_images is not None]
  if not rows:
    return None
  try:
    return int(rows[0].encoded_images(lambda name: int(parameter(name))))
  except (KeyError, ValueError, TypeError):
    return None


def register_all():
  """Imports every metric's module, so that gin knows each configurable (as dlib's evaluate.py does for its own)."""
  import importlib  # pylint: disable=import-outside-toplevel
  for module in sorted({m.module for m in METRICS}):
    importlib.import_module(module)
