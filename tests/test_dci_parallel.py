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
  with dci_parallel.fits_in_parallel():  # as many at once as fits_at_once chooses on this machine's cores
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
  assert dci_parallel.fit_workers() is None  # fits_at_once decides
  monkeypatch.setenv(dci_parallel.FIT_WORKERS_ENV, "0")
  from submission.errors import UserError  # pylint: disable=import-outside-toplevel
  with pytest.raises(UserError, match="DCI_FIT_WORKERS='0'"):
    dci_parallel.fit_workers()
  monkeypatch.setenv(dci_parallel.FIT_WORKERS_ENV, "1")
  with dci_parallel.fits_in_parallel():
    assert dci.compute_importance_gbt.__module__ == dci.__name__  # 1: dlib's own loop


DSPRITES_TREES = [300, 600, 4000, 3200, 3200]  # 100 stages x shape 3, scale 6, orientation 40, x 32, y 32 classes


def test_shared_makespan_by_hand():
  # 2 at once on 2 cores: orientation (4000), then shape and scale, beside x then y (6400).
  assert dci_parallel.shared_makespan(DSPRITES_TREES, 2, 2) == pytest.approx(6400)
  # 3 at once share 2 cores at 2/3 each: x and y end at 4800 with 800 of orientation left; shape and scale join it,
  # three at 2/3 until shape ends (+450), then two at full speed: scale's 300 and orientation's 500 left (+500).
  assert dci_parallel.shared_makespan(DSPRITES_TREES, 3, 2) == pytest.approx(5750)
  assert dci_parallel.shared_makespan(DSPRITES_TREES, 1, 2) == pytest.approx(11300)  # one after the other
  assert dci_parallel.shared_makespan(DSPRITES_TREES, 5, 16) == pytest.approx(4000)  # the longest fit bounds it


def test_fits_at_once_takes_the_fewest_that_finish_soonest():
  assert dci_parallel.fits_at_once(DSPRITES_TREES, 2) == 3  # 5750 against 6400 (2), 6050 (4 and 5)
  assert dci_parallel.fits_at_once(DSPRITES_TREES, 1) == 1  # every count takes 11300: dlib's own loop
  assert dci_parallel.fits_at_once(DSPRITES_TREES, 16) == 3  # the three longest at once already end at 4000
  assert dci_parallel.fits_at_once([100, 100], 2) == 2
