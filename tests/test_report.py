"""The run page (OUT/report.html) and the study page (DIR/report.html): their content, and both opened in a real
browser (headless Chromium) with every image loaded."""

import html
import json
import os
import shlex
import shutil

import numpy as np
import pytest

from conftest import FAST_ARCHITECTURE, REPOSITORY_ROOT, read_json
from evaluation.metrics import table

TINY_RUN = dict(dataset="dummy_data", steps=4, metrics=["mig", "sap_score"],
                gin_bindings=FAST_ARCHITECTURE + ["model.batch_size = 8", "model.eval_steps = 1",
                                                  "train_loop.log_every_steps = 2"],
                metric_bindings=["mig.num_train = 100", "sap_score.num_train = 100", "sap_score.num_test = 50"])
SCREENSHOT_DIR_ENV = "REPORT_SCREENSHOT_DIR"  # where the browser test leaves its screenshots (default: tmp)


@pytest.fixture(scope="module")
def study(tmp_path_factory):
  """A study directory with two tiny ΔVAE runs of the pipeline (the second a copy of the first, renumbered and
  marked as a quick run)."""
  from applications import run_local  # pylint: disable=import-outside-toplevel
  root = tmp_path_factory.mktemp("study")
  first = str(root / "0")
  run_local.run_local(os.path.join(REPOSITORY_ROOT, "gin_configs", "deltavae.gin"), first, **TINY_RUN)
  second = str(root / "1")
  shutil.copytree(first, second)
  for path in (os.path.join(second, "metrics", "mean", m, "results", "aggregate", "evaluation.json")
               for m in TINY_RUN["metrics"]):
    row = read_json(path)
    row["train_config.model.random_seed"] = "1"
    with open(path, "w") as f:
      json.dump(row, f)
  os.remove(os.path.join(second, "report.html"))  # a run without a page: its row has no link
  scores = read_json(os.path.join(second, "scores.json"))
  with open(os.path.join(second, "scores.json"), "w") as f:
    json.dump(dict(scores, preset="quick"), f)
  return str(root), first


def test_pipeline_writes_the_run_page_with_scores_model_data_pictures_times_and_command(study):
  _, run = study
  text = open(os.path.join(run, "report.html")).read()
  scores = read_json(os.path.join(run, "scores.json"))
  for metric, values in scores.items():
    for key, value in values.items():
      assert f"<td>{key} ({table.label(metric, key)})</td><td class=\"number\">{value:.4f}</td>" in text
    assert f"<td><code>dlib:config/unsupervised_study_v1/metric_configs/{metric}.gin</code></td>" in text
  assert "mig.num_train = 100" in text                                # the sample sizes the scores came from
  assert "deltavae.beta" in text and "hypersphere.log_t_max" in text  # the model's and its latent space's
  assert "hypersphere S^4 in R^5" in text                             # the geometry the traversals follow
  assert "dlib&#x27;s DummyData" in text
  recorded = read_json(os.path.join(run, "provenance.json"))             # what it trained on, and with which code
  assert f"When it trained: {html.escape(recorded['dataset_provenance'])}" in text
  assert recorded["commits"] and all(f"<code>{commit[:12]}</code>" in text for commit in recorded["commits"])
  for stage in ("train", "postprocess (mean)", "evaluate mig", "evaluate sap_score", "total"):
    assert f"<td>{stage}</td>" in text or f"<td><b>{stage}</b></td>" in text
  assert os.access(os.path.join(run, "reproduce.sh"), os.X_OK)
  command = open(os.path.join(run, "reproduce.sh")).read().splitlines()[-1]
  words = shlex.split(command)
  assert words[:4] == ["./run_local.sh", os.path.join(REPOSITORY_ROOT, "gin_configs", "deltavae.gin"), "--output", run]
  assert words[words.index("--steps") + 1] == "4" and "mig.num_train = 100" in words
  assert command.replace("&", "&amp;").replace("'", "&#x27;") in text
  # Every picture is embedded (no file or network reference), one traversal per ambient coordinate.
  assert 'src="data:image/gif;base64,' in text and "src=\"http" not in text and "src=\"file" not in text
  assert text.count("<img ") == 5 + 5  # curves, reconstructions, GIF, traversals grid, samples + 5 dimensions
  assert "quick preset" not in text


def test_run_page_regenerates_from_the_command_line_and_bad_directory_is_one_line(study, tmp_path):
  from conftest import run_python  # pylint: disable=import-outside-toplevel
  _, run = study
  os.remove(os.path.join(run, "report.html"))
  made = run_python(["-m", "applications.report", run])
  assert made.returncode == 0, made.stderr
  assert "The command that made this run" in open(os.path.join(run, "report.html")).read()  # reproduce.sh kept
  bad = run_python(["-m", "applications.report", str(tmp_path)])
  assert bad.returncode == 2 and bad.stderr.strip().count("\n") == 0 and "no trained model" in bad.stderr
  assert not os.path.exists(tmp_path / "report.html")


def test_study_page_has_a_sortable_row_per_run_linking_to_its_page(study):
  from evaluation import aggregate  # pylint: disable=import-outside-toplevel
  root, run = study
  written = aggregate.aggregate(root)
  text = open(written["report"]).read()
  assert written["report"] == os.path.join(root, "report.html")
  assert '<table class="sortable">' in text and "<th>mig: discrete_mig</th>" in text
  assert '<td><a href="0/report.html">0</a></td>' in text and "<td>1</td>" in text  # run 1 has no page
  rows = text.split("<tbody>")[1].split("</tr>")
  assert "<td>quick</td>" in rows[1] and "<td>quick</td>" not in rows[0]  # run 1 is marked as a quick run
  mig = read_json(os.path.join(run, "scores.json"))["mig"]["discrete_mig"]
  assert text.count(f'<td class="number">{mig:.4f}</td>') == 2
  assert text.count('src="data:image/png;base64,') == 1  # the violin plots


def test_pruned_dimensions_are_the_exactly_zero_prior_columns_and_are_labelled(tmp_path):
  from applications import report, visualize  # pylint: disable=import-outside-toplevel
  from submission import traversal  # pylint: disable=import-outside-toplevel
  draws = np.random.RandomState(0).normal(size=(50, 4)) * np.array([1., 0., 1., 0.])
  draws[3, 0] = 0.  # one zero draw of an open dimension does not make it pruned
  assert traversal.pruned_dimensions(draws) == [1, 3]
  assert traversal.pruned_dimensions(np.random.RandomState(1).normal(size=(50, 4))) == []
  for j in range(4):
    visualize.save_png(np.full((4, 4, 1), 0.5), str(tmp_path / "traversals" / f"dim_{j:02d}.png"))
  figures = report.traversal_figures(str(tmp_path), {"geometry": "euclidean", "num_traversal_dimensions": 4,
                                                     "pruned_dimensions": [1, 3]})
  captions = [part.split("</figcaption>")[0] for part in figures.split("<figcaption>")[1:]]
  assert [("pruned" in c) for c in captions] == [False, True, False, True]
  torus = report.traversal_figures(str(tmp_path), {"geometry": "torus", "num_traversal_dimensions": 2})
  assert torus.count("on the torus") == 2 and "circle 1" in torus


def test_key_hyper_parameters_follow_the_model_and_what_it_refers_to():
  from applications import report  # pylint: disable=import-outside-toplevel
  config = {"model.model": "@factor_vae()", "factor_vae.gamma": "10.0",
            "discriminator.discriminator_fn": "@fc_discriminator", "factor_vae.discriminator": "@discriminator",
            "discriminator.num_layers": "6", "vae.beta": "4.0", "vae/AdamOptimizer.learning_rate": "0.0001",
            "model.batch_size": "64"}
  assert list(report.key_hyper_parameters(config)) == [
      "discriminator.discriminator_fn", "discriminator.num_layers", "factor_vae.discriminator",
      "factor_vae.gamma", "model.batch_size", "vae/AdamOptimizer.learning_rate"]


def test_the_data_set_sentence_is_the_registrys_provenance_and_the_loader(tmp_path, monkeypatch):
  from applications import report  # pylint: disable=import-outside-toplevel
  from submission.data import dsprites_render, named_data  # pylint: disable=import-outside-toplevel
  monkeypatch.setenv(named_data.DATA_ENV, str(tmp_path))
  path = os.path.join(str(tmp_path), dsprites_render.DSPRITES_FILE)
  dsprites_render._write_npz(path, dsprites_render._subgrid_possible_values([1, 3, 2, 2, 2, 2]), progress=False)
  sentence = report.dataset_provenance("dsprites_full")
  assert sentence == named_data.provenance("dsprites_full")[1] + " Loader: " + \
      named_data.entry("dsprites_full").loader + "."
  assert "the project's re-rendering" in sentence
  os.remove(path)
  assert "not present" in report.dataset_provenance("dsprites_full")
  assert report.dataset_provenance("no_such_data") == "no_such_data: not a data set this project knows"


@pytest.mark.skipif(not os.path.exists("/usr/bin/chromium"),
                    reason="headless Chromium (/usr/bin/chromium, Debian package 'chromium') is not installed")
def test_both_pages_load_every_image_in_headless_chromium(study, tmp_path):
  import chromium  # pylint: disable=import-outside-toplevel
  from evaluation import aggregate  # pylint: disable=import-outside-toplevel
  root, run = study
  study_page = aggregate.aggregate(root)["report"]
  screenshots = os.environ.get(SCREENSHOT_DIR_ENV, str(tmp_path))
  browser = chromium.Browser()
  try:
    run_images = browser.open("file://" + os.path.join(run, "report.html"), os.path.join(screenshots, "run.png"))
    study_images = browser.open("file://" + study_page, os.path.join(screenshots, "study.png"))
    broken = browser.open("file://" + str(tmp_path / "broken.html")) if (
        tmp_path / "broken.html").write_text('<img alt="gone" src="gone.png">') else None
  finally:
    browser.close()
  assert len(run_images) == 10 and all(image["loaded"] for image in run_images), run_images
  assert len(study_images) == 1 and study_images[0]["loaded"]
  assert broken == [{"alt": "gone", "loaded": False}]  # the check does see a broken image
  for name in ("run.png", "study.png"):
    with open(os.path.join(screenshots, name), "rb") as f:
      assert f.read(8) == b"\x89PNG\r\n\x1a\n"
