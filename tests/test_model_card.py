"""The model card: written at export, copied into the representation, read by pictures, postprocess and evaluation."""

import hashlib
import json
import os

import gin
import pytest

from conftest import read_json
from submission import cli, layout, model_card, train  # train registers the model configurables
from submission.errors import UserError

COMMON = ["encoder.encoder_fn = @test_encoder", "decoder.decoder_fn = @test_decoder",
          "reconstruction_loss.loss_fn = @bernoulli_loss", "vae_optimizer.optimizer_fn = @AdamOptimizer"]
CASES = {  # bindings → (latent kind, geometry, num_latent, code size)
    "vae": (["model.model = @vae()", "vae.beta = 1.", "encoder.num_latent = 4"], ("gaussian", "euclidean", 4, 4)),
    "sphere": (["model.model = @deltavae()", "encoder.num_latent = 3"], ("hypersphere", "sphere", 3, 4)),
    "torus": (["model.model = @deltavae()", "deltavae.latent_space = @torus", "encoder.num_latent = 2"],
              ("torus", "torus", 2, 4)),
    "ervae_sphere": (["model.model = @ervae()", "embedded_manifold.manifold = 'sphere'", "encoder.num_latent = 2"],
                     ("embedded_manifold", "sphere", 2, 3)),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_card_says_what_the_built_model_is(case, tmp_path):
  bindings, (kind, geometry, num_latent, code_size) = CASES[case]
  with cli.gin_config(bindings=COMMON + bindings):
    model = gin.query_parameter("model.model").scoped_configurable_fn()
    train.build_model(model, [4, 4, 1])
  card = model_card.ModelCard.of(model, "dummy_data", "logits", "a = 1\n")
  assert (card.latent_kind, card.geometry, card.num_latent, card.code_size) == (kind, geometry, num_latent, code_size)
  assert card.observation_shape == (4, 4, 1) and card.gin_config_sha256 == hashlib.sha256(b"a = 1\n").hexdigest()
  card.write(str(tmp_path))
  assert model_card.read(str(tmp_path)) == card


def test_a_missing_or_foreign_card_is_one_clear_error(tmp_path):
  assert model_card.read(str(tmp_path)) is None
  with pytest.raises(UserError, match="re-export the model with"):
    model_card.require(str(tmp_path))
  with open(layout.model_card(str(tmp_path)), "w") as f:
    json.dump({"format": "model-card/1", "model": "vae"}, f)
  with pytest.raises(UserError, match="incomplete or foreign"):
    model_card.read(str(tmp_path))


def test_export_writes_the_card_and_postprocess_copies_it(tiny_trained_model):
  model_dir, representation_dir = tiny_trained_model
  card = model_card.require(model_dir)
  assert (card.model, card.latent_kind, card.dataset, card.reconstruction_activation) == (
      "vae", "gaussian", "dummy_data", "logits")
  assert card.observation_shape == (64, 64, 1) and card.code_size == card.num_latent == 10
  with open(os.path.join(model_dir, layout.CHECKPOINT_DIR, "train_config.gin"), "rb") as f:
    assert card.gin_config_sha256 == hashlib.sha256(f.read()).hexdigest()
  assert read_json(layout.model_card(representation_dir)) == read_json(layout.model_card(model_dir))


def test_auto_dataset_is_read_from_the_card_not_the_gin_record(tiny_trained_model, tmp_path):
  from submission import postprocess  # pylint: disable=import-outside-toplevel
  _, representation_dir = tiny_trained_model
  assert postprocess.recorded_dataset(representation_dir, layout.POSTPROCESS) == "dummy_data"
  # A representation another tool made has no card: its recorded postprocess.gin says.
  foreign = tmp_path / "foreign"
  (foreign / "results" / "gin").mkdir(parents=True)
  (foreign / "results" / "gin" / "postprocess.gin").write_text("dataset.name = 'cars3d'\n")
  assert postprocess.recorded_dataset(str(foreign), layout.POSTPROCESS) == "cars3d"
  assert postprocess.recorded_dataset(str(tmp_path), layout.POSTPROCESS) is None
