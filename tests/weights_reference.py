"""The browser's weights, loaded by tfjs itself: the independent reference for native weights.

The native backend builds its Keras model from the converter's numpy fold and rounding; checking
it against that same fold would prove nothing (issue 17). Here tfjs loads the committed graph
model under Node (tests/tfjs_weights.mjs) and every float tensor it holds is matched, by this
file's own reading of the graph's names, to a native layer's kernel or bias.
"""

import json
import re
import subprocess
from pathlib import Path

import numpy as np

SCRIPT = Path(__file__).with_name("tfjs_weights.mjs")


def tfjs_weights(model_dir: Path, scratch: Path) -> dict[str, list[np.ndarray]]:
    """Keras layer name -> the float tensors tfjs holds for it (kernel first, then bias)."""
    result = subprocess.run(["node", str(SCRIPT), str(model_dir), str(scratch)],
                            cwd=Path(__file__).resolve().parent.parent, capture_output=True,
                            text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr
    by_layer: dict[str, list[np.ndarray]] = {}
    for i, entry in enumerate(json.loads((scratch / "index.json").read_text())):
        # StatefulPartitionedCall/<model>_1/<layer>_1/<op>...: the layer is the third part,
        # less the `_1` Keras adds when it traces a layer.
        layer = re.sub(r"_1$", "", entry["name"].split("/")[2])
        value = np.fromfile(scratch / f"{i}.bin", np.float32).reshape(entry["shape"])
        by_layer.setdefault(layer, []).append(value)
    return {k: sorted(v, key=lambda a: -a.ndim) for k, v in by_layer.items()}


def assert_model_holds(model: object, reference: dict[str, list[np.ndarray]]) -> None:
    """Every weight of the Keras `model` equals tfjs's, bit for bit, and nothing is left over."""
    seen = set()
    for layer in model.layers:
        weights = layer.get_weights()
        if not weights:
            continue
        want = reference.get(layer.name)
        assert want is not None, f"tfjs holds no weights for layer {layer.name}"
        assert len(weights) == len(want), layer.name
        for got, expected in zip(weights, want, strict=True):
            got = np.ascontiguousarray(got, np.float32)
            expected = np.ascontiguousarray(expected).reshape(got.shape)
            assert np.array_equal(got.view(np.uint32), expected.view(np.uint32)), layer.name
        seen.add(layer.name)
    assert seen == set(reference), sorted(set(reference) - seen)
