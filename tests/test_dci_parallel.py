"""DCI's per-factor fits at once (evaluation/metrics/dci_parallel.py) give dlib's own numbers, bit for bit."""

import numpy as np
import pytest

import submission  # noqa: F401  (the compat layer dlib needs, before any dlib import)
from disentanglement_lib.evaluation.metrics import dci
from evaluation.metrics import dci_parallel

NUM_POINTS = 240
FACTOR_SIZES = (2, 3, 5)  # a two-class factor (one tree per stage) and multi-class ones


def factors(num_points, seed):
  random_state = np.random.RandomState(seed)
  return np.stack([random_state.randint(0, size, num_points) for size in FACTOR_SIZES])


def representations():
  """(name, codes [num_codes, num_points], factors) for train and test, split in half."""
  ys = factors(2 * NUM_POINTS, 0)
  noise = np.random.RandomState(1).randn(6, 2 * NUM_POINTS)
  informative = np.stack([ys[0] + 0.3 * noise[0], ys[1] + 0.5 * noise[1], ys[2] + ys[0] + 0.4 * noise[2],
                          noise[3], noise[4]])
  constant = np.concatenate([informative[:3], np.zeros((2, 2 * NUM_POINTS)), informative[3:]])  # pruned columns
  duplicated = np.concatenate([informative, informative[:3]])  # every informative column twice: ties
  aligned = ys.astype(np.float64)  # a perfect code: splits tie between thresholds
  return [("informative", informative, ys), ("constant_columns", constant, ys),
          ("duplicated_columns", duplicated, ys), ("aligned", aligned, ys)]


def split(codes, ys):
  return codes[:, :NUM_POINTS], ys[:, :NUM_POINTS], codes[:, NUM_POINTS:], ys[:, NUM_POINTS:]


@pytest.mark.parametrize("name,codes,ys", representations(), ids=[r[0] for r in representations()])
def test_parallel_fits_equal_dlibs(name, codes, ys):
  del name
  inputs = split(codes, ys)
  np.random.seed(7)
  expected = dci.compute_importance_gbt(*inputs)
  expected_scores = dci._compute_dci(*inputs)  # pylint: disable=protected-access
  expected_state = np.random.get_state()
  np.random.seed(7)
  got = dci_parallel.compute_importance_gbt(*inputs, num_workers=3)
  with dci_parallel.fits_in_parallel(num_workers=2):
    got_scores = dci._compute_dci(*inputs)  # pylint: disable=protected-access
  np.testing.assert_array_equal(got[0], expected[0])
  assert got[1:] == expected[1:]
  assert got_scores == expected_scores
  state = np.random.get_state()  # the global state ends where dlib's sequential loop leaves it
  assert state[0] == expected_state[0] and np.array_equal(state[1], expected_state[1]) and state[2:] == \
      expected_state[2:]
  assert dci.compute_importance_gbt.__module__ == dci.__name__  # dlib's own function is back


def test_one_seed_for_every_fit_would_change_dlibs_numbers():
  """Why the state is replayed: on tied (duplicated) columns, which twin a tree splits on depends on the seed."""
  _, codes, ys = representations()[2]
  inputs = split(codes, ys)
  np.random.seed(7)
  expected = dci.compute_importance_gbt(*inputs)[0]
  state = np.random.RandomState(7).get_state()
  naive = np.stack([dci_parallel._fit(inputs[0], inputs[1][i], inputs[2], inputs[3][i], state)[0]  # pylint: disable=protected-access
                    for i in range(len(FACTOR_SIZES))], axis=1)
  assert not np.array_equal(naive, expected)


def test_draws_per_fit_match_sklearns():
  """The replay's count (one draw per tree) is what a fit consumes: after it, the fit's RandomState stands where
  the replay leaves the global one."""
  _, codes, ys = representations()[0]
  x_train, y_train, _, _ = split(codes, ys)
  for y in y_train:
    random_state = np.random.RandomState(3)
    from sklearn import ensemble  # pylint: disable=import-outside-toplevel
    ensemble.GradientBoostingClassifier(random_state=random_state).fit(x_train.T, y)
    np.random.seed(3)
    dci_parallel.replay_states(y[None])
    assert np.array_equal(random_state.get_state()[1], np.random.get_state()[1])
    assert random_state.get_state()[2] == np.random.get_state()[2]


def test_fit_workers_from_the_environment(monkeypatch):
  monkeypatch.setenv(dci_parallel.FIT_WORKERS_ENV, "3")
  assert dci_parallel.fit_workers() == 3
  monkeypatch.setenv(dci_parallel.FIT_WORKERS_ENV, "")
  assert dci_parallel.fit_workers() == dci_parallel.available_cores()
  monkeypatch.setenv(dci_parallel.FIT_WORKERS_ENV, "0")
  from submission.errors import UserError  # pylint: disable=import-outside-toplevel
  with pytest.raises(UserError, match="DCI_FIT_WORKERS='0'"):
    dci_parallel.fit_workers()
  monkeypatch.setenv(dci_parallel.FIT_WORKERS_ENV, "1")
  with dci_parallel.fits_in_parallel():
    assert dci.compute_importance_gbt.__module__ == dci.__name__  # 1: dlib's own loop
