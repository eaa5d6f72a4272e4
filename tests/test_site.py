"""The site build: what it refuses to replace, and hosting under any sub-path."""

import json
import shutil
import subprocess

from conftest import PYTHON, REPO, serve


def build(out) -> subprocess.CompletedProcess:
    return subprocess.run([PYTHON, "scripts/build_site.py", str(out)], cwd=REPO,
                          capture_output=True, text=True, check=False)


def test_the_build_replaces_only_its_own_output(tmp_path):
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "notes.txt").write_text("keep me")
    refused = build(precious)
    assert refused.returncode != 0
    assert refused.stderr.strip().startswith("error: ")
    assert "not a site this script built" in refused.stderr
    assert (precious / "notes.txt").read_text() == "keep me"

    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    assert build(a_file).returncode != 0 and a_file.read_text() == "x"

    site = tmp_path / "site"
    assert build(site).returncode == 0  # a new folder
    (site / "stale.txt").write_text("from before")
    assert build(site).returncode == 0  # an earlier build is replaced whole
    assert not (site / "stale.txt").exists()
    assert (site / "index.html").is_file()


def test_the_pages_javascript_reads_its_lists_from_their_python_homes(site):
    """The models (dreamengine/presets.py) and the backends (pyscript_app/settings.py) reach
    web/js through the build's site.json; no JavaScript file names a model itself."""
    import settings

    from dreamengine import presets

    shared = json.loads((site / "site.json").read_text())
    assert shared == {"models": [dict(m) for m in presets.MODELS],
                      "backends": list(settings.BACKENDS)}
    assert shared["models"][0]["name"] == presets.DEFAULT_MODEL
    for name in ("model.js", "backends.js"):
        assert "from '../site.json' with { type: 'json' }" in (site / "js" / name).read_text()
    for script in (REPO / "web").rglob("*.js"):
        text = script.read_text()
        assert not any(model in text for model in presets.MODEL_NAMES), script


def test_the_site_works_under_a_sub_path_of_a_host(page, site, tmp_path):
    host = tmp_path / "host"
    shutil.copytree(site, host / "blog" / "tools" / "dreamframe")
    server, url = serve(host)
    try:
        page.goto(url + "blog/tools/dreamframe/?backend=wasm&sample=chelsea&autostart"
                  "&octaves=1&steps=2")
        page.wait_for_function("() => document.getElementById('status').textContent"
                               ".startsWith('Done')", timeout=120_000)
        assert all(u.startswith((url + "blog/tools/dreamframe/", "data:", "blob:"))
                   for u in page.requests)
    finally:
        server.shutdown()


def test_the_pages_workflow_publishes_what_the_projects_own_build_makes(tmp_path):
    """.github/workflows/pages.yml (GitHub Pages, README "Host it"): its commands are the
    project's own set-up and build, and the folder it uploads is the one the build writes.
    Its build command is run here as written, into a scratch folder instead of dist/ (no
    test writes into the checkout), and makes a whole site."""
    import shlex

    import yaml

    workflow = yaml.safe_load((REPO / ".github/workflows/pages.yml").read_text())
    steps = workflow["jobs"]["build"]["steps"]
    runs = [shlex.split(step["run"]) for step in steps if "run" in step]
    assert runs[0] == ["scripts/setup.sh", "serve"]
    build_command = runs[1]
    assert build_command[:2] == [".venv/bin/python", "scripts/build_site.py"]
    upload = next(step for step in steps if step.get("uses", "").startswith(
        "actions/upload-pages-artifact@"))
    assert upload["with"]["path"] == build_command[2] == "dist"
    assert any(step.get("uses", "").startswith("actions/deploy-pages@")
               for step in workflow["jobs"]["deploy"]["steps"])
    built = subprocess.run([PYTHON, *build_command[1:2], str(tmp_path / "dist")], cwd=REPO,
                           capture_output=True, text=True, check=False)
    assert built.returncode == 0, built.stderr
    for name in ("index.html", "sw.js", "models/mobilenet_v2/manifest.json"):
        assert (tmp_path / "dist" / name).is_file(), name
