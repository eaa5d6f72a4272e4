"""What keeps a dream clean and lets it fit in memory: random roll and tiles.

* Jitter: before each step the image is rolled (shifted with wrap-around) by a random offset
  and the gradient rolled back. Each step then sees the image on a different pixel grid, so
  the network's stride pattern and tile seams never build up into a visible grid.
* Tiles: the gradient is computed tile by tile (default at most 512 px a side) so an image of
  any size fits in memory. Each tile is computed with a margin of context (default 64 px)
  whose gradient is dropped, so seams barely differ from an untiled run; the random roll
  moves the seams every step as well.
"""


TILE_SIZE = 512  # the default tile side; larger images are dreamt tile by tile
MARGIN = 64  # context around each tile, see render.tiled_gradient


class Transforms:
    """Jitter amplitude and tile size, both in pixels."""

    def __init__(self, jitter: int = 32, tile_size: int = TILE_SIZE, margin: int = MARGIN) -> None:
        if jitter < 0 or margin < 0:
            raise ValueError("jitter and margin must be 0 or more")
        if tile_size < 64:
            raise ValueError("tile_size must be at least 64")
        self.jitter = int(jitter)
        self.tile_size = int(tile_size)
        self.margin = int(margin)  # context around each tile, see render.tiled_gradient

    def shift(self, rng: object, height: int, width: int) -> tuple:
        """The roll for one step: jitter, plus a random tile offset when the image is tiled."""
        dy = rng.randint(-self.jitter, self.jitter) if self.jitter else 0
        dx = rng.randint(-self.jitter, self.jitter) if self.jitter else 0
        if height > self.tile_size:
            dy += rng.randint(0, self.tile_size - 1)
        if width > self.tile_size:
            dx += rng.randint(0, self.tile_size - 1)
        return dy % height, dx % width

    def tiles(self, size: int) -> list:
        """Split [0, size) into the fewest near-equal spans of at most tile_size."""
        count = -(-size // self.tile_size)
        bounds = [round(i * size / count) for i in range(count + 1)]
        return [(bounds[i], bounds[i + 1]) for i in range(count)]
