"""Batch evaluation and aggregation: dlib's layout per pair, resume, failure isolation, Ray = local, dlib's loader."""

import contextlib
import glob
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

import numpy as np
import pandas as pd
import pytest

from conftest import (FAST_ARCHITECTURE, REPOSITORY_ROOT, STUDY, TINY_BINDINGS, dlib_config, kill_worker_when,
                      read_json, run_python)
from disentanglement_lib.utils import aggregate_results as dlib_aggregate
from evaluation import aggregate, batch, evaluate, workers
from submission import postprocess, train
from submission.errors import UserError

# Small sample sizes (as tests/test_pipeline.py METRICS). dci's GradientBoostingClassifier draws from NumPy's global
# generator, so it also checks that a pair's numbers do not depend on the worker that ran it.
METRICS = ["mig", "dci", "sap_score"]
METRIC_BINDINGS = ["mig.num_train = 200", "dci.num_train = 100", "dci.num_test = 50", "sap_score.num_train = 100",
                   "sap_score.num_test = 50"]


@pytest.fixture(scope="module")
def representations(tmp_path_factory):
  """Two tiny trained models and one broken one (its SavedModel is garbage), each as <X>/postprocessed/mean."""
  root = tmp_path_factory.mktemp("batch")
  for seed in (0, 1):
    model_dir = str(root / "models" / f"m{seed}" / "model")
    train.train_with_gin(model_dir, gin_config_files=["gin_configs/beta_vae.gin"],
                         gin_bindings=TINY_BINDINGS + FAST_ARCHITECTURE + [f"model.random_seed = {seed}"])
    postprocess.postprocess_with_gin(model_dir, str(root / "models" / f"m{seed}" / "postprocessed" / "mean"),
                                     gin_config_files=[dlib_config(f"{STUDY}/postprocess_configs/mean.gin")])
  broken = root / "models" / "m2_broken" / "postprocessed" / "mean"
  shutil.copytree(root / "models" / "m0" / "postprocessed" / "mean", broken)
  with open(broken / "tfhub" / "saved_model.pb", "wb") as f:
    f.write(b"not a SavedModel")
  return root


@pytest.fixture(scope="module")
def local_batch(representations):
  """The batch on the local backend with 2 workers, run once for this module."""
  pattern = str(representations / "models" / "*" / "postprocessed" / "mean")
  summary = batch.batch([pattern], metrics=METRICS, metric_bindings=METRIC_BINDINGS, num_workers=2)
  return pattern, summary


@pytest.fixture(scope="session")
def ray_instance():
  """One local Ray instance for the test session (its start-up takes seconds), on loopback, without usage stats."""
  os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
  os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
  ray = pytest.importorskip("ray", reason=f"Ray is not installed ({workers.RAY_REQUIREMENT})")
  ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
  yield ray
  ray.shutdown()


GOOD_PAIRS = [(model, metric) for model in ("m0", "m1") for metric in METRICS]


def test_every_pair_is_written_in_dlib_layout_and_the_broken_one_fails_alone(representations, local_batch):
  _, summary = local_batch
  assert (summary["pairs"], summary["evaluated"], summary["failed"], summary["skipped"]) == (9, 6, 3, 0)
  for model, metric in GOOD_PAIRS:
    pair_dir = representations / "models" / model / "metrics" / "mean" / metric
    scores = read_json(pair_dir / "results" / "json" / "evaluation_results.json")
    assert np.isfinite(scores["elapsed_time"])
    groups = {key.split(".")[0] for key in read_json(pair_dir / "results" / "aggregate" / "evaluation.json")}
    assert groups == {"train_config", "train_results", "postprocess_config", "postprocess_results",
                      "evaluation_config", "evaluation_results"}
    assert not os.path.exists(str(pair_dir) + ".error.json") and not os.path.exists(str(pair_dir) + ".log")
  assert "discrete_mig" in read_json(representations / "models" / "m0" / "metrics" / "mean" / "mig" / "results" /
                                     "json" / "evaluation_results.json")
  broken = representations / "models" / "m2_broken" / "metrics" / "mean"
  for metric in METRICS:
    assert not os.path.exists(broken / metric)  # nothing half-written
    error = read_json(broken / f"{metric}.error.json")
    assert error["metric"] == metric and error["representation_dir"].endswith(os.path.join("m2_broken",
                                                                                           "postprocessed", "mean"))
    assert error["type"] and error["message"] and "Traceback" in error["traceback"]
    assert os.path.exists(error["log"])
  assert {f["error_file"] for f in summary["failures"]} == {str(broken / f"{m}.error.json") for m in METRICS}


def test_a_second_run_does_no_work(representations, local_batch, capsys):
  good = str(representations / "models" / "m[01]" / "postprocessed" / "mean")
  uuids = {pair: read_json(representations / "models" / pair[0] / "metrics" / "mean" / pair[1] / "results" / "json" /
                           "evaluation_results.json")["uuid"] for pair in GOOD_PAIRS}
  summary = batch.batch([good], metrics=METRICS, metric_bindings=METRIC_BINDINGS, num_workers=2)
  assert (summary["pairs"], summary["evaluated"], summary["skipped"], summary["failed"]) == (6, 0, 6, 0)
  captured = capsys.readouterr()
  assert "6 pairs, 0 evaluated, 6 already complete, 0 failed" in captured.out
  assert "6/6 100%" in captured.err and "skipped 6" in captured.err  # the progress bar
  for pair, uuid in uuids.items():
    assert read_json(representations / "models" / pair[0] / "metrics" / "mean" / pair[1] / "results" / "json" /
                     "evaluation_results.json")["uuid"] == uuid


def test_the_command_exits_nonzero_when_a_pair_fails_and_names_it(representations, local_batch, capsys):
  broken = str(representations / "models" / "m2_broken" / "postprocessed" / "mean")
  with pytest.raises(SystemExit) as exit_status:
    batch.main(["--representations", broken, "--metrics", "mig", "--metric_bindings", *METRIC_BINDINGS])
  assert exit_status.value.code == 1
  captured = capsys.readouterr()
  assert "1 pairs, 0 evaluated, 0 already complete, 1 failed" in captured.out
  assert f"FAILED mig on {broken}" in captured.out and "mig.error.json" in captured.out
  assert "1/1 100%" in captured.err and "failed 1" in captured.err  # the progress bar


def test_a_pair_is_complete_only_for_the_config_it_recorded(representations, local_batch):
  representation = str(representations / "models" / "m0" / "postprocessed" / "mean")

  def complete(bindings):
    configs = batch.metric_configs(["mig"])
    pair = batch.make_pairs([representation], configs, bindings)[0]
    return batch.ConfigComparer(configs, bindings).is_complete(pair)

  assert complete(METRIC_BINDINGS)
  assert complete(METRIC_BINDINGS + ["mig.batch_size = 16"])  # the default, made explicit
  assert complete(METRIC_BINDINGS + ["dataset.name = 'dummy_data'"])  # what 'auto' resolved to
  assert complete(METRIC_BINDINGS + ["evaluation.name = 'mig'"])  # a label (dlib_reproduce sets it), not a setting
  assert not complete(["mig.num_train = 201"])
  assert not complete(METRIC_BINDINGS + ["mig.batch_size = 8"])
  assert not complete(METRIC_BINDINGS + ["evaluation.random_seed = 1"])
  assert not complete(METRIC_BINDINGS + ["discretizer.num_bins = 10"])


def test_a_binding_removed_since_the_last_run_makes_the_pair_incomplete(representations, tmp_path):
  # Recorded with a non-default batch size; without that binding now, the default (16) differs from it.
  representation = str(representations / "models" / "m1" / "postprocessed" / "mean")
  output = tmp_path / "out"
  configs = batch.metric_configs(["mig"])
  evaluate.evaluate_with_gin(representation, str(output / "m1" / "metrics" / "mean" / "mig"),
                             gin_config_files=configs["mig"], gin_bindings=["mig.num_train = 100",
                                                                            "mig.batch_size = 8"])
  pair = batch.make_pairs([representation], configs, ["mig.num_train = 100"], output_root=str(output))[0]
  assert pair.output_dir == str(output / "m1" / "metrics" / "mean" / "mig")
  assert not batch.ConfigComparer(configs, ["mig.num_train = 100"]).is_complete(pair)
  assert batch.ConfigComparer(configs, ["mig.num_train = 100", "mig.batch_size = 8"]).is_complete(pair)


def test_ray_backend_on_a_local_instance_gives_the_local_numbers(representations, local_batch, ray_instance,
                                                                  tmp_path):
  pattern, _ = local_batch
  output = tmp_path / "ray"
  summary = batch.batch([pattern], metrics=METRICS, metric_bindings=METRIC_BINDINGS, output=str(output),
                        backend="ray", num_workers=2)
  assert (summary["evaluated"], summary["failed"]) == (6, 3)
  assert os.path.exists(output / "m2_broken" / "metrics" / "mean" / "mig.error.json")
  for model, metric in GOOD_PAIRS:
    local = read_json(representations / "models" / model / "metrics" / "mean" / metric / "results" / "json" /
                      "evaluation_results.json")
    remote = read_json(output / model / "metrics" / "mean" / metric / "results" / "json" /
                       "evaluation_results.json")
    keys = set(local) - {"elapsed_time", "uuid"}
    assert keys and keys == set(remote) - {"elapsed_time", "uuid"}
    for key in keys:
      assert remote[key] == local[key], (model, metric, key)  # identical, not merely close
  # Ray's workers got the thread caps (2 workers on this 2-CPU instance: 1 thread each).
  threads = dict(workers.RayBackend(workers=2).run([workers.Task(os.getenv, name) for name in (
      "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "TF_NUM_INTRAOP_THREADS")]))
  assert [threads[i]["result"] for i in range(3)] == [str(workers.threads_per_worker(2))] * 3


def test_aggregate_json_loads_with_dlib_and_the_csv_has_one_row_per_pair(representations, local_batch):
  outputs = aggregate.aggregate(str(representations / "models"), str(representations / "summary"))
  frame = dlib_aggregate.load_aggregated_json_results(outputs["json"])
  assert len(frame) == 6  # the broken pairs wrote nothing
  assert frame["path"].str.endswith(os.path.join("results", "aggregate", "evaluation.json")).all()
  mig_rows = frame[frame["path"].str.contains(os.sep + "mig" + os.sep)]
  expected = sorted(read_json(representations / "models" / m / "metrics" / "mean" / "mig" / "results" / "json" /
                              "evaluation_results.json")["discrete_mig"] for m in ("m0", "m1"))
  assert sorted(mig_rows["evaluation_results.discrete_mig"]) == pytest.approx(expected, abs=1e-15, rel=0)  # 15 decimals

  table = pd.read_csv(outputs["csv"])
  assert len(table) == 6 and table["path"].is_unique
  assert sorted(table["metric"]) == sorted(METRICS * 2)
  assert set(table["model"]) == {"beta_vae"} and set(table["dataset"]) == {"dummy_data"}
  assert sorted(table["seed"]) == [0, 0, 0, 1, 1, 1]
  assert table.loc[table["metric"] == "dci", "evaluation_results.disentanglement"].notna().all()
  assert table.loc[table["metric"] == "mig", "evaluation_results.disentanglement"].isna().all()
  with open(outputs["png"], "rb") as f:
    assert f.read(8) == b"\x89PNG\r\n\x1a\n"


def test_output_layout_mirrors_dlib_under_output_dir():
  rep = os.path.join("runs", "7", "postprocessed", "mean")
  assert batch.output_dir_for(rep, "mig") == os.path.abspath(os.path.join("runs", "7", "metrics", "mean", "mig"))
  prefix, wild = batch.fixed_prefix("runs/*/postprocessed/mean")
  assert (prefix, wild) == ("runs", True)
  assert batch.output_dir_for(rep, "mig", "/o", prefix, wild) == "/o/7/metrics/mean/mig"
  prefix, wild = batch.fixed_prefix(rep)  # no wildcard: the model directory's name
  assert batch.output_dir_for(rep, "dci", "/o", prefix, wild) == "/o/7/metrics/mean/dci"
  # A representation outside a postprocessed/ directory: metrics next to it.
  assert batch.output_dir_for("reps/a", "mig") == os.path.abspath("reps/metrics/a/mig")


def test_bad_input_is_one_clear_error(tmp_path):
  with pytest.raises(UserError, match="matches no directory"):
    batch.find_representations([str(tmp_path / "nothing" / "*")])
  with pytest.raises(UserError, match="unknown metric 'nope'"):
    batch.metric_configs(["nope"])
  with pytest.raises(UserError, match="gin configuration"):
    batch.ConfigComparer(batch.metric_configs(["mig"]), ["mig.no_such_parameter = 1"])
  result = run_python(["-m", "evaluation.batch", "--representations", str(tmp_path / "none")])
  assert result.returncode == 2 and result.stderr.strip().splitlines()[-1].startswith("error: --representations")


def test_workers_are_capped_at_the_memory_their_data_sets_need_and_zero_or_less_is_refused(
    representations, monkeypatch, capsys):
  assert 0 < workers.memory_available() <= os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
  monkeypatch.setattr(workers, "memory_available", lambda: 5 * 2**30)
  monkeypatch.setattr(workers, "cpu_count", lambda: 8)
  assert workers.make_backend("local", 100, memory_per_worker=2 * 2**30).workers == 2
  assert capsys.readouterr().err == ("[workers] --workers 100 capped at 2: 8 core(s), 5.0 GiB of memory available, "
                                     "about 2.0 GiB per worker\n")
  assert workers.make_backend("local", 3, memory_per_worker=2**30).workers == 3 and not capsys.readouterr().err
  # Each worker holds its own copy of the data set its pair is scored on.
  pairs = batch.make_pairs([str(representations / "models" / "m0" / "postprocessed" / "mean")],
                           batch.metric_configs(["mig"]))
  assert batch.memory_per_worker(pairs) == batch.WORKER_BYTES  # dummy_data: drawn on demand
  monkeypatch.setattr(postprocess, "recorded_dataset", lambda *args: "dsprites_full")
  assert batch.memory_per_worker(pairs) == batch.WORKER_BYTES + 737_280 * 64 * 64
  for count in ("0", "-3"):  # refused before the metric configs are read (which imports TensorFlow)
    result = run_python(["-c", "import sys\nfrom evaluation import batch\ntry:\n  batch.main(['--representations', "
                         f"'x', '--workers', '{count}'])\nexcept SystemExit as e:\n  print(e.code, 'tensorflow' in "
                         "sys.modules)"])
    assert result.stdout.split() == ["2", "False"], result.stdout + result.stderr
    assert result.stderr.strip() == f"error: --workers must be at least 1, got {count}"


def test_ctrl_c_stops_a_batch_with_one_line_and_no_resume_hint(representations, tmp_path):
  # Ctrl-C at a terminal signals the whole process group: the batch and its workers.
  output = str(tmp_path / "out")
  process = subprocess.Popen(batch_command(representations, output, "--workers", "2"), cwd=REPOSITORY_ROOT,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
                             env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"),
                             preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
  try:
    deadline = time.time() + 300
    while not glob.glob(os.path.join(output, "**", "mig.log"), recursive=True) and time.time() < deadline:
      assert process.poll() is None, process.communicate()
      time.sleep(0.1)
    os.killpg(process.pid, signal.SIGINT)
    stdout, stderr = process.communicate(timeout=120)
  finally:
    process.kill()
    process.wait()
  assert process.returncode == 130, stderr
  assert [line for line in stderr.splitlines() if line.startswith("error:")] == [
      "error: interrupted; completed work is kept"], stderr
  assert "--resume" not in stdout + stderr and "Traceback" not in stderr, stdout + stderr


def test_local_backend_isolates_exceptions_and_dead_workers_and_caps_threads():
  # Standard-library functions as tasks: a spawned worker imports nothing heavy for them.
  tasks = [workers.Task(int, "1"), workers.Task(os._exit, 3), workers.Task(int, "x"), workers.Task(int, "4"),
           workers.Task(os.getenv, "OMP_NUM_THREADS"), workers.Task(os.getenv, "TF_NUM_INTRAOP_THREADS")]
  backend = workers.LocalBackend(workers=2, threads=3, import_tensorflow=False)
  outcomes = dict(backend.run(tasks))
  assert sorted(outcomes) == list(range(len(tasks)))
  assert [outcomes[i]["status"] for i in range(len(tasks))] == ["ok", "failed", "failed", "ok", "ok", "ok"]
  assert outcomes[0]["result"] == 1 and outcomes[3]["result"] == 4
  assert "worker process died (exit code 3)" in outcomes[1]["error"]["message"]
  assert outcomes[2]["error"]["type"] == "ValueError" and "Traceback" in outcomes[2]["error"]["traceback"]
  assert outcomes[4]["result"] == "3" and outcomes[5]["result"] == "3"
  assert workers.threads_per_worker(2, cores=2) == 1 and workers.threads_per_worker(3, cores=8) == 2


class FakeRay:
  """Just enough of Ray's API to see what each task asks the cluster for; runs tasks in this process."""

  def __init__(self, resources):
    self.resources, self.options = resources, []

  def cluster_resources(self):
    return self.resources

  def remote(self, function):
    fake = self

    class Remote:
      def options(self, **options):
        fake.options.append(options)
        return self

      def remote(self, *args):
        return (function, args)

    return Remote()

  def wait(self, references, num_returns):
    return references[:num_returns], references[num_returns:]

  def get(self, reference):
    function, args = reference
    return function(*args)

  def cancel(self, reference, force):
    pass


@pytest.mark.parametrize("cluster, expected_gpus", [({"CPU": 8.0, "GPU": 2.0}, 0.25), ({"CPU": 8.0}, 0)])
def test_ray_tasks_request_gpus_only_when_the_cluster_has_them(cluster, expected_gpus):
  backend = workers.RayBackend(address="fake:6379", threads=2, gpus_per_task=0.25)
  backend.ray = FakeRay(cluster)
  outcomes = dict(backend.run([workers.Task(int, "5"), workers.Task(int, "y")]))
  assert outcomes[0] == {"status": "ok", "result": 5, "seconds": pytest.approx(0, abs=1)}
  assert outcomes[1]["status"] == "failed" and outcomes[1]["error"]["type"] == "ValueError"
  (options,) = backend.ray.options
  assert options["num_gpus"] == expected_gpus and options["num_cpus"] == 2
  assert options["runtime_env"]["env_vars"]["OMP_NUM_THREADS"] == "2"


def batch_command(representations, output, *options):
  """Four pairs; mig with many samples, so that its pairs run long enough to be killed mid-pair."""
  return [sys.executable, "-m", "evaluation.batch", "--representations",
          str(representations / "models" / "m[01]" / "postprocessed" / "mean"), "--metrics", "mig,sap_score",
          "--metric_bindings", "mig.num_train = 20000", *METRIC_BINDINGS[3:], "--output", output, *options]


def run_killing_a_mig_worker(command, kills=1, roots=None, env=None):
  """Runs the batch ``command`` and SIGKILLs the worker evaluating a mig pair, ``kills`` times (a Ray retry runs the
  same pair again); returns the command's exit status, its stdout and the killed pair's output directory."""
  process = subprocess.Popen(command, cwd=REPOSITORY_ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                             text=True, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2",
                                                 **(env or {})))
  output = command[command.index("--output") + 1]
  killed_logs = []

  def the_pair_to_kill(log):  # any mig pair the first time, then that same pair again
    return log.startswith(output) and "/mig.log" in log and log == (killed_logs[0] if killed_logs else log)

  try:
    for _ in range(kills):
      killed_logs.append(kill_worker_when(process.pid, the_pair_to_kill, roots=roots))
    stdout, _ = process.communicate(timeout=600)
  finally:
    process.kill()  # a no-op once it has ended; its workers exit once orphaned
    process.wait()
  assert None not in killed_logs, f"no worker was seen evaluating mig ({killed_logs})"
  return process.returncode, stdout, killed_logs[0][:-len(".log")]


def assert_the_killed_pair_alone_failed(returncode, stdout, killed_pair, expected_error):
  assert returncode == 1 and "3 evaluated, 0 already complete, 1 failed" in stdout, stdout
  error = read_json(killed_pair + ".error.json")
  assert expected_error in f"{error['type']}: {error['message']}", error
  assert not os.path.exists(killed_pair)  # nothing half-written where a result would be
  output = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(killed_pair))))
  results = glob.glob(os.path.join(output, "**", "evaluation_results.json"), recursive=True)
  assert len(results) == 3 and not any(path.startswith(killed_pair + os.sep) for path in results)


def test_a_worker_killed_mid_pair_fails_that_pair_alone_and_a_rerun_redoes_it(representations, tmp_path):
  command = batch_command(representations, str(tmp_path / "out"), "--workers", "2")
  returncode, stdout, killed_pair = run_killing_a_mig_worker(command)
  assert_the_killed_pair_alone_failed(returncode, stdout, killed_pair, "worker process died (exit code -9)")

  rerun = run_python(command[1:])
  assert rerun.returncode == 0 and "1 evaluated, 3 already complete, 0 failed" in rerun.stdout, rerun.stdout
  assert os.path.isfile(os.path.join(killed_pair, batch.RESULTS_FILE))
  assert not os.path.exists(killed_pair + ".error.json")


def test_a_ray_task_whose_worker_is_killed_again_on_its_retry_fails_that_pair_alone(representations, tmp_path):
  pytest.importorskip("ray", reason=f"Ray is not installed ({workers.RAY_REQUIREMENT})")
  command = batch_command(representations, str(tmp_path / "out"), "--backend", "ray")
  returncode, stdout, killed_pair = run_killing_a_mig_worker(command, kills=2, env=RAY_ENVIRONMENT)
  assert_the_killed_pair_alone_failed(returncode, stdout, killed_pair, "WorkerCrashedError")


def test_a_ray_task_killed_on_a_two_node_cluster_is_retried_and_the_others_finish(representations, tmp_path):
  pytest.importorskip("ray", reason=f"Ray is not installed ({workers.RAY_REQUIREMENT})")
  with ray_cluster() as (address, nodes):
    command = batch_command(representations, str(tmp_path / "out"), "--backend", "ray", "--address", address)
    returncode, stdout, killed_pair = run_killing_a_mig_worker(command, roots=[node.pid for node in nodes],
                                                               env=RAY_ENVIRONMENT)
    for temp_dir in (node.args[node.args.index("--temp-dir") + 1] for node in nodes):  # both nodes ran pairs
      logs = glob.glob(os.path.join(temp_dir, "session_latest", "logs", "worker-*"))
      assert any(":task_name:_ray_task" in open(log).read() for log in logs), temp_dir
  assert returncode == 0 and "4 evaluated, 0 already complete, 0 failed" in stdout, stdout
  assert os.path.isfile(os.path.join(killed_pair, batch.RESULTS_FILE))  # the retry's, written whole
  assert not os.path.exists(killed_pair + ".error.json")


# Token authentication with a token of the test's own (not the user's ~/.ray/auth_token).
# RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=1 explicitly: the local instance of this session (ray_instance) sets it to 0 in
# os.environ, which the nodes would inherit, and a worker node refuses to start with 0.
RAY_ENVIRONMENT = {"RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32),
                   "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "1"}
# Loopback addresses for the two nodes. Not 127.0.0.1: Ray replaces that one by the machine's network address,
# unless RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0, which in turn forbids a second node.
HEAD_IP, NODE_IP = "127.0.0.2", "127.0.0.3"


@contextlib.contextmanager
def ray_cluster():
  """A head and a second node on loopback, one CPU each; yields the head's address and the two ``ray start``
  processes. They are stopped by their own process groups, never by ``ray stop`` (it kills every Ray on the machine).

  Their temporary directories are not under pytest's tmp_path: Ray puts its sockets there, and the path of a Unix
  socket is limited to 107 bytes."""
  temp_root = tempfile.mkdtemp(prefix="ray-", dir="/tmp")
  address = f"{HEAD_IP}:{free_port()}"
  head = ["--head", "--node-ip-address", HEAD_IP, "--port", address.split(":")[1], "--include-dashboard", "false",
          "--dashboard-port", str(free_port()), "--ray-client-server-port", str(free_port())]
  nodes = []
  try:
    for name, options in (("head", head), ("node", ["--address", address, "--node-ip-address", NODE_IP])):
      nodes.append(start_ray_node(options, os.path.join(temp_root, name)))
    yield address, nodes
  finally:
    for node in nodes:
      stop_process_group(node)
    shutil.rmtree(temp_root, ignore_errors=True)


def start_ray_node(options, temp_dir, timeout=180):
  """``ray start … --block`` in a session of its own; returns it once its node runs."""
  out = temp_dir + ".out"
  with open(out, "w") as log:
    node = subprocess.Popen([sys.executable, "-m", "ray.scripts.scripts", "start", *options, "--num-cpus", "1",
                             "--temp-dir", temp_dir, "--block"], stdout=log, stderr=subprocess.STDOUT,
                            env=dict(os.environ, **RAY_ENVIRONMENT), start_new_session=True)
  deadline = time.time() + timeout
  while "will now block forever" not in open(out).read():
    if node.poll() is not None or time.time() > deadline:
      stop_process_group(node)
      pytest.fail(f"ray start {' '.join(options)} did not start:\n{open(out).read()[-3000:]}")
    time.sleep(0.5)
  return node


def stop_process_group(process):
  """SIGTERM (``ray start --block`` then stops its node), then SIGKILL for whatever of its session is left."""
  process.terminate()
  try:
    process.wait(timeout=30)
  except subprocess.TimeoutExpired:
    pass
  try:
    os.killpg(process.pid, signal.SIGKILL)
  except ProcessLookupError:
    pass
  process.wait()


def free_port():
  with socket.socket() as listener:
    listener.bind((HEAD_IP, 0))
    return listener.getsockname()[1]
