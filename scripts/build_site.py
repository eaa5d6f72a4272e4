"""Assemble the self-contained static site: `python scripts/build_site.py [OUT]` (default dist/).

The site is the page (web/), the Python that runs in it (pyscript_app/), the model (models/)
and the runtime copied from the pinned npm packages in node_modules/ into vendor/. Every URL in
it is relative, so the folder works under any sub-path of any static host, and nothing is
fetched from another origin. Standard library only: serving needs no TensorFlow.

The output folder is replaced whole, so only a folder this script built (it carries a
MARKER file) or an empty or missing one is accepted: `build_site.py ..` must not delete the
parent. Serving it is `scripts/serving.py`'s.

The lists the page's JavaScript shares with its Python are written from their Python homes
into site.json (`write_shared`), so neither side types them again.

Last, the service worker (web/sw.js) is given the build: its version and every file's hash,
so that a visitor's offline copy is always one whole build (see the comment in web/sw.js).
"""

import base64
import fnmatch
import hashlib
import json
import runpy
import shutil
import sys
from pathlib import Path

from dreamengine import presets
from scripts import REPO

NODE_MODULES = REPO / "node_modules"

# (npm package folder, files to copy, destination under vendor/)
RUNTIME = [
    ("@tensorflow/tfjs/dist", ["tf.min.js"], "tfjs"),
    ("@tensorflow/tfjs-backend-wasm/dist",
     ["tf-backend-wasm.min.js", "tfjs-backend-wasm.wasm", "tfjs-backend-wasm-simd.wasm",
      "tfjs-backend-wasm-threaded-simd.wasm"], "tfjs"),
    ("@tensorflow/tfjs-backend-webgpu/dist", ["tf-backend-webgpu.min.js"], "tfjs"),
    # PyScript's core and its lazily imported chunks (source maps left out).
    ("@pyscript/core/dist", ["*.js", "core.css"], "pyscript"),
    ("pyodide", ["pyodide.mjs", "pyodide.asm.mjs", "pyodide.asm.wasm", "python_stdlib.zip",
                 "pyodide-lock.json"], "pyodide"),
    ("@micropython/micropython-webassembly-pyscript", ["micropython.mjs", "micropython.wasm"],
     "micropython"),
    # Video (web/js/video.js, media.js): mediabunny reads and writes MP4/WebM over WebCodecs
    # (its one-file ESM bundle: no imports; its workers are blob: URLs it makes itself), and
    # gifenc writes the animated GIF fallback.
    ("mediabunny/dist/bundles", ["mediabunny.min.mjs"], "video"),
    ("gifenc/dist", ["gifenc.esm.js"], "video"),
]


def copy_runtime(out: Path) -> None:
    """Copy the runtime files from node_modules, failing clearly when `npm ci` was not run."""
    for package, files, dest in RUNTIME:
        target = out / "vendor" / dest
        target.mkdir(parents=True, exist_ok=True)
        for pattern in files:
            matches = sorted((NODE_MODULES / package).glob(pattern))
            if not matches:
                raise SystemExit(f"error: {package}/{pattern} is missing; run `npm ci` first")
            for source in matches:
                shutil.copy2(source, target / source.name)


# PyScript configs, one per interpreter; the page picks one (web/js/boot.js).
INTERPRETERS = {"mpy": "./vendor/micropython/micropython.mjs",
                "py": "./vendor/pyodide/pyodide.mjs"}


def write_pyscript_configs(out: Path) -> None:
    """pyscript-mpy.json and pyscript-py.json: the interpreter and every app module.

    The module list is generated, so a new file in pyscript_app/ cannot be forgotten; each
    lands at the interpreter's top level, where `import dreamengine` finds it.
    """
    app = out / "pyscript_app"
    files = {f"./pyscript_app/{p.relative_to(app).as_posix()}": f"./{p.relative_to(app).as_posix()}"
             for p in sorted(app.rglob("*.py")) if p.name != "main.py"}
    for kind, interpreter in INTERPRETERS.items():
        config = {"interpreter": interpreter, "files": files}
        (out / f"pyscript-{kind}.json").write_text(json.dumps(config, indent=2) + "\n")


# What web/js reads of the Python side (a JSON module: web/js/model.js, web/js/backends.js).
SHARED = "site.json"


def write_shared(out: Path, source: Path = REPO) -> dict:
    """out/site.json: the models the page offers, in order, the first the default
    (`dreamengine.presets.MODELS`), and the tfjs backends a URL may name, in the order the
    page falls back through them (`BACKENDS` of `source`'s pyscript_app/settings.py, read as
    the page's own module: pyscript_app/ is no package)."""
    settings = runpy.run_path(str(source / "pyscript_app" / "settings.py"))
    shared = {"models": list(presets.MODELS), "backends": list(settings["BACKENDS"])}
    (out / SHARED).write_text(json.dumps(shared, indent=1) + "\n")
    return shared


MARKER = ".dreamframe-site"
WORKER = "sw.js"
# The line of web/sw.js that the build replaces with the build's description.
WORKER_PLACEHOLDER = "const BUILD = null;"
# Kept offline only once the page has fetched them: large, and not needed for the default
# dream (the classic model's graph and weights; Pyodide, used only with ?interpreter=pyodide).
# Its manifest stays in the precache: the model menu reads every model's size from it.
LAZY = ("models/inception_v3/model.json", "models/inception_v3/*.bin", "vendor/pyodide/*")


def integrity(path: Path) -> str:
    """A file's SHA-256 as a subresource-integrity string, the form `fetch` checks."""
    digest = hashlib.sha256(path.read_bytes()).digest()
    return "sha256-" + base64.b64encode(digest).decode()


def write_worker(out: Path, source: Path = REPO) -> dict:
    """Write out/sw.js from web/sw.js with the build described in it, and return that.

    The version is a hash of every path and hash and of the worker's own code, so any
    changed, added or removed file changes sw.js's bytes (which is what makes browsers
    install the new worker) and names a new cache (a new worker never fills, or on failure
    deletes, the cache the running one serves from).
    """
    files = {}
    for path in sorted(out.rglob("*")):
        name = path.relative_to(out).as_posix()
        if path.is_file() and name not in (WORKER, MARKER):
            files[name] = integrity(path)
    template = (source / "web" / WORKER).read_text()
    listing = "".join(f"{name} {digest}\n" for name, digest in files.items()) + template
    described = {"version": hashlib.sha256(listing.encode()).hexdigest()[:16], "files": files,
                 "lazy": [n for n in files if any(fnmatch.fnmatchcase(n, p) for p in LAZY)]}
    if template.count(WORKER_PLACEHOLDER) != 1:
        raise SystemExit(f"error: web/{WORKER} must hold `{WORKER_PLACEHOLDER}` exactly once")
    (out / WORKER).write_text(template.replace(
        WORKER_PLACEHOLDER, f"const BUILD = {json.dumps(described, indent=1)};"))
    return described


def check_output(out: Path) -> None:
    """Refuse to replace anything but an empty folder or an earlier build of this script."""
    if not out.exists():
        return
    if not out.is_dir():
        raise SystemExit(f"error: {out} is not a folder; give a new or empty folder")
    if any(out.iterdir()) and not (out / MARKER).is_file():
        raise SystemExit(f"error: {out} is not empty and is not a site this script built "
                         f"(no {MARKER}); refusing to replace it")


def build(out: Path, source: Path = REPO) -> None:
    """Write the whole site into `out`, replacing an earlier build (see check_output).

    `source`: the tree holding web/, pyscript_app/, dreamengine/ and models/ (a test builds a
    changed copy);
    the runtime always comes from this repository's node_modules.
    """
    check_output(out)
    if out.exists():
        shutil.rmtree(out)
    shutil.copytree(source / "web", out)
    python = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(source / "pyscript_app", out / "pyscript_app", ignore=python)
    # The engine, a package of its own at the repository root, runs in the page beside the
    # page's modules (`import dreamengine` there as in native/).
    shutil.copytree(source / "dreamengine", out / "pyscript_app" / "dreamengine", ignore=python)
    shutil.copytree(source / "models", out / "models",
                    ignore=shutil.ignore_patterns(".*"))
    copy_runtime(out)
    write_pyscript_configs(out)
    write_shared(out, source)
    write_worker(out, source)
    (out / MARKER).write_text("built by scripts/build_site.py; replaced by its next build\n")


def main(argv: list[str]) -> int:
    """Build into argv[0] (default dist/) and say where."""
    out = Path(argv[0]) if argv else REPO / "dist"
    build(out)
    files = sum(1 for p in out.rglob("*") if p.is_file())
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    print(f"built {out} ({files} files, {size / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
