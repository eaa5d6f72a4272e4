"""The README and docs/*.md quote only what was measured, and what the site really ships.

Hand-typed figures drifted from every measurement (a 50 ms WebGPU step that was a gradient
of zeros, tables no result file held). So measured figures live in blocks that
scripts/readme_figures.py writes from committed result files, and these tests keep it so,
in README.md and in every docs/*.md the README links to: the blocks are up to date, no
measured-looking figure hides outside them, and a quoted Content-Security-Policy is the one
web/index.html carries.
"""

import re
import subprocess
import sys
from pathlib import Path

import pytest

from scripts import readme_figures

REPO = Path(__file__).resolve().parent.parent
README = REPO / "README.md"
DOCUMENTS = readme_figures.documents()  # README.md and every docs/*.md, as the script sees them

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

# Files under docs/ whose figures are not checked, each with the reason.
FIGURES_EXEMPT = {
    "docs/inception_v3_notes.md": "the issue 14 prototype's dated lab notes, kept as they were "
                                  "measured then; the README and docs/models.md cite them as "
                                  "such and quote none of their figures outside blocks",
}


def name(path: Path) -> str:
    return str(path.relative_to(REPO))


def prose(text: str) -> str:
    """A document without generated blocks and fenced code blocks."""
    text = re.sub(r"<!-- figures:([\w-]+) -->.*?<!-- /figures:\1 -->", " ", text, flags=re.DOTALL)
    return re.sub(r"^```.*?^```", " ", text, flags=re.DOTALL | re.MULTILINE)


def test_generated_figures_are_up_to_date():
    result = subprocess.run([sys.executable, "scripts/readme_figures.py", "--check"], cwd=REPO,
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr


def test_the_docs_are_there_and_checked():
    names = {name(path) for path in DOCUMENTS}
    for doc in ("engine", "gpu", "models", "embedding", "benchmark"):
        assert f"docs/{doc}.md" in names
    assert set(FIGURES_EXEMPT) <= names  # an exemption for a file that is gone must go too


@pytest.mark.parametrize("path", [p for p in DOCUMENTS if name(p) not in FIGURES_EXEMPT],
                         ids=name)
def test_no_measured_figure_outside_generated_blocks(path):
    found = [m.group(0) for m in FIGURE.finditer(prose(path.read_text()))]
    stray = [f for f in found if re.sub(r"\s+", " ", f) not in ALLOWED]
    assert stray == [], (f"figures in {name(path)} outside generated blocks: move them into a "
                         f"results file and a block (scripts/readme_figures.py): {stray}")


LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")


def test_every_docs_file_is_reachable_from_the_readme():
    """Each docs/*.md is linked from README.md or from a docs file that is (design moved out
    of the README must not become a file nobody finds)."""
    reached, todo = {README}, [README]
    while todo:
        page = todo.pop()
        for target in LINK.findall(page.read_text()):
            linked = (page.parent / target.split("#")[0]).resolve()
            if linked in DOCUMENTS and linked not in reached:
                reached.add(linked)
                todo.append(linked)
    assert [name(p) for p in DOCUMENTS if p not in reached] == []


@pytest.mark.parametrize("path", DOCUMENTS, ids=name)
def test_relative_links_and_images_resolve(path):
    """Moving a section one folder down breaks its links silently; this says which."""
    broken = []
    for target in LINK.findall(prose(path.read_text())):
        if re.match(r"[a-z]+:|#", target):
            continue
        if not (path.parent / target.split("#")[0]).exists():
            broken.append(target)
    assert broken == [], f"{name(path)} links to missing files: {broken}"


def test_the_figure_pattern_sees_what_it_must():
    caught = "took 51 ms; 2.1x slower; 43 s; 5.3 MB; 12 minutes; cosine 0.894; 99%"
    assert len(FIGURE.findall(caught)) == 7
    assert FIGURE.findall("a 1024x1024 photo, 10 steps, 1x1 convolutions, 2048 px") == []


CSP_QUOTE = re.compile(r"Content-Security-Policy \(a `<meta>`\s+tag\): `([^`]+)`")


def test_the_quoted_content_security_policy_is_the_shipped_one():
    html = (REPO / "web" / "index.html").read_text()
    shipped = re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', html)[1]
    assert CSP_QUOTE.search(README.read_text()), (
        "README.md no longer quotes the Content-Security-Policy where expected (Hosting)")
    for path in DOCUMENTS:
        for quoted in CSP_QUOTE.findall(path.read_text()):
            assert re.sub(r"\s+", " ", quoted) == shipped, name(path)


def test_a_figures_block_is_in_exactly_one_known_place():
    every = "".join(f"<!-- figures:{n} -->x<!-- /figures:{n} -->" for n in readme_figures.RENDERERS)
    readme_figures.check_names({"README.md": every})  # the layout itself passes
    broken = {
        "unknown": {"README.md": every + "<!-- figures:nonesuch -->x<!-- /figures:nonesuch -->"},
        "twice": {"README.md": every, "docs/a.md": "<!-- figures:models -->x<!-- /figures:models -->"},
        "nowhere": {"README.md": "".join(f"<!-- figures:{n} -->x<!-- /figures:{n} -->"
                                         for n in readme_figures.RENDERERS if n != "models")},
        "unclosed": {"README.md": every + "<!-- figures:models -->"},
    }
    for why, texts in broken.items():
        with pytest.raises(readme_figures.BlockError):
            readme_figures.check_names(texts)
            pytest.fail(f"a block {why} was not refused")
