"""HTML pages without a server: the helpers every page of the project is built from (one self-contained file,
pictures embedded as data URIs, sortable tables), and the study page ``DIR/report.html`` that
``evaluation.aggregate`` writes. A run's own page is ``applications.report``'s."""

import base64
import html
import os

from submission.atomic import atomic_file, read_json
from submission.layout import REPORT_FILE, RunLayout

MIME_TYPES = {".png": "image/png", ".gif": "image/gif"}

STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5em auto; max-width: 72em; padding: 0 1em; color: #222; }
h1 { margin-bottom: 0.2em; } h2 { border-bottom: 1px solid #ccc; padding-bottom: 0.2em; margin-top: 1.6em; }
table { border-collapse: collapse; margin: 0.5em 0; } td, th { border: 1px solid #ccc; padding: 0.25em 0.6em; }
th { background: #f2f2f2; text-align: left; } td.number { text-align: right; font-variant-numeric: tabular-nums; }
table.sortable th { cursor: pointer; } table.sortable th:after { content: " \\2195"; color: #999; }
.banner { background: #fff3cd; border: 1px solid #e0c060; padding: 0.6em 1em; margin: 0.8em 0; }
.label { background: #e8eefc; border-radius: 3px; padding: 0.1em 0.4em; font-size: 0.9em; }
.pruned { background: #fde2e2; }
figure { display: inline-block; margin: 0.4em 1em 0.8em 0; vertical-align: top; }
figcaption { font-size: 0.9em; color: #555; max-width: 60em; }
img { image-rendering: pixelated; max-width: 100%; }
pre { background: #f6f6f6; padding: 0.6em; overflow-x: auto; }
"""
# Click a column header to sort by it (numbers numerically, text alphabetically); click again to reverse.
SORT_SCRIPT = """
document.querySelectorAll("table.sortable th").forEach(function (header, column) {
  header.addEventListener("click", function () {
    var body = header.closest("table").tBodies[0];
    var ascending = header.dataset.order !== "ascending";
    header.dataset.order = ascending ? "ascending" : "descending";
    var key = function (row) { var text = row.cells[column].textContent.trim(); var x = parseFloat(text);
                               return isNaN(x) ? text : x; };
    Array.from(body.rows).sort(function (a, b) {
      var x = key(a), y = key(b);
      var order = (typeof x === typeof y) ? (x < y ? -1 : x > y ? 1 : 0) : (typeof x === "number" ? -1 : 1);
      return ascending ? order : -order;
    }).forEach(function (row) { body.appendChild(row); });
  });
});
"""



def escape(value):
  return html.escape(str(value))


def number_cell(value):
  if isinstance(value, float):
    return f'<td class="number">{value:.4f}</td>'
  if isinstance(value, int):
    return f'<td class="number">{value}</td>'
  return f"<td>{escape('' if value is None else value)}</td>"


def table_html(header, rows, sortable=False):
  """A table of already-rendered cells: ``rows`` are lists of '<td>…</td>' strings."""
  head = "".join(f"<th>{escape(h)}</th>" for h in header)
  body = "".join("<tr>" + "".join(row) + "</tr>" for row in rows)
  kind = ' class="sortable"' if sortable else ""
  return f"<table{kind}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def key_value_table(values):
  return table_html(["key", "value"], [[f"<td><code>{escape(k)}</code></td>", number_cell(v)]
                                       for k, v in values.items()])


def data_uri(path):
  with open(path, "rb") as f:
    encoded = base64.b64encode(f.read()).decode("ascii")
  return f"data:{MIME_TYPES[os.path.splitext(path)[1]]};base64,{encoded}"


def figure_html(path, caption, alt):
  return (f'<figure><img src="{data_uri(path)}" alt="{escape(alt)}"><figcaption>{caption}</figcaption>'
          f"</figure>")


def page(title, body):
  return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>'
          f"<style>{STYLE}</style></head><body>{body}<script>{SORT_SCRIPT}</script></body></html>\n")


# --- the study page ----------------------------------------------------------------------------------------------
def study_rows(records, scores, directory):
  """One row per run (model directory): its identity, a link to its own page, its preset ('quick' runs are not
  comparable to dlib-size ones), and each headline score."""
  runs = {}
  for record in records:
    runs.setdefault(record["model_dir"], []).append(record)
  rows = []
  for model_dir, pairs in sorted(runs.items()):
    first = pairs[0]
    report = RunLayout(model_dir).report
    relative = os.path.relpath(model_dir, directory)
    link = (f'<td><a href="{escape(os.path.relpath(report, directory))}">{escape(relative)}</a></td>'
            if os.path.isfile(report) else f"<td>{escape(relative)}</td>")
    preset = read_json(RunLayout(model_dir).scores_json, {}).get("preset")  # 'quick': not dlib-size
    cells = [link] + [number_cell(first.get(key)) for key in ("model", "dataset", "seed", "model_num")]
    cells.append(number_cell(preset or ""))
    for metric, column in scores:
      values = [r.get(column) for r in pairs if r["metric"] == metric and r.get(column) is not None]
      cells.append(number_cell(values[0] if values else None))
    rows.append(cells)
  return rows


def write_study_report(directory, records, scores, plot_path):
  """``DIR/report.html``: the sortable table of every run × headline score ([(metric, column)] ``scores``) and
  the violin plots."""
  header = ["run", "model", "dataset", "seed", "model_num", "preset"]
  header += [f"{metric}: {column.split('.', 1)[1]}" for metric, column in scores]
  body = (f"<h1>Study: {escape(os.path.abspath(directory))}</h1><p>{len(records)} evaluations. Click a column "
          f"header to sort; each run links to its own report.</p>"
          + table_html(header, study_rows(records, scores, directory), sortable=True)
          + "<h2>Score distributions</h2>"
          + figure_html(plot_path, "one violin per model (its runs as dots), one column per headline score, one row "
                        "per data set", "score distributions"))
  path = os.path.join(directory, REPORT_FILE)
  with atomic_file(path) as f:
    f.write(page(f"study {directory}", body))
  return path
