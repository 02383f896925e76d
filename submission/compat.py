"""Every adaptation disentanglement_lib 1.5 needs on TF 2.21, gin-config 0.5 and NumPy 2 — in one place.

It loads with the package: ``import submission`` (or any ``submission.*`` module) applies it, so dlib's metric
functions import in a notebook with no import-order ritual. It is idempotent and imports neither TensorFlow nor
dlib itself: adaptations 3 and 4 patch ``disentanglement_lib.utils.results`` (which imports TensorFlow) the moment
that module is first imported. Each adaptation below names the dlib code it serves and has a test in
tests/test_compat.py that fails without it.

1. ``import gin.tf`` (done by every dlib metric module) defines a hook subclassing ``tf.estimator``, which
   TF 2.16 removed. dlib only uses the ``gin`` API through that import, never ``gin.tf`` itself, so an
   empty ``gin.tf`` module is registered instead of the real one.
2. dlib passes ``blacklist=`` / ``whitelist=`` to ``gin.configurable``; gin-config 0.5 renamed them to
   ``denylist=`` / ``allowlist=`` (gin 0.4 still had them, but breaks on Python >= 3.10). ``gin.configurable``
   is wrapped to translate the old names.
3. ``disentanglement_lib.utils.results.Encoder`` refers to ``np.float_`` (removed in NumPy 2) whenever it
   meets a NumPy scalar; it is replaced by an encoder that handles NumPy scalars and arrays generically.
4. ``results._copy_recursively`` uses ``distutils.dir_util.copy_tree``, which is gone in Python 3.12 and,
   before that, caches the directories it created: copying into a directory that was removed and
   recreated in the same process fails. It is replaced by ``shutil.copytree(..., dirs_exist_ok=True)``.
5. A guard: dlib's training, postprocessing and evaluation entry modules (and its ``named_data``) register
   gin configurables under the same names as this project (``model``, ``vae``, ``postprocess``,
   ``evaluation``, ``dataset``, …). Importing one of them next to ours would silently rebind those names, so
   an import hook refuses them with a clear error.
"""

import importlib.abc
import importlib.machinery
import shutil
import sys
import types

import gin
import numpy as np
import simplejson

# dlib modules whose gin names collide with ours (or that need TF1-only packages); see adaptation 5.
FORBIDDEN_DLIB_MODULES = (
    "disentanglement_lib.methods",
    "disentanglement_lib.postprocessing",
    "disentanglement_lib.evaluation.evaluate",
    "disentanglement_lib.data.ground_truth.named_data",
    "disentanglement_lib.utils.convolute_hub",
    "disentanglement_lib.visualize.visualize_model",
)


def _install_empty_gin_tf():
  if "gin.tf" in sys.modules and getattr(sys.modules["gin.tf"], "__submission_stub__", False):
    return
  stub = types.ModuleType("gin.tf")
  stub.__doc__ = "Empty stand-in for gin.tf (needs tf.estimator, removed in TF 2.16); see submission.compat."
  stub.__submission_stub__ = True
  sys.modules["gin.tf"] = stub
  gin.tf = stub


def _translate_list_arguments(configurable):
  if getattr(configurable, "__submission_wrapped__", False):
    return configurable

  def configurable_accepting_old_names(*args, blacklist=None, whitelist=None, **kwargs):
    if blacklist is not None:
      kwargs["denylist"] = blacklist
    if whitelist is not None:
      kwargs["allowlist"] = whitelist
    return configurable(*args, **kwargs)

  configurable_accepting_old_names.__submission_wrapped__ = True
  configurable_accepting_old_names.__wrapped__ = configurable
  configurable_accepting_old_names.__doc__ = configurable.__doc__
  return configurable_accepting_old_names


class NumpyJSONEncoder(simplejson.JSONEncoder):
  """JSON encoder for results dicts holding NumPy scalars or arrays (any dtype)."""

  def default(self, o):
    if isinstance(o, np.generic):
      return o.item()
    if isinstance(o, np.ndarray):
      return o.tolist()
    return super().default(o)


def _copy_tree(source, destination):
  shutil.copytree(source, destination, dirs_exist_ok=True)


DLIB_RESULTS = "disentanglement_lib.utils.results"


def _patch_dlib_results(results):
  results.Encoder = NumpyJSONEncoder
  results._copy_recursively = _copy_tree  # pylint: disable=protected-access


class _PatchAfterLoading(importlib.abc.Loader):
  """Runs a module's own loader, then patches the module."""

  def __init__(self, loader, patch):
    self._loader = loader
    self._patch = patch

  def create_module(self, spec):
    return self._loader.create_module(spec)

  def exec_module(self, module):
    self._loader.exec_module(module)
    self._patch(module)


class _PatchDlibResultsOnImport(importlib.abc.MetaPathFinder):
  """Finds dlib's ``results`` module as usual and hands it over patched (adaptations 3 and 4), so that applying
  compat does not import it, nor TensorFlow with it."""

  def find_spec(self, fullname, path, target=None):
    if fullname != DLIB_RESULTS:
      return None
    spec = importlib.machinery.PathFinder.find_spec(fullname, path, target)
    if spec is not None and spec.loader is not None:
      spec.loader = _PatchAfterLoading(spec.loader, _patch_dlib_results)
    return spec


class _ForbidCollidingDlibModules(importlib.abc.MetaPathFinder):
  """Refuses dlib modules that would rebind this project's gin names (adaptation 5)."""

  def find_spec(self, fullname, path, target=None):  # pylint: disable=unused-argument
    for forbidden in FORBIDDEN_DLIB_MODULES:
      if fullname == forbidden or fullname.startswith(forbidden + "."):
        raise ImportError(
            f"{fullname} must not be imported next to this project: it registers gin names "
            f"(model, vae, postprocess, evaluation, dataset, ...) that the project defines itself. "
            f"Use submission.train / submission.postprocess / evaluation.evaluate / submission.data.")
    return None


def apply():
  """Applies every adaptation; safe to call more than once."""
  _install_empty_gin_tf()
  gin.configurable = _translate_list_arguments(gin.configurable)
  gin.config.configurable = _translate_list_arguments(gin.config.configurable)
  for finder in (_ForbidCollidingDlibModules, _PatchDlibResultsOnImport):
    if not any(isinstance(f, finder) for f in sys.meta_path):
      sys.meta_path.insert(0, finder())


apply()
