"""How coherent and how fast a dreamt video is: `python -m bench.video [--frames 200]`.

The test video (scripts/sample_video.py: a textured square gliding over a still photo) is
dreamt natively three ways in one run:

* `flow`: the engine's default (dreamengine/video.py): each frame starts from the previous
  dream carried along the optical flow;
* `blend`: the previous dream blended in where it was, without flow (DeepDreamVideo's
  frame blending);
* `still`: every frame dreamt on its own, a whole dream (what a photo gets).

Per way, over every frame: the flicker (mean |dream - previous dream read along the source's
flow|, 0-255: what the eye sees as flicker, motion taken out), the change (mean |dream -
source|, 0-255: is it still dreaming), the brightness drift (mean of the dream minus mean of
the source, in levels, the largest over the video and the last: DeepDreamAnim's "frames get
brighter and brighter"), and seconds a frame. `still` runs on the first `--still-frames`
frames only (a whole dream a frame).

Then the page: the built site in Chromium, the test video (with its sound) chosen in the
video panel and dreamt with the page's defaults on wasm and on WebGL (SwiftShader here), and
on wasm once more with `video_flow=off` (the page's coherence, side by side):
seconds for the first frame (a whole dream) and a later frame, with the correctness check
from the same run: the video made decodes (PyAV) to the source's frame count, size and sound,
how far the dream moved its frames from the source's, and its flicker measured as above
(after the video's H.264 compression, which the native rows do not go through). Written to
bench/results/video.json; the README and docs/video.md read it (scripts/readme_figures.py).
"""

import argparse
import datetime
import json
import os
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from scripts import REPO

WAYS = ("flow", "blend", "still")


def measure(ops: object, frames: list, way: str, objective: object, schedule: object,
            transforms: object, seed: int = 0, flicker_frames: int | None = None) -> dict:
    """Dream `frames` (uint8 RGB arrays) one `way`; the figures above, per frame and overall
    (the flicker over the first `flicker_frames` only, when given: it costs a flow a frame)."""
    import numpy as np

    from dreamengine import flow as flows
    from dreamengine.video import Coherence, VideoDreamer
    from native.tf_backend import finish, to_pixels, to_tensor

    coherence = Coherence(use_flow=way != "blend")
    dreamer = VideoDreamer(ops, objective, schedule, transforms=transforms,
                           coherence=coherence, seed=seed)
    flicker, change, drift = [], [], []
    previous = previous_source = None
    began = time.monotonic()
    for index, pixels in enumerate(frames):
        source = to_tensor(pixels)
        if way == "still":
            dreamer.close()  # forget the previous frame: a whole dream again
        dreamt = to_tensor(to_pixels(finish(dreamer.dream(source))))  # what the file holds
        if previous is not None and (flicker_frames is None or index < flicker_frames):
            flow = flows.optical_flow(ops, source, previous_source)
            carried = ops.warp(previous, flow)
            flicker.append(float(np.abs(np.asarray(dreamt) - np.asarray(carried)).mean()))
        change.append(float(np.abs(np.asarray(dreamt) - np.asarray(source)).mean()))
        drift.append(float(np.asarray(dreamt).mean() - np.asarray(source).mean()))
        previous, previous_source = dreamt, source
    seconds = time.monotonic() - began
    dreamer.close()
    to255 = 127.5  # [-1, 1] -> 0-255 levels
    return {"way": way, "frames": len(frames), "seconds_a_frame": seconds / len(frames),
            "flicker_255": float(np.mean(flicker)) * to255 if flicker else None,
            "change_255": float(np.mean(change)) * to255,
            "first_change_255": change[0] * to255,
            "drift_max_255": float(np.max(np.abs(drift))) * to255,
            "drift_last_255": drift[-1] * to255,
            "drift_255": [round(d * to255, 3) for d in drift]}


# Each frame's time as the page shows it (the progress line changes once a frame).
WATCH_FRAMES = """(() => {
  window.__frameTimes = [];
  const line = document.getElementById('progress-text');
  new MutationObserver(() => {
    if (line.textContent.startsWith('Frame ')) window.__frameTimes.push(performance.now());
  }).observe(line, { childList: true, characterData: true, subtree: true });
})()"""


def measure_page(url: str, clip: Path, backend: str, timeout: float, flow: bool = True) -> dict:
    """The clip dreamt in the page's video panel on `backend` (with the optical flow, or
    with `video_flow=off`, DeepDreamVideo's blending): timings and the check."""
    import io

    import av
    import numpy as np
    from playwright.sync_api import sync_playwright

    from scripts.serving import launch

    status = "document.getElementById('status').textContent"
    with sync_playwright() as playwright:
        browser = launch(playwright)
        page = browser.new_page()
        page.goto(url + f"index.html?backend={backend}" + ("" if flow else "&video_flow=off"))
        page.wait_for_function(f"() => window.dreamframe && {status}.startsWith('Ready')",
                               timeout=timeout * 1000)
        page.click("#video-box summary")
        page.set_input_files("#video-file", str(clip))
        page.wait_for_function(f"() => {status}.startsWith('Video loaded')",
                               timeout=timeout * 1000)
        page.evaluate(WATCH_FRAMES)
        start = page.evaluate("performance.now()")
        page.click("#video-start")
        page.wait_for_function(f"() => {status}.startsWith('Done')", timeout=timeout * 1000)
        times = page.evaluate("window.__frameTimes")
        name = page.evaluate("window.dreamframe.backend.name")
        with page.expect_download() as download:
            page.click("#video-download")
        made = Path(download.value.path()).read_bytes()
        browser.close()
    with av.open(str(clip)) as a, av.open(io.BytesIO(made)) as b:
        sources = [f.to_ndarray(format="rgb24") for f in a.decode(video=0)]
        dreams = [f.to_ndarray(format="rgb24") for f in b.decode(video=0)]
        audio = bool(b.streams.audio)
        size = [b.streams.video[0].codec_context.width, b.streams.video[0].codec_context.height]
    later = np.diff(times)
    from dreamengine import flow as flows
    from native.tf_backend import TfBackend, to_tensor

    ops = TfBackend(None, {"outputs": []})  # flow and warp need no network
    flicker = []
    for i in range(1, min(len(dreams), len(sources))):
        motion = flows.optical_flow(ops, to_tensor(sources[i]), to_tensor(sources[i - 1]))
        carried = np.asarray(ops.warp(to_tensor(dreams[i - 1]), motion))
        flicker.append(float(np.abs(np.asarray(to_tensor(dreams[i])) - carried).mean()) * 127.5)
    return {"backend": name, "flow": flow, "flicker_255": float(np.mean(flicker)),
            "frames": len(dreams), "source_frames": len(sources),
            "size": size, "audio": audio, "first_frame_s": (times[0] - start) / 1000.0,
            "later_frame_s": float(np.median(later)) / 1000.0,
            "change_255": float(np.mean([np.abs(d.astype(float) - s).mean()
                                         for d, s in zip(dreams, sources, strict=False)]))}


def main(argv: list[str] | None = None) -> int:
    """Dream the test video each way, write bench/results/video.json."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "video.json")
    parser.add_argument("--frames", type=int, default=200)
    parser.add_argument("--still-frames", type=int, default=24)
    parser.add_argument("--width", type=int, default=192)
    parser.add_argument("--height", type=int, default=144)
    parser.add_argument("--page-frames", type=int, default=24)
    parser.add_argument("--timeout", type=float, default=600)
    args = parser.parse_args(argv)
    from converter.export import quiet_tensorflow

    quiet_tensorflow()
    from dreamengine import presets
    from dreamengine.plan import plan
    from native import tf_backend
    from scripts.sample_video import MovingSquare

    model, manifest = tf_backend.load_model()
    ops = tf_backend.TfBackend(model, manifest)
    objective, schedule, transforms, seed = plan(dict(presets.DEFAULT))
    video = MovingSquare(args.width, args.height)
    frames = [video.frame(i) for i in range(args.frames)]
    results = []
    for way in WAYS:
        subset = frames[:args.still_frames] if way == "still" else frames
        print(f"{way}: {len(subset)} frames ...", flush=True)
        results.append(measure(ops, subset, way, objective, schedule, transforms, seed))
        r = results[-1]
        print(f"  flicker {r['flicker_255']:.2f}, change {r['change_255']:.2f}, drift max "
              f"{r['drift_max_255']:.2f}, {r['seconds_a_frame']:.2f} s a frame", flush=True)
    import tempfile

    from scripts.build_site import build
    from scripts.sample_video import write
    from scripts.serving import serve

    page = []
    with tempfile.TemporaryDirectory() as scratch:
        site = Path(scratch) / "site"
        build(site)
        clip = write(Path(scratch) / "clip.mp4", frames=args.page_frames, width=args.width,
                     height=args.height)
        server, url = serve(site)
        try:
            # wasm twice, with and without the flow, side by side: the page's coherence.
            for backend, flow in (("wasm", True), ("wasm", False), ("webgl", True)):
                print(f"page, {backend}{'' if flow else ', no flow'} ...", flush=True)
                page.append(measure_page(url, clip, backend, args.timeout, flow))
                r = page[-1]
                print(f"  first frame {r['first_frame_s']:.1f} s, later {r['later_frame_s']:.2f}"
                      f" s, {r['frames']}/{r['source_frames']} frames, flicker "
                      f"{r['flicker_255']:.2f}, change {r['change_255']:.2f}", flush=True)
        finally:
            server.shutdown()
    out = {"date": datetime.date.today().isoformat(), "size": [args.width, args.height],
           "settings": presets.VIDEO, "native": results, "page": page}
    args.out.write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
