"""Firefox and WebKit (Safari's engine) behind the same few calls, for the tests
(tests/test_engines.py) and the benchmark (bench/engines.py).

Debian's firefox-esr is driven through Marionette (PyPI's marionette-driver; no geckodriver)
and WebKitGTK's MiniBrowser through WebKitWebDriver (Selenium), on an Xvfb display of its
own. Playwright's own Firefox and WebKit downloads fail here (no internet beyond the package
registries), and Debian's builds are what a Linux visitor runs. Neither driver reports the
console, so the page records what went wrong itself (web/js/errors.js).
"""

import os
import subprocess
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

ERRORS = "return (window.wrappedJSObject || window).dreamframeErrors || ['no error hook']"
STATUS = "return document.getElementById('status').textContent"
# Runs `code` in the page itself (a blob: script, which the page's CSP allows): the drivers'
# own scripts run in a sandbox (Firefox's Xray wrappers) and cannot patch the page's objects.
IN_PAGE = """const s = document.createElement('script');
s.src = URL.createObjectURL(new Blob([arguments[0]], { type: 'text/javascript' }));
document.head.append(s);"""
# Milliseconds from navigation to the page's first dream frame (its performance mark), or null.
FIRST_FRAME = """const mark = performance.getEntriesByName('dreamframe:first-frame')[0];
return mark ? mark.startTime : null;"""

# How far the shown dream is from the photo: [mean absolute difference over RGB, 0-255,
# the dream's width, its height].
CHANGE = """const pixels = (id) => {
  const c = document.getElementById(id);
  return c.getContext('2d').getImageData(0, 0, c.width, c.height).data; };
const a = pixels('before'), b = pixels('after');
let sum = 0, n = 0;
for (let i = 0; i < a.length; i += 4) {
  for (let k = 0; k < 3; k++) sum += Math.abs(a[i + k] - b[i + k]);
  n += 3;
}
const after = document.getElementById('after');
return [sum / n, after.width, after.height];"""

MINIBROWSER = "/usr/lib/x86_64-linux-gnu/webkit2gtk-4.1/MiniBrowser"


class Engine:
    """One browser behind the same few calls: go to a URL, run a script, wait for one."""

    def __init__(self, name: str, driver: object, run: object, goto: object) -> None:
        self.name = name
        self.driver = driver
        self.run = run
        self.goto = goto

    def in_page(self, code: str) -> None:
        """Run `code` in the page's own context (see IN_PAGE)."""
        self.run(IN_PAGE, code)

    def wait(self, script: str, timeout: float, what: str) -> object:
        """The first truthy value of `script`, polled; a failure says what the page said."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = self.run(script)
            if value:
                return value
            time.sleep(0.25)
        raise AssertionError(f"{self.name}: no {what} within {timeout} s; status "
                             f"{self.run(STATUS)!r}, errors {self.run(ERRORS)}")

    def assert_no_errors(self) -> None:
        """Fail if the page recorded an error (web/js/errors.js)."""
        assert self.run(ERRORS) == [], f"{self.name}: the page recorded errors"


@contextmanager
def firefox() -> object:
    """Headless Firefox ESR through Marionette (no geckodriver needed)."""
    from marionette_driver.marionette import Marionette

    with tempfile.TemporaryDirectory() as scratch:
        client = Marionette(bin="/usr/bin/firefox-esr", headless=True,
                            gecko_log=str(Path(scratch) / "gecko.log"))
        client.start_session()
        version = client.session_capabilities.get("browserVersion")
        try:
            yield Engine(f"Firefox {version}", client,
                         lambda script, *args: client.execute_script(
                             script, script_args=list(args), new_sandbox=False),
                         client.navigate)
        finally:
            client.cleanup()


@contextmanager
def webkit() -> object:
    """WebKitGTK's MiniBrowser through WebKitWebDriver, on an Xvfb display of its own; Mesa's
    shader cache off, so that each run is a first visit."""
    from selenium import webdriver

    display = subprocess.Popen(["Xvfb", "-displayfd", "1", "-screen", "0", "1280x1024x24",
                                "-nolisten", "tcp"], stdout=subprocess.PIPE, text=True)
    number = display.stdout.readline().strip()
    options = webdriver.WebKitGTKOptions()
    options.binary_location = MINIBROWSER
    options.add_argument("--automation")
    env = {**os.environ, "DISPLAY": f":{number}", "MESA_SHADER_CACHE_DISABLE": "true"}
    service = webdriver.WebKitGTKService(executable_path="/usr/bin/WebKitWebDriver", env=env)
    driver = webdriver.WebKitGTK(options=options, service=service)
    version = driver.capabilities.get("browserVersion")
    try:
        yield Engine(f"WebKitGTK {version}", driver, driver.execute_script, driver.get)
    finally:
        driver.quit()
        display.terminate()
        display.wait(timeout=10)


ENGINES = {"firefox": firefox, "webkit": webkit}
