"""Does a representation recover a periodic factor as a loop? The winding number of a periodic sweep's codes.

    python -m evaluation.periodicity RUN [RUN ...] --out DIR [--labels A,B,...] [--pixels] [--seed S]

A factor that is periodic in the data (an angle) is best represented by codes that go once round a loop as the
factor goes once round its period; a Euclidean code of one coordinate must instead cut the circle somewhere or fold
it back on itself. This is what hyperspherical and toroidal latents (ΔVAE) are chosen for, so the measure here
makes it visible, on dSprites, and checkable by eye.

**The sweeps.** In dSprites the orientation is 2π-periodic only for the heart (the square repeats after π/2 and
the ellipse after π, so their orientation sweeps close up several times per turn). With the shape fixed at the
heart and every other factor (scale, posX, posY) fixed at one of FIXED_VALUE_QUANTILES of its values (the values
at a quarter, half and three quarters of its range: 3 × 3 × 3 = 27 sweeps, away from the canvas's edges and the
smallest sprites), one sweep is the orientation going once round. dSprites' orientation values are
linspace(0, 2π, 40): the last, 2π, is the same pose (the same image) as the first, so a sweep takes the first 39
values and the closed curve steps from the 39th back to the first, a step of 2π/39 like every other.

**The measure, per sweep.** The sweep's mean codes (the model's mean representation, the one dlib's metrics read)
are centred on their centroid and projected on their own first two principal components. The projected points,
joined in orientation order and closed, form a polygon; its **winding number** around the centroid is the sum of
the angles (each wrapped into (-π, π]) that the points turn through as seen from the centroid, over 2π: an
integer, 1 (or -1) for a loop that goes once round, 0 for a path that goes out and folds back, 2 for a curve
that goes round twice (as a sweep of the π-periodic ellipse may). Its sign is irrelevant and only ``|w|`` is summarised: the signs of
principal components are arbitrary, and a model has no reason to turn its code the way the sprite turns.

Three numbers say how much to trust a winding number, because it is a property of a curve around one point and
any closed scribble has one:

* ``clearance``: the smallest distance from the closed polygon to the centroid, over the root-mean-square (RMS)
  distance of the points from it. About 1 for a round loop; near 0 for a curve that passes through its centre,
  e.g. a path folding back along a line, whose winding number is then decided by noise.
* ``length_ratio``: the polygon's length over the circumference of a circle of the same RMS radius. About 1 for
  any smooth curve (a circle 1, an ellipse of axis ratio 7 0.94, a segment traversed out and back 0.9); above 2
  for a curve that wiggles as much as it turns (a circle in 10 dimensions with noise of a third of its radius per
  dimension: about 3); about 8 (never below 6.5) for 39 points drawn at random in 10 dimensions, whose winding
numbers are ±1 for 38 % of draws, 0 for 18 %, 2 or more for the rest.

A sweep counts as a **loop** when ``|w| = 1``, the clearance is at least MIN_CLEARANCE and the length ratio at
most MAX_LENGTH_RATIO. One more number is shown, not used in that verdict:

* ``largest_step_ratio``: the longest step between consecutive orientations over the median step. About 1 for an
  evenly traversed loop; large for a curve that is cut somewhere and closed by one jump (an arc closed by its chord
  also winds once round its centroid, and this is how to tell it from a loop).

``explained_variance`` (the share of the codes' variance in the two components) says how much of the sweep the
plane shows: a low value means the picture is a shadow of a curve that lives in more dimensions.

**Summary over the sweeps**: the median ``|w|``, the fraction of sweeps with ``|w| = 1``, the fraction of loops,
and the medians of the clearance, the length ratio, the largest step ratio and the explained variance.

**What a loop does and does not say.** The images of a turning heart are themselves a loop in pixel space: the
pixels, taken as the representation, make 27 loops of 27 on the rendered dSprites (``--pixels`` draws that
reference beside the runs), and an encoder that stays close to a linear map of them keeps it. A 10-dimensional
random linear map of the pixels makes none (its plane holds a scribble). So a loop says the representation kept
the circle the data has, where a Euclidean code that puts the orientation on one axis must cut or fold it (one
that spreads it over two coordinates can keep the loop too); it does not say, alone, that the orientation is
disentangled from the other factors (dlib's metrics say that).

The picture (``plot_loops``, one panel per run) draws each sweep's projected polygon, scaled to unit RMS radius and
coloured by orientation on a cyclic colour map, the middle sweep (every other factor at its middle value) bold, and
the centroid as a cross: a loop is a ring round the cross, a folded path a line or a crescent that comes back on
itself, a representation that ignores the orientation a scribble.
"""

import itertools
import math
import os
import sys

import numpy as np

from submission import cli, layout
from submission.errors import UserError
from submission.layout import RunLayout

SHAPE, ORIENTATION = "shape", "orientation"  # the data set's factor names (the registry's)
HEART = 2                 # dSprites' shape values are 1 square, 2 ellipse, 3 heart: the heart's index is 2
NUM_SHAPES, NUM_ORIENTATIONS = 3, 40   # dSprites' grid; another grid is not dSprites' and is not swept
FIXED_VALUE_QUANTILES = (0.25, 0.5, 0.75)
# A loop's curve keeps at least this share of its RMS radius away from its centroid. A round loop has about 1; an
# ellipse of axis ratio 7 about 0.2, still counted; a path folding back along a line has about 0.
MIN_CLEARANCE = 0.2
# A loop's curve is at most this many times as long as a circle of its RMS radius (see the module docstring).
MAX_LENGTH_RATIO = 2.
ENCODE_BATCH = 256


# --- the measure on codes (pure NumPy) ---------------------------------------------------------------------------
def principal_plane(codes):
  """([K, 2] the codes' coordinates on their first two principal components, centred on the centroid; the share
  of the codes' variance the two components hold)."""
  codes = np.asarray(codes, dtype=np.float64)
  centred = codes - codes.mean(axis=0)
  _, singular_values, components = np.linalg.svd(centred, full_matrices=False)
  points = centred @ components[:2].T
  if points.shape[1] < 2:  # a one-dimensional code: its sweep lies on a line
    points = np.concatenate([points, np.zeros((len(points), 2 - points.shape[1]))], axis=1)
  total = float(np.sum(singular_values ** 2))
  return points, (float(np.sum(singular_values[:2] ** 2)) / total if total > 0. else 0.)


def closed_steps(points):
  """[K, 2] the steps of the closed polygon through ``points`` (the last one back to the first)."""
  return np.roll(points, -1, axis=0) - points


def winding_number(points, centre=(0., 0.)):
  """The integer number of times the closed polygon through ``points`` ([K, 2], in order) turns round ``centre``
  (positive counter-clockwise); 0 when a point lies on the centre, round which nothing turns."""
  relative = np.asarray(points, dtype=np.float64) - np.asarray(centre, dtype=np.float64)
  z = relative[:, 0] + 1j * relative[:, 1]
  if np.any(z == 0):
    return 0
  turns = np.angle(np.roll(z, -1) / z)  # each step's turn as seen from the centre, in (-π, π]
  return int(round(float(np.sum(turns)) / (2. * math.pi)))


def clearance(points, centre=(0., 0.)):
  """The distance from ``centre`` to the closed polygon through ``points``, over the points' RMS distance from it
  (0 for points all on the centre)."""
  relative = np.asarray(points, dtype=np.float64) - np.asarray(centre, dtype=np.float64)
  radius = math.sqrt(float(np.mean(np.sum(relative ** 2, axis=1))))
  if radius == 0.:
    return 0.
  steps = closed_steps(relative)
  lengths = np.sum(steps ** 2, axis=1)
  # The nearest point of each edge p + t·s (t in [0, 1]) to the origin.
  t = np.clip(-np.sum(relative * steps, axis=1) / np.where(lengths > 0., lengths, 1.), 0., 1.)
  nearest = relative + t[:, None] * steps
  return float(np.min(np.linalg.norm(nearest, axis=1))) / radius


def loop_measure(codes):
  """The measure of one sweep's codes ([K, d], in the order of the periodic factor, the last followed by the
  first): {winding, clearance, length_ratio, largest_step_ratio, explained_variance, is_loop, points}; ``points``
  are the projected codes scaled to unit RMS radius (for the picture)."""
  points, explained = principal_plane(codes)
  radius = math.sqrt(float(np.mean(np.sum(points ** 2, axis=1))))
  step_lengths = np.linalg.norm(closed_steps(points), axis=1)
  median_step = float(np.median(step_lengths))
  winding, clear = winding_number(points), clearance(points)
  # Constant codes (radius 0) are no curve: infinite ratios keep them out of the loops.
  length_ratio = float(np.sum(step_lengths)) / (2. * math.pi * radius) if radius > 0. else math.inf
  return {"winding": winding, "clearance": clear, "length_ratio": length_ratio,
          "largest_step_ratio": float(np.max(step_lengths)) / median_step if median_step > 0. else math.inf,
          "explained_variance": explained,
          "is_loop": abs(winding) == 1 and clear >= MIN_CLEARANCE and length_ratio <= MAX_LENGTH_RATIO,
          "points": (points / radius if radius > 0. else points).tolist()}


def summarize(sweeps):
  """The summary of the per-sweep measures (see the module docstring)."""
  windings = np.abs([s["winding"] for s in sweeps])
  return {"num_sweeps": len(sweeps),
          "median_abs_winding": float(np.median(windings)),
          "fraction_winding_once": float(np.mean(windings == 1)),
          "fraction_loops": float(np.mean([s["is_loop"] for s in sweeps])),
          "median_clearance": float(np.median([s["clearance"] for s in sweeps])),
          "median_length_ratio": float(np.median([s["length_ratio"] for s in sweeps])),
          "median_largest_step_ratio": float(np.median([s["largest_step_ratio"] for s in sweeps])),
          "median_explained_variance": float(np.median([s["explained_variance"] for s in sweeps]))}


# --- the sweeps of dSprites hearts -------------------------------------------------------------------------------
def sweep_factors(dataset_name):
  """(name, number of values) of each factor of ``dataset_name``, as the data set registry records them."""
  from submission.data import named_data  # pylint: disable=import-outside-toplevel  (imports TensorFlow)
  return tuple(named_data.entry(dataset_name).factors or ())


def heart_sweeps_apply(factors):
  """Whether the data set of ``factors`` ((name, size) pairs) has dSprites' shapes and orientations as factors:
  dSprites and its colour, noise and scream variants; not dsprites_noshape, where the shape is drawn at random."""
  sizes = dict(factors)
  return sizes.get(SHAPE) == NUM_SHAPES and sizes.get(ORIENTATION) == NUM_ORIENTATIONS


def heart_orientation_sweeps(factors, quantiles=FIXED_VALUE_QUANTILES):
  """([S, K, F] factor indices of S sweeps of K = NUM_ORIENTATIONS - 1 orientations, [S] {factor: fixed index} of
  each sweep's other factors): the shape is the heart, every other factor takes the values at ``quantiles`` of its
  range (index round(q·(n - 1))), in every combination."""
  if not heart_sweeps_apply(factors):
    raise UserError(f"the factors {[name for name, _ in factors]} are not dSprites' (a {SHAPE} of {NUM_SHAPES} "
                    f"values and an {ORIENTATION} of {NUM_ORIENTATIONS}): no heart to turn")
  names = [name for name, _ in factors]
  others = [(i, name, size) for i, (name, size) in enumerate(factors) if name not in (SHAPE, ORIENTATION)]
  choices = [sorted({int(round(q * (size - 1))) for q in quantiles}) for _, _, size in others]
  orientations = np.arange(NUM_ORIENTATIONS - 1)  # the 40th value, 2π, is the first pose again
  sweeps, fixed = [], []
  for values in itertools.product(*choices):
    sweep = np.zeros((len(orientations), len(factors)), dtype=np.int64)
    sweep[:, names.index(SHAPE)] = HEART
    sweep[:, names.index(ORIENTATION)] = orientations
    for (i, _, _), value in zip(others, values):
      sweep[:, i] = value
    sweeps.append(sweep)
    fixed.append({name: value for (_, name, _), value in zip(others, values)})
  return np.stack(sweeps), fixed


def encode(representation_function, observations):
  return np.concatenate([np.asarray(representation_function(observations[i:i + ENCODE_BATCH]))
                         for i in range(0, len(observations), ENCODE_BATCH)])


def orientation_loops(data, factors, representation_function, seed=0):
  """The measure of ``representation_function`` (images → codes) on the heart sweeps of ``data`` (a dlib
  GroundTruthData whose factors are ``factors``, (name, size) pairs): {"summary": ..., "sweeps": [{fixed, winding,
  ...}]}. ``seed`` seeds what the data set draws beside the factors (the colour of color_dsprites, the background
  of noisy and scream dSprites)."""
  sweeps, fixed = heart_orientation_sweeps(factors)
  num_sweeps, length, num_factors = sweeps.shape
  observations = data.sample_observations_from_factors(sweeps.reshape(-1, num_factors),
                                                       np.random.RandomState(seed))
  codes = encode(representation_function, observations).reshape(num_sweeps, length, -1)
  measures = [dict(fixed=f, **loop_measure(c)) for f, c in zip(fixed, codes)]
  return {"summary": summarize(measures), "sweeps": measures}


def describe(summary):
  """One line: the summary as a reader checks it against the picture."""
  return (f"{summary['fraction_loops'] * summary['num_sweeps']:.0f}/{summary['num_sweeps']} heart sweeps are loops; "
          f"median |winding| {summary['median_abs_winding']:g}, |w| = 1 in "
          f"{summary['fraction_winding_once']:.0%}, median clearance {summary['median_clearance']:.2f}, median "
          f"length ratio {summary['median_length_ratio']:.2f}, median largest step "
          f"{summary['median_largest_step_ratio']:.1f}× the median step, the plane holds "
          f"{summary['median_explained_variance']:.0%} of the variance")


# --- the picture ---------------------------------------------------------------------------------------------------
def plot_loops(results, path, panel_inches=3.6):
  """One panel per entry of ``results`` ({label: orientation_loops(...)}, in order): every sweep's projected, closed
  polygon, thin, coloured by orientation (a cyclic colour map, so the colour also closes up); the middle sweep (every
  other factor at its middle value) thick with its points marked; the centroid a red cross."""
  import matplotlib  # pylint: disable=import-outside-toplevel
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel
  from matplotlib.collections import LineCollection  # pylint: disable=import-outside-toplevel
  figure, axes = plt.subplots(1, len(results), figsize=(panel_inches * len(results), panel_inches + 0.6),
                              squeeze=False)
  for axis, (label, result) in zip(axes[0], results.items()):
    sweeps = result["sweeps"]
    middle = len(sweeps) // 2  # the product of odd numbers of values per factor: its middle is every middle value
    for index, sweep in enumerate(sweeps):
      points = np.asarray(sweep["points"])
      segments = np.stack([points, np.roll(points, -1, axis=0)], axis=1)  # closed: the last step returns
      angles = 2. * math.pi * (np.arange(len(points)) + 0.5) / len(points)
      bold = index == middle
      lines = LineCollection(segments, cmap="twilight", linewidths=2.2 if bold else 0.6, alpha=1. if bold else 0.35,
                             zorder=3 if bold else 2)
      lines.set_array(angles)
      lines.set_clim(0., 2. * math.pi)
      axis.add_collection(lines)
      if bold:
        axis.scatter(points[:, 0], points[:, 1], c=angles, cmap="twilight", vmin=0., vmax=2. * math.pi, s=14,
                     edgecolors="black", linewidths=0.4, zorder=4)
    axis.plot([0.], [0.], marker="+", color="red", markersize=12, markeredgewidth=2, zorder=5)
    axis.autoscale()
    summary = result["summary"]
    axis.set_title(f"{label}\nloops {summary['fraction_loops'] * summary['num_sweeps']:.0f}/{summary['num_sweeps']}, "
                   f"median |w| = {summary['median_abs_winding']:g}", fontsize=9)
    axis.set_aspect("equal", adjustable="datalim")
    axis.set_xticks([])
    axis.set_yticks([])
  figure.text(0.5, 0.01, "each sweep on its own first two PCs, unit RMS radius\ncolour: orientation; bold: the "
              "middle sweep; +: centroid", ha="center", fontsize=7, color="0.3")
  figure.tight_layout(rect=(0., 0.06, 1., 1.))
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  figure.savefig(path, format="png", dpi=100)
  plt.close(figure)
  return path


# --- runs (the command line) ---------------------------------------------------------------------------------------
def run_representation_function(run_dir, observation_shape):
  """The run's mean representation: ``postprocessed/mean`` when it was postprocessed, else the trained model's own
  ``mean_representation`` signature (the same function, exported with the model)."""
  from evaluation import evaluate  # pylint: disable=import-outside-toplevel  (imports TensorFlow)
  run = RunLayout(run_dir)
  if os.path.isdir(layout.export_dir(run.representation)):
    return evaluate.load_representation_function(run.representation, observation_shape)
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  path = layout.export_dir(run.model)
  if not os.path.isdir(path):
    raise UserError(f"{run_dir} holds neither {run.representation} nor {path}: not a trained run")
  signature = tf.saved_model.load(path).signatures["mean_representation"]
  return lambda images: signature(images=tf.convert_to_tensor(images, tf.float32))["default"].numpy()


def run_dataset(run_dir):
  from submission import postprocess  # pylint: disable=import-outside-toplevel  (imports TensorFlow)
  name = postprocess.recorded_dataset(RunLayout(run_dir).model, layout.TRAIN)
  if name is None:
    raise UserError(f"{run_dir}: its model records no data set (no model card, no train.gin)")
  return name.strip("'\"")


def flattened_pixels(images):
  """The identity representation: each image's pixels as one vector (the reference ``--pixels`` draws)."""
  images = np.asarray(images, dtype=np.float64)
  return images.reshape(len(images), -1)


def measure_runs(run_dirs, labels=None, seed=0, pixels=False):
  """{label: orientation_loops(...) plus "run" and "dataset"} for each run; a run trained on a data set without
  the heart is reported and left out. With ``pixels``, each data set's pixels are measured too (label
  "pixels of <data set>"), after its runs. Each data set is loaded once."""
  from submission.data import named_data  # pylint: disable=import-outside-toplevel  (imports TensorFlow)
  labels = labels or [os.path.basename(os.path.normpath(r)) for r in run_dirs]
  if len(labels) != len(run_dirs):
    raise UserError(f"{len(labels)} labels for {len(run_dirs)} runs")
  loaded, results = {}, {}
  for label, run_dir in zip(labels, run_dirs):
    dataset = run_dataset(run_dir)
    factors = sweep_factors(dataset)
    if not heart_sweeps_apply(factors):
      print(f"[periodicity] {label}: {dataset} has no heart to turn (not a dSprites data set with shapes): skipped",
            flush=True)
      continue
    if dataset not in loaded:
      loaded[dataset] = named_data.load(dataset)
    data = loaded[dataset]
    result = orientation_loops(data, factors, run_representation_function(run_dir, data.observation_shape), seed)
    results[label] = dict(run=os.path.abspath(run_dir), dataset=dataset, **result)
    print(f"[periodicity] {label}: {describe(result['summary'])}", flush=True)
  if pixels:
    for dataset, data in loaded.items():
      label = f"pixels of {dataset}"
      results[label] = dict(run=None, dataset=dataset,
                            **orientation_loops(data, sweep_factors(dataset), flattened_pixels, seed))
      print(f"[periodicity] {label}: {describe(results[label]['summary'])}", flush=True)
  return results


def write_report(results, out_dir):
  """Writes ``out_dir/periodic_loops.json`` and, when a run was measured, ``out_dir/periodic_loops.png``."""
  from submission.atomic import write_json_atomically  # pylint: disable=import-outside-toplevel
  os.makedirs(out_dir, exist_ok=True)
  paths = [os.path.join(out_dir, layout.LOOPS_RECORD)]
  write_json_atomically(paths[0], results)
  if results:
    paths.append(plot_loops(results, os.path.join(out_dir, layout.LOOPS_PICTURE)))
  return paths


def main(argv=None):
  parser = cli.ArgumentParser(description="Whether each run's mean representation turns the dSprites heart's "
                              "orientation into a loop: winding numbers of the projected orientation sweeps, as "
                              "JSON and a picture (one panel per run).")
  parser.add_argument("run_dirs", nargs="+", metavar="RUN", help="a run's output directory (./run_local.sh's, a "
                      "sweep point's): postprocessed/mean or model/tfhub is read")
  parser.add_argument("--out", required=True, help=f"directory for {layout.LOOPS_RECORD} and {layout.LOOPS_PICTURE}")
  parser.add_argument("--labels", help="comma-separated panel labels, one per run (default: the directory names)")
  parser.add_argument("--pixels", action="store_true", help="also measure the raw pixels of each data set (a "
                      "reference: the images of a turning heart are a loop themselves)")
  parser.add_argument("--seed", type=int, default=0, help="seed of what the data set draws beside the factors")
  args = parser.parse_args(argv)
  labels = args.labels.split(",") if args.labels else None
  results = cli.main_guard(measure_runs, args.run_dirs, labels, args.seed, args.pixels)
  for path in write_report(results, args.out):
    print(f"[periodicity] wrote {path}")


if __name__ == "__main__":
  main(sys.argv[1:])
