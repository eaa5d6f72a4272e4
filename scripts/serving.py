"""Serving the built site, and the browser that opens it: one place for tests, the benchmark,
the screenshot and `scripts/serve.sh`.

A plain static file server, as any static host is (the site needs nothing more), and Debian's
Chromium as Playwright drives it here (Playwright's own browser download needs the internet).
Standard library only, apart from Playwright where a browser is launched.
"""

import functools
import http.server
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-dev-shm-usage", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
]
WEBGPU_ARGS = ["--enable-unsafe-webgpu"]  # exposes Chromium's (software) WebGPU adapter
# A fake camera (a moving test pattern, 640x480) and its permission granted without asking.
CAMERA_ARGS = ["--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"]


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    """A plain static file server with the types a static host gives, minus the request log."""

    extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map,
                      ".wasm": "application/wasm", ".mjs": "text/javascript",
                      ".js": "text/javascript"}

    def log_message(self, *args: object) -> None:
        pass


def serve(directory: Path, port: int = 0) -> tuple[http.server.ThreadingHTTPServer, str]:
    """Serve `directory` on loopback (a free port by default); returns the server and its URL."""
    handler = functools.partial(QuietHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/"


@contextmanager
def temporary_site() -> Iterator[str]:
    """Build the site into a scratch folder and serve it on loopback; yields its base URL."""
    from scripts.build_site import build

    with tempfile.TemporaryDirectory() as scratch:
        site = Path(scratch) / "site"
        build(site)
        server, url = serve(site)
        try:
            yield url
        finally:
            server.shutdown()


def launch(playwright: object, webgpu: bool = False, camera: bool = False) -> object:
    """Debian's Chromium, headless; with `webgpu`, its WebGPU adapter exposed; with
    `camera`, Chromium's fake camera."""
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS + (
        WEBGPU_ARGS if webgpu else []) + (CAMERA_ARGS if camera else []))


def main(argv: list[str]) -> int:
    """`python scripts/serving.py DIR [PORT]`: serve DIR until interrupted."""
    directory, port = Path(argv[0]), int(argv[1]) if len(argv) > 1 else 8000
    server, url = serve(directory, port)
    print(f"== serving {directory} on {url} (Ctrl-C to stop)", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        server.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
