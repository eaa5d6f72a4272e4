"""The page's decisions (pyscript_app/pagelogic.py), under CPython: no browser needed."""

import pagelogic
import pytest
import settings

from dreamengine.render import BrokenBackendError

OUTPUTS = [{"layer": "block_5_expand_relu", "label": "textures", "channels": 192, "stride": 8}]


@pytest.mark.parametrize("message", [
    "out of memory", "RuntimeError: memory access out of bounds",
    "table index is out of bounds", "Aborted(). Build with -sASSERTIONS for more info.",
    "RangeError: Array buffer allocation failed", "Invalid typed array length: 4294967296",
    "Requested texture size [8200x8200] greater than WebGL maximum on this browser / GPU "
    "[8192x8192].", "GPUOutOfMemoryError: Out of memory",
])
def test_running_out_of_memory_is_recognised_by_its_exact_phrases(message):
    assert pagelogic.classify(RuntimeError(message)) == "out of memory"


@pytest.mark.parametrize("message", [
    "zoom must be between 1 and 2", "no room left on the canvas",  # "oom" inside words
    "AbortError: The operation was aborted.",  # a visitor cancelled a fetch
    "WebGL: INVALID_OPERATION: texImage2D",  # any other WebGL message
    "cannot allocate a name", "webgl backend not found",
])
def test_false_friends_are_ordinary_failures(message):
    assert pagelogic.classify(RuntimeError(message)) == "other"


def test_a_lost_gpu_and_a_broken_backend_are_known_by_type_and_phrase():
    assert pagelogic.classify(pagelogic.GpuLostError("whatever")) == "gpu lost"
    assert pagelogic.classify(RuntimeError("WebGL context lost")) == "gpu lost"
    assert pagelogic.classify(RuntimeError(
        "Failed to execute 'mapAsync' on 'GPUBuffer': A valid external Instance reference no "
        "longer exists.")) == "gpu lost"
    assert pagelogic.classify(BrokenBackendError("returned no gradient")) == "broken backend"
    # With the wasm heap nearly full, any failure is memory, whatever it says.
    assert pagelogic.classify(RuntimeError("undefined is not a function"), True) == (
        "out of memory")


def test_after_running_out_of_memory_tiles_shrink_then_the_resolution_halves():
    full = settings.resolve(settings.clean({"tile_size": 1024}, OUTPUTS))
    tiles, height, width = [], 1000, 600
    while True:
        attempt = pagelogic.after_out_of_memory(full, height, width)
        if attempt is None:
            break
        full, halve = attempt
        if halve:
            height, width = height // 2, width // 2
        tiles.append((full["tile_size"], height, width))
    assert tiles == [(512, 1000, 600), (256, 1000, 600), (128, 1000, 600),
                     (128, 500, 300), (128, 250, 150), (128, 125, 75)]
    assert full["steps"] == 10  # nothing but the tile size and the size changes


def test_download_names_keep_letters_digits_dashes_only():
    assert pagelogic.file_stem("My Cat (2).JPG") == "my-cat--2"
    assert pagelogic.file_stem("../../etc/passwd") == "dream"
    assert pagelogic.file_stem("holiday/beach photo.webp") == "holiday-beach-photo"
    assert pagelogic.file_stem("<script>.png") == "script"
    assert pagelogic.file_stem(None) == "dream"
    assert pagelogic.file_stem("....") == "dream"


def test_time_left_weighs_steps_by_their_octaves_pixels():
    sizes = [(50, 50), (100, 100)]  # the second octave's steps cost 4x the first's
    assert pagelogic.eta_seconds(sizes, 2, 0, 0.0) == 0.0
    assert pagelogic.eta_seconds(sizes, 2, 2, 1000.0) == pytest.approx(4.0)
    assert pagelogic.eta_seconds(sizes, 2, 3, 3000.0) == pytest.approx(2.0)
    assert pagelogic.progress_text(1, 2, 0, 2, 1.4) == "Octave 2/2 · step 1/2 · about 1 s left"


def test_the_note_says_why_a_photo_was_scaled():
    assert pagelogic.scaled_note((300, 200), (300, 200), 2048, None) == (
        "300×200 px, ready to dream.")
    assert pagelogic.scaled_note((4000, 3000), (2048, 1536), 2048, None) == (
        "Scaled from 4000×3000 to 2048×1536 (at most 2048 px on the longer side).")
    assert pagelogic.scaled_note((4000, 3000), (1257, 942), 2048, "WebGL") == (
        "Scaled from 4000×3000 to 1257×942 (the most this GPU's WebGL holds).")


def test_the_note_describes_the_dream_once_it_is_shown():
    assert pagelogic.dream_note((451, 300)) == (
        "The dream, 451×300 px: slide to compare it with your photo.")


def test_the_status_after_a_dream_says_how_long_and_how_it_differed():
    assert pagelogic.done_text(5.6, None, None, "WebGL") == (
        "Done in 6 s. Slide to compare, download it, or dream again on it.")
    assert pagelogic.done_text(12.2, "with tiles of 256 px", None, "WebGL") == (
        "Done in 12 s, with tiles of 256 px (the first try ran out of memory). Slide to "
        "compare, download it, or dream again on it.")
    assert pagelogic.done_text(3, None, "The WebGL backend failed. Switched to WebAssembly.",
                               "WebAssembly") == (
        "The WebGL backend failed. Switched to WebAssembly. Done on WebAssembly in 3 s. "
        "Slide to compare, download it, or dream again on it.")


def test_the_device_line_says_what_dreams_and_why():
    assert pagelogic.device_text("WebGL", "NVIDIA GeForce RTX 4070", True, False,
                                 "hardware WebGL", False) == "Running on WebGL (NVIDIA GeForce RTX 4070)."
    cpu = pagelogic.device_text("WebAssembly", "CPU, wasm SIMD", False, False, "no WebGL", False)
    assert cpu.startswith("Running on WebAssembly (CPU, wasm SIMD). No GPU in use: no WebGL.")
    software = pagelogic.device_text("WebGL", "SwiftShader", True, True, "forced", False)
    assert "software GPU adapter" in software and "(forced)" in software
    measured = pagelogic.device_text("WebGL", "Apple GPU", True, False,
                                     "the GPU's name is masked", True)
    assert measured.endswith(" Chosen because the GPU's name is masked.")


def test_the_device_is_said_in_a_short_phrase():
    assert pagelogic.device_phrase("WebGL", "NVIDIA GeForce RTX 4070", True, False) == (
        "Your GPU: NVIDIA GeForce RTX 4070 (WebGL)")
    assert pagelogic.device_phrase("WebAssembly", "CPU, wasm SIMD, threaded build, 2 threads",
                                   False, False) == "Your CPU (WebAssembly, 2 threads)"
    assert pagelogic.device_phrase(
        "WebAssembly", "CPU, wasm SIMD, no threads (page not cross-origin isolated)",
        False, False) == "Your CPU (WebAssembly)"
    assert pagelogic.device_phrase("WebGPU", "google swiftshader", True, True) == (
        "A software GPU (WebGPU): slower than your CPU")
    assert pagelogic.device_phrase("CPU", "CPU, plain JavaScript", False, False) == "Your CPU (CPU)"


def test_a_video_is_described_before_it_is_dreamt_with_an_estimate_from_the_last_pace():
    ok, text = pagelogic.video_plan("clip", 48, 2.0, 24.0, (320, 240), (40, 5), None)
    assert ok and text == ("clip: 48 frames (2.0 s at 24.0 fps), dreamt at 320×240; the time "
                           "it takes shows after the first frame.")
    # 0.5 s a step per megapixel: (40 + 5 x 47) steps of 0.0768 Mpx = 10.56 s.
    ok, text = pagelogic.video_plan("clip", 48, 2.0, 24.0, (320, 240), (40, 5), 0.5)
    assert ok and text.endswith(": about 10.6 s on this device.")
    ok, text = pagelogic.video_plan("long", 9000, 375.0, 24.0, (720, 405), (40, 5), 0.5)
    assert not ok and text == ("long has 9000 frames (6 min 15 s at 24.0 fps); at most 3600 "
                               "frames are dreamt at a time: trim it first.")
    assert pagelogic.video_plan("empty", 0, 0.0, 24.0, (2, 2), (1, 1), None) == (
        False, "empty has no video frames.")


def test_a_videos_time_left_counts_the_first_frame_apart():
    assert pagelogic.video_eta(1, 10, 8000.0, 0.0) == pytest.approx(9 * 2.0)  # a guess
    assert pagelogic.video_eta(5, 10, 8000.0, 4000.0) == pytest.approx(5 * 1.0)
    assert pagelogic.video_eta(10, 10, 8000.0, 9000.0) == 0.0
    assert [pagelogic.duration_text(s) for s in (2.04, 65, 7380)] == ["2.0 s", "1 min 5 s",
                                                                      "2 h 3 min"]


def test_a_finished_video_says_how_it_ended():
    assert pagelogic.video_done_text(48, 30.0, "mp4", "", False, False) == (
        "Done: 48 frames in 30.0 s, as MP4. Download the video below.")
    assert pagelogic.video_done_text(12, 9.0, "gif", " (no encoder)", True, False).startswith(
        "Stopped after 12 frames in 9.0 s, as GIF (no encoder).")
    assert pagelogic.video_done_text(20, 9.0, "webm", "", False, True).startswith(
        "The file was cut short: dreamt the 20 frames that decode. Done: 20 frames")


class FakeJsError(Exception):
    """MicroPython's JsException: (proxy, name, message)."""


@pytest.mark.parametrize("error, name", [
    (FakeJsError(None, "NotAllowedError", "Permission denied"), "NotAllowedError"),
    (RuntimeError("NotFoundError: Requested device not found"), "NotFoundError"),
    (RuntimeError("something else: broke"), ""),
])
def test_a_js_errors_name_is_read_from_either_interpreter(error, name):
    assert pagelogic.error_name(error) == name


def test_each_camera_failure_has_its_sentence():
    assert pagelogic.camera_problem("NotAllowedError", "x").startswith(
        "The camera was not allowed")
    assert pagelogic.camera_problem("NotFoundError", "x") == "No camera was found on this device."
    assert "another application" in pagelogic.camera_problem("NotReadableError", "x")
    assert "https or localhost" in pagelogic.camera_problem("NoMediaDevices", "x")
    assert pagelogic.camera_problem("TypeError", "bad constraint") == (
        "The camera could not start: bad constraint.")
