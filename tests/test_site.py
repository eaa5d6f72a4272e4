"""The site build: what it refuses to replace, and hosting under any sub-path."""

import shutil
import subprocess

from conftest import PYTHON, REPO, serve

READY = ("() => window.dreamframe && window.dreamframe.engine && "
         "document.getElementById('status').textContent.startsWith('Ready')")


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
