"""dlib's DCI with its per-factor fits spread over the cores, and dlib's numbers.

dlib's ``dci`` (``compute_dci`` → ``_compute_dci`` → ``compute_importance_gbt``) fits one single-threaded
``GradientBoostingClassifier()`` per factor, one after the other: on dSprites 5 fits of 100 stages × (3 + 6 + 40 +
32 + 32 = 113 trees per stage), most of the wall time of the whole five-metric suite. The fits are independent, so
``compute_importance_gbt`` here runs them at once, longest first, as many at a time as finish soonest (below), and
returns what dlib's returns: the same importance matrix, train and test accuracies, bit for bit. dlib's
``compute_dci``, ``_compute_dci``, ``disentanglement`` and ``completeness`` run unchanged: ``fits_in_parallel()``
swaps only the module attribute ``compute_importance_gbt`` that ``_compute_dci`` looks up, and restores it
afterwards.

#### The global random state

dlib builds ``GradientBoostingClassifier()`` without a ``random_state``, so every tree it grows takes its seed
from NumPy's global random state (``np.random``): each tree's splitter draws ``randint(0, RAND_R_MAX)`` once, and
the seed decides the order in which candidate features are tried, hence which of two equally good splits wins.
That matters when two code dimensions tie: duplicated or constant (pruned) columns, or columns that order the
points alike. So dlib's numbers are a function of the global state when DCI starts, and factor i's fit starts
from the state factor i−1's fit left. Fitting the factors at once from one seed each would change the numbers.

Here, before any fit, the global state is replayed: for each factor in dlib's order the state it would start
from is recorded, then advanced by exactly the draws dlib's fit makes (one ``randint(0, RAND_R_MAX)`` per tree;
100 stages × (1 tree for a two-class factor, else one per class); the same call, so the same consumption). Each
fit gets its own ``RandomState`` set to its recorded state (``check_random_state`` then hands the trees that object
instead of the global one: the same draws), and the global state ends where dlib's sequential loop leaves it.
``tests/test_dci_parallel.py`` checks the equality on codes with constant and duplicated columns, and that
starting every fit from one state does change them.

#### How many at once

A fit's time grows with its trees, so the fits' relative costs are known before any starts. With as many fits
running as cores, the last long fit runs alone while a core idles: on dSprites' 2 cores, longest first, orientation
(4,000 trees) then shape and scale (900) beside x and y (6,400), 1.13× the ideal of half the 11,300. The OS shares
the cores equally among running threads, so one fit more than the cores fills that gap: 3 at once give 1.02×.
``fits_at_once`` simulates that sharing for every count and takes the fewest that finish soonest (1 on one core:
dlib's own loop). Measured with ``bench/dci_fits.py``: docs/benchmarks.md.

#### Threads, not processes

The fits run in threads of the evaluating process: scikit-learn's tree builder runs without the GIL, and the metric
workers of the pipeline and of batch evaluation are daemonic processes, which may not start processes of their own.
The environment variable ``DCI_FIT_WORKERS`` (default: ``fits_at_once`` on the cores this process may use) sets how
many fits run at once; 1 is dlib's own sequential loop. It is not a gin parameter because it cannot change a result:
a gin parameter would enter every metric's recorded operative config, and batch evaluation would take results
recorded before it existed for results of another config.
"""

import concurrent.futures
import contextlib
import os

import numpy as np
from sklearn import ensemble

# sklearn/tree/_utils.pxd: every tree's splitter draws random_state.randint(0, RAND_R_MAX) once when it starts.
RAND_R_MAX = 2147483647
NUM_STAGES = 100  # GradientBoostingClassifier()'s default n_estimators, as dlib builds it


def trees_per_fit(y):
  """The trees dlib's fit on factor values ``y`` grows: 100 stages of one tree per class (one for two classes)."""
  num_classes = np.unique(y).size
  return NUM_STAGES * (1 if num_classes <= 2 else num_classes)


def replay_states(ys_train):
  """The global random state each factor's fit starts from in dlib's sequential loop, from the current global
  state; leaves the global state where that loop would leave it."""
  states = []
  for y in ys_train:
    states.append(np.random.get_state())
    for _ in range(trees_per_fit(y)):
      np.random.randint(0, RAND_R_MAX)
  return states


def _fit(x_train, y_train, x_test, y_test, state):
  """dlib's per-factor fit (``compute_importance_gbt``'s loop body), with its own RandomState set to ``state``."""
  random_state = np.random.RandomState()
  random_state.set_state(state)
  model = ensemble.GradientBoostingClassifier(random_state=random_state)
  model.fit(x_train.T, y_train)
  return (np.abs(model.feature_importances_), np.mean(model.predict(x_train.T) == y_train),
          np.mean(model.predict(x_test.T) == y_test))


def shared_makespan(costs, at_once, cores):
  """Wall time of jobs of ``costs`` (one core's time each), ``at_once`` of them running together, longest first,
  the ``cores`` shared equally among those running (a job never runs faster than one core)."""
  waiting, running, elapsed = sorted(costs, reverse=True), [], 0.
  while waiting or running:
    while waiting and len(running) < at_once:
      running.append(waiting.pop(0))
    rate = min(1., cores / len(running))
    first_done = min(running)
    elapsed += first_done / rate
    running = [left - first_done for left in running if left > first_done]
  return elapsed


def fits_at_once(costs, cores):
  """The fewest fits to run at once that finish soonest (``shared_makespan``) on ``cores`` cores."""
  makespans = [shared_makespan(costs, n, cores) for n in range(1, len(costs) + 1)]
  return next(n for n, m in enumerate(makespans, start=1) if m <= min(makespans) * (1 + 1e-9))


def compute_importance_gbt(x_train, y_train, x_test, y_test, num_workers=None):
  """dlib's ``compute_importance_gbt`` (same arguments and results), its fits ``num_workers`` at a time (default:
  ``fits_at_once`` on the usable cores)."""
  num_codes, num_factors = x_train.shape[0], y_train.shape[0]
  states = replay_states(y_train)
  costs = [trees_per_fit(y) for y in y_train]
  num_workers = num_workers or fits_at_once(costs, available_cores())
  longest_first = sorted(range(num_factors), key=lambda i: -costs[i])
  with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, min(num_workers, num_factors))) as pool:
    futures = {i: pool.submit(_fit, x_train, y_train[i], x_test, y_test[i], states[i]) for i in longest_first}
    results = [futures[i].result() for i in range(num_factors)]
  importance_matrix = np.zeros(shape=[num_codes, num_factors], dtype=np.float64)
  for i, (importance, _, _) in enumerate(results):
    importance_matrix[:, i] = importance
  return importance_matrix, np.mean([r[1] for r in results]), np.mean([r[2] for r in results])


def available_cores():
  return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


FIT_WORKERS_ENV = "DCI_FIT_WORKERS"


def fit_workers():
  """How many of DCI's per-factor fits run at once: ``$DCI_FIT_WORKERS``, else None (``fits_at_once`` decides)."""
  value = os.environ.get(FIT_WORKERS_ENV, "").strip()
  if not value:
    return None
  if not value.isdigit() or int(value) < 1:
    from submission.errors import UserError  # pylint: disable=import-outside-toplevel
    raise UserError(f"{FIT_WORKERS_ENV}={value!r}: give a positive number of DCI fits to run at once")
  return int(value)


@contextlib.contextmanager
def fits_in_parallel(num_workers=None):
  """Inside the block, dlib's ``_compute_dci`` fits its factors ``num_workers`` at a time (default
  ``fit_workers()``, else as many as finish soonest); 1, or a single usable core, leaves dlib's sequential loop."""
  from disentanglement_lib.evaluation.metrics import dci  # pylint: disable=import-outside-toplevel  (TF)
  num_workers = num_workers or fit_workers()
  original = dci.compute_importance_gbt
  if (num_workers or available_cores()) > 1:
    dci.compute_importance_gbt = (lambda x_train, y_train, x_test, y_test:
                                  compute_importance_gbt(x_train, y_train, x_test, y_test, num_workers))
  try:
    yield
  finally:
    dci.compute_importance_gbt = original
