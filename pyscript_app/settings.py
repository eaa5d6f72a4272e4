"""Dream settings from untrusted places (the URL, a parent page's postMessage), made safe.

Everything a visitor or an embedding page can set goes through `clean`: unknown keys are
ignored, values of the wrong type are ignored, numbers are clamped into range, layer names
must be ones the model has. Nothing here ever becomes HTML; the page sets text only.
Pure Python (MicroPython and CPython), so it is tested natively.
"""

from dreamengine import presets
from dreamengine.plan import weight_pairs
from dreamengine.transforms import TILE_SIZE
from dreamengine.zoom import ZOOM_RANGES

# key: (lowest, highest, type). Ranges are what stays useful and fits a browser tab.
LIMITS = {
    "octaves": (1, 8, int),
    "octave_scale": (1.1, 2.0, float),
    "steps": (1, 50, int),
    "step_size": (0.001, 0.1, float),
    "jitter": (0, 64, int),
    "seed": (0, 2147483647, int),
    "tile_size": (128, 1024, int),
    # Dream zoom (dreamengine/zoom.py) and guided dreams (dreamengine/guide.py).
    "zoom_frames": (1, 600, int),
    # The page's offered zoom and rotation, within what the engine accepts (one table).
    "zoom": ZOOM_RANGES["zoom"]["offered"] + (float,),
    "rotation": ZOOM_RANGES["rotation"]["offered"] + (float,),
    "zoom_steps": (1, 20, int),
    "guide_mix": (0.0, 1.0, float),
    # Dreaming a video or the camera (dreamengine/video.py): frame size, steps per frame
    # after the first, how much of the previous dream still and moving regions keep.
    "video_max_side": (64, 1280, int),
    "video_steps": (1, 20, int),
    "video_blend": (0.0, 0.95, float),
    "video_blend_moving": (0.0, 0.95, float),
    "camera_max_side": (96, 512, int),
}
# Settings a video or the camera takes from presets.VIDEO / CAMERA unless told.
VIDEO_DEFAULTS = (("video_max_side", presets.VIDEO["max_side"]),
                  ("video_steps", presets.VIDEO["steps"]),
                  ("video_blend", presets.VIDEO["blend"]),
                  ("video_blend_moving", presets.VIDEO["blend_moving"]),
                  ("video_flow", presets.VIDEO["flow"]),
                  ("camera_max_side", presets.CAMERA["max_side"]))
WEIGHT_LIMITS = (0.0, 2.0)
SAMPLES = ("chelsea", "coffee", "astronaut")
# The tfjs backends, fastest first: the order web/js/backends.js tries and falls back
# through. Their one home: the site build hands them to the JavaScript (site.json).
BACKENDS = ("webgpu", "webgl", "wasm", "cpu")
MAX_TEXT = 2000  # longer strings are not settings


def _number(value: object, kind: type) -> int | float | None:
    """`value` as a finite int/float, or None. Accepts numbers and numeric strings."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        if len(value) > 40:
            return None
        try:
            value = float(value.strip())
        except ValueError:
            return None
    if not isinstance(value, (int, float)):
        return None
    value = float(value)
    if value != value or value in (float("inf"), float("-inf")):
        return None
    return int(round(value)) if kind is int else value


def clamp(key: str, value: object) -> int | float | None:
    """The value for `key` clamped into LIMITS, or None when it is not a number."""
    low, high, kind = LIMITS[key]
    number = _number(value, kind)
    if number is None:
        return None
    return min(high, max(low, number))


def parse_weights(value: object, layers: list) -> dict | None:
    """Layer weights from "name:weight,name:weight" or a {name: weight} mapping.

    Names may be layer names or their visitor labels (manifest "label"); unknown names are
    ignored, weights clamped to WEIGHT_LIMITS. None when nothing usable is left.
    """
    by_name = {}
    for out in layers:
        by_name[out["layer"]] = out["layer"]
        by_name[out.get("label", out["layer"])] = out["layer"]
    pairs = []
    if isinstance(value, str) and len(value) <= MAX_TEXT:
        pairs = weight_pairs(value)  # the one parser of the syntax (dreamengine/plan.py)
    elif isinstance(value, dict):
        for name in value:
            pairs.append((name, value[name]))
    weights = {}
    for name, weight in pairs:
        if not isinstance(name, str) or name not in by_name:
            continue
        number = _number(weight, float)
        if number is None:
            continue
        weights[by_name[name]] = min(WEIGHT_LIMITS[1], max(WEIGHT_LIMITS[0], number))
    if not weights or max(weights.values()) <= 0:
        return None
    return weights


def parse_channel(value: object, layers: list) -> list | None:
    """[layer, index] from "layer:index" or a two-item list; None unless the layer (by name
    or label) exists and the index is one of its channels."""
    if isinstance(value, str) and len(value) <= 100:
        value = value.split(":", 1)
    if not isinstance(value, (list, tuple)) or len(value) != 2 or not isinstance(value[0], str):
        return None
    for out in layers:
        if value[0] in (out["layer"], out.get("label")):
            index = _number(value[1], int)
            if index is not None and 0 <= index < out["channels"]:
                return [out["layer"], index]
    return None


def parse_layers(value: object, layers: list) -> list | None:
    """Layer names (or labels) from "a,b" or a list; None unless at least one exists."""
    names = value.split(",") if isinstance(value, str) and len(value) <= MAX_TEXT else value
    if not isinstance(names, (list, tuple)):
        return None
    found = []
    for name in names:
        for out in layers:
            if isinstance(name, str) and name.strip() in (out["layer"], out.get("label")):
                if out["layer"] not in found:
                    found.append(out["layer"])
    return found or None


def clean(raw: object, layers: list) -> dict:
    """Safe settings from an untrusted mapping; only keys that passed are present.

    Recognised keys: preset, layers (or weights), norm, octaves, octave_scale, steps,
    step_size, jitter, seed, tile_size, sample, backend, autostart, prepare, channel, and for zoom
    videos and guided dreams zoom_frames, zoom, rotation, zoom_steps, guide_layers, guide_mix,
    and for videos and the camera video_max_side, video_steps, video_blend,
    video_blend_moving, video_flow ("off" or false: no optical flow), camera_max_side.
    """
    result = {}
    if not isinstance(raw, dict):
        return result
    preset = raw.get("preset")
    if isinstance(preset, str) and preset in presets.PRESETS:  # the same names for every model
        result["preset"] = preset
    weights = raw.get("layers", raw.get("weights"))
    if weights is not None:
        weights = parse_weights(weights, layers)
        if weights is not None:
            result["weights"] = weights
    norm = raw.get("norm")
    if norm in ("mean", "l2"):
        result["norm"] = norm
    if "channel" in raw:
        channel = parse_channel(raw["channel"], layers)
        if channel is not None:
            result["channel"] = channel
    for key in LIMITS:
        if key in raw:
            value = clamp(key, raw[key])
            if value is not None:
                result[key] = value
    if "guide_layers" in raw:
        guide_layers = parse_layers(raw["guide_layers"], layers)
        if guide_layers is not None:
            result["guide_layers"] = guide_layers
    if raw.get("model") in presets.MODEL_NAMES:
        result["model"] = raw["model"]
    if "video_flow" in raw:
        result["video_flow"] = raw["video_flow"] not in ("off", False, 0, "0", "false")
    if raw.get("mode") in ("dream", "zoom", "camera"):
        result["mode"] = raw["mode"]
    if raw.get("sample") in SAMPLES:
        result["sample"] = raw["sample"]
    if raw.get("backend") in BACKENDS:
        result["backend"] = raw["backend"]
    if "autostart" in raw:  # a flag: its value does not matter
        result["autostart"] = True
    if raw.get("prepare") == "off":  # no compiling ahead (prepare.py)
        result["prepare"] = "off"
    return result


def resolve(cleaned: dict, model: str = presets.DEFAULT_MODEL) -> dict:
    """Full dream settings: `model`'s chosen preset (or its default) with cleaned values on
    top. The guide follows the deepest layer of the model's default objective unless told."""
    table = presets.for_model(model)
    settings = dict(table.get(cleaned.get("preset", "default"), table["default"]))
    settings["weights"] = dict(settings["weights"])
    for key in cleaned:
        if key not in ("preset", "sample", "backend", "autostart", "mode", "model", "prepare"):
            settings[key] = cleaned[key]
    channel = settings.get("channel")
    if channel and not settings["weights"].get(channel[0]):
        del settings["channel"]  # one channel of a layer the dream does not use: nothing to do
    for key, default in (("zoom_frames", presets.ZOOM["frames"]), ("zoom", presets.ZOOM["zoom"]),
                         ("rotation", presets.ZOOM["rotation"]),
                         ("zoom_steps", presets.ZOOM["steps"]), ("guide_mix", presets.GUIDE["mix"]),
                         ("guide_layers", list(presets.GUIDE_LAYERS_BY_MODEL[model]))
                         ) + VIDEO_DEFAULTS:
        settings.setdefault(key, default)
    settings.setdefault("seed", 0)
    settings.setdefault("tile_size", TILE_SIZE)
    return settings
