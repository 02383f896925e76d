"""Writing outputs so that nothing is ever left half-written, in dlib's results layout.

``results/{gin,json,aggregate}`` is written by dlib's own ``update_result_directory`` (with the adaptations of
``submission.compat``) into a temporary sibling directory, which then replaces the target in one rename.
"""

import os
import shutil

from disentanglement_lib.utils import results as dlib_results
from submission.atomic import atomic_directory
from submission.errors import UserError


def check_output_dir(path, overwrite):
  """dlib's rule: an existing output directory is an error unless ``overwrite`` (then it will be replaced)."""
  if os.path.exists(path) and not overwrite:
    raise UserError(f"output directory {path} already exists; pass --overwrite to replace it")


def saved_model_complete(path):
  """A SavedModel directory with both its graph and its variables (a crash, or a hand, may have removed either)."""
  return os.path.isfile(os.path.join(path, "saved_model.pb")) and os.path.isfile(
      os.path.join(path, "variables", "variables.index"))


def check_saved_model(path, remedy):
  """A UserError naming ``remedy`` unless ``path`` holds a complete SavedModel."""
  if not os.path.isdir(path):
    raise UserError(f"{path} does not exist: {remedy}")
  if not saved_model_complete(path):
    raise UserError(f"{path} is incomplete (saved_model.pb or variables/ missing): {remedy}")


def write_results(results_dir, step_name, results_dict, old_results_dir=None):
  """dlib's ``update_result_directory``, made atomic. Adds ``uuid`` to ``results_dict`` as dlib does."""
  with atomic_directory(results_dir) as temporary:
    if old_results_dir is None and os.path.isdir(results_dir):
      shutil.copytree(results_dir, temporary)
    dlib_results.update_result_directory(temporary, step_name, results_dict, old_results_dir)


def gin_value(gin_file, key):
  """A value from a results ``.gin`` file by dlib's ``gin_dict`` rules (raw gin text, quotes stripped)."""
  value = dlib_results.gin_dict(gin_file).get(key)
  return None if value is None else value.replace("'", "").replace('"', "")
