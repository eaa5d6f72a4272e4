"""Render docs/dreams/: the default dream of three real photos at three depths, natively.

    .venv/bin/python scripts/make_docs_images.py

Uses the command line (`python -m native.dream`), so the pictures show exactly what the
defaults give. Photos ship inside scikit-image: chelsea (a cat) and coffee are scikit-image's
own sample images (CC0 / public domain per its data README), astronaut is NASA's Eileen
Collins (public domain).
"""

import subprocess
import sys
from pathlib import Path

from PIL import Image
from skimage import data

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "docs" / "dreams"
PHOTOS = {"chelsea": data.chelsea, "coffee": data.coffee, "astronaut": data.astronaut}
# Three depths, shallow to deep: which layers the objective weighs (see presets.py).
DEPTHS = {
    "shallow": "block_2_expand_relu=0.5,block_5_expand_relu=1",
    "default": None,  # presets.DEFAULT
    "deep": "block_12_expand_relu=1,block_15_expand_relu=1",
}


def main() -> int:
    """Write the photos and their dreams as PNG files under docs/dreams/."""
    OUT.mkdir(parents=True, exist_ok=True)
    for name, load in PHOTOS.items():
        photo = OUT / f"{name}.png"
        Image.fromarray(load()).save(photo)
        for depth, layers in DEPTHS.items():
            target = OUT / f"{name}-{depth}.png"
            command = [sys.executable, "-m", "native.dream", str(photo), str(target)]
            if layers:
                command += ["--layers", layers]
            subprocess.run(command, cwd=REPO, check=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
