"""Where a run came from: the git commit of the code that trained it and what its data set is.

``OUT/provenance.json`` (written by the pipeline before training, updated on every resume):

    {"commits": [...], "dirty": bool, "dataset": name, "dataset_provenance": text}

``commits`` lists every commit that worked on the run, in order (a resumed run may continue on newer code);
``dirty`` is true when any of them had uncommitted changes.
"""

import json
import os
import subprocess

import numpy as np

from submission import layout
from submission.atomic import write_json_atomically
from submission.data import dsprites_render, named_data

REPOSITORY_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FILE_NAME = layout.PROVENANCE_FILE  # beside the run: RunLayout.provenance
DSPRITES_NAMES = ("dsprites_full", "dsprites_noshape", "color_dsprites", "noisy_dsprites", "scream_dsprites")


def git_commit():
  """(commit, dirty) of the checkout this code runs from; (None, None) outside a git checkout."""
  def git(*args):
    return subprocess.run(["git", "-C", REPOSITORY_ROOT, *args], capture_output=True, text=True, check=True,
                          timeout=30).stdout.strip()
  try:
    return git("rev-parse", "HEAD"), bool(git("status", "--porcelain", "--untracked-files=no"))
  except (OSError, subprocess.SubprocessError):
    return None, None


def dsprites_metadata(path):
  """The ``metadata`` dict of a dSprites .npz (reading that small member only); None if it cannot be read."""
  try:
    with np.load(path, encoding="latin1", allow_pickle=True) as data:
      metadata = data["metadata"][()]
  except (OSError, KeyError, ValueError, TypeError):
    return None
  return metadata if isinstance(metadata, dict) else None


def is_rendered_dsprites(metadata):
  """Whether dSprites metadata is the project's rendering's (submission.data.dsprites_render)."""
  return metadata.get("description") == dsprites_render.METADATA_DESCRIPTION


def dataset_provenance(name):
  """One line: which files the data set is read from and whether they are the official ones."""
  if name in DSPRITES_NAMES:
    path = os.path.join(named_data.data_root(), named_data.DSPRITES_FILE)
    metadata = dsprites_metadata(path)
    if metadata is None:
      return f"dSprites file {path} (unreadable metadata)"
    if is_rendered_dsprites(metadata):
      return f"rendered dSprites ({path}, made by submission.data.dsprites_render: not DeepMind's file)"
    return f"dSprites file {path} (not the project's rendering: presumably DeepMind's official file)"
  if name == "correlated_ellipses":
    return "CorrelatedEllipses, rendered by submission.data.correlated_ellipses (the CHyVAE paper's data set)"
  if name == "dummy_data":
    return "dlib's dummy_data (uniform noise)"
  return "files " + ", ".join(named_data.required_paths(name))


def record(output_dir, dataset_name):
  """Adds this checkout's commit to ``output_dir/provenance.json`` (created if missing)."""
  path = os.path.join(output_dir, FILE_NAME)
  recorded = {}
  if os.path.isfile(path):
    with open(path) as f:
      recorded = json.load(f)
  commit, dirty = git_commit()
  commits = list(recorded.get("commits", []))
  if commit and (not commits or commits[-1] != commit):
    commits.append(commit)
  write_json_atomically(path, {"commits": commits, "dirty": bool(recorded.get("dirty")) or bool(dirty),
                               "dataset": dataset_name, "dataset_provenance": dataset_provenance(dataset_name)})
  return path
