"""The health check after a dream's first step (dreamengine/health.py, docs/gpu.md "A health
check that cannot be fooled"): NaN or infinity, and an image that did not move, are each named.

The zero-gradient branch is tested in the browser (tests/test_gpu_backends.py, a patched
kernel); here the other two, on the real engine over native TensorFlow: the vital signs
measured from real tensors, and whole dreams and zooms that stop with the reason.
"""

import math
import os

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

INVALID = "returned invalid numbers (NaN or infinity) on this device"
NOT_MOVED = "did not change the image on this device"
NO_GRADIENT = "returned no gradient on this device"


@pytest.fixture(scope="module")
def network(native_backend):
    ops, manifest = native_backend()
    return ops.model, manifest


@pytest.fixture(scope="module")
def ops(native_backend):
    return native_backend()[0]


@pytest.fixture(scope="module")
def photo():
    from PIL import Image
    from skimage import data

    image = Image.fromarray(data.chelsea())
    image.thumbnail((64, 64), Image.LANCZOS)
    return np.asarray(image)


def test_diagnose_names_nan_and_infinity_before_anything_else():
    from dreamengine.health import diagnose

    nan = math.nan
    assert diagnose([1.0, 0.5, 0.1]) == INVALID  # one value not finite, the rest looks fine
    assert diagnose([0.0, nan, 0.1]) == INVALID  # a count kernel that missed them
    assert diagnose([0.0, 0.5, nan]) == INVALID  # the image itself became NaN
    assert diagnose([3.0, 0.0, 0.0]) == INVALID  # not "no gradient": the numbers are invalid
    assert diagnose([0.0, 0.5, 0.1]) is None


def test_diagnose_names_an_image_that_did_not_move():
    from dreamengine.health import diagnose

    assert diagnose([0.0, 0.7, 0.0]) == NOT_MOVED  # a gradient, but the update was lost
    assert diagnose([0.0, 0.0, 0.0]) == NO_GRADIENT  # no gradient says more than no change
    assert diagnose([0.0, 0.7, 1e-9]) is None  # any movement at all is a working step


def test_vital_signs_of_real_tensors_count_nonfinite_values_and_see_no_movement(ops, photo):
    import tensorflow as tf

    from dreamengine import presets
    from dreamengine.health import diagnose, vital_signs
    from dreamengine.objective import Objective
    from native import tf_backend

    before = tf_backend.to_tensor(photo)
    _, gradient = ops.value_and_grad(Objective(presets.DEFAULT["weights"]), before, 1.0)
    after = ops.add(before, ops.scale(ops.normalize(gradient), 0.02))

    signs = np.asarray(vital_signs(ops, before, after, gradient))
    assert signs[0] == 0 and signs[1] > 0 and signs[2] > 0
    assert diagnose(list(signs)) is None

    spoilt = tf.tensor_scatter_nd_update(gradient, [[0, 3, 4, 1], [0, 9, 2, 0]],
                                         [math.nan, math.inf])
    signs = np.asarray(vital_signs(ops, before, after, spoilt))
    assert signs[0] == 2  # exactly the two spoilt values
    assert diagnose(list(signs)) == INVALID

    signs = np.asarray(vital_signs(ops, before, before, gradient))
    assert signs[0] == 0 and signs[1] > 0 and signs[2] == 0
    assert diagnose(list(signs)) == NOT_MOVED


def test_a_dream_and_a_zoom_whose_steps_do_not_move_the_image_stop_with_the_reason(ops, photo):
    """A step too small for float32 to represent (as a half-float texture underflows): the
    gradient is real, yet the image does not move, so the dream must not silently "work".
    Pixels are at least 1/255 from 0 in [-1, 1], where float32's spacing is about 5e-10;
    a normalised gradient times 1e-15 is far below half of it."""
    from dreamengine import presets, render
    from dreamengine.objective import Objective
    from dreamengine.schedule import Schedule
    from dreamengine.transforms import Transforms
    from dreamengine.zoom import dream_zoom
    from native import tf_backend

    image = tf_backend.to_tensor(photo)
    objective = Objective(presets.DEFAULT["weights"])
    with pytest.raises(render.BrokenBackendError) as failure:
        tf_backend.finish(render.dream(ops, image, objective, Schedule(1, 1.4, 2, 1e-15),
                                       Transforms(8), 0))
    assert str(failure.value) == NOT_MOVED
    with pytest.raises(render.BrokenBackendError) as failure:
        tf_backend.finish(dream_zoom(ops, image, objective, 2, 1.05, 0.0, 1, 1e-15,
                                     Transforms(8), 0))
    assert str(failure.value) == NOT_MOVED
    # The same dream with a step it can represent is healthy: the branch above is the step.
    result = tf_backend.finish(render.dream(ops, image, objective, Schedule(1, 1.4, 2, 0.02),
                                            Transforms(8), 0))
    assert np.abs(tf_backend.to_pixels(result).astype(float) - photo).mean() > 0.5


def test_a_dream_and_a_zoom_on_a_device_that_returns_nan_stop_with_the_reason(network, ops,
                                                                               photo):
    """A backend whose backward pass gives NaN (as a GPU whose half floats overflow): the
    engine's own loop must name it after the first step instead of dreaming on."""
    import tensorflow as tf

    from dreamengine import presets, render
    from dreamengine.objective import Objective
    from dreamengine.schedule import Schedule
    from dreamengine.transforms import Transforms
    from dreamengine.zoom import dream_zoom
    from native import tf_backend

    class NanDevice(tf_backend.TfBackend):
        def value_and_grad(self, objective, x, scale):
            value, gradient = super().value_and_grad(objective, x, scale)
            return value, gradient * tf.constant(math.nan)

    broken = NanDevice(*network)
    broken.compiled = ops.compiled  # the same compiled gradient: no second trace
    image = tf_backend.to_tensor(photo)
    objective = Objective(presets.DEFAULT["weights"])
    seen = []
    with pytest.raises(render.BrokenBackendError) as failure:
        tf_backend.finish(render.dream(broken, image, objective, Schedule(1, 1.4, 2),
                                       Transforms(8), 0, on_step=seen.append))
    assert str(failure.value) == INVALID
    assert seen == []  # stopped before the first step was handed on
    with pytest.raises(render.BrokenBackendError) as failure:
        tf_backend.finish(dream_zoom(broken, image, objective, 2, 1.05, 0.0, 1, 0.02,
                                     Transforms(8), 0, on_frame=seen.append))
    assert str(failure.value) == INVALID
    assert seen == []
