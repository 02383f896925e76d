"""The registry behind ``dataset.name``: which data sets exist, the files each needs under
``$DISENTANGLEMENT_LIB_DATA``, and loading one by name with one clear error for a missing or unreadable file.

Data sets register here (``submission.data.named_data`` registers dlib's and imports the project's own, which
register themselves); import ``named_data`` rather than this module to have them all.
"""

import dataclasses
import os
import pickle
import zipfile
from typing import Callable, Optional, Sequence

import gin

from submission.errors import UserError

DATA_ENV = "DISENTANGLEMENT_LIB_DATA"


def data_root():
  return os.environ.get(DATA_ENV, ".")


@dataclasses.dataclass(frozen=True)
class DatasetEntry:
  """How to load one named data set, which files (relative to the data root) it needs, and what it holds.

  ``files``: one item per required file; an item that is a tuple lists alternatives (any one will do, the
  first is the preferred one). ``factors``: (name, number of values) per factor, as the data set reports
  them; ``check(paths)`` (paths: one existing path per item of ``files``) reads headers only, raises a
  UserError when something is wrong and returns {"detail": str, optionally "factors_num_values": list}.
  ``memory_bytes``: what a loaded copy holds in memory (its images), for ``evaluation.batch``'s cap on workers;
  None when it is small, shared (memory-mapped) or made on demand.
  """
  load: Callable[[], object]
  files: Sequence = ()
  how_to_get: str = ""
  factors: Optional[Sequence] = None
  observation_shape: Optional[Sequence[int]] = None
  observation_dtype: Optional[str] = None
  loader: str = ""
  check: Optional[Callable] = None
  memory_bytes: Optional[int] = None


_REGISTRY = {}


def register(name, load, files=(), how_to_get="", **metadata):
  """Adds a data set under ``name`` (project data sets call this when their module is imported).

  ``metadata``: optional ``factors``, ``observation_shape``, ``observation_dtype``, ``loader`` (one line
  saying which code loads it), ``check`` and ``memory_bytes`` (see DatasetEntry); ``info`` and ``verify`` use
  them.
  """
  _REGISTRY[name] = DatasetEntry(load, tuple(files), how_to_get, **metadata)


def names():
  return sorted(_REGISTRY)


def expected_paths(name):
  """Per required file, the list of acceptable paths (the first is the preferred one)."""
  root = data_root()
  return [[os.path.join(root, f) for f in ((item,) if isinstance(item, str) else item)]
          for item in entry(name).files]


def required_paths(name):
  """Per required file, the path that will be read: the first existing alternative, else the preferred one."""
  return [next((p for p in alternatives if os.path.exists(p)), alternatives[0])
          for alternatives in expected_paths(name)]


def missing_paths(name):
  """The (preferred) paths of the required files that do not exist; [] when the data set can be loaded."""
  return [alternatives[0] for alternatives in expected_paths(name)
          if not any(os.path.exists(p) for p in alternatives)]


def missing_message(name):
  """One line naming the first missing path and how to get it, or None when nothing is missing."""
  for alternatives in expected_paths(name):
    if not any(os.path.exists(p) for p in alternatives):
      others = "".join(f" (or {p})" for p in alternatives[1:])
      return (f"dataset {name!r} needs {alternatives[0]}{others} (${DATA_ENV}={data_root()!r}), which does not "
              f"exist. {entry(name).how_to_get}").strip()
  return None


def entry(name):
  """The DatasetEntry of ``name``; UserError for an unknown name."""
  if name not in _REGISTRY:
    raise UserError(f"unknown dataset.name {name!r}; known names: {', '.join(names())}")
  return _REGISTRY[name]


@gin.configurable("dataset")
def dataset_name(name=gin.REQUIRED):
  """dlib's ``dataset`` configurable; here it only resolves the name, so recording it never loads data."""
  entry(name)
  return name


_READ_ERRORS = (OSError, EOFError, zipfile.BadZipFile, pickle.UnpicklingError)


def _read_present(name, read):
  """``read(entry)`` for a present data set; a missing file or a read error becomes one UserError."""
  message = missing_message(name)
  if message:
    raise UserError(message)
  try:
    return read(entry(name))
  except _READ_ERRORS as e:
    raise UserError(f"dataset {name!r}: cannot read {', '.join(required_paths(name))}: {e}") from e


def load(name=None):
  """The GroundTruthData for ``name`` (default: the gin-bound ``dataset.name``)."""
  name = dataset_name() if name is None else name
  return _read_present(name, lambda found: found.load())


def check(name):
  """Header-level check of a present data set (see DatasetEntry.check); UserError if missing or unreadable."""
  return _read_present(name, lambda found: None if found.check is None else found.check(required_paths(name)))
