"""Data sets whose every observation is a function of its factors alone: the map factors → row of a fixed array.

A metric that draws more observations than such a data set holds encodes most images many times over (dlib's
BetaVAE metric on dSprites: 1.9 M draws of 737,280 images). ``observation_index(data)`` exposes what a
representation cache needs to encode each distinct observation once and answer every later draw by lookup:

    index.count                          how many distinct observations there are (rows 0 .. count-1)
    index.rows(factors, random_state)    the rows ``sample_observations_from_factors(factors, random_state)``
                                         would return, drawing the same nuisance factors from ``random_state``
                                         (the same calls in the same order, so the stream is left as it would be)
    index.observations(rows)             those observations, exactly as ``sample_observations_from_factors``
                                         returns them (float32, the data set's observation shape)

so that ``index.observations(index.rows(f, rs))`` equals ``data.sample_observations_from_factors(f, rs)`` and
leaves ``rs`` in the same state (tested for every data set listed below). Data sets with random observations
(noisy, colour and scream dSprites, dummy_data) have no index: ``observation_index`` returns None for them.

dlib's own ``DSprites`` class (dsprites_full, dsprites_noshape) is described here from its attributes, since it is
used unchanged; the project's loaders (Shapes3D, MPI3D, Cars3D, SmallNORB, CorrelatedEllipses) answer
``observation_index()`` themselves and build ``sample_observations_from_factors`` from the same two functions.
"""

import dataclasses
from typing import Callable

import numpy as np

from disentanglement_lib.data.ground_truth import dsprites as dlib_dsprites


@dataclasses.dataclass(frozen=True)
class ObservationIndex:
  count: int
  rows: Callable[[np.ndarray, np.random.RandomState], np.ndarray]
  observations: Callable[[np.ndarray], np.ndarray]


def observation_index(data):
  """The ObservationIndex of a deterministic data set, or None when its observations are random."""
  if type(data) is dlib_dsprites.DSprites:  # pylint: disable=unidiomatic-typecheck  (subclasses add noise/colour)
    return _dlib_dsprites_index(data)
  method = getattr(data, "observation_index", None)
  return method() if callable(method) else None


def _dlib_dsprites_index(data):
  """dlib's DSprites: all factors (the unobserved ones drawn by its state space) dotted with its float bases."""

  def rows(factors, random_state):
    all_factors = data.state_space.sample_all_factors(factors, random_state)
    return np.array(np.dot(all_factors, data.factor_bases), dtype=np.int64)

  def observations(indices):
    return np.expand_dims(data.images[indices].astype(np.float32), axis=3)

  return ObservationIndex(int(data.images.shape[0]), rows, observations)
