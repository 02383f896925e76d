"""Batch evaluation: every (representation × metric config) pair through ``evaluation.evaluate``, in parallel.

    python -m evaluation.batch --representations GLOB [GLOB ...]
                               [--metrics LIST | --metric_configs FILE [FILE ...]] [--metric_bindings B ...]
                               [--output DIR] [--workers N] [--threads T]
                               [--backend local|ray] [--address ADDR] [--gpus_per_task G]

Each pair is evaluated by ``evaluation.evaluate.evaluate_with_gin``, which calls dlib's metric function with
dlib's own metric config file, both unchanged. ``--metrics`` names configs of dlib's unsupervised_study_v1
(default: the five the pipeline scores). ``--metric_configs`` takes any metric gin files instead; a metric's
name is the file's base name, as in dlib.

Layout (dlib's): a representation ``<X>/postprocessed/<p>`` is scored into ``<X>/metrics/<p>/<metric>/results``.
A representation directory ``R`` that is not under a ``postprocessed`` directory is scored into
``dirname(R)/metrics/basename(R)/<metric>``. With ``--output OUT`` the same tree is mirrored under OUT:
``OUT/<X relative to the pattern's fixed prefix>/metrics/<p>/<metric>``, where the fixed prefix is the pattern
up to its first wildcard (``runs/*/postprocessed/mean`` → ``OUT/<run>/metrics/mean/<metric>``). A pattern with no
wildcard gives ``OUT/<basename X>/...``.

Resume: a pair is skipped when ``results/json/evaluation_results.json`` exists and the configuration its
evaluation recorded (dlib's operative config, ``results/gin/evaluation.gin``) equals the configuration it would
get now. For every parameter recorded there, the value the current metric config and ``--metric_bindings`` would
give it must be the same. That value is the bound one, or the function's default if nothing binds it, and
``dataset.name = 'auto'`` is resolved as the evaluation resolves it. ``evaluation.name`` is not compared: it only
names the artifact directory. Results written by ``evaluation.pipeline`` or by an earlier batch count the same
way.

Workers: local workers are capped at the cores this process may use and at the memory available (the cgroup's
limit too) over what one worker needs, ``memory_per_worker``: about 1.5 GiB plus the largest data set the pairs are
scored on, since each worker loads its own copy (3.0 GiB for dSprites). A line says so when ``--workers`` is capped.

Failures: a pair that fails (an exception, or a worker process that dies) writes ``<pair output>.error.json``
with the representation, the metric, the error's type, message and traceback, and the path of
``<pair output>.log``, which keeps the pair's stdout/stderr. The other pairs go on. The exit status is 1 if any
pair failed, and the summary names each failure. A later success removes both files. On success the log is
discarded.

Reproducibility: before each pair the worker seeds NumPy's global generator with 0. Some sklearn estimators in
dlib's metrics (dci's GradientBoostingClassifier, for example) are built without ``random_state`` and draw from
it. Without the seed, a pair's numbers would depend on what its worker ran before. With it, one worker or many,
the local backend or Ray, every pair gives the same numbers.
"""

import ast
import dataclasses
import glob
import os
import sys
import time

from evaluation import workers
from evaluation.metrics import table
from submission import cli, config_record, layout
from submission.atomic import read_json
from submission.errors import UserError
from submission.layout import RunLayout

RESULTS_FILE = layout.step_results("", layout.EVALUATION)  # relative to a metric directory
RECORDED_CONFIG = layout.step_gin("", layout.EVALUATION)
WILDCARDS = "*?["
# Recorded parameters that cannot change a score: evaluation.name only names the artifact directory (dlib_reproduce
# sets it to the metric's name, evaluation.pipeline leaves it empty; either run's results count as complete);
# representation_cache.enabled only changes how codes are computed (to float rounding, see representation_cache).
IGNORED_KEYS = frozenset({"evaluation.name", "representation_cache.enabled"})
# On a cluster with GPUs each evaluation asks for a quarter GPU by default: the encoding is the only GPU work,
# and the rest (sklearn) is CPU-bound, so four evaluations share a device (TF allocates GPU memory on demand).
DEFAULT_GPUS_PER_TASK = 0.25


@dataclasses.dataclass(frozen=True)
class Pair:
  representation_dir: str
  metric: str
  config_files: tuple
  bindings: tuple
  output_dir: str

  def describe(self):
    return f"{self.metric} on {self.representation_dir}"

  @property
  def error_file(self):
    return self.output_dir + ".error.json"

  @property
  def log_file(self):
    return self.output_dir + ".log"


# --- what to evaluate --------------------------------------------------------------------------------------------

def fixed_prefix(pattern):
  """The directories of ``pattern`` before its first component with a wildcard (the whole path if none has one)."""
  parts = os.path.normpath(pattern).split(os.sep)
  fixed = []
  for part in parts:
    if any(c in part for c in WILDCARDS):
      return os.sep.join(fixed) or (os.sep if pattern.startswith(os.sep) else "."), True
    fixed.append(part)
  return os.sep.join(fixed), False


def find_representations(patterns):
  """[(representation_dir, fixed prefix of the pattern that found it, whether that pattern had a wildcard)]."""
  found = {}
  for pattern in patterns:
    prefix, wild = fixed_prefix(pattern)
    matches = sorted(p for p in glob.glob(pattern, recursive=True) if os.path.isdir(p))
    if not matches:
      raise UserError(f"--representations {pattern!r} matches no directory")
    for path in matches:
      found.setdefault(os.path.normpath(path), (os.path.normpath(prefix), wild))
  return [(path, prefix, wild) for path, (prefix, wild) in sorted(found.items())]


def model_and_postprocessing(representation_dir):
  """(X, p): the model directory and the postprocessing name of a representation directory, as dlib lays them."""
  parent = os.path.dirname(os.path.abspath(representation_dir))
  name = os.path.basename(os.path.normpath(representation_dir))
  if os.path.basename(parent) == layout.POSTPROCESSED_DIR:
    return os.path.dirname(parent), name
  return parent, name


def output_dir_for(representation_dir, metric, output_root=None, prefix=None, wild=False):
  model_dir, postprocessing = model_and_postprocessing(representation_dir)
  if output_root:
    prefix = os.path.abspath(prefix or ".")
    inside = wild and model_dir != prefix and model_dir.startswith(prefix.rstrip(os.sep) + os.sep)
    relative = os.path.relpath(model_dir, prefix) if inside else os.path.basename(model_dir)
    model_dir = os.path.join(os.path.abspath(output_root), relative)
  return RunLayout(model_dir).metric(metric, postprocessing)


def metric_configs(metrics=None, config_files=None):
  """{metric name: [gin file]} from the table's metric names or from gin files (name = file base name)."""
  if metrics and config_files:
    raise UserError("give --metrics or --metric_configs, not both")
  if config_files:
    configs = {}
    for path in config_files:
      if not os.path.isfile(path):
        raise UserError(f"metric config {path} does not exist")
      name = os.path.splitext(os.path.basename(path))[0]
      if name in configs:
        raise UserError(f"two metric configs are named {name!r} ({configs[name][0]} and {path}); dlib names a "
                        f"metric's output directory after its config file, so the names must differ")
      configs[name] = [os.path.abspath(path)]
    return configs
  names = metrics or table.DEFAULT_METRICS
  return {name: [table.metric_config(name)] for name in names}


def make_pairs(representations, configs, bindings=(), output_root=None):
  """Every (representation × metric config) pair; ``representations``: patterns or find_representations' list."""
  if all(isinstance(r, str) for r in representations):
    representations = find_representations(representations)
  pairs, seen = [], {}
  for representation_dir, prefix, wild in representations:
    for metric, files in configs.items():
      output_dir = output_dir_for(representation_dir, metric, output_root, prefix, wild)
      if output_dir in seen:
        raise UserError(f"{representation_dir} and {seen[output_dir]} would both write {output_dir}; "
                        f"give --output a layout that keeps them apart or evaluate them separately")
      seen[output_dir] = representation_dir
      pairs.append(Pair(representation_dir, metric, tuple(files), tuple(bindings), output_dir))
  return pairs


# --- is a pair already complete for this config? --------------------------------------------------------------

class ConfigComparer:
  """Whether a pair's output is current: its recorded ``evaluation.gin`` against the config each metric would run
  with now (``submission.config_record``; an unbound parameter reads as its default)."""

  def __init__(self, configs, bindings):
    import gin  # pylint: disable=import-outside-toplevel
    from evaluation import evaluate  # noqa: F401  pylint: disable=import-outside-toplevel,unused-import
    self.bound = {}
    for metric, files in configs.items():
      with cli.gin_config(files, bindings):  # a bad binding stops the batch here, before any work
        self.bound[metric] = cli.parse_gin_text(gin.config_str())
      check_sample_sizes(self.bound[metric])

  def current(self, pair):
    """{key: text} bound now for this pair's metric, with dataset.name 'auto' resolved as evaluate resolves it."""
    from submission.postprocess import recorded_dataset  # pylint: disable=import-outside-toplevel
    values = dict(self.bound[pair.metric])
    if values.get("dataset.name") == "'auto'":
      name = recorded_dataset(pair.representation_dir, layout.POSTPROCESS)
      values["dataset.name"] = repr(name) if name is not None else None
    return values

  def is_complete(self, pair):
    recorded_file = os.path.join(pair.output_dir, RECORDED_CONFIG)
    if not (os.path.isfile(os.path.join(pair.output_dir, RESULTS_FILE)) and os.path.isfile(recorded_file)):
      return False
    try:
      read_json(os.path.join(pair.output_dir, RESULTS_FILE))
    except ValueError:  # damaged (the file is written whole, so by hand or by the disk): evaluated again
      return False
    recorded = config_record.read_gin_record(recorded_file)
    # Only the recorded keys count: a binding of a configurable the metric never calls is not recorded.
    return not config_record.differences(recorded, self.current(pair), may_change=IGNORED_KEYS,
                                         default=config_record.gin_default_text, keys=recorded)


# dlib's metric parameters that count samples, batches or bins: 0 or 2.5 of them fails only once the metric runs
# (after training, in the pipeline), so they are checked with the bindings.
COUNT_PARAMETERS = frozenset({"num_train", "num_test", "num_eval", "batch_size", "num_variance_estimate",
                              "num_bins", "num_samples"})


def check_sample_sizes(bound):
  """A UserError for the first bound count parameter ({key: gin text}) that is not a positive integer, or a list of
  them (dlib's downstream_task.num_train is one: [10, 100, 1000, 10000], a classifier per training size)."""
  for key, text in bound.items():
    if key.rsplit(".", 1)[-1] in COUNT_PARAMETERS:
      try:
        value = ast.literal_eval(text)
      except (ValueError, SyntaxError):
        value = text
      for count in (value if isinstance(value, list) and value else [value]):
        cli.check_integer(key, count)


# --- one pair, in a worker --------------------------------------------------------------------------------------

def evaluate_pair(pair):
  """Worker side: evaluates one pair (replacing any incomplete or outdated output) and returns its scores."""
  import numpy as np  # pylint: disable=import-outside-toplevel
  from evaluation import evaluate  # pylint: disable=import-outside-toplevel
  np.random.seed(0)  # see "Reproducibility" in the module docstring
  print(f"[evaluate] {pair.describe()} -> {pair.output_dir}", flush=True)
  scores = evaluate.evaluate_with_gin(pair.representation_dir, pair.output_dir, overwrite=True,
                                      gin_config_files=list(pair.config_files), gin_bindings=list(pair.bindings))
  return {key: (value.item() if hasattr(value, "item") else value) for key, value in scores.items()}


# --- the batch ----------------------------------------------------------------------------------------------------

# A worker's memory besides its data set: TensorFlow, the SavedModel, dlib's metric and its samples. Measured: 0.7
# GiB once TensorFlow and the metrics are imported, 1.0 GiB peak scoring the five default metrics of a dummy_data
# representation one after the other (dlib's sample sizes, DCI's at 1,000 / 500); rounded up for larger samples.
WORKER_BYTES = int(1.5 * 2**30)


def memory_per_worker(pairs):
  """The memory one local worker may need for ``pairs``: WORKER_BYTES plus the largest data set they are scored on
  (each worker loads its pair's data set, so N workers hold N copies)."""
  from submission.data import named_data  # pylint: disable=import-outside-toplevel  (imports TensorFlow)
  from submission.postprocess import recorded_dataset  # pylint: disable=import-outside-toplevel
  names = {recorded_dataset(representation, layout.POSTPROCESS)
           for representation in {pair.representation_dir for pair in pairs}}
  return WORKER_BYTES + max((named_data.entry(name).memory_bytes or 0 for name in names
                             if name in named_data.names()), default=0)


def run_batch(pairs, backend, comparer=None, label="batch", logs=True):
  """Evaluates every pair not already complete; returns a summary dict (counts, failures, scores by pair).
  ``logs``: each pair's output goes to its ``.log`` file (kept on failure); else to this process's terminal."""
  todo, skipped = [], []
  for pair in pairs:
    if comparer is not None and comparer.is_complete(pair):
      skipped.append(pair)
      workers.remove_if_exists(pair.error_file)
    else:
      todo.append(pair)
  summary = {"pairs": len(pairs), "skipped": len(skipped), "evaluated": 0, "failed": 0, "failures": [],
             "scores": {}, "seconds": 0.0, "pair_seconds": []}
  start = time.time()
  print(f"[{label}] {len(pairs)} pairs: {len(skipped)} already complete, {len(todo)} to evaluate"
        + (f" ({backend.describe()})" if todo else ""), file=sys.stderr, flush=True)
  progress = workers.TaskProgress(label, len(pairs), skipped=len(skipped))
  tasks = []
  for pair in todo:
    workers.remove_if_exists(pair.log_file)
    tasks.append(workers.Task(evaluate_pair, pair, pair.log_file if logs else None))
  try:
    for index, outcome in backend.run(tasks):
      pair = todo[index]
      summary["pair_seconds"].append(outcome.get("seconds", 0.0))
      if outcome["status"] == "ok":
        summary["evaluated"] += 1
        summary["scores"][pair.output_dir] = outcome["result"]
        workers.remove_if_exists(pair.error_file)
        workers.remove_if_exists(pair.log_file)
      else:
        summary["failed"] += 1
        error = workers.record_failure(
            pair.error_file, outcome, representation_dir=pair.representation_dir, metric=pair.metric,
            metric_config=list(pair.config_files), metric_bindings=list(pair.bindings), output_dir=pair.output_dir,
            log=pair.log_file if logs and os.path.exists(pair.log_file) else None)
        summary["failures"].append({"task": pair.describe(), "error_file": pair.error_file, "error": error})
      progress.update(outcome["status"], pair.describe())
  finally:
    progress.close()
  summary["seconds"] = time.time() - start
  return summary


def print_summary(summary):
  print(f"[batch] done in {cli.format_duration(summary['seconds'])}: {summary['pairs']} pairs, "
        f"{summary['evaluated']} evaluated, {summary['skipped']} already complete, {summary['failed']} failed")
  workers.print_failures("batch", summary["failures"])


def batch(representations, metrics=None, metric_config_files=None, metric_bindings=(), output=None, num_workers=None,
          backend="local", address=None, threads=None, gpus_per_task=DEFAULT_GPUS_PER_TASK):
  """The command: builds the pairs, checks the configs, runs the batch; returns the summary."""
  if num_workers is not None and num_workers < 1:  # before the seconds the configs' check takes
    raise UserError(f"--workers must be at least 1, got {num_workers}")
  found = find_representations(representations)
  configs = metric_configs(metrics, metric_config_files)
  pairs = make_pairs(found, configs, metric_bindings, output)
  comparer = ConfigComparer(configs, list(metric_bindings))
  runner = workers.make_backend(backend, num_workers, address, threads, gpus_per_task,
                                memory_per_worker=memory_per_worker(pairs) if backend == "local" else None)
  try:
    summary = run_batch(pairs, runner, comparer=comparer)
  finally:
    runner.close()
  print_summary(summary)
  return summary


def main(argv=None):
  parser = cli.ArgumentParser(
      description="Evaluate every (representation × metric config) pair with disentanglement_lib's metrics; "
      "resumable, failure-isolated, in parallel (local processes or a Ray cluster).")
  parser.add_argument("--representations", nargs="+", required=True, metavar="GLOB",
                      help="representation directories (postprocess outputs), as glob patterns ('**' recurses)")
  group = parser.add_mutually_exclusive_group()
  group.add_argument("--metrics", help="comma-separated metric names of evaluation/metrics/table.py: dlib's "
                     f"unsupervised_study_v1 configs and the project's (default: {','.join(table.DEFAULT_METRICS)})")
  group.add_argument("--metric_configs", nargs="+", metavar="FILE", help="metric gin files instead of --metrics")
  cli.add_metric_bindings_arguments(parser, "'mig.num_train = 1000'")
  parser.add_argument("--output", help="mirror the metric outputs under this directory instead of writing them "
                      "next to each representation")
  parser.add_argument("--workers", type=int, help="parallel evaluations (local default 1, at most what the cores and "
                      "memory allow; ray default: as many as the cluster's CPUs allow)")
  parser.add_argument("--threads", type=int, help="threads per evaluation (default: cores // workers)")
  parser.add_argument("--backend", choices=workers.BACKENDS, default="local")
  parser.add_argument("--address", help="Ray cluster address (default: start a local Ray instance)")
  parser.add_argument("--gpus_per_task", type=float, default=DEFAULT_GPUS_PER_TASK,
                      help="GPUs each evaluation asks Ray for when the cluster has GPUs (default %(default)s)")
  args = parser.parse_args(argv)
  metrics = [m.strip() for m in args.metrics.split(",") if m.strip()] if args.metrics else None
  summary = cli.main_guard(batch, args.representations, metrics, args.metric_configs, cli.metric_bindings(args),
                           args.output, args.workers,
                           args.backend, args.address, args.threads, args.gpus_per_task)
  sys.exit(1 if summary["failed"] else 0)


if __name__ == "__main__":
  main(sys.argv[1:])
