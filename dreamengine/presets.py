"""Named settings for the page and the command line, per model; DEFAULT is what a dream uses
unasked with the default model (MobileNetV2).

Chosen by looking at dreams of real photos (docs/dreams/, docs/engine.md "Choosing the
defaults" and docs/models.md "Two models"). Layer weights are relative; a layer left out is
not computed. Each model's presets name only layers its export outputs
(models/<model>/manifest.json), and every model has the same preset names, so a page can
switch models and keep the chosen style.
DEFAULT and PRESETS stay MobileNetV2's, as before.
"""

from dreamengine.transforms import TILE_SIZE

# Every model's input range (manifest input.range; tests/test_converter.py checks they say
# so): pixel / 127.5 - 1. Native code scales pixels with it; the page with the manifest's.
VALUE_RANGE = (-1.0, 1.0)

DEFAULT = {
    "weights": {"block_5_expand_relu": 0.5, "block_8_expand_relu": 1.0,
                "block_12_expand_relu": 1.0},
    "norm": "mean",
    "octaves": 4,
    "octave_scale": 1.4,
    "steps": 10,
    "step_size": 0.02,
    "jitter": 32,
}

PRESETS = {
    "gentle": dict(DEFAULT, weights={"block_2_expand_relu": 0.5, "block_5_expand_relu": 1.0},
                   steps=6, step_size=0.015),
    "default": DEFAULT,
    "deep": dict(DEFAULT, weights={"block_12_expand_relu": 1.0, "block_15_expand_relu": 1.0},
                 steps=12),
    "wild": dict(DEFAULT, weights={"block_8_expand_relu": 1.0, "block_12_expand_relu": 1.0,
                                   "block_15_expand_relu": 1.0},
                 octaves=5, steps=15, step_size=0.03),
}

# Dream zoom (zoom.py): the original notebook's endless zoom. Each frame grows the last by
# `zoom` about the centre (and turns it `rotation` degrees counter-clockwise), then dreams
# `steps` steps at full size only; the dream builds up over frames. `fps` is for the video.
ZOOM = {
    "weights": DEFAULT["weights"],
    "norm": "mean",
    "frames": 120,
    "zoom": 1.05,
    "rotation": 0.0,
    "steps": 5,
    "step_size": 0.02,
    "jitter": 32,
    "fps": 12,
}

# Dreaming a video (video.py): the first frame a whole dream with the model's default
# schedule, every later one `steps` steps from the previous dream carried along the optical
# flow, `blend` of it where the picture is still, `blend_moving` where it moves (measured:
# bench/video.py; at 0.9/0.75 a frame changes its source as much as a still dream does and
# flickers a third as much). Frames are scaled to at most `max_side` px first. The camera
# dreams smaller frames with fewer steps, to keep up with it.
VIDEO = {
    "max_side": 720,
    "steps": 5,
    "step_size": 0.02,
    "flow": True,
    "blend": 0.9,
    "blend_moving": 0.75,
}
CAMERA = dict(VIDEO, max_side=288, steps=2)

# Guided dreams (guide.py): the guide's features at `layers` steer the dream; `mix` 1 is the
# guide alone, 0 the plain objective alone; at most `max_vectors` guide features per layer;
# a guide image is scaled to at most `max_side` px first (its features are subsampled anyway).
GUIDE = {
    "layers": ["block_12_expand_relu"],
    "mix": 1.0,
    "max_vectors": 1024,
    "max_side": 512,
}

# InceptionV3 up to mixed5 (converter/inception_v3.py): the TensorFlow DeepDream tutorial's
# mixed3 + mixed5 by default with equal weights (mixed3 : mixed5 of 1 : 3 mostly lost the
# eyes and faces), same schedule as MobileNetV2's so the two compare directly. The other
# presets mirror MobileNetV2's: gentle the stride-4/8 layers, deep the deepest two, wild
# three deep layers with more octaves, steps and a larger step.
INCEPTION_DEFAULT = dict(DEFAULT, weights={"mixed3": 1.0, "mixed5": 1.0})

INCEPTION_PRESETS = {
    "gentle": dict(INCEPTION_DEFAULT, weights={"activation_5": 0.5, "mixed0": 1.0},
                   steps=6, step_size=0.015),
    "default": INCEPTION_DEFAULT,
    "deep": dict(INCEPTION_DEFAULT, weights={"mixed4": 1.0, "mixed5": 1.0}, steps=12),
    "wild": dict(INCEPTION_DEFAULT, weights={"mixed3": 1.0, "mixed4": 1.0, "mixed5": 1.0},
                 octaves=5, steps=15, step_size=0.03),
}

# The models, in the order the page lists them; the first is the default. Their one home:
# the converter exports each from its module converter/<name>.py (converter/registry.py),
# the command lines take them as --model, and the site build hands the list to the page's
# JavaScript in site.json (scripts/build_site.py; web/js/model.js shows "label (network,
# size)"). A tuple, not a dict: MicroPython's dicts keep no order.
MODELS = (
    {"name": "mobilenet_v2", "label": "Light", "network": "MobileNetV2"},
    {"name": "inception_v3", "label": "Classic", "network": "InceptionV3"},
)
MODEL_NAMES = tuple(model["name"] for model in MODELS)
DEFAULT_MODEL = MODEL_NAMES[0]
PRESETS_BY_MODEL = {"mobilenet_v2": PRESETS, "inception_v3": INCEPTION_PRESETS}
# The guide's layers when a dream names none: the deepest layer of the model's default
# objective. Named here, not read off the weights: MicroPython's dicts keep no insertion
# order (list(weights)[-1] gave block_5_expand_relu and mixed3 in the page).
GUIDE_LAYERS_BY_MODEL = {"mobilenet_v2": GUIDE["layers"], "inception_v3": ["mixed5"]}


def for_model(model: str) -> dict:
    """The named presets of `model` (a manifest's model.name); ValueError lists the known."""
    if model not in PRESETS_BY_MODEL:
        raise ValueError("no presets for model " + repr(model) + "; known models: "
                         + ", ".join(sorted(MODEL_NAMES)))
    return PRESETS_BY_MODEL[model]

# The channel explorer's thumbnails (the page's channel_panel.py, docs/channels.png): a short
# single-channel dream of `side` px from grey with a little noise, one octave.
CHANNEL_THUMB = {"side": 96, "octaves": 1, "octave_scale": 1.4, "steps": 8, "step_size": 0.05,
                 "jitter": 8, "norm": "mean", "seed": 0, "tile_size": TILE_SIZE, "noise": 0.1}
