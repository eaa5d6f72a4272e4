"""Render docs/zoom.gif (a dream zoom), docs/guided/ (a guided dream) and docs/channels.png
(the channel explorer's grid for one layer), natively.

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

from scripts import REPO

DOCS = REPO / "docs"
SIDE = 256  # small enough to keep the GIF under 2 MB and the run short
ZOOM = {"photo": data.chelsea, "frames": "24", "rotation": "1", "side": 200}  # GIF under 1 MB
GUIDED = {"photo": data.chelsea, "guide": data.coffee}


def small(pixels: object, side: int = SIDE) -> Image.Image:
    """The picture scaled to at most `side` px a side."""
    image = Image.fromarray(pixels)
    image.thumbnail((side, side), Image.LANCZOS)
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


def channel_grid(layer: str, count: int, target: Path) -> None:
    """The first `count` channels of `layer` as the page's explorer draws them: a short
    single-channel dream from grey with a little noise (presets.CHANNEL_THUMB)."""
    import numpy as np

    from dreamengine import presets, render
    from dreamengine.plan import plan
    from dreamengine.render import SilentObjectiveError
    from native import tf_backend

    t = presets.CHANNEL_THUMB
    model, manifest = tf_backend.load_model()
    ops = tf_backend.TfBackend(model, manifest)
    rng = np.random.default_rng(1)
    cells = []
    silent = set()
    for index in range(count):
        grey = rng.uniform(-t["noise"], t["noise"], (1, t["side"], t["side"], 3))
        try:
            thumb = dict(t, weights={layer: 1.0}, channel=(layer, index))
            result = tf_backend.finish(render.dream(
                ops, grey.astype(np.float32), *plan(thumb)))
            cell = Image.fromarray(tf_backend.to_pixels(result))
        except SilentObjectiveError:  # does not fire on grey: nothing to draw
            cell = Image.new("RGB", (t["side"], t["side"]), "gray")
            silent.add(index)
        cells.append((index, cell))
    columns = 8
    rows = -(-count // columns)
    sheet = Image.new("RGB", (columns * (t["side"] + 4), rows * (t["side"] + 16) + 14), "white")
    draw = ImageDraw.Draw(sheet)
    for index, cell in cells:
        x, y = index % columns * (t["side"] + 4), index // columns * (t["side"] + 16)
        sheet.paste(cell, (x, y + 14))
        draw.text((x + 2, y + 1), "#" + str(index) + (" (silent)" if index in silent else ""),
                  fill="black")
    draw.text((4, sheet.height - 12), layer, fill="black")
    sheet.save(target)


def main() -> int:
    """Write docs/zoom.gif, docs/guided/*.png and docs/channels.png."""
    channel_grid("block_8_expand_relu", 32, DOCS / "channels.png")
    with tempfile.TemporaryDirectory() as tmp:
        photo = Path(tmp) / "photo.png"
        small(ZOOM["photo"](), ZOOM["side"]).save(photo)
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
