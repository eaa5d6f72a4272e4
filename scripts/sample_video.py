"""A short test video whose motion is known: a textured square gliding over a still photo.

The tests, the benchmark and the docs need a video with real texture (the network's features
need something to grab), a moving part and a still part (the coherence blends them
differently), and an audio track (it must survive the dream). Made with PyAV, so nothing is
downloaded; `frame(i)` gives the same pixels as the file's frame i before compression.
"""

from fractions import Fraction
from pathlib import Path

import numpy as np

from scripts import REPO

PHOTO = REPO / "web" / "samples" / "chelsea.jpg"


class MovingSquare:
    """Frames of `width` x `height`: the photo, and a square of another picture crossing it
    `speed` px a frame left to right, bobbing up and down."""

    def __init__(self, width: int = 320, height: int = 240, speed: float = 3.0) -> None:
        from PIL import Image
        from skimage import data

        self.width, self.height, self.speed = width, height, speed
        with Image.open(PHOTO) as photo:
            self.background = np.asarray(photo.convert("RGB").resize((width, height),
                                                                     Image.LANCZOS))
        side = max(16, height // 4)
        self.side = side
        self.square = np.asarray(Image.fromarray(data.astronaut()).resize((side, side),
                                                                           Image.LANCZOS))

    def frame(self, index: int) -> np.ndarray:
        """Frame `index`, uint8 RGB (height, width, 3)."""
        pixels = self.background.copy()
        travel = self.width - self.side
        x = int(round(index * self.speed)) % travel
        y = int(round((self.height - self.side) / 2 + self.height / 8 * np.sin(index / 8)))
        pixels[y:y + self.side, x:x + self.side] = self.square
        return pixels


def write(path: Path, frames: int = 48, fps: int = 24, width: int = 320, height: int = 240,
          audio: str | None = "aac", video: str | None = "libx264") -> Path:
    """Write the moving square as a video file (H.264 in MP4 by default) with a 440 Hz tone
    as its audio track (`audio=None`: none; `video=None`: audio only), and return its path.
    An MP4's index goes first (faststart), as a web video's does, so a file cut short still
    plays up to the cut."""
    import av

    source = MovingSquare(width, height)
    options = {"movflags": "faststart"} if str(path).endswith((".mp4", ".mov")) else {}
    with av.open(str(path), mode="w", options=options) as container:
        stream = None
        if video:
            stream = container.add_stream(video, rate=fps)
            stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        sound = None
        if audio:
            sound = container.add_stream(audio, rate=48000)
            sound.layout = "mono"
        for index in range(frames if stream else 0):
            frame = av.VideoFrame.from_ndarray(source.frame(index), format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode() if stream else []:
            container.mux(packet)
        if sound is not None:
            rate = 48000
            size = sound.codec_context.frame_size or 1024
            total = int(frames / fps * rate)
            for start in range(0, total, size):
                t = (np.arange(start, min(total, start + size)) / rate).astype(np.float32)
                tone = (0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)[None]
                chunk = av.AudioFrame.from_ndarray(tone, format="flt", layout="mono")
                chunk.sample_rate = rate
                chunk.pts = start
                chunk.time_base = Fraction(1, rate)
                for packet in sound.encode(chunk):
                    container.mux(packet)
            for packet in sound.encode():
                container.mux(packet)
    return path
