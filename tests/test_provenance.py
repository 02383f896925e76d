"""provenance.json: the commits that trained a run, and the registry's one answer to where a data set's
observations come from (official files, the project's rendering of them, or generated)."""

import json
import os

import numpy as np

from submission import provenance
from submission.data import dsprites_render, named_data

DSPRITES_NAMES = ("dsprites_full", "dsprites_noshape", "color_dsprites", "noisy_dsprites", "scream_dsprites")


def test_record_keeps_each_commit_once_in_order(tmp_path, monkeypatch):
  commits = iter([("a" * 40, False), ("a" * 40, False), ("b" * 40, True)])
  monkeypatch.setattr(provenance, "git_commit", lambda: next(commits))
  for _ in range(3):
    provenance.record(str(tmp_path), "dummy_data")
  with open(tmp_path / provenance.FILE_NAME) as f:
    recorded = json.load(f)
  assert recorded == {"commits": ["a" * 40, "b" * 40], "dirty": True, "dataset": "dummy_data",
                      "dataset_provenance": "dummy_data: generated (dlib's DummyData: uniform noise)."}


def test_this_checkout_has_a_commit():
  commit, dirty = provenance.git_commit()
  assert commit is None or (len(commit) == 40 and isinstance(dirty, bool))


def test_every_data_set_says_where_its_observations_come_from(tmp_path, monkeypatch):
  monkeypatch.setenv(named_data.DATA_ENV, str(tmp_path))
  kinds = {name: named_data.provenance(name)[0] for name in named_data.names()}
  assert set(kinds.values()) <= {named_data.OFFICIAL, named_data.RENDERED, named_data.GENERATED, named_data.UNKNOWN}
  for name in ("shapes3d", "mpi3d_toy", "mpi3d_realistic", "mpi3d_real", "cars3d", "smallnorb"):
    assert kinds[name] == named_data.OFFICIAL, name
  assert kinds["dummy_data"] == kinds["correlated_ellipses"] == named_data.GENERATED
  cars = named_data.provenance("cars3d")[1]
  assert cars.startswith("cars3d: the official files") and os.path.join(str(tmp_path), "cars") in cars
  for name in DSPRITES_NAMES:  # no file yet: it cannot be told
    kind, sentence = named_data.provenance(name)
    assert kind == named_data.UNKNOWN and "not present" in sentence, name


def test_rendered_and_other_dsprites_files_are_told_apart(tmp_path, monkeypatch):
  monkeypatch.setenv(named_data.DATA_ENV, str(tmp_path))
  path = os.path.join(str(tmp_path), dsprites_render.DSPRITES_FILE)
  dsprites_render._write_npz(path, dsprites_render._subgrid_possible_values([1, 3, 2, 2, 2, 2]), progress=False)
  for name in DSPRITES_NAMES[:4]:
    kind, sentence = named_data.provenance(name)
    assert kind == named_data.RENDERED and sentence.startswith(f"{path} is the project's re-rendering"), name
  with np.load(path, allow_pickle=True) as data:
    arrays = dict(data)
  metadata = arrays["metadata"][()]
  metadata["description"] = "Procedurally generated 2D shapes"
  metadata["author"] = "lmatthey@google.com"
  arrays["metadata"] = np.array(metadata, dtype=object)
  np.savez(path, **arrays)
  kind, sentence = named_data.provenance("dsprites_noshape")
  assert kind == named_data.OFFICIAL and "DeepMind's official file" in sentence and "lmatthey" in sentence
  np.savez(path, imgs=arrays["imgs"])  # no metadata
  kind, sentence = named_data.provenance("dsprites_full")
  assert kind == named_data.UNKNOWN and "metadata cannot be read" in sentence
