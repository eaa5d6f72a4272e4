"""Render docs/video.gif: the test video beside its dream, made by `python -m native.video`.

    .venv/bin/python scripts/make_video_docs.py

The source is scripts/sample_video.py's (a textured square gliding over a photo); the dream
is the command line's with its defaults, so the clip shows what the engine gives. Each frame
of the GIF is the source (left) and the dream (right) side by side.
"""

import subprocess
import sys
import tempfile
from pathlib import Path

from scripts import REPO, sample_video

TARGET = REPO / "docs" / "video.gif"
FRAMES = 24
SIDE = 160  # keeps the GIF near 1 MB and the run short


def frames(path: Path) -> list:
    """Every frame of a video as uint8 RGB arrays (PyAV)."""
    import av

    with av.open(str(path)) as container:
        return [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]


def main() -> int:
    """Make the source, dream it, write the side-by-side GIF."""
    import numpy as np
    from PIL import Image

    with tempfile.TemporaryDirectory() as scratch:
        source = sample_video.write(Path(scratch) / "source.mp4", frames=FRAMES, width=SIDE,
                                    height=SIDE * 3 // 4)
        dream = Path(scratch) / "dream.mp4"
        subprocess.run([sys.executable, "-m", "native.video", str(source), str(dream),
                        "--max-side", str(SIDE)], cwd=REPO, check=True)
        pairs = zip(frames(source), frames(dream), strict=True)
        images = [Image.fromarray(np.concatenate([a, b], axis=1)).quantize(
            colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
            for a, b in pairs]
    images[0].save(TARGET, save_all=True, append_images=images[1:], duration=round(1000 / 24),
                   loop=0, optimize=True)
    print(f"wrote {TARGET} ({len(images)} frames, {TARGET.stat().st_size // 1024} KB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
