"""dlib's ``dummy_data``: uniform noise, independent of its ten factors; no files (``DummyData``, unchanged)."""

import numpy as np

from disentanglement_lib.data.ground_truth import dummy_data
from submission.data import registry
from submission.errors import UserError


def _check(paths):  # pylint: disable=unused-argument
  observation = dummy_data.DummyData().sample_observations(1, np.random.RandomState(0))
  if observation.shape != (1, 64, 64, 1):
    raise UserError(f"dummy_data observations have shape {list(observation.shape[1:])}, expected [64, 64, 1]")
  return {"detail": "no files needed; one observation drawn"}


registry.register(registry.DatasetEntry(
    "dummy_data", dummy_data.DummyData, provenance=registry.GENERATED, source="dlib's DummyData: uniform noise",
    factors=tuple((f"factor {i}", 5) for i in range(10)), observation_shape=[64, 64, 1],
    observation_dtype="float64", loader="dlib's DummyData: uniform noise, independent of the factors (unchanged)",
    check=_check))
