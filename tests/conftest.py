"""Shared fixtures: the repository, the built site on a local static server, and Chromium.

Everything is real: the committed model, the site as `scripts/build_site.py` builds it,
served by Python's plain static server, in Debian's Chromium driven by Playwright.
"""

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from serving import CHROMIUM, CHROMIUM_ARGS, launch, serve  # noqa: F401  (tests import them)

REPO = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
# Tests must not depend on the network: any attempt to use a proxy-aware client fails fast.
OFFLINE_ENV = {"HTTPS_PROXY": "http://127.0.0.1:9", "HTTP_PROXY": "http://127.0.0.1:9"}


def run_export(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run `python converter/export.py ARGS` as a user would, offline."""
    return subprocess.run(
        [PYTHON, "converter/export.py", *args], cwd=REPO, capture_output=True, text=True,
        env={**os.environ, **OFFLINE_ENV, **(env or {})}, timeout=600, check=False,
    )


@pytest.fixture(scope="session")
def site(tmp_path_factory) -> Path:
    """The static site, built by the real build script into a fresh folder."""
    out = tmp_path_factory.mktemp("site") / "dist"
    subprocess.run([PYTHON, "scripts/build_site.py", str(out)], cwd=REPO, check=True)
    return out


@pytest.fixture(scope="session")
def site_url(site) -> str:
    """Base URL of the built site on a plain static server."""
    server, url = serve(site)
    yield url
    server.shutdown()


@pytest.fixture(scope="session")
def playwright_driver():
    """Playwright, once for the whole session: its sync API refuses to start a second
    instance while one runs ("using Playwright Sync API inside the asyncio loop"), so every
    browser of the session is launched from this one."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        yield playwright


@pytest.fixture(scope="session")
def browser(playwright_driver):
    """Debian's Chromium, headless, driven by Playwright."""
    browser = launch(playwright_driver)
    yield browser
    browser.close()


@pytest.fixture(scope="session")
def gpu_browser(playwright_driver):
    """Chromium with its (software) WebGPU adapter exposed, as on a visitor's machine with
    one: every backend can start in it."""
    browser = launch(playwright_driver, webgpu=True)
    yield browser
    browser.close()


def watch(page: object) -> object:
    """Record `page`'s console errors (its frames' too) and uncaught exceptions in
    `page.console_errors`, and every URL it requests in `page.requests`."""
    page.console_errors = []
    page.requests = []
    page.on("console", lambda m: m.type == "error" and page.console_errors.append(m.text))
    page.on("pageerror", lambda e: page.console_errors.append(str(e)))
    page.on("request", lambda r: page.requests.append(r.url))
    return page


@contextmanager
def open_page(browser: object, **context_options: object) -> Iterator[object]:
    """A watched page (see `watch`) in a fresh context of `browser`, closed afterwards.

    For tests that need their own context (a phone's viewport) or browser (WebGPU): they
    check console errors as tests on the `page` fixture do.
    """
    context = browser.new_context(**context_options)
    try:
        yield watch(context.new_page())
    finally:
        context.close()


@pytest.fixture
def page(browser):
    """A fresh page that records console errors and every request it makes."""
    with open_page(browser) as page:
        yield page


def canvas_change(page) -> float:
    """Mean absolute difference (0-255) between the before and after canvases."""
    return page.evaluate("""() => {
      const read = (id) => { const c = document.getElementById(id);
        return c.getContext('2d').getImageData(0, 0, c.width, c.height).data; };
      const a = read('before'), b = read('after');
      let sum = 0; for (let i = 0; i < a.length; i++) sum += Math.abs(a[i] - b[i]);
      return sum / a.length * 4 / 3;
    }""")


# One engine step in the page from an image of the site, read back with `await data()`.
PAGE_STEP = """async ([url, options, dy, dx]) => {
  const { tf, engine } = window.dreamframe;
  const img = new Image(); img.src = url; await img.decode();
  const x = tf.tidy(() => tf.browser.fromPixels(img).toFloat().div(127.5).sub(1).expandDims(0));
  const [updated, gradient] = await engine.step(x, options, dy, dx);
  const out = { image: Array.from(await updated.data()),
                gradient: Array.from(await gradient.data()) };
  x.dispose(); updated.dispose(); gradient.dispose();
  return out;
}"""


def page_step(page: object, url: str, options: dict, shift: tuple) -> dict:
    """`engine.step` in the page from the site's image `url`: {image, gradient} as lists."""
    return page.evaluate(PAGE_STEP, [url, json.dumps(options), shift[0], shift[1]])
