"""The one front door from settings to the engine's parts: a `layer:weight` list parsed one
way, and full settings turned into objective, schedule and transforms in one function.

Everything that dreams goes through here (the page, `native.dream`, `native.zoom`, the
benchmark and the docs scripts), so a setting means the same thing everywhere. What to do
with a bad value is the caller's: the page ignores what it cannot use (its input is
untrusted, settings.py), the command lines refuse it with a sentence.
"""

from dreamengine.objective import Objective
from dreamengine.schedule import MIN_SIDE, Schedule
from dreamengine.transforms import TILE_SIZE, Transforms


def weight_pairs(text: str) -> list:
    """"a:1,b:0.5,c" -> [("a", "1"), ("b", "0.5"), ("c", "1")]: names and weight texts.

    The syntax of the page's URL and the command lines' --layers; a bare name weighs 1,
    empty parts are skipped. Weights stay text: whether "x" is refused or ignored is the
    caller's policy.
    """
    pairs = []
    for part in text.split(","):
        bits = part.split(":", 1)  # no str.partition in every MicroPython build
        name = bits[0].strip()
        weight = bits[1].strip() if len(bits) > 1 else ""
        if name or weight:
            pairs.append((name, weight or "1"))
    return pairs


def parse_weights(text: str) -> dict:
    """"a:1,b:0.5" -> {"a": 1.0, "b": 0.5}; ValueError with an example for a bad weight."""
    weights = {}
    for name, weight in weight_pairs(text):
        try:
            weights[name] = float(weight)
        except ValueError:
            raise ValueError("bad weight " + repr(weight) + " for layer " + repr(name)
                             + ": give layer:number, e.g. block_8_expand_relu:0.5") from None
    return weights


def plan(settings: dict, tile_limit: object = None, min_side: int = MIN_SIDE) -> tuple:
    """(objective, schedule, transforms, seed) of a dream with full settings.

    `settings`: weights, norm, octaves, octave_scale, steps, step_size, jitter, and
    optionally channel [layer, index], tile_size, seed (settings.resolve gives all of them).
    `tile_limit(wanted)`: the largest tile the backend holds (the page's limits.largest_tile);
    `min_side`: the model's smallest input (manifest input.min_side).
    """
    channel = tuple(settings["channel"]) if settings.get("channel") else None
    objective = Objective(settings["weights"], settings.get("norm", "mean"), channel)
    schedule = Schedule(settings["octaves"], settings["octave_scale"], settings["steps"],
                        settings["step_size"], min_side)
    tile = settings.get("tile_size", TILE_SIZE)
    transforms = Transforms(settings["jitter"], tile if tile_limit is None else tile_limit(tile))
    return objective, schedule, transforms, int(settings.get("seed", 0))
