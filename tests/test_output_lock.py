"""One writer per output directory (submission.output_lock): a second writer stops at once naming the holder, a
dead holder's lock is taken over, and what a dead writer left half-made is removed by the next owner."""

import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from conftest import REPOSITORY_ROOT, assert_one_error_line, dlib_config, run_python, with_data_mount
from submission import output_lock
from submission.errors import UserError

HOLD = ("import sys, time\nfrom submission import output_lock\noutput_lock.claim(sys.argv[1])\n"
        "print('held', flush=True)\ntime.sleep(600)\n")


@pytest.fixture
def holder(tmp_path):
  """Another process holding the claim on tmp_path/run; yields (directory, process)."""
  directory = str(tmp_path / "run")
  process = subprocess.Popen([sys.executable, "-c", HOLD, directory], cwd=REPOSITORY_ROOT, stdout=subprocess.PIPE,
                             text=True)
  assert process.stdout.readline().strip() == "held"
  yield directory, process
  process.kill()
  process.wait()


def holder_fragments(process):
  return [f"being written by pid {process.pid} on {socket.gethostname()}, started 20", "UTC"]


TINY = ["--dataset", "dummy_data", "--steps", "20", "--metrics", "mig", "--metric_bindings", "mig.num_train=200"]
WRITERS = {  # each command that writes an output directory, given the held directory
    "run_local": lambda d: ["-m", "applications.run_local", "gin_configs/beta_vae.gin", "--output", d] + TINY,
    "run_local --overwrite": lambda d: ["-m", "applications.run_local", "gin_configs/beta_vae.gin", "--output", d,
                                       "--overwrite"] + TINY,
    "run_local --resume": lambda d: ["-m", "applications.run_local", "gin_configs/beta_vae.gin", "--output", d,
                                    "--resume"] + TINY,
    "submission.train": lambda d: ["-m", "submission.train", "--model_dir", d, "--overwrite", "--gin_config",
                                   "gin_configs/beta_vae.gin", "--gin_bindings", "dataset.name = 'dummy_data'"],
    "submission.postprocess": lambda d: ["-m", "submission.postprocess", "--model_dir", d + "_model",
                                         "--output_dir", d, "--gin_config", dlib_config(
                                             "config/unsupervised_study_v1/postprocess_configs/mean.gin")],
    "evaluation.evaluate": lambda d: ["-m", "evaluation.evaluate", "--representation_dir", d + "_representation",
                                      "--output_dir", d, "--gin_config", dlib_config(
                                          "config/unsupervised_study_v1/metric_configs/mig.gin")],
    "applications.report": lambda d: ["-m", "applications.report", d],  # it draws missing pictures into the run
}


@pytest.mark.parametrize("writer", sorted(WRITERS))
def test_a_second_writer_stops_at_once_naming_the_holder(writer, holder):
  directory, process = holder
  start = time.time()
  answer = run_python(WRITERS[writer](directory))
  assert_one_error_line(answer, directory, *holder_fragments(process))
  assert not os.path.exists(directory)  # nothing written under the holder
  if writer.startswith("run_local"):
    assert time.time() - start < 8, "refused only after TensorFlow was imported"


def run_sh(output_path, name):
  env = {k: v for k, v in os.environ.items() if not k.startswith(("AICROWD_", "SUBMISSION_"))}
  env.update(AICROWD_OUTPUT_PATH=output_path, AICROWD_EVALUATION_NAME=name, AICROWD_DATASET_NAME="dummy_data",
             TF_CPP_MIN_LOG_LEVEL="2")
  return subprocess.run([os.path.join(REPOSITORY_ROOT, "run.sh")], cwd=REPOSITORY_ROOT, env=with_data_mount(env),
                        capture_output=True, text=True, timeout=300)


def test_run_sh_holds_its_experiment_directory(holder):
  directory, process = holder
  assert_one_error_line(run_sh(os.path.dirname(directory), os.path.basename(directory)), *holder_fragments(process))
  assert not os.path.exists(directory)


def test_run_sh_with_an_output_path_under_a_file_is_one_line(tmp_path):
  (tmp_path / "file").write_text("")
  assert_one_error_line(run_sh(str(tmp_path / "file" / "shared"), "exp"),
                        f"AICROWD_OUTPUT_PATH: {tmp_path}/file/shared/exp is not writable")
  assert os.listdir(tmp_path) == ["file"]


def test_a_claim_is_reentrant_and_released_with_its_lock_file(tmp_path):
  directory = str(tmp_path / "run")
  with output_lock.claim(directory):
    with output_lock.claim(directory):  # the pipeline's training step inside run_local's claim
      pass
    assert os.path.exists(output_lock.lock_path(directory)) and output_lock.is_held(directory)
  assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("death", ["SIGKILL", "record of a dead pid"])
def test_the_lock_of_a_dead_holder_is_taken_over(death, tmp_path, capsys):
  directory = str(tmp_path / "run")
  if death == "SIGKILL":  # the kernel releases the flock; the record stays
    process = subprocess.Popen([sys.executable, "-c", HOLD, directory], cwd=REPOSITORY_ROOT, stdout=subprocess.PIPE,
                               text=True)
    assert process.stdout.readline().strip() == "held"
    process.send_signal(signal.SIGKILL)
    process.wait()
    dead_pid = process.pid
  else:
    dead_pid = 1 << 22  # above Linux's largest pid_max: no such process
    with open(output_lock.lock_path(directory), "w") as f:
      json.dump({"pid": dead_pid, "host": "elsewhere", "started": "2026-01-01 00:00:00 UTC"}, f)
  assert os.path.exists(output_lock.lock_path(directory))
  with output_lock.claim(directory):
    with open(output_lock.lock_path(directory)) as f:
      assert json.load(f)["pid"] == os.getpid()
  assert f"taking over from pid {dead_pid}" in capsys.readouterr().err
  assert not os.path.exists(output_lock.lock_path(directory))


def test_what_a_dead_writer_left_half_made_is_removed_by_the_next_owner(tmp_path):
  directory = tmp_path / "run"
  (directory / "model").mkdir(parents=True)
  left = [tmp_path / ".run.partial-0badf00d", directory / ".visualizations.partial-12345678",
          directory / ".scores.json.partial-87654321"]
  left[0].mkdir()
  left[1].mkdir()
  left[2].write_text("{")
  with output_lock.claim(str(directory / "model")):  # a writer of its own inside: its partials are its own
    (directory / ".model.partial-deadbeef").mkdir()
    with output_lock.claim(str(directory)):
      pass
    assert (directory / ".model.partial-deadbeef").exists()
  assert not any(path.exists() for path in left)
  assert (directory / "model").is_dir()


def test_partials_beside_an_old_version_are_left_for_a_person(tmp_path, capsys):
  # A writer that died between atomic_directory's two renames: the .old- is the complete old run, the .partial-
  # may be the complete new one.
  (tmp_path / ".run.old-11111111").mkdir()
  (tmp_path / ".run.partial-22222222").mkdir()
  with output_lock.claim(str(tmp_path / "run")):
    pass
  assert sorted(os.listdir(tmp_path)) == [".run.old-11111111", ".run.partial-22222222"]
  assert "keep one and remove the other" in capsys.readouterr().err


def test_a_lock_in_an_unwritable_place_is_one_user_error(tmp_path):
  (tmp_path / "file").write_text("")
  with pytest.raises(UserError, match="cannot lock output directory"):
    output_lock.claim(str(tmp_path / "file" / "run"))
