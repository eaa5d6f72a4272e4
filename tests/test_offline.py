"""Offline after the first visit: web/sw.js keeps one whole build of the site, versioned by
scripts/build_site.py, and a visitor who comes back without a network still dreams.

Each test serves the site on its own server, which it stops to cut the network (as well as
telling the browser it is offline), and hosts it under a sub-path, as a blog would.
"""

import functools
import http.server
import json
import re
import shutil
import threading

from conftest import READY, REPO, STATUS, canvas_change, open_page, serve

from scripts.build_site import build
from scripts.serving import QuietHandler

# Resolves once a worker is active and controls this page (it claims the first visit too).
CONTROLLED = """async () => {
  const registration = await navigator.serviceWorker.ready;
  if (!navigator.serviceWorker.controller) {
    await new Promise((resolve) => navigator.serviceWorker.addEventListener(
      'controllerchange', resolve, { once: true }));
  }
  return registration.scope;
}"""
# Every cache of this origin: {name: [url, ...]}.
CACHES = """async () => {
  const out = {};
  for (const name of await caches.keys()) {
    out[name] = (await (await caches.open(name)).keys()).map((request) => request.url).sort();
  }
  return out;
}"""
# Asks the browser to look for a new sw.js and follows the worker it finds to the end of its
# installation: 'activated', or 'redundant' when its install failed.
UPDATE = """async () => {
  const registration = await navigator.serviceWorker.getRegistration();
  const found = new Promise((resolve) => registration.addEventListener(
    'updatefound', () => resolve(registration.installing), { once: true }));
  await registration.update();
  const worker = await found;
  return new Promise((resolve) => {
    const settled = () => ['activated', 'redundant'].includes(worker.state);
    if (settled()) resolve(worker.state);
    worker.addEventListener('statechange', () => settled() && resolve(worker.state));
  });
}"""
# Waits (bounded) until cache `name` holds every URL in `wanted`: the worker keeps a file the
# page fetched after answering it, and a cache tells no one when it changes.
HOLDS = """async ([name, wanted]) => {
  for (const deadline = Date.now() + 60000; Date.now() < deadline;) {
    const have = (await (await caches.open(name)).keys()).map((request) => request.url);
    if (wanted.every((url) => have.includes(url))) return true;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return false;
}"""
CACHED_TEXT = """async (url) => {
  const response = await caches.match(url);
  return response ? response.text() : null;
}"""


def described(site) -> dict:
    """The build as the built sw.js carries it: {version, files, lazy}."""
    return json.loads(re.search(r"^const BUILD = (\{.*?^\});$", (site / "sw.js").read_text(),
                                re.MULTILINE | re.DOTALL)[1])


def stop(server) -> None:
    """Stop serving and close the socket: connections are refused, as with no network."""
    server.shutdown()
    server.server_close()


def go_offline(page, server) -> None:
    """No network: the server stopped, the browser offline, and its HTTP cache emptied (a
    browser may evict it at any time), so that only the worker's cache can answer."""
    stop(server)
    page.context.set_offline(True)
    page.context.new_cdp_session(page).send("Network.clearBrowserCache")


def test_a_visitor_who_comes_back_offline_still_dreams(browser, site, tmp_path):
    server, url = serve(site.parent)
    base = f"{url}{site.name}/"  # under a sub-path of the host
    build_info = described(site)
    lazy = set(build_info["lazy"])
    classic = {p for p in lazy if p.startswith("models/inception_v3/")}
    assert classic and "models/inception_v3/manifest.json" not in lazy
    assert not lazy & {"index.html", "models/mobilenet_v2/group1-shard1of1.bin",
                       "vendor/micropython/micropython.wasm",
                       "vendor/tfjs/tfjs-backend-wasm-threaded-simd.wasm"}
    blog = tmp_path / "blog"
    blog.mkdir()
    (blog / "index.html").write_text(
        '<!doctype html><meta charset="utf-8"><title>A blog</title>'
        '<link rel="icon" href="data:,"><script src="listen.js"></script>'
        f'<iframe id="dream" src="{base}index.html?embed&backend=wasm" width="800" '
        'height="700" sandbox="allow-scripts allow-same-origin" title="Dreamframe"></iframe>')
    (blog / "listen.js").write_text(
        "window.received = []; window.addEventListener('message', (event) => {"
        " if (event.data && event.data.source === 'dreamframe')"
        " window.received.push(event.data.type); });")
    blog_server, blog_url = serve(blog)  # another origin, and stays up
    try:
        with open_page(browser, service_workers="allow") as page:
            # The first visit: the worker installs and keeps the site.
            page.goto(base + "index.html?backend=wasm")
            page.wait_for_function(READY, timeout=90_000)
            assert page.evaluate(CONTROLLED) == base
            name = f"dreamframe {base} {build_info['version']}"
            cached = page.evaluate(CACHES)
            assert list(cached) == [name]
            assert cached[name] == sorted(base + p for p in build_info["files"] if p not in lazy)
            # The classic model, once the visitor has fetched it, is kept too.
            page.select_option("#model", "inception_v3")
            page.wait_for_function(f"() => {STATUS}.startsWith('Model ready')", timeout=120_000)
            assert page.evaluate(HOLDS, [name, sorted(base + p for p in classic)])

            go_offline(page, server)
            page.goto(base + "index.html?backend=wasm&sample=chelsea&octaves=1&steps=2"
                      "&autostart")
            page.wait_for_function(f"() => {STATUS}.startsWith('Done')", timeout=120_000)
            assert canvas_change(page) > 1.0  # the dream changed the photo
            state = page.evaluate("""() => ({
              isolated: self.crossOriginIsolated,
              controlled: Boolean(navigator.serviceWorker.controller),
              wasm: performance.getEntriesByType('resource').map((e) => e.name)
                .filter((n) => n.endsWith('.wasm') && n.includes('tfjs-backend-wasm')),
              models: [...document.querySelectorAll('#model option')].map((o) => o.value),
            })""")
            # Cached responses carry COOP/COEP too: the threaded build runs offline.
            assert state["isolated"] and state["controlled"], state
            assert state["wasm"] == [base + "vendor/tfjs/tfjs-backend-wasm-threaded-simd.wasm"]
            assert state["models"] == ["mobilenet_v2", "inception_v3"]
            page.select_option("#model", "inception_v3")
            page.wait_for_function(f"() => {STATUS}.startsWith('Model ready')", timeout=120_000)
            assert page.evaluate("window.dreamframe.loaded.manifest.model.name") == "inception_v3"

            # Embedded in a blog (same site, other origin) the site still comes from the cache.
            page.context.set_offline(False)
            page.goto(blog_url + "index.html")
            page.wait_for_function("() => window.received.includes('ready')", timeout=90_000)
            frame = page.frame_locator("#dream")
            assert frame.locator("body.embed").count() == 1
            assert page.frames[1].evaluate("Boolean(navigator.serviceWorker.controller)")
            assert page.console_errors == []
    finally:
        stop(server)
        blog_server.shutdown()


class RecordingHandler(QuietHandler):
    """The plain static server, noting the path of every GET it answers."""

    def do_GET(self) -> None:  # noqa: D102, N802
        self.server.paths.append(self.path)
        super().do_GET()


def test_a_new_build_replaces_the_cached_one_whole(browser, tmp_path):
    source = tmp_path / "source"
    shutil.copytree(REPO / "web", source / "web")
    for folder in ("pyscript_app", "dreamengine"):
        shutil.copytree(REPO / folder, source / folder,
                        ignore=shutil.ignore_patterns("__pycache__"))
    (source / "models").symlink_to(REPO / "models")
    site = tmp_path / "host" / "app"
    build(site, source)
    first = described(site)
    old_css = tmp_path / "old-styles.css"
    shutil.copy2(site / "styles.css", old_css)

    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(RecordingHandler, directory=str(site.parent)))
    server.paths = []
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}/app/"
    try:
        with open_page(browser, service_workers="allow") as page:
            page.goto(base + "index.html?backend=wasm")
            page.wait_for_function(READY, timeout=90_000)
            page.evaluate(CONTROLLED)
            old_name = f"dreamframe {base} {first['version']}"
            assert list(page.evaluate(CACHES)) == [old_name]

            # The second build: one file changed.
            with (source / "web" / "styles.css").open("a") as css:
                css.write("\n/* the second build */\n")
            build(site, source)
            second = described(site)
            assert second["version"] != first["version"]
            assert [p for p in first["files"] if first["files"][p] != second["files"][p]] == [
                "styles.css"]
            new_name = f"dreamframe {base} {second['version']}"

            # Half deployed (the new sw.js, an old styles.css): the install fails whole and
            # the old version keeps serving.
            shutil.copy2(old_css, site / "styles.css")
            assert page.evaluate(UPDATE) == "redundant"
            assert list(page.evaluate(CACHES)) == [old_name]
            assert "\n/* the second build */" not in page.evaluate(CACHED_TEXT, base + "styles.css")

            # Fully deployed: the new version installs, fetching only what changed, and
            # replaces the old one.
            shutil.copy2(source / "web" / "styles.css", site / "styles.css")
            server.paths.clear()
            assert page.evaluate(UPDATE) == "activated"
            assert sorted(set(server.paths)) == ["/app/styles.css", "/app/sw.js"]
            cached = page.evaluate(CACHES)
            assert list(cached) == [new_name]
            assert cached[new_name] == sorted(
                base + p for p in second["files"] if p not in second["lazy"])
            assert page.evaluate(CACHED_TEXT, base + "styles.css") == (
                source / "web" / "styles.css").read_text()

            # And offline, the page is the new build's.
            go_offline(page, server)
            page.goto(base + "index.html?backend=wasm")
            page.wait_for_function(READY, timeout=90_000)
            assert page.evaluate("fetch('styles.css').then((r) => r.text())").endswith(
                "/* the second build */\n")
            assert page.console_errors == []
    finally:
        stop(server)
