"""How a dream proceeds: octaves from small to full size, steps of gradient ascent in each.

Dreaming first at a reduced size lets deep layers, which see large regions, paint large
structures; each larger octave then adds finer detail on top. The detail dreamt so far is
carried up to the next octave ("detail reinjection") so nothing is lost in the resize.
"""

MIN_SIDE = 32  # MobileNetV2's deepest stride: a smaller octave would have no activations


class Schedule:
    """Octave count and scale, steps per octave, and step size (in input units, [-1, 1])."""

    def __init__(self, octaves: int = 4, octave_scale: float = 1.4, steps: int = 10,
                 step_size: float = 0.02) -> None:
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

    def octave_sizes(self, height: int, width: int) -> list:
        """(height, width) of each octave, smallest first, ending at the full size.

        Octaves whose shorter side would fall below MIN_SIDE are left out.
        """
        sizes = []
        for i in range(self.octaves - 1, -1, -1):
            factor = self.octave_scale ** i
            size = (max(1, round(height / factor)), max(1, round(width / factor)))
            if min(size) >= MIN_SIDE or i == 0:
                sizes.append(size)
        return sizes
