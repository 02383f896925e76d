"""``python -m submission.data {generate,info,show,verify}`` on small files the tests write."""

import os
import zipfile

import numpy as np
import PIL.Image
import pytest

from conftest import assert_one_error_line, run_python
from submission.data import dsprites_render, mpi3d, named_data, registry, tools

DSPRITES_SIZES = [1, 3, 2, 8, 5, 3]


def _write_small_dsprites(root):
  path = os.path.join(str(root), dsprites_render.DSPRITES_FILE)
  dsprites_render._write_npz(path, dsprites_render._subgrid_possible_values(DSPRITES_SIZES), progress=False)
  return path


def _run(capsys, *argv):
  """tools.main in process: (exit status, stdout, stderr)."""
  try:
    tools.main(list(argv))
    status = 0
  except SystemExit as e:
    status = e.code
  captured = capsys.readouterr()
  return status, captured.out, captured.err


@pytest.fixture
def data_root(tmp_path, monkeypatch):
  root = tmp_path / "data"
  root.mkdir()
  monkeypatch.setenv(named_data.DATA_ENV, str(root))
  return root


# --------------------------------------------------------------------------------------------------------------
# info
# --------------------------------------------------------------------------------------------------------------
def test_info_on_a_missing_file_is_one_error_line_and_exit_2(tmp_path):
  result = run_python(["-m", "submission.data", "info", "cars3d"],
                      env={named_data.DATA_ENV: str(tmp_path)}, timeout=300)
  assert_one_error_line(result, "error: dataset 'cars3d' needs ", os.path.join(str(tmp_path), "cars"),
                        "DISENTANGLEMENT_LIB_DATA")
  assert "factors (3): elevation 4, azimuth 24, object 183" in result.stdout
  assert f"file: {os.path.join(str(tmp_path), 'cars')}  MISSING" in result.stdout


def test_info_on_a_present_file(data_root, capsys):
  path = _write_small_dsprites(data_root)
  status, out, err = _run(capsys, "info", "dsprites_noshape")
  assert status == 0 and err == ""
  assert "factors (4): scale 6, orientation 40, posX 32, posY 32" in out
  assert "observation shape: [64, 64, 1] float32" in out
  assert f"file: {path}  present" in out
  assert f"provenance: {path} is the project's re-rendering of dSprites" in out
  assert f"check: ok, {int(np.prod(DSPRITES_SIZES))} images, latents_sizes {DSPRITES_SIZES} (not the official grid)" \
      in out
  status, out, err = _run(capsys, "info", "no_such_set")
  assert status == 2 and err.startswith("error: unknown dataset.name 'no_such_set'") and err.count("\n") == 1


def test_info_reports_the_factor_sizes_the_mpi3d_file_has(data_root, capsys):
  _write_header_only_npz(data_root / "mpi3d_realistic" / "mpi3d_realistic.npz", (1036800, 64, 64, 3))
  status, out, _ = _run(capsys, "info", "mpi3d_realistic")
  assert status == 0
  assert "object colour 4, object shape 4" in out  # dlib's sizes for the name ...
  assert "factor sizes in the file: [6, 6, 2, 3, 3, 40, 40]" in out  # ... and what the file holds


# --------------------------------------------------------------------------------------------------------------
# generate
# --------------------------------------------------------------------------------------------------------------
def test_generate_refuses_to_overwrite(tmp_path, capsys):
  path = tmp_path / dsprites_render.DSPRITES_FILE
  path.parent.mkdir(parents=True)
  path.write_bytes(b"keep me")
  status, out, err = _run(capsys, "generate", "dsprites", "--data_dir", str(tmp_path))
  assert status == 2 and out == ""
  assert err.splitlines() == [f"error: {path} already exists; pass --overwrite to replace it"]
  assert path.read_bytes() == b"keep me" and os.listdir(path.parent) == [path.name]


def test_generate_writes_where_asked_and_overwrites_on_request(data_root, tmp_path, capsys, monkeypatch):
  calls = []

  def small_writer(data_dir, chunk_size=8192, progress=True):  # the full file takes 25 s and 3.1 GB
    calls.append(data_dir)
    return dsprites_render._write_npz(os.path.join(data_dir, dsprites_render.DSPRITES_FILE),
                                      dsprites_render._subgrid_possible_values([1, 3, 1, 2, 2, 2]), progress=False)

  monkeypatch.setattr(dsprites_render, "write_dsprites_npz", small_writer)
  status, out, err = _run(capsys, "generate", "dsprites")  # default: $DISENTANGLEMENT_LIB_DATA
  path = os.path.join(str(data_root), dsprites_render.DSPRITES_FILE)
  assert status == 0 and err == "" and calls == [str(data_root)]
  assert out.startswith(f"wrote {path} (") and "not DeepMind's file" in out
  assert named_data.missing_paths("dsprites_full") == []
  other = tmp_path / "elsewhere"
  status, out, _ = _run(capsys, "generate", "dsprites", "--data_dir", str(other))
  assert status == 0 and os.path.exists(other / dsprites_render.DSPRITES_FILE)
  assert f"export {named_data.DATA_ENV}={other}" in out
  os.utime(path, (0, 0))
  status, _, err = _run(capsys, "generate", "dsprites")
  assert status == 2 and "already exists" in err and os.path.getmtime(path) == 0
  status, _, err = _run(capsys, "generate", "dsprites", "--overwrite")
  assert status == 0 and err == "" and os.path.getmtime(path) > 0 and len(calls) == 3
  status, _, err = _run(capsys, "generate", "shapes3d")
  assert status == 2 and err.count("\n") == 1 and "invalid choice: 'shapes3d'" in err


# --------------------------------------------------------------------------------------------------------------
# verify
# --------------------------------------------------------------------------------------------------------------
def _write_header_only_npz(path, shape):
  """An .npz whose 'images' member is only the .npy header of a uint8 array of ``shape`` (no pixels)."""
  os.makedirs(os.path.dirname(path), exist_ok=True)
  header = {"descr": "|u1", "fortran_order": False, "shape": tuple(shape)}
  with zipfile.ZipFile(path, "w") as archive, archive.open("images.npy", "w") as f:
    np.lib.format.write_array_header_1_0(f, header)


def _verify_lines(out):
  return {line.split()[1]: line.split()[0] for line in out.splitlines()[1:-1]}


def test_verify_reports_present_missing_and_unreadable(data_root, capsys, monkeypatch):
  _write_small_dsprites(data_root)
  n = 2 * 2 * 2 * 1 * 1 * 3 * 2
  monkeypatch.setitem(mpi3d.MPI3D_SIZES_BY_COUNT, n, (2, 2, 2, 1, 1, 3, 2))
  os.makedirs(data_root / "mpi3d_toy")
  np.savez(data_root / "mpi3d_toy" / "mpi3d_toy.npz", images=np.zeros((n, 64, 64, 3), np.uint8))
  # 12.7 GB of pixels announced, none stored: verify must read the header only.
  _write_header_only_npz(data_root / "mpi3d_real" / "mpi3d_real.npz", (1036800, 64, 64, 3))
  status, out, err = _run(capsys, "verify")
  assert status == 0 and err == ""
  states = _verify_lines(out)
  assert states == {
      "cars3d": "missing", "color_dsprites": "ok", "correlated_ellipses": "missing", "dsprites_full": "ok",
      "dsprites_noshape": "ok",
      "dummy_data": "ok", "mpi3d_real": "ok", "mpi3d_realistic": "missing", "mpi3d_toy": "ok",
      "noisy_dsprites": "ok", "scream_dsprites": "missing", "shapes3d": "missing", "smallnorb": "missing"}
  assert "1036800 images, factor sizes [6, 6, 2, 3, 3, 40, 40]; observations [64, 64, 3]" in out
  assert f"{int(np.prod(DSPRITES_SIZES))} images, latents_sizes {DSPRITES_SIZES}" in out
  assert out.splitlines()[-1] == "7 present and readable, 6 missing, 0 unreadable"
  # A file the project can make says how; an official one does not.
  assert "correlated_ellipses_v1_32x32x6x40.npy (`python -m submission.data generate correlated_ellipses` makes it)" \
      in out
  assert "scream.jpg (`python -m submission.data generate dsprites` makes it)" not in out

  # Present but wrong: a truncated dSprites file, an image-less MPI3D file, a 3dshapes.h5 that is not HDF5.
  with open(named_data.required_paths("dsprites_full")[0], "r+b") as f:
    f.truncate(1000)
  _write_header_only_npz(data_root / "mpi3d_toy" / "mpi3d_toy.npz", (100, 64, 64, 3))
  os.makedirs(data_root / "3dshapes")
  (data_root / "3dshapes" / "3dshapes.h5").write_bytes(b"not hdf5")
  status, out, err = _run(capsys, "verify")
  states = _verify_lines(out)
  assert [n for n, s in states.items() if s == "FAILED"] == [
      "color_dsprites", "dsprites_full", "dsprites_noshape", "mpi3d_toy", "noisy_dsprites", "shapes3d"]
  assert "mpi3d_toy.npz holds 100 images, which matches no MPI3D factor grid" in out
  assert status == 2 and err.count("\n") == 1
  assert err.startswith("error: 6 data set(s) present but unreadable: color_dsprites, dsprites_full")

  status, out, err = _run(capsys, "verify", "dummy_data", "cars3d")
  assert status == 0 and _verify_lines(out) == {"dummy_data": "ok", "cars3d": "missing"}


# --------------------------------------------------------------------------------------------------------------
# show
# --------------------------------------------------------------------------------------------------------------
def _cell(picture, row, column, zoom=2):
  cell = 64 * zoom
  top = tools.TITLE_HEIGHT + row * (cell + tools.PAD)
  left = tools.LABEL_WIDTH + tools.PAD + column * (cell + tools.PAD)
  return picture[top:top + cell, left:left + cell, 0].astype(np.float64) / 255.0


def test_show_draws_random_observations_and_traversals(data_root, tmp_path, capsys):
  _write_small_dsprites(data_root)
  out_path = str(tmp_path / "dsprites.png")
  status, out, err = _run(capsys, "show", "dsprites_full", "--out", out_path)
  assert status == 0 and err == "" and out.startswith(f"wrote {out_path} (1484x956)")
  picture = np.asarray(PIL.Image.open(out_path).convert("RGB"))
  assert picture.shape == (tools.show_image_size(5)[1], tools.show_image_size(5)[0], 3)
  assert picture.shape[:2] == (28 + 7 * 132 + 4, 160 + 10 * 132 + 4)
  # Rows 0-1: random sprites (white on black); then shape, scale, orientation, posX, posY traversals.
  assert all(0 < _cell(picture, r, c).mean() < 0.3 for r in range(2) for c in range(10))
  scale_areas = [_cell(picture, 3, c).sum() for c in range(2)]
  assert scale_areas[0] < scale_areas[1]  # the small grid has 2 scale values
  columns = np.arange(128)
  centres = [(_cell(picture, 5, c).sum(axis=0) * columns).sum() / _cell(picture, 5, c).sum() for c in range(5)]
  assert np.all(np.diff(centres) > 0)  # posX: the centre of mass moves right
  rows_y = [(_cell(picture, 6, c).sum(axis=1) * columns).sum() / _cell(picture, 6, c).sum() for c in range(3)]
  assert np.all(np.diff(rows_y) > 0)  # posY: down
  assert _cell(picture, 2, 3).min() == 1.0  # 3 shapes: the shape row ends after 3 cells (white background)
  assert len({_cell(picture, 2, c).tobytes() for c in range(3)}) == 3


def test_show_dummy_data_and_bad_output_path(data_root, tmp_path, capsys):
  out_path = str(tmp_path / "dummy.png")
  status, out, err = _run(capsys, "show", "dummy_data", "--out", out_path, "--columns", "5", "--zoom", "1")
  assert status == 0 and err == ""
  width, height = tools.show_image_size(10, columns=5, zoom=1)
  assert (width, height) == (160 + 5 * 68 + 4, 28 + 12 * 68 + 4)
  picture = np.asarray(PIL.Image.open(out_path).convert("RGB"))
  assert picture.shape == (height, width, 3)
  noise = _cell(picture, 0, 0, zoom=1)
  assert 0.4 < noise.mean() < 0.6 and noise.std() > 0.2  # uniform noise
  # Traversals reuse one random state per row: dummy_data's noise ignores the factors, so a row repeats.
  assert all(np.array_equal(_cell(picture, 2, 0, zoom=1), _cell(picture, 2, c, zoom=1)) for c in range(5))
  assert not np.array_equal(_cell(picture, 2, 0, zoom=1), _cell(picture, 3, 0, zoom=1))
  status, _, err = _run(capsys, "show", "dummy_data", "--out", str(tmp_path / "no_dir" / "x.png"))
  assert status == 2 and err.startswith("error: the directory of --out does not exist") and err.count("\n") == 1
  status, _, err = _run(capsys, "show", "cars3d", "--out", str(tmp_path / "cars.png"))
  assert status == 2 and "cars3d' needs" in err and not os.path.exists(tmp_path / "cars.png")


def test_verify_and_info_never_load_a_data_set(data_root, capsys, monkeypatch):
  """A registered data set without metadata (e.g. one rendered on first use) is described, not loaded."""
  def expensive_load():
    raise AssertionError("loaded")

  monkeypatch.setitem(registry._REGISTRY, "rendered_on_first_use",
                      named_data.DatasetEntry("rendered_on_first_use", expensive_load))
  monkeypatch.setitem(registry._REGISTRY, "with_a_file",
                      named_data.DatasetEntry("with_a_file", expensive_load, ("f.bin",)))
  (data_root / "f.bin").write_bytes(b"x")
  status, out, err = _run(capsys, "verify", "rendered_on_first_use", "with_a_file")
  assert status == 0 and err == ""
  assert "ok       rendered_on_first_use  no files needed" in out
  assert "ok       with_a_file            files present (no header check registered for it)" in out
  status, out, err = _run(capsys, "info", "rendered_on_first_use")
  assert status == 0 and "factors: not declared when it was registered" in out and "files: none needed" in out
