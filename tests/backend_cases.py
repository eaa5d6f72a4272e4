"""Every tensor operation the dream engine uses, as cases run on BOTH engine backends.

The same code runs on `native/tf_backend.py` (CPython, TensorFlow: tests/test_backends_agree.py)
and on the real `dreamengine/tfjs_backend.py` (Pyodide under Node, tfjs's cpu
backend: tests/backend_methods.mjs), so the two are compared method by method on the same
inputs. Plain Python only (no numpy, no TensorFlow): Pyodide from npm has no wheels.

`run(ops, inputs, layers)` returns {case: result}, where a tensor becomes
{"shape": [...], "values": [...]} (read through `ops.read`), a number {"value": n}, and a
list or tuple a list of those. Every tensor a case returns is disposed through `ops.dispose`.
"""

from dreamengine import flow
from dreamengine.guide import GuideObjective
from dreamengine.objective import Objective

DEFAULT = {"block_5_expand_relu": 0.5, "block_8_expand_relu": 1.0, "block_12_expand_relu": 1.0}


def _objective_value_and_grad(ops: object, inputs: dict, layers: list) -> object:
    return ops.value_and_grad(Objective(DEFAULT), inputs["image"], 0.37)


def _l2_channel_value_and_grad(ops: object, inputs: dict, layers: list) -> object:
    objective = Objective({"block_5_expand_relu": 1.0, "block_12_expand_relu": 0.5}, "l2",
                          ("block_5_expand_relu", 7))
    return ops.value_and_grad(objective, inputs["image"], 1.0)


def _guided_value_and_grad(ops: object, inputs: dict, layers: list) -> object:
    guide = GuideObjective(["block_8_expand_relu"], 0.6, Objective({"block_5_expand_relu": 1.0}),
                           max_vectors=5)  # a strided subsample of the guide's features
    guide.set_guide(ops, inputs["guide"])
    try:
        return ops.value_and_grad(guide, inputs["image"], 0.5)
    finally:
        guide.dispose(ops)


def _rows_dots_row_max(ops: object, inputs: dict, layers: list) -> object:
    act = ops.activations(inputs["image"], ["block_5_expand_relu"])[0]
    table = ops.rows(ops.activations(inputs["guide"], ["block_5_expand_relu"])[0], 2)
    products = ops.dots(ops.rows(act, 1), table)
    return [ops.rows(act, 1), ops.rows(act, 3), table, products, ops.row_max(products)]


def _tidy(ops: object, inputs: dict, layers: list) -> object:
    image = inputs["image"]
    return ops.tidy(lambda: [ops.add(ops.scale(image, 2.0), ops.square(image)), ops.mean(image)])


CASES = [
    ("size", lambda ops, i, layers: list(ops.size(i["image"]))),
    ("resize up", lambda ops, i, layers: ops.resize(i["image"], 57, 71)),
    ("resize down", lambda ops, i, layers: ops.resize(i["image"], 23, 31)),
    ("resize odd ratio", lambda ops, i, layers: ops.resize(i["image"], 41, 39)),
    ("roll both", lambda ops, i, layers: ops.roll(i["image"], 3, 5)),
    ("roll negative rows", lambda ops, i, layers: ops.roll(i["image"], -7, 0)),
    ("roll columns only", lambda ops, i, layers: ops.roll(i["image"], 0, 9)),
    ("roll past the size", lambda ops, i, layers: ops.roll(i["image"], 42, -61)),
    ("roll nothing", lambda ops, i, layers: ops.roll(i["image"], 0, 0)),
    ("crop", lambda ops, i, layers: ops.crop(i["image"], 2, 30, 5, 41)),
    ("concat rows", lambda ops, i, layers: ops.concat(
        [ops.crop(i["image"], 0, 10, 0, 56), ops.crop(i["image"], 30, 40, 0, 56)], 1)),
    ("concat columns", lambda ops, i, layers: ops.concat(
        [ops.crop(i["image"], 0, 40, 50, 56), ops.crop(i["image"], 0, 40, 0, 3)], 2)),
    ("stack", lambda ops, i, layers: ops.stack(
        [ops.mean(i["image"]), ops.max_abs(i["other"]), ops.mean(i["other"])])),
    ("add", lambda ops, i, layers: ops.add(i["image"], i["other"])),
    ("sub", lambda ops, i, layers: ops.sub(i["image"], i["other"])),
    ("scale", lambda ops, i, layers: ops.scale(i["image"], -0.37)),
    ("mean", lambda ops, i, layers: ops.mean(i["other"])),
    ("square", lambda ops, i, layers: ops.square(i["other"])),
    ("channel", lambda ops, i, layers: ops.channel(i["image"], 2)),
    ("normalize", lambda ops, i, layers: ops.normalize(i["other"])),
    ("clip", lambda ops, i, layers: ops.clip(i["other"], -0.5, 0.25)),
    ("max_abs", lambda ops, i, layers: ops.max_abs(i["other"])),
    ("count_nonfinite", lambda ops, i, layers: ops.count_nonfinite(i["nonfinite"])),
    ("count_nonfinite of finite", lambda ops, i, layers: ops.count_nonfinite(i["image"])),
    ("activations, every layer", lambda ops, i, layers: ops.activations(i["image"], layers)),
    ("activations, one layer", lambda ops, i, layers: ops.activations(
        i["image"], ["block_12_expand_relu"])),
    ("activation channel", lambda ops, i, layers: ops.channel(
        ops.activations(i["image"], ["block_5_expand_relu"])[0], 7)),
    ("value_and_grad, default objective", _objective_value_and_grad),
    ("value_and_grad, l2 with a channel", _l2_channel_value_and_grad),
    ("value_and_grad, guided", _guided_value_and_grad),
    ("zoom in and turn", lambda ops, i, layers: ops.zoom(i["image"], 1.05, 3.0)),
    ("zoom out and turn back", lambda ops, i, layers: ops.zoom(i["image"], 0.9, -10.0)),
    ("mul", lambda ops, i, layers: ops.mul(i["image"], i["other"])),
    ("mul by one channel", lambda ops, i, layers: ops.mul(i["image"], ops.channel(i["other"], 1))),
    ("div", lambda ops, i, layers: ops.div(i["image"], ops.offset(ops.square(i["other"]), 0.5))),
    ("offset", lambda ops, i, layers: ops.offset(i["other"], -0.3)),
    ("box_blur 3", lambda ops, i, layers: ops.box_blur(i["other"], 3)),
    ("box_blur 9, wider than the edge", lambda ops, i, layers: ops.box_blur(i["other"], 9)),
    ("warp", lambda ops, i, layers: ops.warp(i["image"], i["flow"])),
    ("warp by whole pixels, past the edges", lambda ops, i, layers: ops.warp(
        i["image"], ops.offset(ops.scale(i["flow"], 0.0), 7.0))),
    ("warp a flow", lambda ops, i, layers: ops.warp(i["flow"], i["flow"])),
    ("flow gradients", lambda ops, i, layers: list(flow.gradients(ops, flow.grey(ops, i["image"])))),
    ("optical flow of a moved photo", lambda ops, i, layers: flow.optical_flow(
        ops, i["image"], i["moved"], flow.Flow(levels=2, window=7))),
    ("motion", lambda ops, i, layers: flow.motion(ops, i["flow"], 2.0)),
    ("rows, dots, row_max", _rows_dots_row_max),
    ("tidy", _tidy),
]


def _is_tensor(value: object) -> bool:
    return hasattr(value, "shape") and not isinstance(value, (int, float, list, tuple))


async def _export(ops: object, value: object) -> object:
    if isinstance(value, (list, tuple)):
        return [await _export(ops, item) for item in value]
    if _is_tensor(value):
        return {"shape": [int(s) for s in value.shape], "values": await ops.read(value)}
    return {"value": value}


def _free(ops: object, value: object) -> None:
    if isinstance(value, (list, tuple)):
        for item in value:
            _free(ops, item)
    elif _is_tensor(value):
        ops.dispose(value)


async def run(ops: object, inputs: dict, layers: list) -> dict:
    """Every case on `ops`; tensors read to plain lists, then disposed."""
    results = {}
    for name, case in CASES:
        # In a tidy, so that a case's intermediate tensors are freed (on tfjs) as the engine's
        # are: only what it returns is kept, and that is disposed once read.
        value = ops.tidy(lambda case=case: [case(ops, inputs, layers)])[0]
        results[name] = await _export(ops, value)
        _free(ops, value)
    return results
