"""A tiny seeded random generator that gives the same numbers in every Python.

`random` differs between CPython and MicroPython, and a run must repeat exactly from its seed
on both (and in the native reference), so the engine carries its own: a 32-bit linear
congruential generator (Numerical Recipes constants), plenty for picking jitter offsets.
"""


class Rng:
    """Deterministic integers from a seed."""

    def __init__(self, seed: int) -> None:
        self.state = (int(seed) * 2654435761 + 12345) & 0xFFFFFFFF

    def next32(self) -> int:
        """The next raw 32-bit value."""
        self.state = (1664525 * self.state + 1013904223) & 0xFFFFFFFF
        return self.state

    def randint(self, low: int, high: int) -> int:
        """A uniform integer in [low, high] (inclusive), from the high bits."""
        span = high - low + 1
        return low + ((self.next32() >> 8) % span)
