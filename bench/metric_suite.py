"""The five-metric suite (dlib's unsupervised_study_v1 configs, dlib's sample sizes) on one trained model: uncached
vs cached, one after the other per metric in the same run, then the cached suite's wall time with N metric workers.

    python bench/metric_suite.py --representation OUT/postprocessed/mean [--metrics LIST] [--workers 1,2]
                                 [--skip_uncached] [--metric_bindings B ...]

Needs a postprocessed mean representation of a model trained on a deterministic data set (e.g. rendered dSprites:
``DISENTANGLEMENT_LIB_DATA`` must hold it). Every evaluation writes into a temporary directory, so the
representation's own metrics are untouched; its representation cache is deleted first and rebuilt (timed on its
own line). Prints one line per metric, ``<metric> uncached_s=<a> cached_s=<b>`` with the CPU seconds (all threads)
beside each, then ``cache_build_s``, the totals, and ``suite_wall_s_<N>_workers`` for each worker count (the
pipeline's schedule: metrics in their own processes, longest first, the cache built by the first metric that needs
it) with the suite's CPU seconds: no schedule on C cores can take less wall time than CPU seconds / C. The machine's
speed drifts, so metrics alternate uncached/cached rather than running one whole suite after the other. The uncached
runs are dlib's way throughout: DCI fits its factors one after the other (``DCI_FIT_WORKERS=1``); the cached runs
and the suite fit them at once (``evaluation/metrics/dci_parallel.py``, same numbers). ``bench/dci_fits.py`` times
DCI's fits alone.
"""

import argparse
import os
import resource
import shutil
import sys
import tempfile
import time

import numpy as np

from evaluation import batch, evaluate, representation_cache, workers  # noqa: E402
from evaluation.metrics import dci_parallel, table  # noqa: E402
from submission import cli, layout  # noqa: E402
from submission.data import named_data  # noqa: E402
from submission.data.observation_index import observation_index  # noqa: E402
from submission.results import gin_value  # noqa: E402


def cpu_seconds():
  """CPU seconds of this process's threads and of its children that have been waited for."""
  children = resource.getrusage(resource.RUSAGE_CHILDREN)
  return time.process_time() + children.ru_utime + children.ru_stime


def timed(call):
  """(wall seconds, CPU seconds) of ``call()``."""
  start, start_cpu = time.time(), cpu_seconds()
  call()
  return time.time() - start, cpu_seconds() - start_cpu


def evaluate_once(representation_dir, metric, output_dir, bindings):
  """(wall seconds, CPU seconds) of one evaluation in this process."""
  np.random.seed(0)  # as batch evaluation does before each pair
  return timed(lambda: evaluate.evaluate_with_gin(representation_dir, output_dir, overwrite=True,
                                                  gin_config_files=[table.metric_config(metric)],
                                                  gin_bindings=bindings))


def build_cache(representation_dir):
  """Deletes and rebuilds the representation cache; returns (wall seconds, CPU seconds) of the encoding."""
  shutil.rmtree(layout.representation_cache_dir(representation_dir), ignore_errors=True)
  name = gin_value(layout.step_gin(representation_dir, layout.POSTPROCESS), "dataset.name")
  data = named_data.load(name)
  index = observation_index(data)
  if index is None:
    raise SystemExit(f"{name} has random observations: nothing to cache")
  function = evaluate.load_representation_function(representation_dir, data.observation_shape)
  return timed(lambda: representation_cache.load_or_build(representation_dir, name, data, index, function,
                                                          build=True))


def time_suite(representation_dir, metrics, bindings, num_workers, scratch):
  """(wall seconds, CPU seconds) of the cached suite through batch evaluation's schedule."""
  pairs = [batch.Pair(representation_dir, metric, (table.metric_config(metric),), tuple(bindings),
                      os.path.join(scratch, f"suite{num_workers}", metric))
           for metric in sorted(metrics, key=table.longest_first)]
  backend = workers.LocalBackend(num_workers) if num_workers > 1 else workers.InProcessBackend()
  shutil.rmtree(layout.representation_cache_dir(representation_dir), ignore_errors=True)

  def run():
    summary = batch.run_batch(pairs, backend, label=f"suite x{num_workers}")
    if summary["failed"]:
      raise SystemExit(f"suite failed: {summary['failures']}")
  # run_batch stops (and waits for) its workers before it returns, so their CPU time is in RUSAGE_CHILDREN.
  return timed(run)


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--representation", required=True, help="a postprocessed mean representation directory")
  parser.add_argument("--metrics", default=",".join(table.DEFAULT_METRICS))
  parser.add_argument("--workers", default="2", help="worker counts for the cached suite's wall time, cache build "
                      "included ('' skips; 1 worker is the cached total above)")
  parser.add_argument("--skip_uncached", action="store_true", help="time only the cached path")
  parser.add_argument("--metric_bindings", nargs="+", default=[], help="extra bindings (smaller samples for a try)")
  args = parser.parse_args()
  metrics = [m.strip() for m in args.metrics.split(",") if m.strip()]
  scratch = tempfile.mkdtemp(prefix="metric_suite-")
  try:
    cache_s, cache_cpu_s = build_cache(args.representation)
    print(f"cache_build_s={cache_s:.1f} cache_build_cpu_s={cache_cpu_s:.1f}", flush=True)
    totals = {"uncached": 0.0, "cached": cache_s}
    for metric in metrics:
      times, cpu = {}, {}
      for mode, enabled in (("uncached", False), ("cached", True)):
        if mode == "uncached" and args.skip_uncached:
          continue
        fits = {dci_parallel.FIT_WORKERS_ENV: "1"} if mode == "uncached" else {}  # dlib's sequential DCI
        with workers.patched_environment(fits):
          times[mode], cpu[mode] = evaluate_once(args.representation, metric, os.path.join(scratch, mode, metric),
                                                 args.metric_bindings + [f"representation_cache.enabled = {enabled}"])
        totals[mode] += times[mode]
      print(f"{metric} " + " ".join(f"{mode}_s={times[mode]:.1f} {mode}_cpu_s={cpu[mode]:.1f}" for mode in times),
            flush=True)
    if not args.skip_uncached:
      print(f"total_uncached_s={totals['uncached']:.1f}")
    print(f"total_cached_s={totals['cached']:.1f} (including the cache build)")
    if not args.skip_uncached:
      print(f"speedup={totals['uncached'] / totals['cached']:.2f}")
    for num_workers in [int(w) for w in args.workers.split(",") if w.strip()]:
      seconds, cpu = time_suite(args.representation, metrics, args.metric_bindings, num_workers, scratch)
      print(f"suite_wall_s_{num_workers}_workers={seconds:.1f} ({cli.format_duration(seconds)}, cache build included) "
            f"suite_cpu_s={cpu:.1f}", flush=True)
  finally:
    shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
  sys.exit(main())
