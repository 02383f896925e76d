"""The loop measure of a periodic factor (evaluation.periodicity): winding numbers of synthetic curves, the dSprites
heart sweeps it encodes, a tiny trained model's representation measured end to end, and the run page's section."""

import json
import math
import os

import numpy as np
import pytest

from evaluation import periodicity
from submission import layout
from submission.errors import UserError

DSPRITES_FACTORS = periodicity.sweep_factors("dsprites_full")  # shape, scale, orientation, posX, posY
ANGLES = 2. * math.pi * np.arange(39) / 39  # one turn, as a heart sweep samples it


def circle(angles=ANGLES, radius=1.):
  return radius * np.stack([np.cos(angles), np.sin(angles)], axis=1)


def embedded(points, dimensions, seed):
  """``points`` [K, 2] placed in a random plane of R^dimensions, shifted off the origin."""
  basis, _ = np.linalg.qr(np.random.RandomState(seed).normal(size=(dimensions, 2)))
  return points @ basis.T + 3.


# --- synthetic codes ---------------------------------------------------------------------------------------------
def test_a_circle_winds_once_and_its_reverse_minus_once():
  assert periodicity.winding_number(circle()) == 1
  assert periodicity.winding_number(circle()[::-1]) == -1
  measure = periodicity.loop_measure(circle())
  assert measure["is_loop"] and abs(measure["winding"]) == 1
  assert measure["clearance"] == pytest.approx(math.cos(math.pi / 39))  # the edges' midpoints are nearest
  assert measure["largest_step_ratio"] == pytest.approx(1.)
  assert measure["length_ratio"] == pytest.approx(39. * 2. * math.sin(math.pi / 39) / (2. * math.pi))  # the 39-gon's
  assert measure["explained_variance"] == pytest.approx(1.)


def test_a_circle_in_ten_dimensions_with_noise_still_winds_once():
  random_state = np.random.RandomState(0)
  for seed in range(20):
    codes = embedded(circle(), 10, seed) + random_state.normal(scale=0.1, size=(len(ANGLES), 10))
    measure = periodicity.loop_measure(codes)
    assert abs(measure["winding"]) == 1 and measure["is_loop"], (seed, measure["clearance"], measure["length_ratio"])


def test_an_elongated_loop_is_still_a_loop():
  ellipse = circle() * [1., 0.2]
  measure = periodicity.loop_measure(embedded(ellipse, 4, 5))
  assert measure["is_loop"] and measure["clearance"] > periodicity.MIN_CLEARANCE


def test_points_thrown_at_random_are_no_loop_even_when_they_wind_once():
  random_state, wound_once = np.random.RandomState(6), 0
  for _ in range(50):
    measure = periodicity.loop_measure(random_state.normal(size=(39, 10)))
    wound_once += abs(measure["winding"]) == 1
    assert not measure["is_loop"] and measure["length_ratio"] > 5.
  assert wound_once >= 10  # the winding number alone would have called these loops


def test_a_curve_going_round_twice_winds_twice():
  assert periodicity.winding_number(circle(2. * ANGLES)) == 2


def test_a_path_folding_back_along_an_arc_winds_zero_times():
  # Out along a half circle and back: the centroid lies inside the arc, off the path.
  out_and_back = math.pi * np.abs(np.sin(ANGLES / 2.))
  codes = embedded(circle(out_and_back), 6, 1)
  measure = periodicity.loop_measure(codes)
  assert measure["winding"] == 0 and not measure["is_loop"]
  noisy = codes + np.random.RandomState(2).normal(scale=0.05, size=codes.shape)
  assert periodicity.loop_measure(noisy)["winding"] == 0


def test_a_segment_folding_back_through_its_centroid_is_no_loop():
  # cos θ on a line: out and back along a segment that holds its own centroid. Its winding number is decided by
  # noise, so the clearance must rule it out.
  random_state = np.random.RandomState(3)
  for _ in range(20):
    codes = np.stack([np.cos(ANGLES), np.zeros_like(ANGLES), np.zeros_like(ANGLES)], axis=1)
    codes += random_state.normal(scale=0.03, size=codes.shape)
    measure = periodicity.loop_measure(codes)
    assert measure["clearance"] < periodicity.MIN_CLEARANCE and not measure["is_loop"]
  exact = periodicity.loop_measure(np.stack([np.cos(ANGLES), np.sin(ANGLES) * 0.], axis=1))
  assert exact["clearance"] == pytest.approx(0., abs=1e-12) and not exact["is_loop"]


def test_a_one_dimensional_monotone_code_cut_by_a_jump_is_no_loop():
  # A Euclidean coordinate that follows the angle and jumps back at 2π: a segment, closed by one long step.
  measure = periodicity.loop_measure(ANGLES[:, None])
  assert not measure["is_loop"] and measure["largest_step_ratio"] > 30.


def test_an_arc_cut_and_closed_by_its_chord_winds_once_but_its_largest_step_tells():
  measure = periodicity.loop_measure(circle(1.5 * math.pi * np.arange(39) / 38))
  assert abs(measure["winding"]) == 1                     # the chord closes it round the centroid
  assert measure["largest_step_ratio"] > 5.               # the jump a loop would not have


def test_constant_codes_are_no_loop():
  measure = periodicity.loop_measure(np.ones((39, 5)))
  assert measure["winding"] == 0 and measure["clearance"] == 0. and not measure["is_loop"]


def test_the_summary_counts_absolute_windings_and_loops():
  sweeps = [dict(winding=w, clearance=c, length_ratio=1., largest_step_ratio=1., explained_variance=0.9, is_loop=loop)
            for w, c, loop in ((1, 0.9, True), (-1, 0.8, True), (0, 0.0, False), (1, 0.1, False))]
  summary = periodicity.summarize(sweeps)
  assert summary["num_sweeps"] == 4 and summary["median_abs_winding"] == 1.
  assert summary["fraction_winding_once"] == 0.75 and summary["fraction_loops"] == 0.5
  assert summary["median_clearance"] == pytest.approx(0.45)


# --- the heart sweeps --------------------------------------------------------------------------------------------
def test_the_heart_sweeps_fix_the_heart_and_the_other_factors_and_turn_once():
  sweeps, fixed = periodicity.heart_orientation_sweeps(DSPRITES_FACTORS)
  assert sweeps.shape == (27, 39, 5)
  assert np.all(sweeps[:, :, 0] == 2)                                   # the heart
  assert np.all(sweeps[:, :, 2] == np.arange(39))                       # 0 .. 38: the 40th is the first again
  assert fixed[0] == {"scale": 1, "posX": 8, "posY": 8} and fixed[-1] == {"scale": 4, "posX": 23, "posY": 23}
  for sweep, values in zip(sweeps, fixed):
    assert np.all(sweep[:, [1, 3, 4]] == [values["scale"], values["posX"], values["posY"]])
  assert len({tuple(sorted(f.items())) for f in fixed}) == 27


def test_the_sweeps_apply_to_dsprites_with_shapes_only():
  from submission.data import named_data  # pylint: disable=import-outside-toplevel
  applies = {name for name in named_data.names()
             if periodicity.heart_sweeps_apply(periodicity.sweep_factors(name))}
  assert applies == {"dsprites_full", "color_dsprites", "noisy_dsprites", "scream_dsprites"}
  with pytest.raises(UserError, match="no heart"):
    periodicity.heart_orientation_sweeps(periodicity.sweep_factors("dsprites_noshape"))


class FactorEcho:
  """A stand-in for dSprites whose observation is its factor indices, so a representation can be any function of
  the factors; it records what it was asked for."""
  factors_num_values = [size for _, size in DSPRITES_FACTORS]
  observation_shape = [5]

  def sample_observations_from_factors(self, factors, random_state):  # pylint: disable=unused-argument
    self.asked = np.array(factors)
    return np.asarray(factors, dtype=np.float64)


def angle_of(observations):
  return 2. * math.pi * observations[:, 2] / 39.


def test_a_representation_that_turns_with_the_heart_makes_loops_and_one_that_folds_does_not():
  data = FactorEcho()
  random_state = np.random.RandomState(4)

  def loop(observations):  # (cos, sin) of the angle in 8 dimensions, with the position beside it
    theta = angle_of(observations)
    codes = np.zeros((len(observations), 8))
    codes[:, 0], codes[:, 1], codes[:, 5] = np.cos(theta), np.sin(theta), 0.01 * observations[:, 3]
    return codes + random_state.normal(scale=0.05, size=codes.shape)

  def fold(observations):  # |θ - π|: one Euclidean coordinate that folds the circle in two
    codes = np.zeros((len(observations), 8))
    codes[:, 0] = np.abs(angle_of(observations) - math.pi)
    return codes + random_state.normal(scale=0.05, size=codes.shape)

  loops = periodicity.orientation_loops(data, DSPRITES_FACTORS, loop)
  assert data.asked.shape == (27 * 39, 5)
  assert loops["summary"]["fraction_loops"] == 1. and loops["summary"]["median_abs_winding"] == 1.
  assert len(loops["sweeps"]) == 27 and loops["sweeps"][0]["fixed"] == {"scale": 1, "posX": 8, "posY": 8}
  folds = periodicity.orientation_loops(data, DSPRITES_FACTORS, fold)
  assert folds["summary"]["fraction_loops"] < 0.2
  json.dumps(loops)  # what the command line writes


class RenderedHearts(FactorEcho):
  """dSprites' factors rendered by the project's renderer (dsprites_render), without writing the 3 GB file."""
  observation_shape = [64, 64, 1]

  def sample_observations_from_factors(self, factors, random_state):
    from submission.data import dsprites_render  # pylint: disable=import-outside-toplevel
    super().sample_observations_from_factors(factors, random_state)
    values = dsprites_render.LATENTS_POSSIBLE_VALUES
    images = dsprites_render.render_sprites(
        factors[:, 0], values["scale"][factors[:, 1]], values["orientation"][factors[:, 2]],
        values["posX"][factors[:, 3]], values["posY"][factors[:, 4]])
    return images[..., None].astype(np.float32)

  def sample_observations(self, num, random_state):  # what visualize draws its pictures from
    factors = np.stack([random_state.randint(size, size=num) for size in self.factors_num_values], axis=1)
    return self.sample_observations_from_factors(factors, random_state)


def test_a_tiny_trained_model_is_measured_end_to_end_on_rendered_hearts(tiny_trained_model, tmp_path):
  """The representation of a real SavedModel on real rendered hearts (a model trained a few steps on noise: its
  numbers mean nothing, but every step from images to the picture runs)."""
  from evaluation import evaluate  # pylint: disable=import-outside-toplevel
  _, representation_dir = tiny_trained_model
  data = RenderedHearts()
  representation = evaluate.load_representation_function(representation_dir, data.observation_shape)
  result = periodicity.orientation_loops(data, DSPRITES_FACTORS, representation)
  assert result["summary"]["num_sweeps"] == 27
  assert all(isinstance(s["winding"], int) and len(s["points"]) == 39 for s in result["sweeps"])
  picture = periodicity.plot_loops({"tiny": result, "again": result}, str(tmp_path / layout.LOOPS_PICTURE))
  from PIL import Image  # pylint: disable=import-outside-toplevel
  with Image.open(picture) as image:
    assert image.size[0] > image.size[1]  # two panels side by side


# --- the run page and the pictures -------------------------------------------------------------------------------
def test_the_run_page_shows_the_measure_and_its_picture_when_the_pictures_hold_it(tmp_path):
  from applications import report  # pylint: disable=import-outside-toplevel
  from submission.atomic import write_json_atomically  # pylint: disable=import-outside-toplevel
  run = layout.RunLayout(str(tmp_path))
  assert "Periodic factor" not in report.run_report_html(run.root, "provenance")  # not measured: no section
  loops = periodicity.orientation_loops(FactorEcho(), DSPRITES_FACTORS,
                                        lambda observations: circle(angle_of(observations)))
  write_json_atomically(os.path.join(run.pictures, layout.LOOPS_RECORD), loops)
  periodicity.plot_loops({"run": loops}, os.path.join(run.pictures, layout.LOOPS_PICTURE))
  text = report.run_report_html(run.root, "provenance")
  assert "<h2>Periodic factor: the heart's orientation</h2>" in text
  assert "27/27 heart sweeps are loops; median |winding| 1" in text
  assert '<td><code>fraction_loops</code></td><td class="number">1.0000</td>' in text
  assert text.count("<td>scale 1, posX 8, posY 8</td>") == 1 and text.count("<td>yes</td>") == 27
  assert 'alt="orientation loops"' in text and "data:image/png;base64," in text


def test_pictures_measure_the_loops_only_on_data_with_the_heart(tiny_trained_model, tmp_path, monkeypatch):
  from applications import visualize  # pylint: disable=import-outside-toplevel
  model_dir, _ = tiny_trained_model  # trained on dummy_data, which has no heart
  small = dict(num_images=2, num_traversal_images=1, num_values=2, num_frames=2)
  paths = visualize.visualize(model_dir, str(tmp_path / "noise"), **small)
  assert paths and not any(os.path.basename(p) in (layout.LOOPS_RECORD, layout.LOOPS_PICTURE) for p in paths)
  # The same model, shown rendered hearts as if it had been trained on dSprites.
  monkeypatch.setattr(visualize.named_data, "load", lambda name: RenderedHearts())
  monkeypatch.setattr(periodicity, "sweep_factors", lambda name: DSPRITES_FACTORS)
  paths = visualize.visualize(model_dir, str(tmp_path / "hearts"), **small)
  hearts = str(tmp_path / "hearts")
  assert {os.path.join(hearts, name) for name in (layout.LOOPS_RECORD, layout.LOOPS_PICTURE)} <= set(paths)
  loops = json.load(open(tmp_path / "hearts" / layout.LOOPS_RECORD))
  assert loops["summary"]["num_sweeps"] == 27 and len(loops["sweeps"]) == 27


def test_the_command_line_refuses_a_directory_that_is_no_run_in_one_line(tmp_path):
  from conftest import assert_one_error_line, run_python  # pylint: disable=import-outside-toplevel
  (tmp_path / "model").mkdir()
  process = run_python(["-m", "evaluation.periodicity", str(tmp_path), "--out", str(tmp_path / "out")])
  assert_one_error_line(process, "records no data set")
