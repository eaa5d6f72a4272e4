"""Is the backend really dreaming? Vital signs of the first step, and what they mean.

A GPU backend can fail silently: a driver that returns zeros, a software adapter whose
device was lost, half-float textures that underflow. The step then "works", fast, and the
photo never changes. So after the first step of every dream the engine measures three
numbers on the device (read asynchronously, never with a synchronous read):

    [count of non-finite gradient values, largest |gradient|, largest |change of the image|]

and `diagnose` turns them into a reason, or None when all is well. A silent no-dream is
then impossible: the page reports the reason and moves to the next backend.
"""


def vital_signs(ops: object, before: object, after: object, gradient: object) -> object:
    """A 3-element tensor: non-finite count, max |gradient|, max |after - before|."""
    return ops.stack([ops.count_nonfinite(gradient), ops.max_abs(gradient),
                      ops.max_abs(ops.sub(after, before))])


def diagnose(signs: list) -> object:
    """A sentence saying what is wrong with a step, from its vital signs; None if healthy.

    Phrased to follow "the <backend> backend": "returned no gradient on this device".
    """
    nonfinite, largest, moved = float(signs[0]), float(signs[1]), float(signs[2])
    if nonfinite > 0 or largest != largest or moved != moved:  # x != x: NaN
        return "returned invalid numbers (NaN or infinity) on this device"
    if largest == 0.0:
        return "returned no gradient on this device"
    if moved == 0.0:
        return "did not change the image on this device"
    return None
