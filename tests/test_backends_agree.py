"""The dream engine's two backends agree, method by method: the page's
`dreamengine/tfjs_backend.py` (over tfjs) and `native/tf_backend.py` (over
TensorFlow), the reference the page is checked against.

The real tfjs_backend.py runs in Pyodide under Node (tests/backend_methods.mjs, tfjs's cpu
backend, the committed graph model); TfBackend runs here. Both run the same cases
(tests/backend_cases.py) on the same inputs: every method the engine uses, with shapes
compared exactly and values elementwise.
"""

import json
import os
import subprocess

import numpy as np
import pytest
from conftest import REPO

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

# Elementwise, as numpy's allclose: |tfjs - tf| <= atol + rtol * |tf|. rtol: float32 sums in
# another order differ by a few ulps (1.2e-7 each) per operation. atol, relative to the
# largest value of the same result: activations and gradients are sums over many products of
# mixed signs, so an entry that cancels to nearly 0 keeps the absolute rounding error of its
# terms, which is of the order of the result's largest values times float32's epsilon, times
# the depth of the network (a few hundred operations to block_15). Resampling (resize, zoom)
# computes each source coordinate in float32: near x = 56 its ulp is 3.8e-6, so the
# interpolation weights may differ by a few 1e-6 and the value by that times the step
# between neighbouring pixels (up to the image's range): 1.9e-6 measured on a [-1, 1] photo.
RTOL = 1e-5
ATOL = {"plain": 1e-6, "resample": 1e-5, "network": 2e-5}
NETWORK = ("activations", "value_and_grad", "rows", "activation channel")
RESAMPLE = ("resize", "zoom", "warp", "optical flow")


@pytest.fixture(scope="module")
def inputs():
    from PIL import Image
    from skimage import data

    def photo(pixels, width, height):
        image = Image.fromarray(pixels).resize((width, height), Image.LANCZOS)
        return (np.asarray(image, dtype=np.float32) / 127.5 - 1.0)[None]

    rng = np.random.default_rng(12)
    nonfinite = rng.normal(size=(2, 3, 4)).astype(np.float32)
    nonfinite.flat[[1, 7, 8, 20]] = [np.inf, -np.inf, np.nan, np.nan]
    # The photo moved 1.5 px right and 2 px up (a crop of a larger rendering), for the flow.
    big = np.asarray(Image.fromarray(data.chelsea()).resize((112, 80), Image.LANCZOS))
    moved = Image.fromarray(big).transform((112, 80), Image.AFFINE, (1, 0, -3, 0, 1, 4),
                                           Image.BILINEAR)
    # A flow of a few pixels a point, some beyond the edges.
    flow = (rng.normal(size=(1, 40, 56, 2)) * 4.0).astype(np.float32)
    return {"image": photo(big, 56, 40), "guide": photo(data.coffee(), 48, 48),
            "moved": photo(np.asarray(moved), 56, 40), "flow": flow,
            "other": rng.normal(size=(1, 40, 56, 3)).astype(np.float32), "nonfinite": nonfinite}


@pytest.fixture(scope="module")
def node_run(inputs, tmp_path_factory):
    """The cases on the page's backend, started: tfjs_backend.py in Pyodide, tfjs cpu, under
    Node. It runs while TensorFlow loads the native model (both take 10-15 s)."""
    work = tmp_path_factory.mktemp("backends")
    files = {}
    for name, array in inputs.items():
        (work / f"{name}.bin").write_bytes(np.ascontiguousarray(array, np.float32).tobytes())
        files[name] = {"file": str(work / f"{name}.bin"), "shape": list(array.shape)}
    job = work / "job.json"
    job.write_text(json.dumps({"repo": str(REPO), "inputs": files, "out": str(work / "out.json")}))
    process = subprocess.Popen(["node", "tests/backend_methods.mjs", str(job)], cwd=REPO,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    yield process, work / "out.json"
    if process.poll() is None:
        process.kill()
        process.wait()


@pytest.fixture(scope="module")
def tfjs_results(node_run):
    """The cases' results on the page's backend."""
    process, out = node_run
    _, stderr = process.communicate(timeout=300)
    assert process.returncode == 0, stderr[-3000:]
    return json.loads(out.read_text())


@pytest.fixture(scope="module")
def native_results(inputs, node_run, native_backend):
    """The same cases on TfBackend, over TensorFlow (with the Node run under way)."""
    import backend_cases
    import tensorflow as tf

    from native import tf_backend

    ops, manifest = native_backend()
    layers = [out["layer"] for out in manifest["outputs"]]
    tensors = {name: tf.constant(array) for name, array in inputs.items()}
    return tf_backend.finish(backend_cases.run(ops, tensors, layers))


def leaves(result, path=()):
    """(path, leaf) for every tensor or number in a case's result."""
    if isinstance(result, list):
        for i, item in enumerate(result):
            yield from leaves(item, (*path, i))
    else:
        yield path, result


def test_the_page_backend_ran_every_case_on_tfjs_and_freed_every_tensor(native_results,
                                                                        tfjs_results):
    import backend_cases

    assert tfjs_results["backend"] == "cpu"
    assert list(tfjs_results["results"]) == [name for name, _ in backend_cases.CASES]
    assert tfjs_results["leaked"] == 0  # tidy and dispose free all that a case made


def case_names():
    import backend_cases

    return [name for name, _ in backend_cases.CASES]


@pytest.mark.parametrize("case", case_names())
def test_both_backends_give_the_same_shapes_and_values(native_results, tfjs_results, case):
    got, want = tfjs_results["results"][case], native_results[case]
    got_leaves, want_leaves = list(leaves(got)), list(leaves(want))
    assert [p for p, _ in got_leaves] == [p for p, _ in want_leaves], case
    kind = ("network" if case.startswith(NETWORK) else "resample" if case.startswith(RESAMPLE)
            else "plain")
    atol_scale = ATOL[kind]
    for (path, a), (_, b) in zip(got_leaves, want_leaves, strict=True):
        if "value" in b:
            assert a == b, (case, path)
            continue
        assert a["shape"] == b["shape"], (case, path)
        a_values = np.asarray(a["values"], np.float64)
        b_values = np.asarray(b["values"], np.float64)
        atol = atol_scale * max(float(np.abs(b_values).max()), 1e-30)
        error = np.abs(a_values - b_values) - (atol + RTOL * np.abs(b_values))
        worst = int(np.argmax(error))
        assert error[worst] <= 0, (
            f"{case} {path}: {a_values[worst]} vs {b_values[worst]} at {worst} "
            f"(atol {atol:.3g}); {int((error > 0).sum())} of {error.size} beyond tolerance")
