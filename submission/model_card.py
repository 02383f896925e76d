"""What a trained model is, written beside it at export (``model/model_card.json``) and copied into every
representation made from it, so that pictures, postprocessing and evaluation read it instead of re-parsing gin text
or guessing from the SavedModel.

    {"format": "model-card/1", "model": "deltavae", "latent_kind": "hypersphere",
     "posterior": "diffusion on a manifold", "geometry": "sphere", "num_latent": 10, "code_size": 11,
     "dataset": "dsprites_full", "observation_shape": [64, 64, 1], "reconstruction_activation": "logits",
     "gin_config_sha256": "…"}

``geometry`` is where the codes lie (euclidean, sphere: unit-norm codes, torus: unit-norm (cos, sin) pairs);
``num_latent`` is ``encoder.num_latent`` (a sphere's or torus' intrinsic dimension), ``code_size`` the width of the
decoder's input and of the exported representation; ``gin_config_sha256`` is the SHA-256 of the training
configuration as recorded in ``tf_checkpoint/train_config.gin`` (the gin text a resume is checked against).
"""

import dataclasses
import hashlib
import json
import os

from submission import cli, layout
from submission.atomic import write_json_atomically
from submission.errors import UserError

FORMAT = "model-card/1"


@dataclasses.dataclass(frozen=True)
class ModelCard:
  model: str
  latent_kind: str
  posterior: str
  geometry: str
  num_latent: int
  code_size: int
  dataset: str
  observation_shape: tuple
  reconstruction_activation: str
  gin_config_sha256: str

  @classmethod
  def of(cls, model, dataset, reconstruction_activation, gin_text):
    """The card of a built model (``GaussianEncoderModel``) trained on ``dataset`` with config ``gin_text``."""
    latent = model.latent
    return cls(model=model.name, latent_kind=latent.kind, posterior=latent.posterior, geometry=latent.geometry,
               num_latent=int(model.num_latent), code_size=int(latent.code_size), dataset=str(dataset),
               observation_shape=tuple(int(n) for n in model.observation_shape),
               reconstruction_activation=str(reconstruction_activation),
               gin_config_sha256=hashlib.sha256(gin_text.encode("utf-8")).hexdigest())

  def write(self, step_dir):
    """``step_dir/model_card.json``, atomically."""
    write_json_atomically(layout.model_card(step_dir), dict(format=FORMAT, **dataclasses.asdict(self)))


def read(step_dir):
  """The ModelCard of a model or representation directory; None when it has none (made by another tool)."""
  path = layout.model_card(step_dir)
  if not os.path.isfile(path):
    return None
  try:
    with open(path) as f:
      values = json.load(f)
  except ValueError as e:
    raise UserError(f"{path} is damaged ({cli.one_line(e)}); {REMAKE}") from e
  if not isinstance(values, dict) or values.pop("format", None) != FORMAT:
    raise UserError(f"{path} is not a model card of this project (format {FORMAT!r} expected)")
  fields = {field.name for field in dataclasses.fields(ModelCard)}
  if set(values) != fields:
    raise UserError(f"{path} is incomplete or foreign: expected the fields {', '.join(sorted(fields))}")
  values["observation_shape"] = tuple(values["observation_shape"])
  return ModelCard(**values)


# How a model's card is made again.
REMAKE = ("re-export the model with `python -m submission.train --model_dir MODEL --gin_config "
          "MODEL/results/gin/train.gin --resume`")


def require(step_dir):
  """The ModelCard of ``step_dir``; a UserError saying how to make one when it has none."""
  card = read(step_dir)
  if card is None:
    raise UserError(f"{layout.model_card(step_dir)} does not exist: {step_dir} was not exported by this version "
                    f"({REMAKE})")
  return card
