"""The networks the converter can export, by `--model` name, and rebuilding one from its manifest.

A model is the module `converter/<name>.py`, named for its entry in the engine's model list
(`dreamengine.presets.MODELS`, that list's one home). It provides (see
`converter/mobilenet_v2.py`):

* NAME, DEFAULT_LAYERS (shallow to deep), INPUT_RANGE, PREPROCESSING (for the manifest),
  CLASSIFIER_SIZE (the side of the square the top-5 proof resizes photos to);
* usable_layers() -> list[LayerInfo]: every layer a dream may target;
* check_source(args): refuses a source its files alone show to be wrong, without TensorFlow
  (the export calls it before loading TensorFlow, seconds, so such a mistake is told at once);
* load_source(args) -> (weights, description): the source's arrays by its own layer names;
* source_weights(description) -> weights: the same arrays again, from a manifest's "source";
* fold(weights) -> arrays: every arithmetic on weights, in numpy (`converter/folding.py`);
* classifier(weights) -> keras.Model | None: the source's classifier, for the top-5 proof;
* build(arrays, names, dtype) -> keras.Model: the network TensorFlow exports, one output per
  name, taking `arrays` exactly as given.

Everything after `fold` is model-independent (quantisation, export, checks, publish), so a
second network is one more module and one entry in that list: `converter/inception_v3.py`
(issue 14, InceptionV3 up to mixed5, weights from nsfwjs; `classifier` None: no ImageNet head
there).
"""

import importlib
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

from converter import folding
from dreamengine.presets import DEFAULT_MODEL, MODEL_NAMES

if TYPE_CHECKING:
    import keras

MODELS = MODEL_NAMES  # each exported by converter/<name>.py


def get(name: str) -> ModuleType:
    """The module of network `name`; KeyError names the known ones."""
    if name not in MODELS:
        raise KeyError(f"unknown model {name}; known: {', '.join(MODELS)}")
    return importlib.import_module("converter." + name)


def rebuild(manifest: dict, model_dir: Path | None = None) -> "keras.Model":
    """The Keras model an export was checked against: same source, fold and stored values.

    With `model_dir` (the folder holding the export's model.json), the weights are also
    compared bit for bit with the ones the browser loads, so a manifest from another source
    or a stale export is refused instead of silently giving a different network.
    """
    from converter import tfjs_export

    module = get(manifest["model"].get("name", DEFAULT_MODEL))
    names = [output["layer"] for output in manifest["outputs"]]
    stored = folding.rounded(module.fold(module.source_weights(manifest["source"])),
                             manifest["model"]["quantization"])
    model = module.build(stored, names)
    if model_dir is not None:
        tfjs_export.check_stored_weights(Path(model_dir), model, stored)
    return model
