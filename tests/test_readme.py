"""The README quotes only what was measured, and what the site really ships.

Hand-typed figures drifted from every measurement (a 50 ms WebGPU step that was a gradient
of zeros, tables no result file held). So measured figures live in blocks that
scripts/readme_figures.py writes from committed result files, and these tests keep it so:
the blocks are up to date, no measured-looking figure hides outside them, and the quoted
Content-Security-Policy is the one web/index.html carries.
"""

import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
README = REPO / "README.md"

# A number followed by a unit of time, size, a ratio, a percentage, or "cosine N".
FIGURE = re.compile(
    r"(?<![\w.])\d[\d,]*(?:\.\d+)?\s?(?:ms|s|seconds?|min|minutes?|KB|kB|MB|GB|KiB|MiB|GiB)\b"
    r"|(?<![\w.])\d[\d,]*(?:\.\d+)?\s?[x×](?![\w×])"
    r"|(?<![\w.])\d[\d,]*(?:\.\d+)?\s?%"
    r"|\bcosines?\s+(?:of\s+)?\d")

# Figures that are settings or limits, not measurements, each with the reason it may stand.
ALLOWED = {
    "4 GiB": "the wasm heap's hard limit (32-bit addresses), a fact of WebAssembly",
    "512 MB": "the margin below 4 GiB at which web/js/backends.js counts a failure as out of memory",
    "3.2 GB": "what tests/test_reliability.py fills the wasm heap with, a test setting",
    "40 MB": "how close to full the same test brings the heap, a test setting",
}


def prose(text: str) -> str:
    """README without generated blocks and fenced code blocks."""
    text = re.sub(r"<!-- figures:([\w-]+) -->.*?<!-- /figures:\1 -->", " ", text, flags=re.DOTALL)
    return re.sub(r"^```.*?^```", " ", text, flags=re.DOTALL | re.MULTILINE)


def test_generated_figures_are_up_to_date():
    result = subprocess.run([sys.executable, "scripts/readme_figures.py", "--check"], cwd=REPO,
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr


def test_no_measured_figure_outside_generated_blocks():
    found = [m.group(0) for m in FIGURE.finditer(prose(README.read_text()))]
    stray = [f for f in found if re.sub(r"\s+", " ", f) not in ALLOWED]
    assert stray == [], ("figures in README.md outside generated blocks: move them into a "
                         f"results file and a block (scripts/readme_figures.py): {stray}")


def test_the_figure_pattern_sees_what_it_must():
    caught = "took 51 ms; 2.1x slower; 43 s; 5.3 MB; 12 minutes; cosine 0.894; 99%"
    assert len(FIGURE.findall(caught)) == 7
    assert FIGURE.findall("a 1024x1024 photo, 10 steps, 1x1 convolutions, 2048 px") == []


def test_the_quoted_content_security_policy_is_the_shipped_one():
    html = (REPO / "web" / "index.html").read_text()
    shipped = re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', html)[1]
    quoted = re.search(r"Content-Security-Policy \(a `<meta>`\s+tag\): `([^`]+)`",
                       README.read_text())
    assert quoted, "README.md no longer quotes the Content-Security-Policy where expected"
    assert re.sub(r"\s+", " ", quoted[1]) == shipped
