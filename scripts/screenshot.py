"""Take docs/screenshot.png and docs/screenshot-phone.png from the real page:
`.venv/bin/python scripts/screenshot.py`.

Builds the site into a temporary folder, serves it on loopback, lets the page dream the cat
sample with the default settings in headless Chromium, and screenshots the finished page:
on a desktop-sized window, and on a phone-sized one (390x844, as an iPhone's) as a visitor
first sees it, without scrolling.
"""

import sys

from scripts import REPO, serving


def main() -> int:
    """Build, serve, dream, screenshot."""
    from playwright.sync_api import sync_playwright

    with serving.temporary_site() as url, sync_playwright() as playwright:
        browser = serving.launch(playwright)
        page = browser.new_page(viewport={"width": 1200, "height": 760})
        page.goto(url + "index.html?sample=chelsea&autostart")
        page.wait_for_function("() => document.getElementById('status').textContent"
                               ".startsWith('Done')", timeout=600_000)
        page.evaluate("document.getElementById('compare-slider').value = 60;"
                      "document.getElementById('compare').style.setProperty('--reveal', '60%')")
        page.screenshot(path=str(REPO / "docs" / "screenshot.png"))
        phone = browser.new_page(viewport={"width": 390, "height": 844}, is_mobile=True,
                                 has_touch=True, device_scale_factor=2)
        phone.goto(url + "index.html?sample=chelsea&autostart")
        phone.wait_for_function("() => document.getElementById('status').textContent"
                                ".startsWith('Done')", timeout=600_000)
        phone.screenshot(path=str(REPO / "docs" / "screenshot-phone.png"))
        browser.close()
    print("wrote docs/screenshot.png, docs/screenshot-phone.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
