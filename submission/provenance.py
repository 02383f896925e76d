"""Where a run came from: the git commit of the code that trained it and what its data set is.

``OUT/provenance.json`` (written by the pipeline before training, updated on every resume):

    {"commits": [...], "dirty": bool, "dataset": name, "dataset_provenance": text}

``dataset_provenance`` is the registry's one sentence on the data set's files (``submission.data.registry.provenance``:
official, the project's rendering, or generated).

``commits`` lists every commit that worked on the run, in order (a resumed run may continue on newer code);
``dirty`` is true when any of them had uncommitted changes.
"""

import json
import os
import subprocess

from submission import layout
from submission.atomic import write_json_atomically
from submission.data import named_data

REPOSITORY_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FILE_NAME = layout.PROVENANCE_FILE  # beside the run: RunLayout.provenance


def git_commit():
  """(commit, dirty) of the checkout this code runs from; (None, None) outside a git checkout."""
  def git(*args):
    return subprocess.run(["git", "-C", REPOSITORY_ROOT, *args], capture_output=True, text=True, check=True,
                          timeout=30).stdout.strip()
  try:
    return git("rev-parse", "HEAD"), bool(git("status", "--porcelain", "--untracked-files=no"))
  except (OSError, subprocess.SubprocessError):
    return None, None


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
                               "dataset": dataset_name,
                               "dataset_provenance": named_data.provenance(dataset_name)[1]})
  return path
