"""What a visitor waits for in Firefox and WebKit: `python -m bench.engines`.

The built page opened as a visitor opens it (`?sample=chelsea&autostart`: the cat sample,
the default dream) in Debian's Firefox ESR and WebKitGTK (scripts/engines.py), and in WebKit
once more with `?backend=webgl`, what it ran on before its backend was chosen by measurement
(WebKit masks the GPU's name). Per run: the backend and why, milliseconds from navigation to
the first dream frame (the page's own performance mark) and to the finished dream, and as
the correctness check from the same run, how far the dream moved the photo (mean absolute
difference, 0-255) with the page's recorded errors. Written to bench/results/engines.json;
the README's browser table reads it (scripts/readme_figures.py).
"""

import argparse
import datetime
import json
import tempfile
import time
from pathlib import Path

from scripts import REPO
from scripts.build_site import build
from scripts.engines import CHANGE, ENGINES, ERRORS, FIRST_FRAME
from scripts.serving import serve

RUNS = [("firefox", ""), ("webkit", ""), ("webkit", "&backend=webgl")]
DONE = """const s = document.getElementById('status').textContent;
return s.startsWith('Done') ? performance.now() : null;"""
BACKEND = "return [window.wrappedJSObject ? window.wrappedJSObject.dreamframe.backend.name " \
          ": window.dreamframe.backend.name, document.getElementById('backend').textContent]"


def measure(url: str, engine: str, extra: str, timeout: float) -> dict:
    """One visit in a fresh browser: backend, first frame and done (ms), change, errors."""
    with ENGINES[engine]() as browser:
        browser.goto(url + "index.html?sample=chelsea&autostart" + extra)
        done_ms = browser.wait(DONE, timeout, "finished dream")
        name, line = browser.run(BACKEND)
        return {"engine": browser.name, "url": "?sample=chelsea&autostart" + extra,
                "backend": name, "device_line": line,
                "first_frame_ms": browser.run(FIRST_FRAME), "done_ms": done_ms,
                "mean_abs_change_255": browser.run(CHANGE)[0], "errors": browser.run(ERRORS)}


def main(argv: list[str] | None = None) -> int:
    """Build the site, visit it in each engine, write bench/results/engines.json."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "engines.json")
    parser.add_argument("--timeout", type=float, default=400)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as scratch:
        site = Path(scratch) / "site"
        build(site)
        server, url = serve(site)
        try:
            runs = []
            for engine, extra in RUNS:
                print(f"{engine}{extra} ...", flush=True)
                start = time.monotonic()
                runs.append(measure(url, engine, extra, args.timeout))
                print(f"  {json.dumps(runs[-1])} ({time.monotonic() - start:.0f} s)", flush=True)
        finally:
            server.shutdown()
    result = {"date": datetime.date.today().isoformat(), "runs": runs}
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
