"""How a dream proceeds: octaves from small to full size, steps of gradient ascent in each.

Dreaming first at a reduced size lets deep layers, which see large regions, paint large
structures; each larger octave then adds finer detail on top. The detail dreamt so far is
carried up to the next octave ("detail reinjection") so nothing is lost in the resize.
"""

# MobileNetV2's deepest stride: a smaller octave would have no activations. Other models say
# theirs in their manifest (`input.min_side`, measured by the converter: InceptionV3 43).
MIN_SIDE = 32


class Schedule:
    """Octave count and scale, steps per octave, and step size (in input units, [-1, 1])."""

    def __init__(self, octaves: int = 4, octave_scale: float = 1.4, steps: int = 10,
                 step_size: float = 0.02, min_side: int = MIN_SIDE) -> None:
        if octaves < 1 or steps < 1:
            raise ValueError("octaves and steps must be at least 1")
        if octave_scale < 1.0:
            raise ValueError("octave_scale must be at least 1.0")
        if step_size <= 0:
            raise ValueError("step_size must be positive")
        self.octaves = int(octaves)
        self.octave_scale = float(octave_scale)
        self.steps = int(steps)
        self.step_size = float(step_size)
        self.min_side = int(min_side)  # the model's smallest input, manifest input.min_side

    def octave_sizes(self, height: int, width: int) -> list:
        """(height, width) of each octave, smallest first, ending at the full size.

        Octaves whose shorter side would fall below `min_side` are left out.
        """
        sizes = []
        for i in range(self.octaves - 1, -1, -1):
            factor = self.octave_scale ** i
            size = (max(1, round(height / factor)), max(1, round(width / factor)))
            if min(size) >= self.min_side or i == 0:
                sizes.append(size)
        return sizes
