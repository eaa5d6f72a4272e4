"""Render docs/zoom.gif (a dream zoom) and docs/guided/ (a guided dream), natively.

    .venv/bin/python scripts/make_feature_docs.py

Uses the command lines (`python -m native.zoom`, `python -m native.dream --guide`), so the
pictures show exactly what the engine's defaults give. Photos ship inside scikit-image
(see scripts/make_docs_images.py for their licences).
"""

import subprocess
import sys
import tempfile
from pathlib import Path

from PIL import Image, ImageDraw
from skimage import data

REPO = Path(__file__).resolve().parent.parent
DOCS = REPO / "docs"
SIDE = 256  # small enough to keep the GIF under 2 MB and the run short
ZOOM = {"photo": data.chelsea, "frames": "24", "rotation": "1"}
GUIDED = {"photo": data.chelsea, "guide": data.coffee}


def small(pixels: object) -> Image.Image:
    """The picture scaled to at most SIDE px a side."""
    image = Image.fromarray(pixels)
    image.thumbnail((SIDE, SIDE), Image.LANCZOS)
    return image


def run(*args: str) -> None:
    """One command line of the project, from the repository root."""
    subprocess.run([sys.executable, "-m", *args], cwd=REPO, check=True)


def side_by_side(paths: list, labels: list, target: Path) -> None:
    """The pictures in a row, each captioned, as one PNG."""
    images = [Image.open(p).convert("RGB") for p in paths]
    height = max(i.height for i in images)
    sheet = Image.new("RGB", (sum(i.width for i in images) + 8 * (len(images) - 1),
                              height + 20), "white")
    draw = ImageDraw.Draw(sheet)
    x = 0
    for image, label in zip(images, labels, strict=True):
        sheet.paste(image, (x, 20))
        draw.text((x + 4, 4), label, fill="black")
        x += image.width + 8
    sheet.save(target)


def main() -> int:
    """Write docs/zoom.gif and docs/guided/*.png."""
    with tempfile.TemporaryDirectory() as tmp:
        photo = Path(tmp) / "photo.png"
        small(ZOOM["photo"]()).save(photo)
        run("native.zoom", str(photo), str(DOCS / "zoom.gif"), "--frames", ZOOM["frames"],
            "--rotation", ZOOM["rotation"])
    out = DOCS / "guided"
    out.mkdir(parents=True, exist_ok=True)
    photo, guide = out / "photo.png", out / "guide.png"
    small(GUIDED["photo"]()).save(photo)
    small(GUIDED["guide"]()).save(guide)
    run("native.dream", str(photo), str(out / "unguided.png"))
    run("native.dream", str(photo), str(out / "guided.png"), "--guide", str(guide))
    run("native.dream", str(photo), str(out / "guided-mix-0.5.png"), "--guide", str(guide),
        "--guide-mix", "0.5")
    side_by_side([photo, guide, out / "unguided.png", out / "guided.png",
                  out / "guided-mix-0.5.png"],
                 ["photo", "guide", "dream (default)", "guided (mix 1)", "guided (mix 0.5)"],
                 out / "side-by-side.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
