"""Hyper-parameter sweeps: each point of a grid runs train → postprocess → evaluate into its own numbered directory.

    python -m evaluation.sweep SWEEP_FILE [--output DIR] [--backend local|ray] [--address ADDR] [--workers N]
                                         [--threads T] [--gpus_per_task G] [--points SPEC] [--dry_run]

The sweep file is TOML (read with Python's ``tomllib``); gin_configs/sweeps/unsupervised_study_v1.toml is the
worked example. Its keys:

    name = "my_study"                        # optional, for the log
    output = "output/my_study"               # default output directory (--output overrides)
    metrics = ["mig", "dci"]                 # metric names of evaluation/metrics/table.py (default: the pipeline's)
    metric_bindings = ["mig.num_train = 1000"]   # for every metric of every point
    bindings = ["model.training_steps = 1000"]   # for every point

    [[grid]]                                 # one or more grids; points are numbered through all of them
    first_model_num = 0                      # optional; default: continue after the previous grid
    datasets = ["dsprites_full", "cars3d"]   # bound to dataset.name
    seeds = 50                               # model.random_seed = 0..49 (or an explicit list)
    bindings = []                            # optional, for every point of this grid
    metrics = ["factor_vae_metric"]          # optional: this grid's metrics instead of the sweep's
    metric_bindings = []                     # optional: added to the sweep's metric_bindings for this grid
    models = [                               # one entry per model family, each with its own gin file
      { gin = "gin_configs/beta_vae.gin", sweep = { "vae.beta" = [1.0, 2.0, 4.0] } },
      { gin = "gin_configs/factor_vae.gin", sweep = { "factor_vae.gamma" = [10.0, 20.0] }, bindings = [] },
    ]

Points are numbered as dlib's unsupervised_study_v1 numbers its models:
``product(datasets, models (each expanded over its sweep values, keys crossed in file order), seeds)``. So
``model_num = first_model_num + (dataset_idx · models_per_dataset + model_idx) · num_seeds + seed_idx``, and for
dlib's six models in dlib's order this is dlib's ``1800·dataset + 50·model + seed``. A gin path is resolved
against the current directory and then against the repository root. ``dlib:config/...`` names a config file
shipped with disentanglement_lib. Values are written as gin literals: a string starting with ``@`` stays a
reference, and any other string is quoted. Bindings apply in this order, later ones winning: the gin file, then
the sweep's ``bindings``, the grid's, the model's, the swept values, then ``dataset.name``, ``model.random_seed``
and ``model.model_num``.

Each point writes ``<output>/<model_num>/``:

    sweep_point.json                 the point's definition (gin file, bindings, metrics), written under the
                                     point's output lock (a point another process writes is left to it)
    model/  postprocessed/mean/  metrics/mean/<metric>/  scores.json      (as evaluation.pipeline writes them)

It also writes ``<output>/<model_num>.log``, the point's stdout/stderr, appended on every attempt.

Before any point starts (and so before anything is written), the first worker checks what the points to run name:
every data set, every binding (a configurable or parameter that does not exist, a reference to none, a value gin
cannot read) and every metric binding. The first bad one ends the sweep with one ``error:`` line naming the sweep
file, grid and model (``check_settings``; metric names and ``--points`` are checked while the file is read).

A point is run by ``evaluation.pipeline.run_pipeline(..., resume=True)``, which skips completed steps and
resumes training from its last checkpoint. The sweep itself skips points that are already complete, meaning
``scores.json`` exists and so does every metric's result. A point whose directory was started with another
definition (another gin file or other bindings) is not touched. It fails with that reason, because mixing two
models in one directory would corrupt both. A point that fails writes ``<output>/<model_num>.error.json``, and
the others go on. The exit status is 1 if any point failed. On a Ray cluster with GPUs each point asks for
``--gpus_per_task`` GPUs (default 1).
"""

import itertools
import json
import os
import sys
import time

from evaluation import workers
from evaluation.metrics import table
from submission import cli, config_record, layout, output_lock
from submission.errors import UserError
from submission.layout import RunLayout

try:
  import tomllib
except ImportError:  # Python < 3.11
  tomllib = None

DLIB_PREFIX = "dlib:"
DEFAULT_GPUS_PER_TASK = 1.0  # training dominates a point: one GPU each


# --- reading the sweep file -------------------------------------------------------------------------------------

def gin_literal(value):
  """A TOML value as gin text: '@...' references stay as they are, other strings are quoted."""
  if isinstance(value, bool):
    return "True" if value else "False"
  if isinstance(value, (int, float)):
    return repr(value)
  if isinstance(value, str):
    return value if value.startswith("@") or value.startswith("%") else repr(value)
  if isinstance(value, (list, tuple)):
    return "[" + ", ".join(gin_literal(v) for v in value) + "]"
  raise UserError(f"cannot write {value!r} ({type(value).__name__}) as a gin value")


def resolve_gin_file(path):
  if path.startswith(DLIB_PREFIX):
    from disentanglement_lib.utils import resources  # pylint: disable=import-outside-toplevel
    resolved = resources.get_file(path[len(DLIB_PREFIX):])
  elif os.path.isabs(path) or os.path.exists(path):
    resolved = path
  else:
    resolved = os.path.join(cli.REPOSITORY_ROOT, path)
  if not os.path.isfile(resolved):
    raise UserError(f"gin config {path} does not exist (looked in the current directory and {cli.REPOSITORY_ROOT})")
  return os.path.abspath(resolved)


def _list(table, key, kind, where, default=()):
  value = table.get(key, list(default))
  if not isinstance(value, list) or not all(isinstance(v, kind) for v in value):
    raise UserError(f"{where}: {key} must be a list of {kind.__name__}s")
  return value


def _check_keys(table, allowed, where):
  unknown = sorted(set(table) - set(allowed))
  if unknown:
    raise UserError(f"{where}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(allowed)}")


def model_settings(model, where):
  """[(gin file as written, [bindings])] for one model entry: its fixed bindings plus one grid combination each."""
  _check_keys(model, ("gin", "sweep", "bindings"), where)
  if not isinstance(model.get("gin"), str):
    raise UserError(f"{where}: each model needs gin = \"<gin file>\"")
  resolve_gin_file(model["gin"])
  fixed = _list(model, "bindings", str, where)
  sweep = model.get("sweep", {})
  if not isinstance(sweep, dict):
    raise UserError(f"{where}: sweep must be a table of parameter = [values]")
  keys = list(sweep)
  for key in keys:
    if not isinstance(sweep[key], list) or not sweep[key]:
      raise UserError(f"{where}: sweep.{key} must be a non-empty list of values")
  combos = itertools.product(*(sweep[key] for key in keys))
  return [(model["gin"], fixed + [f"{key} = {gin_literal(v)}" for key, v in zip(keys, combo)]) for combo in combos]


def load_sweep(path):
  """The sweep file's settings and its points, in model_num order: [{"model_num", "gin_file", "bindings"}]."""
  if tomllib is None:
    raise UserError("sweep files need Python 3.11 or newer (tomllib)")
  if not os.path.isfile(path):
    raise UserError(f"sweep file {path} does not exist")
  try:
    with open(path, "rb") as f:
      spec = tomllib.load(f)
  except tomllib.TOMLDecodeError as e:
    raise UserError(f"{path} is not valid TOML: {e}") from e
  _check_keys(spec, ("name", "output", "metrics", "metric_bindings", "bindings", "grid"), path)
  settings = {"name": spec.get("name", os.path.splitext(os.path.basename(path))[0]),
              "output": spec.get("output"),
              "metrics": _list(spec, "metrics", str, path, default=list(table.DEFAULT_METRICS)),
              "metric_bindings": _list(spec, "metric_bindings", str, path)}
  common = _list(spec, "bindings", str, path)
  grids = spec.get("grid")
  if not isinstance(grids, list) or not grids:
    raise UserError(f"{path}: needs at least one [[grid]] table")
  points, taken, next_num = [], {}, 0
  for g, grid in enumerate(grids):
    where = f"{path}: grid {g + 1}"
    _check_keys(grid, ("first_model_num", "datasets", "seeds", "bindings", "metrics", "metric_bindings", "models"),
                where)
    datasets = _list(grid, "datasets", str, where)
    seeds = grid.get("seeds", 1)
    seeds = list(range(seeds)) if isinstance(seeds, int) else _list(grid, "seeds", int, where)
    models = grid.get("models")
    if not datasets or not seeds or not isinstance(models, list) or not models:
      raise UserError(f"{where}: needs datasets, seeds and models, none of them empty")
    grid_bindings = common + _list(grid, "bindings", str, where)
    grid_metrics = _list(grid, "metrics", str, where, default=settings["metrics"])
    for metric in grid_metrics:  # before any point starts, not in each point after it trained
      try:
        table.metric_config(metric)
      except UserError as e:
        raise UserError(f"{where}: {e}") from None
    grid_metric_bindings = settings["metric_bindings"] + _list(grid, "metric_bindings", str, where)
    settings_per_dataset = [(f"{where}, model {m + 1}", gin_file, bindings) for m, model in enumerate(models)
                            for gin_file, bindings in model_settings(model, f"{where}, model {m + 1}")]
    num = grid.get("first_model_num", next_num)
    if not isinstance(num, int) or isinstance(num, bool) or num < 0:
      raise UserError(f"{where}: first_model_num must be a non-negative integer")
    for dataset, (model_where, gin_file, model_bindings), seed in itertools.product(datasets, settings_per_dataset,
                                                                                     seeds):
      if num in taken:
        raise UserError(f"{where}: model_num {num} is already used by grid {taken[num]}")
      taken[num] = g + 1
      setting_bindings = grid_bindings + model_bindings
      points.append({"model_num": num, "gin_file": gin_file, "setting_bindings": setting_bindings,
                     "bindings": setting_bindings + [
                         f"dataset.name = {gin_literal(dataset)}", f"model.random_seed = {seed}",
                         f"model.model_num = {num}"],
                     "metrics": grid_metrics, "metric_bindings": grid_metric_bindings,
                     "where": model_where, "dataset": dataset})
      num += 1
    next_num = num
  return settings, sorted(points, key=lambda p: p["model_num"])


def select_points(points, spec):
  """``--points 0,5,10-19``: only those model numbers."""
  if not spec:
    return points
  ranges = []
  try:
    for part in spec.split(","):
      first, _, last = part.strip().partition("-")
      ranges.append((int(first), int(last or first)))
  except ValueError as e:
    raise UserError(f"--points {spec!r}: expected numbers and ranges such as 0,5,10-19") from e
  lowest, highest = points[0]["model_num"], points[-1]["model_num"]
  for first, last in ranges:  # a typo (1000 for 100) would otherwise run what it happens to select, or nothing
    if first > last or first < lowest or last > highest:
      raise UserError(f"--points {spec!r}: {first}-{last} is not a range of the sweep's model numbers "
                      f"({lowest}..{highest})")
  selected = [p for p in points if any(first <= p["model_num"] <= last for first, last in ranges)]
  if not selected:
    raise UserError(f"--points {spec!r} selects no point of the sweep (its model numbers: {lowest}..{highest})")
  return selected


# --- the check before any point starts --------------------------------------------------------------------------

def settings_to_check(points):
  """One check per distinct setting of ``points``: the first point of each model entry's setting (its bindings
  without the data set, seed and number each point adds) with all the data sets its points use. The study file's
  33,600 points are 60 checks."""
  checks = {}
  for point in points:
    key = (point["where"], point["gin_file"], tuple(point["setting_bindings"]), tuple(point["metrics"]),
           tuple(point["metric_bindings"]))
    if key not in checks:
      checks[key] = {"where": point["where"], "gin_path": resolve_gin_file(point["gin_file"]),
                     "bindings": point["bindings"], "metrics": point["metrics"],
                     "metric_bindings": point["metric_bindings"], "datasets": []}
    if point["dataset"] not in checks[key]["datasets"]:
      checks[key]["datasets"].append(point["dataset"])
  return list(checks.values())


def check_settings(checks):
  """Worker side: a UserError naming the sweep file, grid and model of the first data set that does not exist, or
  binding or metric binding gin refuses (a configurable or parameter that does not exist, a value gin cannot
  read). Each point would otherwise find it only once its worker started, and every such point would fail.

  It runs in a worker, not in the sweep's own process: the configurables register when the model and metric
  modules are imported, and those import TensorFlow (5-25 s), which a worker imports anyway before its first
  point; so the check adds only gin's parsing (well under a second) to the sweep's start, and ``--dry_run`` stays
  TensorFlow-free. What needs the model built (a binding of a configurable this model never calls) is still
  found by the point (``cli.check_bindings_take_effect``), before it writes anything but sweep_point.json."""
  from evaluation import batch, pipeline  # noqa: F401  pylint: disable=import-outside-toplevel,unused-import
  from submission.data import named_data  # pylint: disable=import-outside-toplevel
  checked_metrics = set()
  for check in checks:
    try:
      for dataset in check["datasets"]:
        named_data.entry(dataset)
      with cli.gin_config([check["gin_path"]], check["bindings"]):
        pass
      metrics = (tuple(check["metrics"]), tuple(check["metric_bindings"]))
      if metrics not in checked_metrics:
        batch.ConfigComparer({metric: [table.metric_config(metric)] for metric in check["metrics"]},
                             check["metric_bindings"])
        checked_metrics.add(metrics)
    except UserError as e:
      raise UserError(f"{check['where']}: {e}") from None


def check_before_any_point(runner, points):
  """Runs ``check_settings`` for ``points`` on one of ``runner``'s workers; its UserError is raised here."""
  (_, outcome), = runner.run([workers.Task(check_settings, settings_to_check(points))])
  if outcome["status"] != "ok":
    error = outcome["error"]
    if error["type"] == UserError.__name__:
      raise UserError(error["message"])
    raise RuntimeError(f"checking the sweep's points failed: {error['type']}: {error['message']}")


# --- one point --------------------------------------------------------------------------------------------------

def point_dir(output, point):
  return os.path.join(output, str(point["model_num"]))


def definition(point):
  return {key: point[key] for key in ("model_num", "gin_file", "bindings", "metrics", "metric_bindings")}


def is_complete(directory, metrics):
  run = RunLayout(directory)
  return os.path.isfile(run.scores_json) and all(
      os.path.isfile(layout.step_results(run.metric(m), layout.EVALUATION))
      for m in metrics)


def definition_conflict(directory, wanted):
  """Why the point's directory cannot be continued with ``wanted``, or None."""
  path = RunLayout(directory).sweep_point
  if not os.path.exists(RunLayout(directory).model):
    return None  # nothing trained yet (a point that failed on its configuration): the new definition replaces it
  if not os.path.isfile(path):
    return f"{directory} holds a model but no {os.path.basename(path)}: it was not started by this sweep"
  with open(path) as f:
    recorded = json.load(f)
  found = config_record.differences(recorded, wanted, keys=("gin_file", "bindings", "metric_bindings"))
  if not found:
    return None
  key, old, new = found[0]
  hint = (" (to score existing models with other metric settings use python -m evaluation.batch)"
          if key == "metric_bindings" else "")
  return (f"{directory} was started with {key} = {old!r}, the sweep now gives {new!r}; use another --output or "
          f"remove the directory{hint}")


def run_point(point):
  """Worker side: train → postprocess → evaluate for one point, continuing whatever is already done."""
  from evaluation import pipeline  # pylint: disable=import-outside-toplevel  (imports TensorFlow)
  print(f"[sweep] point {point['model_num']} ({time.strftime('%Y-%m-%d %H:%M:%S')}): {point['gin_file']} "
        f"{point['bindings']}", flush=True)
  # metric_workers=1: a sweep worker is a daemon process (it cannot start processes); the sweep runs points in
  # parallel instead.
  scores = pipeline.run_pipeline(point["gin_path"], point["output_dir"],
                                 metrics=point["metrics"], resume=True, gin_bindings=point["bindings"],
                                 metric_bindings=point["metric_bindings"], metric_workers=1)
  return {metric: pipeline.headline(metric, values) for metric, values in scores.items()}


# --- the sweep --------------------------------------------------------------------------------------------------

def run_sweep(sweep_file, output=None, backend="local", address=None, num_workers=None, threads=None,
              gpus_per_task=DEFAULT_GPUS_PER_TASK, points_spec=None, dry_run=False):
  settings, points = load_sweep(sweep_file)
  points = select_points(points, points_spec)
  output = output or settings["output"]
  if not output:
    raise UserError(f"{sweep_file} sets no output directory: pass --output DIR")
  output = os.path.abspath(output)  # workers (Ray's too) may run in another directory
  summary = {"points": len(points), "completed": 0, "skipped": 0, "failed": 0, "failures": []}
  if dry_run:
    for point in points:
      print(f"{point['model_num']}\t{point['gin_file']}\t{'; '.join(point['bindings'])}")
    print(f"[sweep] {len(points)} points, output {output}")
    return summary

  todo, complete, conflicts = [], [], []
  for point in points:
    directory = point_dir(output, point)
    wanted = definition(point)
    conflict = definition_conflict(directory, wanted)
    if conflict:
      conflicts.append((point, workers.failure(UserError(conflict), tb="")))
    elif is_complete(directory, point["metrics"]):
      complete.append(point)
    else:
      todo.append(point)
  summary["skipped"] = len(complete)
  print(f"[sweep] {settings['name']}: {len(points)} points in {output}: {summary['skipped']} already complete, "
        f"{len(todo)} to run", file=sys.stderr, flush=True)
  runner = workers.make_backend(backend, num_workers, address, threads, gpus_per_task, keep_workers=True) if todo \
      else None
  try:
    if runner is not None:
      print(f"[sweep] {runner.describe()}", file=sys.stderr, flush=True)
      check_before_any_point(runner, todo)  # nothing is written before it passes
    return run_checked_points(output, todo, complete, conflicts, runner, summary)
  finally:
    if runner is not None:
      runner.close()


def run_checked_points(output, todo, complete, conflicts, runner, summary):
  """Records the points that cannot be continued (``conflicts``), then runs ``todo`` on ``runner``; fills and
  returns ``summary``."""
  for point in complete:
    workers.remove_if_exists(point_dir(output, point) + ".error.json")
  startable = []
  for point in todo:
    directory = point_dir(output, point)
    try:
      with output_lock.claim(directory):  # another sweep's worker may be running this point: its record stays
        conflict = definition_conflict(directory, definition(point))  # again, now that nobody else can write it
        if conflict:
          raise UserError(conflict)
        workers.write_json_atomically(RunLayout(directory).sweep_point, definition(point))
    except UserError as e:
      conflicts.append((point, workers.failure(e, tb="")))
      continue
    startable.append(dict(definition(point), output_dir=directory, gin_path=resolve_gin_file(point["gin_file"])))
  todo = startable
  progress = workers.TaskProgress("sweep", summary["points"], skipped=summary["skipped"])
  start = time.time()

  def record(point, outcome):
    directory = point_dir(output, point)
    if outcome["status"] == "ok":
      summary["completed"] += 1
      workers.remove_if_exists(directory + ".error.json")
    else:
      summary["failed"] += 1
      error = workers.record_failure(directory + ".error.json", outcome, model_num=point["model_num"],
                                     gin_file=point["gin_file"], bindings=point["bindings"], output_dir=directory,
                                     log=directory + ".log")
      summary["failures"].append({"task": f"point {point['model_num']}", "error_file": directory + ".error.json",
                                  "error": error})
    progress.update(outcome["status"], f"point {point['model_num']}")

  try:
    for point, outcome in conflicts:
      record(point, outcome)
    if runner is not None:
      tasks = [workers.Task(run_point, point, point["output_dir"] + ".log") for point in todo]
      for index, outcome in runner.run(tasks):
        record(todo[index], outcome)
  finally:
    progress.close()
  print(f"[sweep] done in {cli.format_duration(time.time() - start)}: {summary['points']} points, "
        f"{summary['completed']} completed, {summary['skipped']} already complete, {summary['failed']} failed")
  workers.print_failures("sweep", summary["failures"])
  return summary


def main(argv=None):
  parser = cli.ArgumentParser(
      description="Run a hyper-parameter sweep (models × hyper-parameters × seeds × data sets): each point "
      "trains, postprocesses and evaluates into <output>/<model_num>; resumable and failure-isolated.")
  parser.add_argument("sweep_file", help="TOML sweep file, e.g. gin_configs/sweeps/unsupervised_study_v1.toml")
  parser.add_argument("--output", help="output directory (default: the sweep file's output)")
  parser.add_argument("--backend", choices=workers.BACKENDS, default="local")
  parser.add_argument("--address", help="Ray cluster address (default: start a local Ray instance)")
  parser.add_argument("--workers", type=int, help="points run in parallel (local default 1; ray default: as "
                      "many as the cluster's resources allow)")
  parser.add_argument("--threads", type=int, help="threads per point (default: cores // workers)")
  parser.add_argument("--gpus_per_task", type=float, default=DEFAULT_GPUS_PER_TASK,
                      help="GPUs each point asks Ray for when the cluster has GPUs (default %(default)s)")
  parser.add_argument("--points", help="run only these model numbers, e.g. 0-99 or 0,5,10-19")
  parser.add_argument("--dry_run", action="store_true", help="list the points and exit")
  args = parser.parse_args(argv)
  summary = cli.main_guard(run_sweep, args.sweep_file, args.output, args.backend, args.address, args.workers,
                           args.threads, args.gpus_per_task, args.points, args.dry_run)
  sys.exit(1 if summary["failed"] else 0)


if __name__ == "__main__":
  main(sys.argv[1:])
