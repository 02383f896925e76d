"""provenance.json: the commits that trained a run and whether its dSprites file is the project's rendering."""

import json
import os

import numpy as np

from submission import provenance
from submission.data import dsprites_render, named_data


def test_record_keeps_each_commit_once_in_order(tmp_path, monkeypatch):
  commits = iter([("a" * 40, False), ("a" * 40, False), ("b" * 40, True)])
  monkeypatch.setattr(provenance, "git_commit", lambda: next(commits))
  for _ in range(3):
    provenance.record(str(tmp_path), "dummy_data")
  with open(tmp_path / provenance.FILE_NAME) as f:
    recorded = json.load(f)
  assert recorded == {"commits": ["a" * 40, "b" * 40], "dirty": True, "dataset": "dummy_data",
                      "dataset_provenance": "dlib's dummy_data (uniform noise)"}


def test_this_checkout_has_a_commit():
  commit, dirty = provenance.git_commit()
  assert commit is None or (len(commit) == 40 and isinstance(dirty, bool))


def test_rendered_and_other_dsprites_files_are_told_apart(tmp_path, monkeypatch):
  monkeypatch.setenv(named_data.DATA_ENV, str(tmp_path))
  path = os.path.join(str(tmp_path), named_data.DSPRITES_FILE)
  dsprites_render._write_npz(path, dsprites_render._subgrid_possible_values([1, 3, 2, 2, 2, 2]), progress=False)
  assert provenance.dataset_provenance("dsprites_full").startswith("rendered dSprites")
  with np.load(path, allow_pickle=True) as data:
    arrays = dict(data)
  metadata = arrays["metadata"][()]
  metadata["description"] = "Procedurally generated 2D shapes"
  arrays["metadata"] = np.array(metadata, dtype=object)
  np.savez(path, **arrays)
  assert "presumably DeepMind's official file" in provenance.dataset_provenance("dsprites_noshape")
