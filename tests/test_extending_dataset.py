"""docs/extending.md, "Add a data set": its worked example, run exactly as the page shows it, so the guide cannot
fall behind the code."""

import json
import os
import re
import types

import numpy as np
import pytest

from conftest import FAST_ARCHITECTURE, REPOSITORY_ROOT, STUDY, dlib_config
from submission import provenance, train
from submission.data import named_data, tools

GUIDE = os.path.join(REPOSITORY_ROOT, "docs", "extending.md")


def guide_example():
  """The one Python code block of the guide's "Add a data set" section."""
  with open(GUIDE) as f:
    text = f.read()
  section = text.split("## Add a data set", 1)[1].split("\n## ", 1)[0]
  blocks = re.findall(r"```python\n(.*?)```", section, flags=re.S)
  assert len(blocks) == 1, "the section shows one family module"
  return blocks[0]


@pytest.fixture
def two_bars(tmp_path, monkeypatch):
  """The guide's module, imported (it registers 'two_bars'), with an empty data root; unregistered afterwards."""
  monkeypatch.setenv(named_data.DATA_ENV, str(tmp_path / "data"))
  module = types.ModuleType("two_bars")
  exec(compile(guide_example(), GUIDE, "exec"), module.__dict__)  # pylint: disable=exec-used
  yield module
  named_data.unregister(module.NAME)


def test_the_guides_data_set_is_registered_made_on_first_load_and_sampled(two_bars, tmp_path, capsys):
  assert "two_bars" in named_data.names() and "two_bars" in named_data.generators()
  path = str(tmp_path / "data" / "two_bars" / "two_bars_8x8.npz")
  assert named_data.missing_paths("two_bars") == [path]
  data = named_data.load("two_bars")  # made on first load (on_load=True), by the registry's one mechanism
  assert os.path.isfile(path) and "not found: making it" in capsys.readouterr().out
  assert data.num_factors == 2 and data.factors_num_values == [8, 8] and data.observation_shape == [64, 64, 1]
  factors = data.sample_factors(16, np.random.RandomState(0))
  observations = data.sample_observations_from_factors(factors, np.random.RandomState(0))
  assert observations.shape == (16, 64, 64, 1) and observations.dtype == np.float32
  for (row, column), image in zip(factors, observations):  # the bars are where the factors put them
    assert image[8 * row:8 * row + 4, :, 0].min() == 1. and image[:, 8 * column:8 * column + 4, 0].min() == 1.
    assert image.mean() == pytest.approx((4 * 64 * 2 - 16) / 64**2)
  kind, sentence = named_data.provenance("two_bars")
  assert kind == named_data.GENERATED and path in sentence
  assert sentence.startswith("two_bars: generated (two bars drawn by docs/extending.md's example)")
  tools.info("two_bars")
  out = capsys.readouterr().out
  assert "factors (2): row 8, column 8" in out and f"file: {path}  present" in out


def test_a_model_trains_two_steps_on_the_guides_data_set(two_bars, tmp_path):
  model_dir = str(tmp_path / "model")
  train.train_with_gin(model_dir, gin_config_files=[dlib_config(f"{STUDY}/model_configs/shared.gin")],
                       gin_bindings=FAST_ARCHITECTURE + [
                           "dataset.name = 'two_bars'", "model.batch_size = 8", "model.training_steps = 2",
                           "model.eval_steps = 1", "train_loop.log_every_steps = 1"])
  with open(os.path.join(model_dir, "results", "json", "train_results.json")) as f:
    results = json.load(f)
  assert results["global_step"] == 2 and np.isfinite(results["loss"])
  provenance.record(str(tmp_path), "two_bars")
  with open(tmp_path / provenance.FILE_NAME) as f:
    assert json.load(f)["dataset_provenance"].startswith("two_bars: generated")
