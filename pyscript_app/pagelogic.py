"""The page's decisions, apart from the page: what a failure means, what to try after
running out of memory, what the progress line says, what a download is called.

No `pyscript` and no DOM here, so every decision is unit-tested under CPython
(tests/test_pagelogic.py); app.py only wires them to the page. MicroPython runs it too.
"""

from dreamengine.render import BrokenBackendError
from dreamengine.transforms import TILE_SIZE

# Failures recognised by exact phrases, never by fragments: "oom" would match "zoom" and
# "room", "aborted" a visitor's AbortError, "webgl" any WebGL message.
# Running out of memory: wasm's heap is capped at 4 GiB, and when it is full malloc returns
# 0 and tfjs's wasm build traps where it uses that ("memory access out of bounds"; "table
# index is out of bounds" when XNNPACK could not create its operator: both seen here) or
# aborts ("Aborted()"); the page's own wasm kernels and WebGPU say "out of memory"; V8 says
# "Array buffer allocation failed"; WebGL refuses a texture larger than it holds, which
# smaller tiles cure just the same.
OUT_OF_MEMORY = ("out of memory", "memory access out of bounds", "table index is out of bounds",
                 "aborted()", "array buffer allocation failed", "invalid typed array length",
                 "greater than webgl maximum")
# The GPU went away under the page: WebGL's context or WebGPU's device was lost.
GPU_LOST = ("webgl context lost", "context_lost_webgl", "webgpu device lost",
            "instance reference no longer exists", "the gpu stopped working")
SAFE_NAME = "abcdefghijklmnopqrstuvwxyz0123456789-_"
SMALLEST_TILE = 128
SMALLEST_HALVED_SIDE = 64  # a photo is halved only while its shorter side keeps this much


class GpuLostError(RuntimeError):
    """The WebGL context or WebGPU device of the running backend was lost mid-dream."""


def message_of(error) -> str:
    """A readable one-line message from a Python or JS exception.

    MicroPython raises JS errors as JsException(proxy, name, message); Pyodide's read
    "Error: message" as text.
    """
    args = getattr(error, "args", ())
    if len(args) == 3 and isinstance(args[2], str):
        return args[2].strip().split("\n")[0] or "something went wrong"
    text = str(error).strip().split("\n")[-1]
    marker = "Error: "
    if marker in text:
        text = text[text.rindex(marker) + len(marker):]
    return text or "something went wrong"


def error_name(error) -> str:
    """A JS error's name ("NotAllowedError") from a Python or JS exception, "" if none:
    MicroPython's JsException carries it as its second argument, Pyodide's as `name` or at
    the start of its text ("NotAllowedError: Permission denied")."""
    args = getattr(error, "args", ())
    if len(args) == 3 and isinstance(args[1], str):
        return args[1]
    name = getattr(error, "name", None)
    if isinstance(name, str) and name:
        return name
    text = str(error).strip().split("\n")[-1]
    head = text.split(":")[0].strip()
    return head if head.endswith("Error") and " " not in head else ""


def _says(message: str, phrases: tuple) -> bool:
    lowered = message.lower()
    return any(phrase in lowered for phrase in phrases)


def classify(error, heap_nearly_full: bool = False) -> str:
    """What a failed dream means: "broken backend", "gpu lost", "out of memory" or "other".

    By type first (the engine's health check, the page's own GPU watch), then by exact
    phrases; with the wasm heap nearly full any failure is memory, whatever it says (after
    malloc fails tfjs can fail in yet other words).
    """
    if isinstance(error, BrokenBackendError):
        return "broken backend"
    if isinstance(error, GpuLostError):
        return "gpu lost"
    message = message_of(error)
    if _says(message, GPU_LOST):
        return "gpu lost"
    if heap_nearly_full or _says(message, OUT_OF_MEMORY):
        return "out of memory"
    return "other"


def after_out_of_memory(settings: dict, height: int, width: int) -> tuple | None:
    """What to try after a dream of a height x width photo ran out of memory.

    Returns (settings, halve) for the next try, or None when nothing smaller is worth it.
    Smaller tiles come first: a step's memory grows with the tile, while the picture barely
    changes (each tile still sees its context margin). Half the resolution is the last
    resort, taken while the halved shorter side keeps at least SMALLEST_HALVED_SIDE.
    """
    tile = int(settings.get("tile_size", TILE_SIZE))
    if tile > SMALLEST_TILE:
        smaller = dict(settings)
        smaller["tile_size"] = max(SMALLEST_TILE, tile // 2)
        return smaller, False
    if min(height, width) // 2 >= SMALLEST_HALVED_SIDE:
        return dict(settings), True
    return None


def file_stem(name) -> str:
    """A safe download name from a file name: letters, digits, - and _ only."""
    if not isinstance(name, str):
        return "dream"
    stem = name.rsplit(".", 1)[0].lower()
    cleaned = "".join(c if c in SAFE_NAME else "-" for c in stem)[:40].strip("-")
    return cleaned or "dream"


def eta_seconds(sizes: list, steps: int, done: int, elapsed_ms: float) -> float:
    """Seconds left, assuming a step costs time in proportion to its octave's pixels."""
    costs = []
    for h, w in sizes:
        costs.extend([h * w] * steps)
    spent = sum(costs[:done])
    if spent == 0:
        return 0.0
    return elapsed_ms / 1000.0 * sum(costs[done:]) / spent


def progress_text(octave: int, octaves: int, step: int, steps: int, seconds_left: float) -> str:
    """The line under the progress bar while dreaming."""
    return ("Octave " + str(octave + 1) + "/" + str(octaves) + " · step " + str(step + 1) + "/"
            + str(steps) + " · about " + str(int(seconds_left + 0.5)) + " s left")


def scaled_note(original: tuple, size: tuple, max_side: int, gpu_label: str | None) -> str:
    """What the page says about the photo it loaded: its size, and why it was scaled."""
    if tuple(original) == tuple(size):
        return str(size[0]) + "×" + str(size[1]) + " px, ready to dream."
    why = "at most " + str(max_side) + " px on the longer side"
    if gpu_label is not None and max(size) < max_side:
        why = "the most this GPU's " + gpu_label + " holds"
    return ("Scaled from " + str(original[0]) + "×" + str(original[1]) + " to " + str(size[0])
            + "×" + str(size[1]) + " (" + why + ").")


def dream_note(size: tuple) -> str:
    """What the note under the picture says once a dream is shown: the picture is the dream
    now, not the photo that was "ready to dream"."""
    return ("The dream, " + str(size[0]) + "×" + str(size[1])
            + " px: slide to compare it with your photo.")


def preparing_text(fraction: float) -> str:
    """The progress line while the GPU's programs for a dream are prepared (prepare.py):
    what the page does instead of a bar that does not move."""
    return "Preparing the GPU… " + str(int(max(0.0, min(1.0, fraction)) * 100)) + "%"


def done_text(seconds: float, retry: str | None, notice: str | None, backend: str) -> str:
    """The status line after a dream: how long it took, and how it differed from a first
    try (`retry`: after running out of memory; `notice`: on another backend)."""
    took = " in " + str(int(seconds + 0.5)) + " s"
    done = "Done" + took
    if retry is not None:
        done += ", " + retry + " (the first try ran out of memory)"
    if notice is not None:
        done = notice + " Done on " + backend + took
    return done + ". Slide to compare, download it, or dream again on it."


def device_text(label: str, device: str, gpu: bool, software: bool, reason: str,
                measured: bool) -> str:
    """The device line: what dreams here (backend and device), and why when it is not a GPU,
    when the GPU is a software one, or when speed decided (backends.js measureGpu)."""
    text = "Running on " + label + " (" + device + ")."
    if not gpu:
        return (text + " No GPU in use: " + reason + ". Dreams run on the CPU and take"
                " longer; fewer steps or a smaller photo help.")
    if software:
        return text + " This is a software GPU adapter, much slower than WebAssembly here (" + (
            reason + ").")
    if measured:
        return text + " Chosen because " + reason + "."
    return text


def device_phrase(label: str, device: str, gpu: bool, software: bool) -> str:
    """What dreams here in a few words, for the line a visitor sees; device_text has the
    details, one click away. "Your GPU: NAME", "Your CPU (WebAssembly, 2 threads)"."""
    if gpu and not software:
        return "Your GPU: " + device + " (" + label + ")"
    if gpu:
        return "A software GPU (" + label + "): slower than your CPU"
    if label != "WebAssembly":
        return "Your CPU (" + label + ")"
    words = device.split()
    for i in range(1, len(words)):
        if words[i].startswith("thread") and words[i - 1].isdigit():
            return "Your CPU (WebAssembly, " + words[i - 1] + " " + words[i] + ")"
    return "Your CPU (WebAssembly)"


# A video longer than this is refused before anything is dreamt (trim it first): at a few
# seconds a frame it would run for hours in a browser tab.
MAX_VIDEO_FRAMES = 3600


def duration_text(seconds: float) -> str:
    """"2.0 s", "1 min 5 s", "2 h 3 min": a duration for a visitor."""
    if seconds < 60:
        return str(int(seconds * 10 + 0.5) / 10) + " s"
    minutes = int(seconds / 60 + 0.5) if seconds >= 3600 else int(seconds // 60)
    if seconds < 3600:
        return str(minutes) + " min " + str(int(seconds - 60 * minutes + 0.5)) + " s"
    return str(minutes // 60) + " h " + str(minutes % 60) + " min"


def video_plan(name: str, frames: int, seconds: float, fps: float, size: tuple,
               steps: tuple, pace) -> tuple:
    """(True, what will happen) or (False, why not) for a video the visitor chose, said
    before anything is dreamt. `steps`: (the first frame's, each later frame's) gradient
    steps; `pace`: seconds a step takes per megapixel here, measured on the last dream
    (None before one)."""
    if frames < 1:
        return False, name + " has no video frames."
    length = duration_text(seconds) + " at " + str(int(fps * 100 + 0.5) / 100) + " fps"
    if frames > MAX_VIDEO_FRAMES:
        return False, (name + " has " + str(frames) + " frames (" + length + "); at most "
                       + str(MAX_VIDEO_FRAMES) + " frames are dreamt at a time: trim it first.")
    what = (name + ": " + str(frames) + " frames (" + length + "), dreamt at "
            + str(size[0]) + "×" + str(size[1]))
    if pace is None:
        return True, what + "; the time it takes shows after the first frame."
    megapixels = size[0] * size[1] / 1e6
    estimate = pace * megapixels * (steps[0] + steps[1] * (frames - 1))
    return True, what + ": about " + duration_text(estimate) + " on this device."


def video_eta(done: int, total: int, first_ms: float, later_ms: float) -> float:
    """Seconds left of a video after `done` frames: the first is a whole dream, the later
    ones cost what they have cost so far (`later_ms` for frames 2..done)."""
    if done >= total:
        return 0.0
    each = later_ms / (done - 1) if done > 1 else first_ms / 4.0
    return each * (total - done) / 1000.0


def video_done_text(frames: int, seconds: float, kind: str, why: str, stopped: bool,
                    truncated: bool) -> str:
    """The status line when a video is made (or stopped, keeping what was made)."""
    text = ("Stopped after " if stopped else "Done: ") + str(frames) + " frames in " + (
        duration_text(seconds) + ", as " + kind.upper() + why + ". Download the video below.")
    if truncated:
        text = "The file was cut short: dreamt the " + str(frames) + " frames that decode. " + text
    return text


def camera_problem(name: str, message: str) -> str:
    """What to tell a visitor when the camera cannot start (getUserMedia's error name)."""
    if name in ("NotAllowedError", "SecurityError"):
        return ("The camera was not allowed: allow it for this site in the browser's "
                "settings, then press Camera again.")
    if name in ("NotFoundError", "OverconstrainedError", "DevicesNotFoundError"):
        return "No camera was found on this device."
    if name in ("NotReadableError", "TrackStartError", "AbortError"):
        return "The camera could not start: another application may be using it."
    if name == "NoMediaDevices":
        return "This browser gives this page no camera (it needs https or localhost)."
    return "The camera could not start: " + message + "."
