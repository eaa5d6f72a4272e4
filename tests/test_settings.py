"""Settings from the URL or a parent page: clamped, typed, known names only (native Python)."""

import json

import pytest
import settings
from conftest import REPO

OUTPUTS = json.loads((REPO / "models/mobilenet_v2/manifest.json").read_text())["outputs"]


def test_numbers_are_clamped_and_typed():
    cleaned = settings.clean({"octaves": "99", "steps": "0", "step_size": "0.05",
                              "jitter": 12.7, "seed": "-3", "octave_scale": "1.3"}, OUTPUTS)
    assert cleaned == {"octaves": 8, "steps": 1, "step_size": 0.05, "jitter": 13, "seed": 0,
                       "octave_scale": 1.3}


def test_prepare_off_is_the_one_value_of_prepare_and_no_dream_setting():
    assert settings.clean({"prepare": "off"}, OUTPUTS) == {"prepare": "off"}
    assert settings.clean({"prepare": "on"}, OUTPUTS) == {}
    assert "prepare" not in settings.resolve({"prepare": "off"})


def test_hostile_and_malformed_values_are_ignored():
    hostile = {
        "octaves": "<img src=x onerror=alert(1)>", "steps": "NaN", "step_size": "Infinity",
        "jitter": True, "seed": "1e999", "preset": "__proto__", "sample": "../../etc/passwd",
        "backend": "javascript:alert(1)", "layers": "<script>alert(1)</script>:1",
        "norm": {"x": 1}, "constructor": "x", "tile_size": [1, 2], "prepare": "<b>off</b>",
    }
    assert settings.clean(hostile, OUTPUTS) == {}
    assert settings.clean("not a mapping", OUTPUTS) == {}
    assert settings.clean({"steps": "9" * 100}, OUTPUTS) == {}


def test_layers_by_name_or_label_with_clamped_weights():
    cleaned = settings.clean({"layers": "textures:1.5,block_12_expand_relu:9,nope:1,"
                                        "creatures:-2,patterns"}, OUTPUTS)
    assert cleaned["weights"] == {"block_5_expand_relu": 1.5, "block_12_expand_relu": 2.0,
                                  "block_15_expand_relu": 0.0, "block_8_expand_relu": 1.0}
    assert "weights" not in settings.clean({"layers": "nope:1,creatures:0"}, OUTPUTS)
    assert settings.clean({"weights": {"textures": "0.5"}}, OUTPUTS)["weights"] == {
        "block_5_expand_relu": 0.5}


def test_resolve_starts_from_the_preset():
    full = settings.resolve(settings.clean({"preset": "deep", "steps": "3"}, OUTPUTS))
    assert full["steps"] == 3
    assert full["weights"] == {"block_12_expand_relu": 1.0, "block_15_expand_relu": 1.0}
    assert settings.resolve({})["octaves"] == 4


def test_one_channel_of_a_used_layer_by_name_or_label():
    assert settings.clean({"channel": "textures:7"}, OUTPUTS)["channel"] == [
        "block_5_expand_relu", 7]
    assert settings.clean({"channel": ["block_5_expand_relu", "3"]}, OUTPUTS)["channel"] == [
        "block_5_expand_relu", 3]
    for bad in ("textures:192", "nope:1", ["textures"], "<b>:1", 5, {"a": 1}):
        assert "channel" not in settings.clean({"channel": bad}, OUTPUTS)
    kept = settings.resolve(settings.clean({"channel": "textures:7"}, OUTPUTS))
    assert kept["channel"] == ["block_5_expand_relu", 7]  # the default weighs block_5
    dropped = settings.resolve(settings.clean({"channel": "creatures:7"}, OUTPUTS))
    assert "channel" not in dropped  # block_15 is not part of the default objective


def test_the_pages_zoom_ranges_are_the_engines_offered_ones_within_what_it_accepts():
    """One table (dreamengine/zoom.py ZOOM_RANGES) holds both ranges: the page clamps into the
    offered one, the engine refuses outside the valid one, which holds the offered one."""
    from dreamengine import zoom

    for key in ("zoom", "rotation"):
        valid, offered = zoom.ZOOM_RANGES[key]["valid"], zoom.ZOOM_RANGES[key]["offered"]
        assert settings.LIMITS[key][:2] == offered
        assert valid[0] <= offered[0] < offered[1] <= valid[1]
        low, high = offered
        assert settings.clean({key: high + 5}, OUTPUTS)[key] == high
        assert settings.clean({key: low - 5}, OUTPUTS)[key] == low
    zoom.check_settings(2, 1.5, -10.0, 1, 0.02)  # the page's extremes make a zoom
    zoom.check_settings(2, 0.5, 45.0, 1, 0.02)  # and so does the command line's
    with pytest.raises(ValueError, match=r"^zoom must be between 0\.5 and 2 per frame"):
        zoom.check_settings(2, 2.5, 0.0, 1, 0.02)
    with pytest.raises(ValueError, match=r"^rotation must be between -45 and 45 degrees"):
        zoom.check_settings(2, 1.05, -46.0, 1, 0.02)


def test_video_settings_are_clamped_and_default_to_the_engines():
    from dreamengine import presets

    full = settings.resolve(settings.clean({"video_steps": "99", "video_blend": -1,
                                            "camera_max_side": 10, "mode": "camera"}, []))
    assert full["video_steps"] == 20 and full["video_blend"] == 0.0
    assert full["camera_max_side"] == 96
    assert full["video_max_side"] == presets.VIDEO["max_side"]
    assert full["video_blend_moving"] == presets.VIDEO["blend_moving"]
    assert full["video_flow"] is True
    assert settings.clean({"mode": "camera"}, [])["mode"] == "camera"
    for off in ("off", False, "false", "0"):
        assert settings.resolve(settings.clean({"video_flow": off}, []))["video_flow"] is False
    assert settings.resolve(settings.clean({"video_flow": "on"}, []))["video_flow"] is True
