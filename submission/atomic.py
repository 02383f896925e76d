"""Writing files and directories so that a reader (or a crash) never meets a half-written one.

Everything is written next to its final path (same file system) and renamed into place.
"""

import contextlib
import json
import os
import shutil
import uuid


def _sibling(path, tag):
  parent = os.path.dirname(os.path.abspath(path))
  os.makedirs(parent, exist_ok=True)
  return os.path.join(parent, f".{os.path.basename(path)}.{tag}-{uuid.uuid4().hex[:8]}")


@contextlib.contextmanager
def atomic_directory(path):
  """Yields a temporary path next to ``path``; on success it replaces ``path``, on failure it is removed.

  An existing ``path`` is first renamed aside and deleted only once the new one is in place, so at every moment
  one complete version exists (a crash in between leaves the old one in ``.<name>.old-*``).
  """
  temporary = _sibling(path, "partial")
  try:
    yield temporary
  except BaseException:
    shutil.rmtree(temporary, ignore_errors=True)
    raise
  old = None
  if os.path.exists(path):
    old = _sibling(path, "old")
    os.rename(path, old)
  os.rename(temporary, path)
  if old:
    shutil.rmtree(old)


@contextlib.contextmanager
def atomic_path(path):
  """Yields a temporary path next to ``path`` for a writer that takes a path (PIL, NumPy, pandas); the file is
  renamed over ``path`` when the block succeeds and removed when it fails."""
  temporary = _sibling(path, "partial")
  try:
    yield temporary
    os.replace(temporary, path)
  except BaseException:
    if os.path.exists(temporary):
      os.remove(temporary)
    raise


@contextlib.contextmanager
def atomic_file(path, mode="w"):
  """``atomic_path`` for a file object: yields ``open(temporary, mode)``."""
  with atomic_path(path) as temporary, open(temporary, mode) as f:
    yield f


def write_json_atomically(path, value):
  """Writes ``value`` as indented JSON through ``atomic_file``, so a reader never sees half a file."""
  with atomic_file(path) as f:
    json.dump(value, f, indent=2)


def read_json(path, default=None):
  """The JSON value in ``path``, or ``default`` when there is no such file (files are written whole, above)."""
  if not os.path.isfile(path):
    return default
  with open(path) as f:
    return json.load(f)
