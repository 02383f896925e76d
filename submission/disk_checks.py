"""Checks made before writing something large (a run, a generated data set): that the directory can take new
entries and that its file system has room, so a full or read-only disk is one clear error before, not hours into,
the write."""

import os
import shutil
import tempfile

from submission.errors import UserError


def check_writable(directory, purpose):
  """A UserError unless ``directory`` exists and takes new entries, or could be created; ``purpose`` names what
  it is for in the message."""
  existing = existing_ancestor(directory)
  if not os.path.isdir(existing):
    raise UserError(f"cannot create {purpose}: {existing} is a file, not a directory")
  try:
    os.rmdir(tempfile.mkdtemp(dir=existing, prefix=".write-test-"))
  except OSError as e:
    raise UserError(f"cannot create {purpose}: {existing} is not writable ({e.strerror})") from e


def existing_ancestor(path):
  """``path`` or its nearest ancestor that exists."""
  existing = os.path.abspath(path)
  while not os.path.exists(existing):
    existing = os.path.dirname(existing)
  return existing


def check_free_space(directory, needed, purpose):
  """A UserError unless the file system of ``directory`` (or of the ancestor that will hold it) has ``needed``
  bytes free."""
  free = shutil.disk_usage(existing_ancestor(directory)).free
  if free < needed:
    raise UserError(f"not enough space for {purpose} in {directory}: it needs {needed / 1e9:.2f} GB, "
                    f"{free / 1e9:.2f} GB are free")
