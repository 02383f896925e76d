"""Writing outputs so that nothing is ever left half-written, in dlib's results layout.

``results/{gin,json,aggregate}`` is written by dlib's own ``update_result_directory`` (with the adaptations of
``submission.compat``) into a temporary sibling directory, which then replaces the target in one rename.
"""

import contextlib
import os
import shutil
import uuid

import submission.compat  # noqa: F401  (must precede dlib imports)
from disentanglement_lib.utils import results as dlib_results
from submission.errors import UserError

# dlib's directory names inside every step's output directory.
EXPORT_DIR = "tfhub"
RESULTS_DIR = "results"


def check_output_dir(path, overwrite):
  """dlib's rule: an existing output directory is an error unless ``overwrite`` (then it will be replaced)."""
  if os.path.exists(path) and not overwrite:
    raise UserError(f"output directory {path} already exists; pass --overwrite to replace it")


@contextlib.contextmanager
def atomic_directory(path):
  """Yields a temporary path next to ``path``; on success it replaces ``path``, on failure it is removed."""
  parent = os.path.dirname(os.path.abspath(path))
  os.makedirs(parent, exist_ok=True)
  temporary = os.path.join(parent, f".{os.path.basename(path)}.partial-{uuid.uuid4().hex[:8]}")
  try:
    yield temporary
  except BaseException:
    shutil.rmtree(temporary, ignore_errors=True)
    raise
  if os.path.exists(path):
    shutil.rmtree(path)
  os.rename(temporary, path)


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
