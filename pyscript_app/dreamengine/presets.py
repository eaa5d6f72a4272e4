"""Named settings for the page and the command line; DEFAULT is what a dream uses unasked.

Chosen by looking at dreams of real photos (docs/, README "Choosing the defaults").
Layer weights are relative; a layer left out is not computed.
"""

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

# Guided dreams (guide.py): the guide's features at `layers` steer the dream; `mix` 1 is the
# guide alone, 0 the plain objective alone; at most `max_vectors` guide features per layer.
GUIDE = {
    "layers": ["block_12_expand_relu"],
    "mix": 1.0,
    "max_vectors": 1024,
}
