"""Benchmark: dlib's DCI fits one after the other vs at once (evaluation/metrics/dci_parallel.py), same codes.

    python bench/dci_fits.py [--num_train 10000] [--num_test 5000] [--at_once 2,3,5] [--factor_sizes 3,6,40,32,32]
                             [--num_codes 10] [--seed 0] [--repeats 2]

Codes are drawn for dSprites' factor sizes (shape 3, scale 6, orientation 40, x 32, y 32) at dlib's DCI sample
sizes: each factor read by one code dimension with noise, the rest of the dimensions noise, so every fit does
the work it does on a trained model (gradient boosting's cost depends on the points, the code width and the
classes, not on the codes' values). Prints each factor's fit time one after the other (dlib's loop, from the
global states dlib's loop gives them), the sum, the wall time of the fits with each ``--at_once`` count running
together, the speed-ups measured and predicted from the factor sizes (``dci_parallel.shared_makespan``), what enough
cores for one fit each would give (the longest fit), and checks that every mode gives the same importance matrix.
"""

import argparse
import os
import sys
import time

import numpy as np

from evaluation.metrics import dci_parallel  # the editable install makes the package importable from anywhere


def codes_and_factors(num_points, factor_sizes, num_codes, random_state):
  ys = np.stack([random_state.randint(0, size, num_points) for size in factor_sizes])
  noise = random_state.randn(num_codes, num_points)
  codes = noise.copy()
  for k, size in enumerate(factor_sizes[:num_codes]):
    codes[k] = ys[k] / size + 0.05 * noise[k]
  return codes, ys


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--num_train", type=int, default=10000)
  parser.add_argument("--num_test", type=int, default=5000)
  parser.add_argument("--at_once", default="", help="comma-separated counts of fits run at once (default: the one "
                      "fits_at_once chooses for this machine's cores)")
  parser.add_argument("--factor_sizes", default="3,6,40,32,32")
  parser.add_argument("--num_codes", type=int, default=10)
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--repeats", type=int, default=2, help="1: each mode once; 2: each mode before and after "
                      "the others (A B C C B A)")
  args = parser.parse_args(argv)
  sizes = [int(s) for s in args.factor_sizes.split(",")]
  random_state = np.random.RandomState(args.seed)
  x_train, y_train = codes_and_factors(args.num_train, sizes, args.num_codes, random_state)
  x_test, y_test = codes_and_factors(args.num_test, sizes, args.num_codes, random_state)
  trees = [dci_parallel.trees_per_fit(y) for y in y_train]
  cores = dci_parallel.available_cores()
  counts = [int(n) for n in args.at_once.split(",") if n.strip()] or [dci_parallel.fits_at_once(trees, cores)]
  print(f"[dci_fits] {args.num_train} train / {args.num_test} test points, {args.num_codes} codes, factor sizes "
        f"{sizes}; load average {os.getloadavg()[0]:.1f} on {cores} usable cores", flush=True)

  def one_after_the_other():
    np.random.seed(0)
    states = dci_parallel.replay_states(y_train)
    times, importance = [], []
    for k in range(len(sizes)):
      start = time.time()
      importance.append(dci_parallel._fit(x_train, y_train[k], x_test, y_test[k], states[k])[0])  # pylint: disable=protected-access
      times.append(time.time() - start)
    print("one_after_the_other " + " ".join(f"factor{k}({sizes[k]})={t:.1f}s" for k, t in enumerate(times))
          + f" total={sum(times):.1f}s load={os.getloadavg()[0]:.1f}", flush=True)
    return sum(times), np.stack(importance, axis=1)

  def at_once(count):
    np.random.seed(0)
    start = time.time()
    importance, _, _ = dci_parallel.compute_importance_gbt(x_train, y_train, x_test, y_test, count)
    wall = time.time() - start
    print(f"at_once_{count}={wall:.1f}s load={os.getloadavg()[0]:.1f}", flush=True)
    return wall, importance

  # The machine's speed drifts (other jobs), so the modes run in order and then in reverse.
  modes = [None] + counts
  modes = (modes + modes[::-1])[:len(modes) * args.repeats]
  runs, matrices = {mode: [] for mode in modes}, {}
  for mode in modes:
    wall, matrices[mode] = one_after_the_other() if mode is None else at_once(mode)
    runs[mode].append(wall)
  sequential = np.mean(runs[None])
  for count in counts:
    print(f"mean one_after_the_other_s={sequential:.1f} at_once_{count}_s={np.mean(runs[count]):.1f} "
          f"speedup={sequential / np.mean(runs[count]):.2f}; from the factor sizes (time per fit ~ trees, the cores "
          f"shared equally): {sum(trees) / dci_parallel.shared_makespan(trees, count, cores):.2f}")
  print(f"with one core per running fit (>= {len(sizes)} cores, e.g. 16): {sum(trees) / max(trees):.2f}")
  same = all(np.array_equal(matrices[mode], matrices[None]) for mode in counts)
  print(f"same_importance_matrix={same}")
  return 0 if same else 1


if __name__ == "__main__":
  sys.exit(main())
