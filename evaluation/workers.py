"""Running many independent tasks, in local worker processes or on a Ray cluster; one failure never stops the rest.

``evaluation.batch`` (a task is one representation × metric config) and ``evaluation.sweep`` (a task is one sweep
point: train → postprocess → evaluate) share this module. It has two backends:

    LocalBackend   N worker processes on this machine. This is the default, and it needs no service.
    RayBackend     tasks on a Ray cluster: an existing one (``address``) or a local instance started here.
                   Ray is imported only when this backend runs, so the local backend never needs it.

A task is a ``Task(function, payload, log_path)``. ``function`` is a module-level function, so it can be pickled
by name. Its outcome is one dict:

    {"status": "ok", "result": <what function returned>, "seconds": s}
    {"status": "failed", "error": {"type", "message", "traceback"}, "seconds": s}

A Python exception, a worker process that dies (segfault, out-of-memory kill) and a Ray task lost with its node
each become the "failed" outcome of that one task. A task's stdout and stderr, at the file-descriptor level so
TensorFlow's C++ logs are included, are appended to its ``log_path`` when one is given, so N workers do not
interleave their output with the progress bar.

Threads: each worker gets ``threads_per_worker`` threads, which defaults to cores // workers. The OpenMP,
OpenBLAS, MKL and TensorFlow thread-pool variables are set in the worker's environment before it starts, so they
are in place before it imports NumPy or TensorFlow. TensorFlow's intra-/inter-op pools are also set through
``tf.config.threading`` before TensorFlow starts its runtime. Without this, N workers would each start a
full-size pool, giving N × cores threads on cores cores.
"""

import collections
import contextlib
import dataclasses
import multiprocessing
import multiprocessing.connection
import os
import sys
import threading
import time
import traceback
from typing import Any, Callable, Optional

from submission import cli
from submission.atomic import write_json_atomically
from submission.errors import UserError

BACKENDS = ("local", "ray")
# Every variable a numerical library reads for its thread-pool size; TF reads the last two at runtime start-up.
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "VECLIB_MAXIMUM_THREADS",
                    "NUMEXPR_NUM_THREADS", "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS")


@dataclasses.dataclass(frozen=True)
class Task:
  function: Callable[[Any], Any]
  payload: Any
  log_path: Optional[str] = None


def cpu_count():
  """Cores this process may use (the affinity mask, not the machine's total)."""
  try:
    return len(os.sched_getaffinity(0))
  except AttributeError:
    return os.cpu_count() or 1


def memory_available():
  """Bytes of memory this process can still take: the kernel's MemAvailable, or less when a container's cgroup
  limit leaves less room; None when neither can be read."""
  available = None
  try:
    with open("/proc/meminfo") as f:
      available = next(int(line.split()[1]) * 1024 for line in f if line.startswith("MemAvailable:"))
  except (OSError, ValueError, StopIteration):
    pass
  try:
    with open("/sys/fs/cgroup/memory.max") as f:
      limit = f.read().strip()
    with open("/sys/fs/cgroup/memory.current") as f:
      room = int(limit) - int(f.read())
    available = room if available is None else min(available, room)
  except (OSError, ValueError):  # no cgroup v2 file, or no limit ("max")
    pass
  return available


def threads_per_worker(workers, cores=None):
  return max(1, (cores or cpu_count()) // max(1, workers))


def thread_environment(threads):
  """Environment variables that cap every numerical library's thread pool at ``threads``."""
  environment = {name: str(threads) for name in THREAD_VARIABLES}
  # GPU workers that share a device must not each reserve all of its memory up front.
  environment["TF_FORCE_GPU_ALLOW_GROWTH"] = "true"
  return environment


def limit_tensorflow_threads(threads):
  """Sets TF's thread pools if TF is imported and its runtime not yet started (else the variables already did)."""
  if "tensorflow" not in sys.modules:
    return
  tf = sys.modules["tensorflow"]
  try:
    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)
  except RuntimeError:
    pass  # the runtime has started (a reused Ray worker): the environment variables set its pools


def failure(error, seconds=0.0, tb=None):
  return {"status": "failed", "seconds": seconds,
          "error": {"type": type(error).__name__, "message": str(error),
                    "traceback": tb if tb is not None else "".join(traceback.format_exception(error))}}


@contextlib.contextmanager
def redirected_output(log_path):
  """Appends this process's stdout and stderr (file descriptors 1 and 2) to ``log_path`` inside the block."""
  if not log_path:
    yield
    return
  os.makedirs(os.path.dirname(os.path.abspath(log_path)), exist_ok=True)
  sys.stdout.flush()
  sys.stderr.flush()
  saved = os.dup(1), os.dup(2)
  with open(log_path, "a") as log:
    os.dup2(log.fileno(), 1)
    os.dup2(log.fileno(), 2)
    try:
      yield
    finally:
      sys.stdout.flush()
      sys.stderr.flush()
      os.dup2(saved[0], 1)
      os.dup2(saved[1], 2)
      os.close(saved[0])
      os.close(saved[1])


def run_isolated(task):
  """Runs one task and returns its outcome dict; an exception becomes a "failed" outcome, never a raise."""
  start = time.time()
  try:
    with redirected_output(task.log_path):
      result = task.function(task.payload)
  except Exception as e:  # pylint: disable=broad-except  (the point: one task's error must not stop the rest)
    return failure(e, time.time() - start)
  return {"status": "ok", "result": result, "seconds": time.time() - start}


def record_failure(error_file, outcome, **details):
  """Writes a failed task's ``details``, error and traceback to ``error_file``; returns the error on one line."""
  error = outcome["error"]
  write_json_atomically(error_file, dict(details, seconds=outcome.get("seconds"),
                                         time=time.strftime("%Y-%m-%d %H:%M:%S"), **error))
  return f"{error['type']}: {error['message']}"


def print_failures(label, failures):
  """One line per ``{"task", "error", "error_file"}`` of a summary (stdout: it is part of the command's result)."""
  for failed in failures:
    print(f"[{label}] FAILED {failed['task']}: {cli.one_line(failed['error'])[:300]} "
          f"(details: {failed['error_file']})")
  sys.stdout.flush()


def remove_if_exists(path):
  try:
    os.remove(path)
  except FileNotFoundError:
    pass


@contextlib.contextmanager
def patched_environment(overrides):
  """``os.environ`` with ``overrides`` inside the block (a spawned child copies the environment when it starts)."""
  saved = {name: os.environ.get(name) for name in overrides}
  os.environ.update(overrides)
  try:
    yield
  finally:
    for name, value in saved.items():
      if value is None:
        os.environ.pop(name, None)
      else:
        os.environ[name] = value


# ---------------------------------------------------------------------------------------------------------------
# In-process backend: one task after another in this process (no start-up cost; what one worker needs).
# ---------------------------------------------------------------------------------------------------------------

class InProcessBackend:
  name = "in-process"

  @staticmethod
  def describe():
    return "in this process"

  @staticmethod
  def run(tasks):
    for index, task in enumerate(tasks):
      yield index, run_isolated(task)

  def close(self):
    pass


# ---------------------------------------------------------------------------------------------------------------
# Local backend: N spawned worker processes, one task at a time each.
# ---------------------------------------------------------------------------------------------------------------

def _exit_when_orphaned(parent_pid):
  """A worker whose coordinator was killed must not go on writing into directories a re-run will use."""
  while True:
    if os.getppid() != parent_pid:
      os._exit(1)  # pylint: disable=protected-access
    time.sleep(1.0)


def _worker_main(connection, parent_pid, threads, import_tensorflow):
  threading.Thread(target=_exit_when_orphaned, args=(parent_pid,), daemon=True).start()
  try:
    if import_tensorflow:
      import tensorflow  # noqa: F401  pylint: disable=import-outside-toplevel,unused-import
      limit_tensorflow_threads(threads)
    while True:
      try:
        message = connection.recv()
      except EOFError:
        return
      if message is None:
        return
      index, task = message
      connection.send((index, run_isolated(task)))
  except KeyboardInterrupt:
    return


class _Worker:
  def __init__(self, context, threads, import_tensorflow):
    self.connection, child_end = context.Pipe()
    self.process = context.Process(target=_worker_main, args=(child_end, os.getpid(), threads, import_tensorflow),
                                   daemon=True)
    with patched_environment(thread_environment(threads)):
      self.process.start()
    child_end.close()
    self.task_index = None

  def stop(self):
    try:
      self.connection.send(None)
    except (OSError, ValueError):
      pass
    self.process.join(timeout=5)
    if self.process.is_alive():
      self.process.kill()
      self.process.join()
    self.connection.close()


class LocalBackend:
  """Runs tasks in ``workers`` spawned processes; a worker that dies fails its own task only and is replaced."""

  name = "local"

  def __init__(self, workers=1, threads=None, import_tensorflow=True, keep_workers=False):
    if workers < 1:
      raise UserError(f"--workers must be at least 1, got {workers}")
    self.workers = workers
    self.threads = threads or threads_per_worker(workers)
    self.import_tensorflow = import_tensorflow
    # With ``keep_workers``, idle workers outlive one ``run`` for the next, until ``close`` (the sweep's check and
    # then its points share them: a worker's TensorFlow import is paid once); else each ``run`` stops its own.
    self.keep_workers = keep_workers
    self.pool = []

  def describe(self):
    return f"local backend: {self.workers} worker(s) × {self.threads} thread(s)"

  def run(self, tasks):
    """Yields ``(index, outcome)`` for each task as it finishes (in completion order)."""
    pending = collections.deque(enumerate(tasks))
    context = multiprocessing.get_context("spawn")  # never fork a process that may hold TF's runtime
    pool, busy = self.pool, {}
    try:
      while pending or busy:
        while pending and len(busy) < self.workers:
          worker = next((w for w in pool if w.task_index is None), None)
          if worker is None:
            worker = _Worker(context, self.threads, self.import_tensorflow)
            pool.append(worker)
          index, task = pending.popleft()
          worker.task_index = index
          busy[index] = worker
          worker.connection.send((index, task))
        waitables = [w.connection for w in busy.values()] + [w.process.sentinel for w in busy.values()]
        ready = set(multiprocessing.connection.wait(waitables))
        for index, worker in list(busy.items()):
          if worker.connection in ready or worker.process.sentinel in ready:
            outcome = self._collect(worker)
            del busy[index]
            if outcome is None:  # the process died before answering: its task failed, its slot is refilled
              pool.remove(worker)
              worker.stop()
              code = worker.process.exitcode
              outcome = failure(ChildProcessError(f"worker process died (exit code {code}) while running this "
                                                  f"task"), tb="")
            worker.task_index = None
            yield index, outcome
    finally:
      for worker in [w for w in pool if w.task_index is not None]:
        # Interrupted mid-task: its output is written atomically, so nothing half-done survives; the re-run redoes
        # that task.
        worker.process.kill()
        worker.stop()
        pool.remove(worker)
      if not self.keep_workers:
        self.close()

  @staticmethod
  def _collect(worker):
    try:
      if worker.connection.poll():
        _, outcome = worker.connection.recv()
        return outcome
    except (EOFError, OSError):
      pass
    return None

  def close(self):
    while self.pool:
      self.pool.pop().stop()


# ---------------------------------------------------------------------------------------------------------------
# Ray backend: an existing cluster (address) or a local instance started here.
# ---------------------------------------------------------------------------------------------------------------

RAY_REQUIREMENT = "ray==2.60.0"


def import_ray(start_local):
  """Imports Ray; a missing install is a UserError naming the package to install."""
  # Ray's opt-out of sending usage statistics: everything here runs offline.
  os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
  if start_local and "ray" not in sys.modules:
    # A local instance listens on loopback only (Ray's switch for single-machine clusters, read at import):
    # a batch on one machine must not open ports to the network.
    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
  try:
    import ray  # pylint: disable=import-outside-toplevel
  except ImportError as e:
    raise UserError(f"--backend ray needs the [ray] extra ({RAY_REQUIREMENT}), which is not installed: run "
                    f"scripts/setup_env.sh ray (or pip install -e '.[ray]')") from e
  return ray


def _ray_task(task, threads):
  limit_tensorflow_threads(threads)
  return run_isolated(task)


class RayBackend:
  """Tasks as Ray remote functions, each asking for ``threads`` CPUs and, on a cluster with GPUs, ``gpus`` GPUs.

  The project and its virtual environment must be at the same path on every node (workers import it from
  ``cli.REPOSITORY_ROOT``), and the input and output directories must be on a filesystem all nodes share.
  """

  name = "ray"

  def __init__(self, address=None, workers=None, threads=None, gpus_per_task=1.0):
    if workers is not None and workers < 1:
      raise UserError(f"--workers must be at least 1, got {workers}")
    self.address = address
    self.workers = workers
    self.threads = threads or (threads_per_worker(workers) if workers else 1)
    self.gpus_per_task = gpus_per_task
    self.started_here = False
    self.ray = None

  def connect(self):
    if self.ray is not None:
      return self.ray
    ray = import_ray(start_local=not self.address)
    if not ray.is_initialized():
      if self.address:
        try:
          ray.init(address=self.address, log_to_driver=False)
        except (ConnectionError, RuntimeError, ValueError) as e:
          raise UserError(f"cannot connect to the Ray cluster at {self.address}: {e}") from e
      else:
        ray.init(address="local", num_cpus=cpu_count(), include_dashboard=False, log_to_driver=False)
        self.started_here = True
    self.ray = ray
    return ray

  def cluster_gpus(self):
    return self.connect().cluster_resources().get("GPU", 0)

  def describe(self):
    ray = self.connect()
    resources = ray.cluster_resources()
    where = f"cluster at {self.address}" if self.address else "local Ray instance"
    gpus = f", {self.gpus_per_task:g} GPU per task" if resources.get("GPU", 0) else ""
    return (f"ray backend: {where} with {resources.get('CPU', 0):g} CPU(s), {resources.get('GPU', 0):g} GPU(s); "
            f"{self.threads} thread(s){gpus} per task")

  def run(self, tasks):
    """Yields ``(index, outcome)`` for each task as it finishes; at most ``workers`` tasks in flight if set."""
    ray = self.connect()
    num_gpus = self.gpus_per_task if self.cluster_gpus() > 0 else 0
    environment = thread_environment(self.threads)  # the project itself is installed in the workers' .venv
    # One retry: a task lost with its node is worth a second try, while a task that kills its worker every time
    # should not be run four times (Ray's default).
    remote = ray.remote(_ray_task).options(num_cpus=self.threads, num_gpus=num_gpus, max_retries=1,
                                           runtime_env={"env_vars": environment})
    pending = collections.deque(enumerate(tasks))
    in_flight = {}
    limit = self.workers or len(pending) or 1
    try:
      while pending or in_flight:
        while pending and len(in_flight) < limit:
          index, task = pending.popleft()
          in_flight[remote.remote(task, self.threads)] = index
        done, _ = ray.wait(list(in_flight), num_returns=1)
        for reference in done:
          index = in_flight.pop(reference)
          try:
            outcome = ray.get(reference)
          except Exception as e:  # pylint: disable=broad-except  (a lost worker or node fails this task only)
            outcome = failure(e, tb="")
          yield index, outcome
    finally:
      for reference in in_flight:
        ray.cancel(reference, force=True)

  def close(self):
    if self.started_here and self.ray is not None:
      self.ray.shutdown()
      self.started_here = False
      self.ray = None


def make_backend(name, workers=None, address=None, threads=None, gpus_per_task=1.0, keep_workers=False,
                 memory_per_worker=None):
  """The backend ``name``. Local workers are capped at the cores and, given ``memory_per_worker`` (bytes), at the
  memory available; ``keep_workers``: they outlive a ``run`` until ``close`` (LocalBackend)."""
  if name == "local":
    if address:
      raise UserError("--address is for --backend ray")
    workers = 1 if workers is None else workers
    if workers < 1:
      raise UserError(f"--workers must be at least 1, got {workers}")
    # Each worker is a process with its own TensorFlow and data set: more of them than cores only compete for
    # memory (100 asked for on 2 cores started 29 workers, until the kernel killed one).
    cores = cpu_count()
    allowed, limits = cores, [f"{cores} core(s)"]
    available = memory_available() if memory_per_worker else None
    if available is not None:
      allowed = min(allowed, max(1, int(available // memory_per_worker)))
      limits.append(f"{available / 2**30:.1f} GiB of memory available, about {memory_per_worker / 2**30:.1f} GiB "
                    f"per worker")
    if workers > allowed:
      print(f"[workers] --workers {workers} capped at {allowed}: {', '.join(limits)}", file=sys.stderr, flush=True)
      workers = allowed
    return LocalBackend(workers, threads, keep_workers=keep_workers)
  if name == "ray":
    return RayBackend(address, workers, threads, gpus_per_task)
  raise UserError(f"unknown backend {name!r}; choose one of: {', '.join(BACKENDS)}")


# ---------------------------------------------------------------------------------------------------------------
# Progress over tasks, on stderr.
# ---------------------------------------------------------------------------------------------------------------

class TaskProgress:
  """A plain-text bar over tasks with counts and ETA. On a terminal it redraws one line; elsewhere one line per task.

  The ETA is the throughput so far (tasks run in this session per second of wall time, all workers together)
  applied to the tasks left; tasks skipped as already complete do not count toward it.
  """

  WIDTH = 24  # characters of the bar

  def __init__(self, label, total, skipped=0):
    self.label, self.total = label, total
    self.stream = sys.stderr
    self.counts = {"ok": 0, "failed": 0, "skipped": skipped}
    self.start = time.time()
    self.interactive = hasattr(self.stream, "isatty") and self.stream.isatty()
    if total:
      self._draw("")

  @property
  def done(self):
    return sum(self.counts.values())

  def update(self, status, description=""):
    self.counts[status] += 1
    self._draw(description)

  def line(self, description):
    ran = self.counts["ok"] + self.counts["failed"]
    elapsed = time.time() - self.start
    remaining = self.total - self.done
    eta = cli.format_duration(elapsed / ran * remaining) if ran and remaining else ("0:00:00" if not remaining else "?")
    filled = int(self.WIDTH * self.done / self.total) if self.total else self.WIDTH
    bar = "#" * filled + "-" * (self.WIDTH - filled)
    return (f"[{self.label}] {self.done}/{self.total} {100 * self.done // max(1, self.total):3d}% |{bar}| "
            f"ok {self.counts['ok']} failed {self.counts['failed']} skipped {self.counts['skipped']} "
            f"elapsed {cli.format_duration(elapsed)} ETA {eta}" + (f"  {description}" if description else ""))

  def _draw(self, description):
    text = self.line(description)
    if self.interactive:
      self.stream.write("\r\033[K" + text)
    else:
      self.stream.write(text + "\n")
    self.stream.flush()

  def close(self):
    if self.interactive:
      self.stream.write("\n")
      self.stream.flush()
