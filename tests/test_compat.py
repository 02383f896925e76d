"""Each adaptation in submission/compat.py, with a test that fails without it."""

import json
import os
import shutil

import gin
import numpy as np
import pytest

import submission.compat as compat
from conftest import run_python


def test_dlib_metrics_fail_to_import_without_compat_and_import_with_it():
  without = run_python(["-c", "import disentanglement_lib.evaluation.metrics.mig"])
  assert without.returncode != 0
  assert "estimator" in without.stderr  # gin.tf needs tf.estimator, gone since TF 2.16
  with_compat = run_python(["-c", "import submission.compat; import disentanglement_lib.evaluation.metrics.mig; "
                                  "import gin; print(gin.config._REGISTRY.get_match('mig').denylist)"])
  assert with_compat.returncode == 0, with_compat.stderr
  assert "ground_truth_data" in with_compat.stdout


def test_importing_the_package_alone_makes_dlib_metrics_importable():
  """A notebook needs only ``import submission``: compat loads with the package, without importing TensorFlow."""
  process = run_python(["-c", "import sys, submission\n"
                              "print('tensorflow' in sys.modules)\n"
                              "from disentanglement_lib.evaluation.metrics import mig\n"
                              "print(callable(mig.compute_mig))"])
  assert process.returncode == 0, process.stderr
  assert process.stdout.split() == ["False", "True"]


def test_gin_configurable_accepts_dlib_blacklist_and_whitelist():
  original = gin.config.configurable.__wrapped__
  with pytest.raises(TypeError):
    original("compat_probe_original", blacklist=["a"])(lambda a, b=1: (a, b))

  @gin.configurable("compat_probe_blacklist", blacklist=["a"])
  def probe(a, b=1):
    return a, b

  @gin.configurable("compat_probe_whitelist", whitelist=["b"])
  def probe_allow(a=0, b=1):
    return a, b

  assert gin.config._REGISTRY.get_match("compat_probe_blacklist").denylist == ["a"]
  assert gin.config._REGISTRY.get_match("compat_probe_whitelist").allowlist == ["b"]
  with gin.unlock_config():
    gin.bind_parameter("compat_probe_blacklist.b", 5)
  assert probe(3) == (3, 5)  # the autouse clean_gin fixture clears the binding


def test_dlib_results_writer_handles_numpy_scalars(tmp_path):
  from disentanglement_lib.utils import results
  path = str(tmp_path / "r.json")
  results.save_dict(path, {"f32": np.float32(1.5), "f64": np.float64(2.5), "i64": np.int64(3),
                           "arr": np.arange(3, dtype=np.int32)})
  with open(path) as f:
    assert json.load(f) == {"f32": 1.5, "f64": 2.5, "i64": 3, "arr": [0, 1, 2]}


def test_dlib_copydir_survives_a_removed_and_recreated_target(tmp_path):
  from disentanglement_lib.utils import results
  source = tmp_path / "source" / "json"
  source.mkdir(parents=True)
  (source / "x.json").write_text("{}")
  target = str(tmp_path / "target")
  results.copydir(str(tmp_path / "source"), target)
  shutil.rmtree(target)
  results.copydir(str(tmp_path / "source"), target)  # distutils' copy_tree fails here (stale mkpath cache)
  assert os.path.exists(os.path.join(target, "json", "x.json"))


@pytest.mark.parametrize("module", compat.FORBIDDEN_DLIB_MODULES)
def test_colliding_dlib_modules_are_refused(module):
  with pytest.raises(ImportError, match="gin names"):
    __import__(module)


def test_no_project_module_imports_colliding_dlib_modules():
  """Every module of the toolkit imported in a fresh process (the hook is only there once compat ran first)."""
  script = (
      "import importlib, pkgutil, sys\n"
      "for package in ('submission', 'evaluation'):\n"
      "  for info in pkgutil.walk_packages(importlib.import_module(package).__path__, package + '.'):\n"
      "    if not info.name.endswith('__main__'):\n"
      "      importlib.import_module(info.name)\n"
      f"forbidden = {tuple(compat.FORBIDDEN_DLIB_MODULES)!r}\n"
      "print(len(sys.modules), [m for m in sys.modules if m.startswith(forbidden)])\n")
  process = run_python(["-c", script])
  assert process.returncode == 0, process.stderr
  count, loaded = process.stdout.split(" ", 1)
  assert int(count) > 100 and loaded.strip() == "[]"
