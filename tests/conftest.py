"""Shared fixtures: the repository, the built site on a local static server, and Chromium.

Everything is real: the committed model, the site as `scripts/build_site.py` builds it,
served by Python's plain static server, in Debian's Chromium driven by Playwright.
"""

import base64
import functools
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from playwright.sync_api import Error as PlaywrightError

from scripts.serving import CHROMIUM, CHROMIUM_ARGS, launch, serve  # noqa: F401  (tests import them)

REPO = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
# The page's own modules (pyscript_app/: settings, pagelogic, limits) are a folder, not a
# package, as the interpreter in the page sees them: tests of them import them by name.
# (The engine and the tools are packages, installed by scripts/setup.sh.)
sys.path.insert(0, str(REPO / "pyscript_app"))
# The page is ready: the engine is published and the status line says so.
READY = ("() => window.dreamframe && window.dreamframe.engine && "
         "document.getElementById('status').textContent.startsWith('Ready')")
STATUS = "document.getElementById('status').textContent"
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
def native_backend():
    """`native_backend(model="mobilenet_v2")` -> (ops, manifest): the engine's native
    TensorFlow backend over the committed export of `model` (`tf_backend.load_model`: the
    network rebuilt from its source weights and checked against the export's shards), made
    once per session and shared, with TensorFlow's traced gradients, by every test that only
    dreams with it. Tests of loading itself call `load_model`."""
    made = {}

    def backend(model: str = "mobilenet_v2") -> tuple:
        if model not in made:
            from native import tf_backend

            network, manifest = tf_backend.load_model(REPO / "models" / model / "manifest.json")
            made[model] = (tf_backend.TfBackend(network, manifest), manifest)
        return made[model]

    return backend


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


# Every Content-Security-Policy violation in any frame of a watched page, as the document
# itself hears of it (installed before any of its scripts run), reported to the test through
# a binding (not the console, which the page could have replaced).
CSP_WATCH = """(() => {
  const report = window.__dreamframeCspViolation;
  if (typeof report !== 'function') return;
  document.addEventListener('securitypolicyviolation', (event) => report(
    `${event.effectiveDirective} blocked ${event.blockedURI || '(inline)'} `
    + `at ${event.sourceFile || '?'}:${event.lineNumber}`), true);
})();"""


POLL_MS = 50


def watch(page: object) -> object:
    """Record every problem `page` (and every frame in it) shows, and every URL it requests.

    `page.console_errors`: console errors and uncaught exceptions (unhandled rejections
    included); `page.csp_violations`: Content-Security-Policy violations; `page.requests`:
    every URL requested. `check_page` fails on any of them that the test did not declare
    with `page.expect_console_errors(pattern, ...)`: `open_page` and the `page` fixture call
    it when the page is closed, so no test can let an error pass unseen.
    """
    page.console_errors = []
    page.csp_violations = []
    page.requests = []
    page.expected_errors = []

    def expect_console_errors(*patterns: str) -> None:
        """Declare errors this test provokes on purpose: each is a regular expression that
        must match (re.search) at least one recorded problem before the next check."""
        page.expected_errors.extend(re.compile(pattern) for pattern in patterns)

    page.expect_console_errors = expect_console_errors
    page.on("console", lambda m: m.type == "error" and page.console_errors.append(m.text))
    page.on("pageerror", lambda e: page.console_errors.append(f"uncaught {e.name}: {e.message}"))
    page.on("request", lambda r: page.requests.append(r.url))
    page.expose_binding("__dreamframeCspViolation",
                        lambda source, text: page.csp_violations.append(
                            f"Content Security Policy violation: {text} ({source['frame'].url})"))
    page.add_init_script(CSP_WATCH)
    # Conditions are polled every POLL_MS, not at every animation frame (Playwright's
    # default): waiting by frames makes an idle page draw 60 frames a second, which cost
    # the suite CPU it had no other use for than the wait itself.
    page.wait_for_function = functools.partial(page.wait_for_function, polling=POLL_MS)
    return page


def settle(page: object) -> None:
    """Let messages already on their way arrive: a round trip through the page's event loop,
    one task later (a CSP violation event is queued as a task after the refusal)."""
    if page.is_closed():
        return
    try:
        page.evaluate("() => new Promise((resolve) => setTimeout(resolve, 0))")
    except PlaywrightError:
        pass  # crashed, or navigating: what it logged before has arrived


def page_problems(page: object) -> list[str]:
    """What `page` showed that was not declared, and each declared pattern that never came:
    the problems `check_page` fails on. Forgets what it has looked at, expectations too."""
    settle(page)
    recorded = [*page.console_errors, *page.csp_violations]
    problems = [f"unexpected: {text}" for text in recorded
                if not any(pattern.search(text) for pattern in page.expected_errors)]
    problems += [f"expected but never seen: {pattern.pattern!r}"
                 for pattern in page.expected_errors
                 if not any(pattern.search(text) for text in recorded)]
    page.console_errors.clear()
    page.csp_violations.clear()
    page.expected_errors.clear()
    return problems


def check_page(page: object) -> None:
    """Fail if `page` logged a console error, an uncaught exception or a CSP violation that
    the test did not declare, or did not show one it declared (see `watch`)."""
    problems = page_problems(page)
    assert not problems, "the page's console:\n  " + "\n  ".join(problems)


def note_problems(error: BaseException, page: object) -> None:
    """Add what `page` showed to a test's own failure (as a note: the failure stays the
    test's), and forget it, so that it is not reported a second time."""
    problems = page_problems(page)
    if problems and isinstance(error, Exception):
        error.add_note("the page's console:\n  " + "\n  ".join(problems))


# The slowest test files, slowest first, as whole runs on the 2-core build machine measured
# them (December 2026; the first takes about a sixth of a run, the last under a minute).
# scripts/test.sh hands each of its two workers whole files in collection order (`--dist
# loadfile --no-loadscope-reorder`): the long files start at once, and the short ones, which
# come after in their own order, fill in at the end, so both workers finish together instead
# of one idling while the other runs a long file last.
SLOWEST_FIRST = ("test_converter.py", "test_gpu_backends.py", "test_reliability.py",
                 "test_prepare.py", "test_video_page.py", "test_engine_browser.py",
                 "test_video_native.py", "test_cli_promises.py",
                 "test_inception.py", "test_models_page.py", "test_zoom_native.py",
                 "test_engines.py", "test_app.py", "test_features.py", "test_page_promises.py",
                 "test_features_page.py", "test_gpu_kernels.py", "test_guide_native.py",
                 "test_media_page.py")


def pytest_collection_modifyitems(items: list) -> None:
    """Collect the files in SLOWEST_FIRST's order, every test of a file in its own order."""
    rank = {name: index for index, name in enumerate(SLOWEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))


# The test being run, and the watched pages each test looks at (see `pytest_runtest_call`).
RUNNING = {"item": None}
PAGES = pytest.StashKey[list]()


def checked_with_test(page: object, item: object = None) -> object:
    """Check `page` when the running test (or `item`) returns, as part of the test itself:
    a problem then fails the test rather than erroring in a fixture's teardown. A page that
    several tests share (a module's fixture) is checked with each test that asks for it."""
    item = item or RUNNING["item"]
    if item is not None:
        pages = item.stash.setdefault(PAGES, [])
        if page not in pages:
            pages.append(page)
    return page


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item, nextitem):
    RUNNING["item"] = item
    try:
        return (yield)
    finally:
        RUNNING["item"] = None


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    """After the test's body: every page it looked at is checked (`check_page`)."""
    pages = [page for page in item.stash.get(PAGES, []) if not page.is_closed()]
    try:
        result = yield
    except BaseException as error:
        for page in pages:
            note_problems(error, page)
        raise
    for page in pages:
        check_page(page)
    return result


# A GPU page whose engine is loaded and whose own first preparation of the GPU is over
# (pyscript_app/prepare.py compiles in the background, under tfjs's global flags and into
# its program cache: a test that runs kernels or counts programs meanwhile sees both).
GPU_PREPARED = ("() => window.dreamframe && window.dreamframe.engine && "
                "window.dreamframe.prepared !== undefined")


# The offline copy a first visit makes in the background (web/sw.js, registered once the
# model is ready: every file of the build fetched and hashed, about a CPU-second a page, and
# the wasm threads it brings from the next load on) is tested where it is the subject, by
# tests that pass `service_workers="allow"` (test_offline.py, the threads tests). Every other
# page opens as in a browser that refuses service workers (as private windows may), which
# the page takes in its stride (web/js/boot.js `isolate`: no threads, nothing said).
SERVICE_WORKERS = "block"


@contextmanager
def watched_page(context: object) -> Iterator[object]:
    """A new watched page (see `watch`) of `context`, checked (`check_page`) and closed
    afterwards, and checked when the test returns if it is still open then (a fixture's
    page). Should the test fail first, its failure carries the page's problems as a note
    instead."""
    page = checked_with_test(watch(context.new_page()))
    try:
        try:
            yield page
        except BaseException as error:
            note_problems(error, page)
            raise
        check_page(page)
    finally:
        page.close()


@contextmanager
def open_page(browser: object, **context_options: object) -> Iterator[object]:
    """A watched page (`watched_page`) in a fresh context of `browser`, closed with it.
    Service workers are refused unless `service_workers="allow"` (SERVICE_WORKERS)."""
    context = browser.new_context(**{"service_workers": SERVICE_WORKERS, **context_options})
    try:
        with watched_page(context) as page:
            yield page
    finally:
        context.close()


@pytest.fixture(scope="module")
def module_context(browser):
    """The browser context of a test module's `page`s: each page is new and closed after
    its test, in a context whose HTTP cache and compiled scripts carry over from one to the
    next (about a CPU-second less for each page's start). Nothing else of a page outlives
    it: service workers are refused (SERVICE_WORKERS), and the page stores nothing but its
    backend measurement for masked GPUs (web/js/backends.js), which only WebKit's and
    Firefox's names call for. A test that needs a context of its own opens one
    (`open_page`)."""
    context = browser.new_context(service_workers=SERVICE_WORKERS)
    yield context
    context.close()


@pytest.fixture(scope="module")
def gpu_module_context(gpu_browser):
    """`module_context` in the WebGPU browser: for the GPU pages of a module
    (`watched_page(gpu_module_context)`)."""
    context = gpu_browser.new_context(service_workers=SERVICE_WORKERS)
    yield context
    context.close()


@pytest.fixture
def page(module_context):
    """A new watched page: the test fails on any console error, uncaught exception or CSP
    violation it did not declare (see `watch`)."""
    with watched_page(module_context) as page:
        yield page


def bounded(page: object, seconds: float, what: str, script: str, arg: object = None) -> object:
    """`page.evaluate(script, arg)` for a script that waits on the GPU or a dream: it fails
    after `seconds` with an error naming `what`, rather than hanging the suite (a lost GPU
    or a dead worker never settles its promises). `script` is a function expression."""
    wrapped = ("async ({ arg, seconds, what }) => {\n"
               "  let timer;\n"
               "  const limit = new Promise((_, reject) => { timer = setTimeout(() => reject(\n"
               "    new Error(`no answer after ${seconds} s: ${what}`)), seconds * 1000); });\n"
               f"  try {{ return await Promise.race([({script})(arg), limit]); }}\n"
               "  finally { clearTimeout(timer); }\n"
               "}")
    return page.evaluate(wrapped, {"arg": arg, "seconds": seconds, "what": what})


def canvas_change(page) -> float:
    """Mean absolute difference (0-255) between the before and after canvases."""
    return page.evaluate("""() => {
      const read = (id) => { const c = document.getElementById(id);
        return c.getContext('2d').getImageData(0, 0, c.width, c.height).data; };
      const a = read('before'), b = read('after');
      let sum = 0; for (let i = 0; i < a.length; i++) sum += Math.abs(a[i] - b[i]);
      return sum / a.length * 4 / 3;
    }""")


# A float32 array as base64 (its bytes), for the test to decode: far smaller and faster to
# send out of the page than a JSON list of numbers.
FLOAT32_B64 = """(values) => {
  const bytes = new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
  let text = '';
  for (let i = 0; i < bytes.length; i += 0x8000) {
    text += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
  }
  return btoa(text);
}"""

# One engine step in the page from an image of the site, read back with `await data()`.
PAGE_STEP = f"""async ([url, options, dy, dx]) => {{
  const {{ tf, engine }} = window.dreamframe;
  const b64 = {FLOAT32_B64};
  const img = new Image(); img.src = url; await img.decode();
  const x = window.dreamframe.images.toTensor(tf, img);
  const [updated, gradient] = await engine.step(x, options, dy, dx);
  const out = {{ image: b64(await updated.data()), gradient: b64(await gradient.data()) }};
  x.dispose(); updated.dispose(); gradient.dispose();
  return out;
}}"""


def float32s(text: str) -> np.ndarray:
    """The float32 values FLOAT32_B64 sent."""
    return np.frombuffer(base64.b64decode(text), dtype=np.float32)


def page_step(page: object, url: str, options: dict, shift: tuple) -> dict:
    """`engine.step` in the page from the site's image `url`: {image, gradient}, each the
    tensor's values as a flat array (float64, holding the float32 values exactly)."""
    out = bounded(page, 180, f"one engine step of {url}", PAGE_STEP,
                  [url, json.dumps(options), shift[0], shift[1]])
    return {key: float32s(text).astype(np.float64) for key, text in out.items()}
