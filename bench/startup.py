"""Cold start of the built page: navigation to interpreter ready, model ready, first frame.

Each run uses a fresh browser context (empty cache) and `?sample=chelsea&autostart`, so the
first dream frame follows the page's own start-up with no human in between. Times come from
the page's performance marks (web/js/boot.js, pyscript_app/main.py, pyscript_app/app.py);
bytes are the transfer sizes of every response that finished before the first frame.
"""

import statistics

MARKS = ("dreamframe:interpreter-ready", "dreamframe:model-ready", "dreamframe:first-frame")

READ = """() => {
  const mark = (name) => performance.getEntriesByName(name)[0]?.startTime ?? null;
  const first = mark('dreamframe:first-frame');
  const entries = [...performance.getEntriesByType('navigation'),
                   ...performance.getEntriesByType('resource')];
  const bytes = entries.filter((e) => e.responseEnd <= first)
    .reduce((sum, e) => sum + (e.transferSize || e.encodedBodySize || 0), 0);
  return { interpreter: mark('dreamframe:interpreter-ready'),
           model: mark('dreamframe:model-ready'), first, bytes,
           requests: entries.length };
}"""


def measure(browser: object, base_url: str, interpreter: str, runs: int = 3) -> dict:
    """Median start-up figures (ms, bytes) over `runs` cold loads with `interpreter`."""
    samples = []
    for _ in range(runs):
        context = browser.new_context()
        page = context.new_page()
        page.goto(f"{base_url}index.html?backend=wasm&sample=chelsea&autostart"
                  f"&interpreter={interpreter}")
        page.wait_for_function(
            "() => performance.getEntriesByName('dreamframe:first-frame').length",
            timeout=120_000)
        samples.append(page.evaluate(READ))
        context.close()
    return {key: statistics.median(s[key] for s in samples)
            for key in ("interpreter", "model", "first", "bytes")} | {"runs": runs}
