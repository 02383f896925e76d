"""The representation cache: each distinct observation of a deterministic data set encoded once, then looked up.

dlib's BetaVAE metric draws 1.9 M observations and its FactorVAE metric 1 M, but dSprites holds 737,280 distinct
images, and every one of them is a function of its factors alone. For such data sets (see
``submission.data.observation_index``: dSprites full/noshape, Shapes3D, MPI3D, Cars3D, SmallNORB,
CorrelatedEllipses) and a deterministic representation (the *mean* representation), the codes of all observations
are computed once, in large batches read straight from the uint8 array the loader holds, and dlib's metric
functions, called unchanged, are handed

* a ``GroundTruthData`` that forwards every factor draw to the real data set and, for the observations, returns
  the *rows* the real one would read (``ObservationRows``), consuming ``random_state`` exactly as it would; and
* a representation function that looks those rows up in the codes (and encodes anything else it is given).

So the factors drawn and every random stream are those of the uncached path, and the codes differ from it only by
the encoder's float rounding under another batch composition (measured in tests/test_representation_cache.py).

The codes live beside the representation, in ``REP/representation_cache/<dataset>.npz`` (float32 [count, d] plus
the key they were made for: a digest of the SavedModel's files, the data set's name, files and size). A cache whose
key differs from the current one is stale and is rebuilt; it is written atomically, and a file lock makes
concurrent evaluations of the same representation build it once. Where the representation directory cannot be
written, the codes are kept in memory for this evaluation only.

When: ``representation_cache.enabled`` (gin) is ``'auto'`` by default: a metric uses the cache when one is
already valid for its representation and data set, or when it would encode more images than the data set holds
(then it builds it). ``True`` always builds and uses it where possible; ``False`` never does.
"""

import fcntl
import hashlib
import json
import os
import sys
import time
import zipfile

import gin
import numpy as np

from disentanglement_lib.data.ground_truth import ground_truth_data
from evaluation.metrics import table
from submission import cli, layout
from submission.atomic import atomic_path
from submission.data import named_data
from submission.data.observation_index import observation_index
from submission.errors import UserError
from submission.results import gin_value

KEY_VERSION = 1
ENCODE_BATCH = 1024          # large enough to keep the encoder busy (measured best of 64-2048), ~150 MB of activations
PROGRESS_SECONDS = 15.0      # how often long encodings report


@gin.configurable("representation_cache")
def cache_setting(enabled="auto"):
  """``representation_cache.enabled``: 'auto' (default), True or False; see the module docstring."""
  if enabled not in ("auto", True, False):
    raise UserError(f"representation_cache.enabled must be 'auto', True or False, got {enabled!r}")
  return enabled


# --- how many images a metric encodes ----------------------------------------------------------------------------

def metric_name():
  """The configurable name bound to ``evaluation.evaluation_fn`` (e.g. 'mig'), or None."""
  try:
    return gin.query_parameter("evaluation.evaluation_fn").selector.split(".")[-1]
  except (ValueError, AttributeError):
    return None


def images_to_encode():
  """How many images the gin-bound ``evaluation.evaluation_fn`` will encode, or None for a metric not listed."""
  name = metric_name()
  return table.encoded_images(name, lambda parameter: gin.query_parameter(f"{name}.{parameter}"))


# --- progress ------------------------------------------------------------------------------------------------------

class ImageProgress:
  """Prints ``label: done/total images, rate, ETA`` at most every PROGRESS_SECONDS (and at the end)."""

  def __init__(self, label, total=None, stream=None):
    self.label, self.total, self.done = label, total, 0
    self.stream = stream or sys.stderr
    self.start = self.last = time.time()

  def add(self, count):
    self.done += count
    now = time.time()
    if now - self.last >= PROGRESS_SECONDS or (self.total and self.done >= self.total):
      self.last = now
      self.print(now)

  def print(self, now=None):
    elapsed = max((now or time.time()) - self.start, 1e-9)
    rate = self.done / elapsed
    line = f"[{self.label}] {self.done:,}"
    if self.total:
      left = max(self.total - self.done, 0)
      eta = cli.format_duration(left / rate) if rate > 0 else "?"
      line += f"/{self.total:,} images ({100 * min(self.done / self.total, 1):.0f} %), {rate:,.0f}/s, ETA {eta}"
    else:
      line += f" images, {rate:,.0f}/s"
    print(line, file=self.stream, flush=True)


def counting(representation_function, progress):
  """``representation_function`` reporting how many images it has been asked for."""

  def counted(observations):
    codes = representation_function(observations)
    progress.add(len(observations))
    return codes

  return counted


# --- the cached data set and representation -------------------------------------------------------------------

class ObservationRows(np.ndarray):
  """Row numbers standing in for observations (slicing keeps the type, so dlib's batching passes them through)."""


class CachedGroundTruthData(ground_truth_data.GroundTruthData):
  """``data`` with observations replaced by their rows: factor draws and random streams are ``data``'s own."""

  def __init__(self, data, index):
    self.data, self.index = data, index

  @property
  def num_factors(self):
    return self.data.num_factors

  @property
  def factors_num_values(self):
    return self.data.factors_num_values

  @property
  def observation_shape(self):
    return self.data.observation_shape

  def sample_factors(self, num, random_state):
    return self.data.sample_factors(num, random_state)

  def sample_observations_from_factors(self, factors, random_state):
    return np.asarray(self.index.rows(factors, random_state), dtype=np.int64).view(ObservationRows)


def lookup(codes, representation_function):
  """Codes of ObservationRows by lookup; anything else (real images) through ``representation_function``."""

  def represent(observations):
    if isinstance(observations, ObservationRows):
      return codes[np.asarray(observations)]
    return representation_function(observations)

  return represent


# --- the cache file ------------------------------------------------------------------------------------------------

def is_deterministic(representation_dir):
  """Only the mean representation gives one code per image (the sampled one draws anew on every call)."""
  recorded = layout.step_gin(representation_dir, layout.POSTPROCESS)
  return os.path.isfile(recorded) and gin_value(recorded, "postprocess.postprocess_fn") == "@mean_representation"


def saved_model_digest(representation_dir):
  """SHA-256 over the SavedModel's file names and contents (a few MB: the encoder's weights)."""
  root = layout.export_dir(representation_dir)
  digest = hashlib.sha256()
  for folder, subfolders, files in sorted(os.walk(root)):
    subfolders.sort()
    for name in sorted(files):
      path = os.path.join(folder, name)
      digest.update(os.path.relpath(path, root).encode() + b"\0")
      with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
          digest.update(block)
  return digest.hexdigest()


def cache_key(representation_dir, dataset_name, data, index):
  """What the codes depend on: the SavedModel's bytes and the data set (name, its files' size and mtime, count)."""
  files = list(named_data.required_paths(dataset_name))  # CorrelatedEllipses: its cache, unless rendered on demand
  stats = []
  for path in files:
    stat = os.stat(path)
    stats.append([os.path.abspath(path), stat.st_size, stat.st_mtime_ns])
  return {"version": KEY_VERSION, "saved_model_sha256": saved_model_digest(representation_dir),
          "dataset": dataset_name, "files": stats, "count": index.count,
          "observation_shape": list(data.observation_shape)}


def cache_file(representation_dir, dataset_name):
  return layout.representation_cache(representation_dir, dataset_name)


def read_codes(path, key):
  """The cached codes if ``path`` holds codes for exactly ``key``; None if missing, stale or unreadable."""
  try:
    with np.load(path) as stored:
      if json.loads(str(stored["key"])) != key:
        return None
      codes = stored["codes"]
  except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile):  # a truncated or damaged file: build anew
    return None
  return codes if codes.shape[0] == key["count"] else None


def encode_all(index, representation_function, batch_size=ENCODE_BATCH):
  """Codes [count, d] of every observation, in row order, ``batch_size`` images at a time."""
  progress = ImageProgress("representation cache", index.count)
  codes = None
  for start in range(0, index.count, batch_size):
    rows = np.arange(start, min(start + batch_size, index.count))
    batch = np.asarray(representation_function(index.observations(rows)), dtype=np.float32)
    if codes is None:
      codes = np.empty((index.count,) + batch.shape[1:], np.float32)
    codes[rows] = batch
    progress.add(len(rows))
  return codes


def load_or_build(representation_dir, dataset_name, data, index, representation_function, build):
  """The valid cached codes; if there are none and ``build``, encodes them (and stores them if it can)."""
  key = cache_key(representation_dir, dataset_name, data, index)
  path = cache_file(representation_dir, dataset_name)
  codes = read_codes(path, key)
  if codes is not None or not build:
    return codes
  try:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    lock = open(path + ".lock", "a")  # pylint: disable=consider-using-with
  except OSError as e:
    print(f"[representation cache] cannot write beside {representation_dir} ({e}); the codes are kept in memory "
          f"for this evaluation only", file=sys.stderr, flush=True)
    return encode_all(index, representation_function)
  with lock:
    fcntl.flock(lock, fcntl.LOCK_EX)  # a concurrent evaluation of the same representation waits, then reads
    codes = read_codes(path, key)
    if codes is None:
      print(f"[representation cache] encoding all {index.count:,} observations of {dataset_name} once "
            f"(-> {path})", file=sys.stderr, flush=True)
      codes = encode_all(index, representation_function)
      try:
        with atomic_path(path) as temporary, open(temporary, "wb") as f:
          np.savez(f, codes=codes, key=np.array(json.dumps(key)))
      except OSError as e:
        print(f"[representation cache] could not store {path} ({e}); the codes are used for this evaluation only",
              file=sys.stderr, flush=True)
  return codes


def cached_inputs(representation_dir, dataset_name, data, representation_function, images_needed=None,
                  enabled="auto"):
  """(data, representation function) to hand to a dlib metric: the cached pair where the cache applies, else the
  arguments unchanged. ``images_needed``: how many images the metric will encode (None: unknown)."""
  if enabled is False or not is_deterministic(representation_dir):
    return data, representation_function
  index = observation_index(data)
  if index is None:
    return data, representation_function
  build = enabled is True or (images_needed is not None and images_needed > index.count)
  codes = load_or_build(representation_dir, dataset_name, data, index, representation_function, build)
  if codes is None:
    return data, representation_function
  return CachedGroundTruthData(data, index), lookup(codes, representation_function)
