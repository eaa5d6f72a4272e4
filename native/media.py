"""Video files for the command lines, through PyAV (FFmpeg): frames in, frames out, audio kept.

`read_video` decodes a file's first video track into upright RGB frames scaled to a largest
side, with their times, and says when the file was cut short. `Writer` encodes frames as
they come (memory stays flat), in the format the output's suffix names, and copies an audio
track across: its packets as they are where the container takes that codec, else decoded
and encoded again (e.g. Vorbis into MP4 becomes AAC). Used by `native.zoom` and
`native.video`.
"""

from fractions import Fraction
from pathlib import Path

# Video codecs per suffix, best first (PyAV's FFmpeg names); .gif needs none.
CODECS = {".webm": ["libvpx-vp9", "libvpx"], ".mp4": ["libx264", "h264", "libopenh264"]}
FORMATS = sorted(CODECS) + [".gif"]
# Audio codecs each container takes as they are, and what to encode others to.
AUDIO_COPY = {".mp4": {"aac", "mp3", "opus", "alac"}, ".webm": {"opus", "vorbis"}}
AUDIO_ENCODE = {".mp4": "aac", ".webm": "libopus"}


def available_codec(suffix: str) -> str:
    """The first codec for `suffix` that this PyAV build can encode; ValueError if none."""
    if suffix not in CODECS:
        raise ValueError("unsupported output format " + repr(suffix) + "; use one of "
                         + ", ".join(FORMATS))
    import av

    for name in CODECS[suffix]:
        try:
            av.codec.Codec(name, "w")
        except Exception:
            continue
        return name
    raise ValueError("no encoder for " + suffix + " in this PyAV build (tried "
                     + ", ".join(CODECS[suffix]) + "); write .webm or .gif instead")


def even_size(width: int, height: int, max_side: int) -> tuple:
    """(width, height) scaled to at most `max_side` px (0: as is), aspect kept, even (4:2:0
    video needs even sides), at least 2."""
    scale = min(1.0, max_side / max(width, height)) if max_side else 1.0

    def even(n: float) -> int:
        return max(2, int(round(n * scale)) // 2 * 2)

    return even(width), even(height)


class VideoSource:
    """A video file opened for reading: its first video track's size (upright, scaled), frame
    rate, duration, frame count (from the container, 0 if it does not say) and audio."""

    def __init__(self, path: Path, max_side: int = 0) -> None:
        import av

        try:
            self.container = av.open(str(path))
        except (av.error.FFmpegError, OSError, UnicodeDecodeError) as error:
            raise OSError("cannot read " + str(path) + " as a video: " + str(error)) from error
        videos = self.container.streams.video
        if self.container.format.name == "image2" or self.container.format.name.endswith("_pipe"):
            kind = self.container.format.name.replace("_pipe", "")
            self.container.close()
            raise OSError(str(path) + " is a still image (" + kind + "), not a video")
        if not videos:
            audio_only = bool(self.container.streams.audio)
            self.container.close()
            raise OSError(str(path) + " has no video track" + (" (audio only)" if audio_only
                                                                else ""))
        self.stream = videos[0]
        self.audio = self.container.streams.audio[0] if self.container.streams.audio else None
        self.path = path
        self.fps = float(self.stream.average_rate or self.stream.guessed_rate or 24)
        self.frame_count = int(self.stream.frames or 0)
        seconds = self.stream.duration * self.stream.time_base if self.stream.duration else None
        if seconds is None and self.container.duration:
            seconds = self.container.duration / 1e6
        self.duration = float(seconds or 0.0)
        codec = self.stream.codec_context
        self.source_size = (codec.width, codec.height)
        self.max_side = max_side
        self.truncated = False  # set when decoding stops at an error before the end
        self.rotation = 0
        self.size = None  # (width, height) of the frames yielded, known from the first

    def frames(self) -> object:
        """Yield (index, seconds, uint8 RGB (h, w, 3)) for every frame, upright and scaled."""
        import av
        import numpy as np

        index = 0
        try:
            for frame in self.container.decode(self.stream):
                turns = round((getattr(frame, "rotation", 0) or 0) / 90.0) % 4
                if self.size is None:
                    self.rotation = turns * 90
                    w, h = frame.width, frame.height
                    if turns % 2:
                        w, h = h, w
                    self.size = even_size(w, h, self.max_side)
                width, height = self.size
                if turns % 2:
                    width, height = height, width
                pixels = frame.reformat(width=width, height=height, format="rgb24").to_ndarray()
                if turns:  # the display matrix turns counter-clockwise (FFmpeg's convention)
                    pixels = np.ascontiguousarray(np.rot90(pixels, turns))
                seconds = float(frame.time) if frame.time is not None else index / self.fps
                yield index, seconds, pixels
                index += 1
        except av.error.FFmpegError:
            self.truncated = True
        if index and self.frame_count and index < self.frame_count:
            self.truncated = True

    def close(self) -> None:
        """Close the file."""
        self.container.close()


class Writer:
    """Frames in, a video or GIF out, one frame at a time (GIF frames are kept until close,
    as Pillow writes a GIF in one go; they are small palette images). With `audio_from` (a
    VideoSource with an audio track), its audio between `start` and `end` seconds is written
    too, shifted to start at 0, when the file is closed."""

    def __init__(self, path: Path, fps: float, width: int, height: int,
                 audio_from: object = None, start: float = 0.0, end: float | None = None,
                 time_base: Fraction | None = None) -> None:
        self.path = path
        self.fps = fps
        self.gif = []
        self.container = None
        self.frames = 0
        self.audio = None  # (reader, its audio stream, our audio stream, copy?) until close
        self.audio_span = (start, end)
        self.audio_codec = None  # what the output's audio track holds
        if path.suffix.lower() == ".gif":
            return
        import av

        codec = available_codec(path.suffix.lower())
        self.container = av.open(str(path), mode="w")
        rate = Fraction(fps).limit_denominator(1000)
        self.stream = self.container.add_stream(codec, rate=rate)
        self.stream.width, self.stream.height = width, height
        self.stream.pix_fmt = "yuv420p"
        # Frames keep their own times (a variable rate too) in the source's time base; frames
        # at a constant rate are counted in 1 / rate, so the file's rate is exactly `fps`.
        self.stream.time_base = time_base or 1 / rate
        if codec.startswith("libvpx"):  # constant quality: small files for dreamy detail
            self.stream.options = {"crf": "32", "b:v": "0", "deadline": "good", "cpu-used": "4"}
        elif codec == "libx264":
            self.stream.options = {"crf": "23", "preset": "medium"}
        if audio_from is not None and audio_from.audio is not None:
            self._add_audio(audio_from.path)

    def _add_audio(self, source: Path) -> None:
        """The output's audio stream, added before any packet is written (as muxers need)."""
        import av

        reader = av.open(str(source))
        audio = reader.streams.audio[0]
        suffix = self.path.suffix.lower()
        copy = audio.codec_context.name in AUDIO_COPY[suffix]
        if copy:
            out = self.container.add_stream_from_template(audio)
        else:
            out = self.container.add_stream(AUDIO_ENCODE[suffix], rate=audio.rate or 48000)
        self.audio = (reader, audio, out, copy)
        self.audio_codec = audio.codec_context.name if copy else out.codec_context.name

    def add(self, pixels: object, seconds: float | None = None) -> None:
        """Append one uint8 RGB (h, w, 3) frame, shown at `seconds` (default: by frame rate)."""
        if self.container is None:
            from PIL import Image

            self.gif.append(Image.fromarray(pixels).quantize(
                colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE))
            self.frames += 1
            return
        import av

        frame = av.VideoFrame.from_ndarray(pixels, format="rgb24")
        if seconds is None:
            seconds = self.frames / self.fps
        frame.pts = round(seconds / self.stream.time_base)
        frame.time_base = self.stream.time_base
        for packet in self.stream.encode(frame):
            self.container.mux(packet)
        self.frames += 1

    def _write_audio(self) -> None:
        """The audio span: packets as they are, or decoded and encoded again."""
        reader, audio, out, copy = self.audio
        start, end = self.audio_span
        if copy:
            offset = round(start / audio.time_base)
            stop = None if end is None else round(end / audio.time_base)
            for packet in reader.demux(audio):
                if packet.pts is None or packet.pts < offset:
                    continue
                if stop is not None and packet.pts >= stop:
                    break
                packet.pts -= offset
                packet.dts = None if packet.dts is None else packet.dts - offset
                packet.stream = out
                self.container.mux(packet)
            return
        for frame in reader.decode(audio):
            if frame.time is None or frame.time < start:
                continue
            if end is not None and frame.time >= end:
                break
            frame.pts = round((frame.time - start) * frame.sample_rate)
            frame.time_base = Fraction(1, frame.sample_rate)
            for packet in out.encode(frame):
                self.container.mux(packet)
        for packet in out.encode():
            self.container.mux(packet)

    def close(self) -> None:
        """Finish the file: flush the encoder, write the audio, or write the GIF."""
        if self.container is None:
            if self.gif:
                self.gif[0].save(self.path, save_all=True, append_images=self.gif[1:],
                                 duration=round(1000 / self.fps), loop=0, optimize=True)
            return
        try:
            for packet in self.stream.encode():
                self.container.mux(packet)
            if self.audio is not None:
                self._write_audio()
        finally:
            if self.audio is not None:
                self.audio[0].close()
            self.container.close()
