"""collect_study: a sweep's small results copied into a results directory, with one table and the plots."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf

from conftest import read_json
from evaluation import collect_study


def _write(path, value):
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path, "w") as f:
    json.dump(value, f) if not isinstance(value, str) else f.write(value)


def _fake_point(root, num, gin_file, bindings, curves, train_results=None, metrics=None):
  """A sweep point as the sweep and pipeline leave it: point file, TensorBoard scalars, results."""
  directory = os.path.join(root, str(num))
  _write(os.path.join(directory, "sweep_point.json"), {
      "model_num": num, "gin_file": gin_file, "bindings": bindings, "metrics": ["mig", "unsupervised"],
      "metric_bindings": []})
  writer = tf.summary.create_file_writer(os.path.join(directory, "model", "tf_checkpoint"))
  with writer.as_default():
    for tag, values in curves.items():
      for step, value in values:
        tf.summary.scalar(tag, value, step=step)
  writer.close()
  if train_results is not None:
    _write(os.path.join(directory, "model", "results", "json", "train_results.json"), train_results)
    _write(os.path.join(directory, "model", "results", "gin", "train.gin"), "vae.beta = 16.\n")
    _write(os.path.join(directory, "provenance.json"), {"commits": ["c" * 40], "dirty": False,
                                                        "dataset": "dsprites_full", "dataset_provenance": "rendered"})
  for metric, results in (metrics or {}).items():
    _write(os.path.join(directory, "metrics", "mean", metric, "results", "json", "evaluation_results.json"), results)


def test_collects_complete_and_training_runs_with_table_and_plots(tmp_path):
  sweep = str(tmp_path / "sweep")
  _fake_point(sweep, 1, "gin_configs/beta_vae.gin", ["vae.beta = 16.0", "dataset.name = 'dsprites_full'"],
              {"kl_loss": [(100, 30.0), (200, 20.0)], "reconstruction_loss": [(100, 300.0), (200, 200.0)]},
              train_results={"global_step": 200, "elapsed_time": 3600.0, "kl_loss": 20.5,
                             "reconstruction_loss": 201.0},
              metrics={"mig": {"discrete_mig": 0.25, "elapsed_time": 60.0},
                       "unsupervised": {"gaussian_total_correlation": 1.5, "elapsed_time": 30.0}})
  _fake_point(sweep, 7, "gin_configs/pvae.gin", ["dataset.name = 'dsprites_full'"],
              {"kl_loss": [(100, 9.0)], "num_active_dims": [(100, 32.0), (200, 20.0)],
               "expected_l0": [(100, 26.0), (200, 18.0)]})
  results = str(tmp_path / "results")
  runs = collect_study.collect(sweep, results)
  assert [run["status"] for run in runs] == ["complete", "training"]

  run = read_json(os.path.join(results, "1_beta_vae_beta16.0", "run.json"))
  assert run["label"] == "beta_vae beta=16.0" and run["commits"] == ["c" * 40] and run["steps"] == 200
  assert run["train_seconds"] == 3600.0 and run["metric_seconds"] == {"mig": 60.0, "unsupervised": 30.0}
  assert read_json(os.path.join(results, "1_beta_vae_beta16.0", "scores.json"))["mig"] == {"discrete_mig": 0.25}
  with open(os.path.join(results, "1_beta_vae_beta16.0", "curves.csv")) as f:
    assert f.read().splitlines()[:2] == ["step,tag,value", "100,kl_loss,30.0"]
  assert read_json(os.path.join(results, "7_pvae", "run.json"))["steps"] == 200

  with open(os.path.join(results, "table.md")) as f:
    table = f.read()
  assert "| 1 | beta_vae beta=16.0 | dsprites_full | complete | 200 | 201.0 | 20.500 |" in table
  assert "| 0.250 |" in table and "| 1.500 | 1:01:30 |" in table
  for plot in ("scores.png", "kl_reconstruction.png", "pvae_pruning.png"):
    with open(os.path.join(results, plot), "rb") as f:
      assert f.read(8) == b"\x89PNG\r\n\x1a\n", plot
  assert not os.path.exists(os.path.join(results, "deltavae_capacity.png"))  # no ΔVAE run yet

  # A later session on another machine has only the remaining points: the runs collected before stay in the
  # table and the plots, read back from the results directory.
  later = str(tmp_path / "later_sweep")
  _fake_point(later, 9, "gin_configs/beta_vae.gin", ["vae.beta = 4.0", "dataset.name = 'correlated_ellipses'"],
              {"kl_loss": [(100, 12.0)]}, train_results={"global_step": 100, "elapsed_time": 60.0, "kl_loss": 12.0,
                                                         "reconstruction_loss": 50.0},
              metrics={"mig": {"discrete_mig": 0.125, "elapsed_time": 6.0},
                       "unsupervised": {"gaussian_total_correlation": 0.5, "elapsed_time": 3.0}})
  again = collect_study.collect(later, results)
  assert [(run["model_num"], run["status"]) for run in again] == [(1, "complete"), (7, "training"), (9, "complete")]
  assert again[0]["metrics"]["mig"]["discrete_mig"] == 0.25 and again[0]["curves"]["kl_loss"] == ([100, 200],
                                                                                                [30.0, 20.0])
  with open(os.path.join(results, "table.md")) as f:
    table = f.read()
  assert "| 1 | beta_vae beta=16.0 | dsprites_full | complete | 200 | 201.0 | 20.500 |" in table
  assert "| 9 | beta_vae beta=4.0 | correlated_ellipses | complete | 100 | 50.000 | 12.000 |" in table


def test_seeds_of_one_configuration_get_their_median_and_range(tmp_path):
  sweep = str(tmp_path / "sweep")
  for num, (seed, mig, reconstruction) in enumerate([(0, 0.1, 40.0), (1, 0.4, 30.0), (2, 0.2, 35.0)]):
    _fake_point(sweep, num, "gin_configs/chyvae.gin",
                ["chyvae.nu = 15.0", "dataset.name = 'correlated_ellipses'", f"model.random_seed = {seed}"],
                {"kl_loss": [(100, 10.0)]}, train_results={"global_step": 100, "elapsed_time": 60.0, "kl_loss": 10.0,
                                                           "reconstruction_loss": reconstruction},
                metrics={"mig": {"discrete_mig": mig, "elapsed_time": 6.0},
                         "unsupervised": {"gaussian_total_correlation": 0.5, "elapsed_time": 3.0}})
  # One seed of another configuration (no summary), one seed of the same still training (left out of it).
  _fake_point(sweep, 3, "gin_configs/beta_vae.gin", ["vae.beta = 4.0", "dataset.name = 'correlated_ellipses'",
                                                     "model.random_seed = 0"],
              {"kl_loss": [(100, 12.0)]}, train_results={"global_step": 100, "elapsed_time": 60.0, "kl_loss": 12.0,
                                                         "reconstruction_loss": 50.0},
              metrics={"mig": {"discrete_mig": 0.9, "elapsed_time": 6.0},
                       "unsupervised": {"gaussian_total_correlation": 0.5, "elapsed_time": 3.0}})
  _fake_point(sweep, 4, "gin_configs/chyvae.gin",
              ["chyvae.nu = 15.0", "dataset.name = 'correlated_ellipses'", "model.random_seed = 3"],
              {"kl_loss": [(100, 10.0)]})
  results = str(tmp_path / "results")
  runs = collect_study.collect(sweep, results)
  assert [run["seed"] for run in runs] == [0, 1, 2, 0, 3]
  with open(os.path.join(results, "table.md")) as f:
    assert "| 1 | chyvae nu=15.0 | correlated_ellipses | 1 | complete |" in f.read()
  with open(os.path.join(results, "seeds.md")) as f:
    lines = f.read().splitlines()
  header = [cell.strip() for cell in lines[2].strip("|").split("|")]
  assert header[:4] == ["model", "dataset", "n", "reconstruction"] and "MIG" in header
  rows = [line for line in lines if line.startswith("| chyvae")]
  assert len(rows) == 1 and not any(line.startswith("| beta_vae") for line in lines)
  cells = [cell.strip() for cell in rows[0].strip("|").split("|")]
  assert cells[:4] == ["chyvae nu=15.0", "correlated_ellipses", "3", "35.000 [30.000–40.000]"]
  assert cells[header.index("MIG")] == "0.200 [0.100–0.400]"
  with open(os.path.join(results, "seeds.png"), "rb") as f:
    assert f.read(8) == b"\x89PNG\r\n\x1a\n"


def test_capacity_tracking_measures_the_gap_over_the_last_80_percent_of_the_ramp():
  steps = list(range(0, 1100, 100))                      # C rises over steps 0..800, then holds
  capacity = [15. + 10. * min(step, 800) / 800 for step in steps]
  kl = [30., 29., 18.25, 18.25, 20.25, 21.6, 22.5, 23.4, 25.2, 25.1, 25.]  # 12.75 nats off at step 100, then < 1
  tracking = collect_study.capacity_tracking({"capacity": (steps, capacity), "kl_loss": (steps, kl)})
  assert tracking["ramp"] == [0, 800]
  # The window is steps 160..800: step 100 (gap 12.75) is left out, step 200 (gap 0.75) counts.
  assert tracking["max_gap"] == pytest.approx(0.75)
  assert tracking["mean_gap"] == pytest.approx(np.mean([0.75, 0.5, 0.25, 0.35, 0., 0.35, 0.2]))
  # A constant target (capacity off, or C fixed) is no ramp; a run without a capacity curve has none.
  assert collect_study.capacity_tracking({"capacity": (steps, [25.] * 11), "kl_loss": (steps, kl)}) is None
  assert collect_study.capacity_tracking({"kl_loss": (steps, kl)}) is None
