"""How large a photo and a tile may be on the running backend: what its largest tensor holds.

A WebGL texture is at most MAX_TEXTURE_SIZE texels a side (4096 on many phones and laptops,
2048 the least WebGL 2 allows), and tfjs stores some tensors of every step unpacked, one
float per texel; a WebGPU buffer binding has a byte limit. The backend reports the most
values one tensor may hold (`maxElements`, None for wasm and cpu); the model's manifest
says how many values its largest activation has per input pixel. From these two follow the
largest tile (its context margins included) and the largest photo. Pure Python, tested
natively.
"""

MAX_SIDE = 2048  # photos are scaled down to this longer side on every backend
HEADROOM = 0.9  # tfjs pads some tensors (strided convolutions): stay clear of the exact limit
TILE_STEP = 32  # tiles in whole cells of the model's coarsest stride


def largest_tile(max_elements: int | None, per_pixel: float, margin: int, wanted: int) -> int:
    """The tile size to use: `wanted`, or less when a tile with its margins would not fit.

    A tile of side t is computed on (t + 2 margin)^2 pixels, whose largest activation holds
    per_pixel values each. Never below one cell of TILE_STEP pixels.
    """
    if max_elements is None:
        return wanted
    whole = int((max_elements * HEADROOM / per_pixel) ** 0.5)
    fits = (whole - 2 * margin) // TILE_STEP * TILE_STEP
    return max(TILE_STEP, min(wanted, fits))


def largest_photo(max_elements: int | None) -> int | None:
    """The most pixels a photo may have (3 values each), or None for no limit."""
    if max_elements is None:
        return None
    return int(max_elements * HEADROOM / 3)
