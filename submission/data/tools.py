"""``python -m submission.data {generate,info,show,verify}``: make, describe, look at and check the data sets.

  generate NAME [--data_dir DIR] [--overwrite]       make the files of a data set the project can make into DIR
                                                     (default: $DISENTANGLEMENT_LIB_DATA, else .): dsprites
                                                     (rendered in the official format, about 30 s, 3.1 GB),
                                                     correlated_ellipses (its image cache, about 15 s, 0.94 GiB)
  info NAME                                          factors and sizes, observation shape, expected file path(s),
                                                     present or missing (exit 2 when missing), provenance
  show NAME --out FILE.png [--seed S]                a grid of random observations and one traversal per factor
  verify [NAME ...]                                  which data sets are present and readable (headers and shapes
                                                     checked without loading the big arrays)

Errors: one ``error: ...`` line on stderr and exit status 2.
"""

import argparse
import os
import sys

import numpy as np

from submission import cli
from submission.atomic import atomic_path
from submission.data import named_data
from submission.errors import UserError

# ------------------------------------------------------------------------------------------------------------
# generate
# ------------------------------------------------------------------------------------------------------------
def generate(name, data_dir=None, overwrite=False):
  """Writes the files of the generator ``name`` under ``data_dir`` (registry.generate); returns the path written."""
  written = named_data.generate(name, data_dir, overwrite)
  print(f"wrote {written} ({os.path.getsize(written) / 1e9:.2f} GB): {named_data.generators()[name].what}")
  data_dir = named_data.data_root() if data_dir is None else data_dir
  if os.path.abspath(data_dir) != os.path.abspath(named_data.data_root()):
    print(f"use it with: export {named_data.DATA_ENV}={os.path.abspath(data_dir)}")
  return written


# ------------------------------------------------------------------------------------------------------------
# info
# ------------------------------------------------------------------------------------------------------------
def _format_factors(factors):
  return ", ".join(f"{name} {size}" for name, size in factors)


def _size_text(path):
  if os.path.isdir(path):
    return "directory"
  size = os.path.getsize(path)
  return f"{size / 1e9:.2f} GB" if size >= 1e8 else f"{size / 1e6:.1f} MB" if size >= 1e5 else f"{size} bytes"


def info(name, out=None):
  """Prints what ``name`` is and where its files are; UserError (after printing) when a file is missing."""
  out = sys.stdout if out is None else out
  entry = named_data.entry(name)
  lines = [name]
  if entry.loader:
    lines.append(f"  loader: {entry.loader}")
  factors, shape, dtype = entry.factors, entry.observation_shape, entry.observation_dtype
  if factors is not None:
    lines.append(f"  factors ({len(factors)}): {_format_factors(factors)}")
  else:  # loading could be expensive (it could make a generated file): not done here
    lines.append(f"  factors: not declared when it was registered (`show {name}` loads it and draws them)")
  if shape is not None:
    lines.append(f"  observation shape: {list(shape)}" + (f" {dtype}" if dtype else ""))
  if not entry.required_files():
    lines.append("  files: none needed")
  for alternatives in named_data.expected_paths(name):
    for k, path in enumerate(alternatives):
      label = "file:" if k == 0 else "  or:"
      state = f"present ({_size_text(path)})" if os.path.exists(path) else "MISSING"
      lines.append(f"  {label} {path}  {state}")
  missing = named_data.missing_message(name)  # includes how to get the file
  print("\n".join(lines), file=out, flush=True)
  if missing:
    raise UserError(missing)
  result = named_data.check(name)
  if result:
    print(f"  check: ok, {result['detail']}", file=out)
    sizes = result.get("factors_num_values")
    if sizes is not None and factors is not None and list(sizes) != [n for _, n in factors]:
      print(f"  factor sizes in the file: {list(sizes)}", file=out)
  print(f"  provenance: {named_data.provenance(name)[1]}", file=out)


# ------------------------------------------------------------------------------------------------------------
# show
# ------------------------------------------------------------------------------------------------------------
LABEL_WIDTH = 160
TITLE_HEIGHT = 28
PAD = 4


def show_image_size(num_factors, columns=10, random_rows=2, zoom=2):
  """(width, height) in pixels of the picture ``show`` draws."""
  cell = 64 * zoom
  return (LABEL_WIDTH + columns * (cell + PAD) + PAD,
          TITLE_HEIGHT + (random_rows + num_factors) * (cell + PAD) + PAD)


def traversal_values(num_values, columns):
  """The factor values one traversal row shows: all of them, or ``columns`` evenly spaced ones."""
  if num_values <= columns:
    return np.arange(num_values)
  return np.unique(np.round(np.linspace(0, num_values - 1, columns)).astype(np.int64))


def sampling_sizes(data):
  """The number of values ``sample_factors`` draws per factor.

  Usually ``factors_num_values``; dlib's DSprites reports the official sizes there whatever the file holds,
  while it samples from the file's ``latents_sizes`` (they differ for a reduced grid), so the state space wins.
  """
  state_space = getattr(data, "state_space", None)
  if state_space is not None and hasattr(state_space, "factor_sizes") and \
      hasattr(state_space, "latent_factor_indices"):
    return [int(state_space.factor_sizes[i]) for i in state_space.latent_factor_indices]
  return [int(n) for n in data.factors_num_values]


def _to_uint8_rgb(observation):
  image = np.clip(np.asarray(observation, dtype=np.float64), 0.0, 1.0)
  image = np.round(image * 255.0).astype(np.uint8)
  if image.ndim == 3 and image.shape[2] == 1:
    image = image[:, :, 0]
  if image.ndim == 2:
    image = np.stack([image] * 3, axis=2)
  return image


def show(name, out_path, seed=0, columns=10, random_rows=2, zoom=2):
  """Draws random observations and one traversal per factor of ``name`` into the PNG ``out_path``.

  Traversal row of factor i: one random factor vector, with factor i set to each of
  ``traversal_values(size_i, columns)`` in turn; nuisance factors and observation noise are drawn with the
  same random state for every image of a row, so only factor i changes along it.
  """
  from PIL import Image, ImageDraw, ImageFont  # pylint: disable=import-outside-toplevel
  if not out_path.lower().endswith(".png"):
    raise UserError(f"--out must name a .png file, got {out_path!r}")
  out_dir = os.path.dirname(os.path.abspath(out_path))
  if not os.path.isdir(out_dir):
    raise UserError(f"the directory of --out does not exist: {out_dir}")
  data = named_data.load(name)
  entry = named_data.entry(name)
  sizes = sampling_sizes(data)
  factor_names = ([n for n, _ in entry.factors] if entry.factors and len(entry.factors) == len(sizes)
                  else [f"factor {i}" for i in range(len(sizes))])
  rs = np.random.RandomState(seed)
  rows = []
  randoms = data.sample_observations(columns * random_rows, rs)
  for r in range(random_rows):
    rows.append(("random", list(randoms[r * columns:(r + 1) * columns])))
  base = data.sample_factors(1, rs)
  for i, (factor_name, size) in enumerate(zip(factor_names, sizes)):
    row_seed = int(rs.randint(2**31 - 1))
    images = []
    for value in traversal_values(size, columns):
      factors = base.copy()
      factors[0, i] = value
      images.append(data.sample_observations_from_factors(factors, np.random.RandomState(row_seed))[0])
    rows.append((f"{factor_name} ({size})", images))

  width, height = show_image_size(len(sizes), columns, random_rows, zoom)
  cell = 64 * zoom
  canvas = Image.new("RGB", (width, height), (255, 255, 255))
  draw = ImageDraw.Draw(canvas)
  try:
    font = ImageFont.load_default(size=14)
  except (TypeError, OSError):  # Pillow without FreeType
    font = ImageFont.load_default()
  draw.text((PAD, 6), f"{name}: {random_rows} rows of random observations (seed {seed}), then one traversal "
                      f"per factor (observation shape {list(data.observation_shape)})", fill=(0, 0, 0), font=font)
  for r, (label, images) in enumerate(rows):
    top = TITLE_HEIGHT + r * (cell + PAD)
    draw.text((PAD, top + cell // 2 - 8), label, fill=(0, 0, 0), font=font)
    for c, observation in enumerate(images):
      tile = Image.fromarray(_to_uint8_rgb(observation)).resize((cell, cell), Image.NEAREST)
      canvas.paste(tile, (LABEL_WIDTH + PAD + c * (cell + PAD), top))
  try:
    with atomic_path(out_path) as temporary:
      canvas.save(temporary, format="PNG")
  except OSError as e:
    raise UserError(f"could not write {out_path}: {e}") from e
  print(f"wrote {out_path} ({width}x{height}): {random_rows * columns} random observations of {name} and "
        f"{len(sizes)} traversals")
  return out_path


# ------------------------------------------------------------------------------------------------------------
# verify
# ------------------------------------------------------------------------------------------------------------
def verify(selected=None, out=None):
  """One line per data set: ok / missing / FAILED. Returns {name: state}; UserError if any is unreadable.

  Reads headers (and small metadata) through each data set's registered check; never loads a data set.
  """
  out = sys.stdout if out is None else out
  selected = list(selected) if selected else named_data.names()
  for name in selected:
    named_data.entry(name)  # unknown names fail before anything is printed
  print(f"data root: {os.path.abspath(named_data.data_root())} (${named_data.DATA_ENV})", file=out)
  states = {}
  width = max(len(n) for n in selected)
  for name in selected:
    entry = named_data.entry(name)
    missing = named_data.missing_paths(name)
    if missing:
      states[name] = "missing"
      made = (f" (`python -m submission.data generate {entry.generator.name}` makes it)"
              if named_data.can_make_missing(name) else "")
      print(f"missing  {name:<{width}}  {missing[0]}{made}", file=out, flush=True)
      continue
    try:
      if entry.check is not None:
        detail = named_data.check(name)["detail"]
      elif entry.required_files():  # nothing is loaded here: that could take long
        detail = "files present (no header check registered for it)"
      else:
        detail = "no files needed"
      shape = f"; observations {list(entry.observation_shape)}" if entry.observation_shape else ""
      states[name] = "ok"
      print(f"ok       {name:<{width}}  {detail}{shape}", file=out, flush=True)
    except UserError as e:
      states[name] = "failed"
      print(f"FAILED   {name:<{width}}  {cli.one_line(e)}", file=out, flush=True)
  counts = {s: sum(1 for v in states.values() if v == s) for s in ("ok", "missing", "failed")}
  print(f"{counts['ok']} present and readable, {counts['missing']} missing, {counts['failed']} unreadable",
        file=out)
  if counts["failed"]:
    failed = [n for n, s in states.items() if s == "failed"]
    raise UserError(f"{counts['failed']} data set(s) present but unreadable: {', '.join(failed)} (see above)")
  return states


# ------------------------------------------------------------------------------------------------------------
# command line
# ------------------------------------------------------------------------------------------------------------
def _parser():
  parser = cli.ArgumentParser(prog="python -m submission.data", description=__doc__.split("\n")[0],
                   formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split("\n\n")[1])
  commands = parser.add_subparsers(dest="command", required=True, parser_class=cli.ArgumentParser)
  p = commands.add_parser("generate", help="make the files of a data set the project can make (dsprites: in the "
                          "official format)")
  p.add_argument("name", choices=sorted(named_data.generators()))
  p.add_argument("--data_dir", default=None,
                 help=f"data root (default: ${named_data.DATA_ENV}, else the current directory)")
  p.add_argument("--overwrite", action="store_true", help="replace an existing file")
  p = commands.add_parser("info", help="factors, observation shape and file paths of a data set")
  p.add_argument("name")
  p = commands.add_parser("show", help="draw random observations and factor traversals into a PNG")
  p.add_argument("name")
  p.add_argument("--out", required=True, help="PNG file to write")
  p.add_argument("--seed", type=int, default=0)
  p.add_argument("--columns", type=int, default=10)
  p.add_argument("--zoom", type=int, default=2, help="pixels per observation pixel")
  p = commands.add_parser("verify", help="which data sets are present and readable")
  p.add_argument("names", nargs="*", help="data sets to check (default: all)")
  return parser


def run(argv=None):
  args = _parser().parse_args(argv)
  if args.command == "generate":
    generate(args.name, args.data_dir, args.overwrite)
  elif args.command == "info":
    info(args.name)
  elif args.command == "show":
    if args.columns < 1 or args.zoom < 1:
      raise UserError("--columns and --zoom must be at least 1")
    show(args.name, args.out, seed=args.seed, columns=args.columns, zoom=args.zoom)
  elif args.command == "verify":
    verify(args.names)


def main(argv=None):
  return cli.main_guard(run, argv)
