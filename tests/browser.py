"""Headless Chromium (Debian's ``chromium`` and ``chromium-driver``) driven through selenium.

One browser per test module; ``render(path, shot)`` opens a report from disk and returns what a
person would see: the console messages at error level, the sections, whether every image decoded,
the resources fetched from anywhere (a self-contained report fetches none), and a full-page
screenshot saved at ``shot``.
"""

from __future__ import annotations

import base64
import shutil
import tempfile
from pathlib import Path

CHROMIUM, CHROMEDRIVER = "chromium", "chromedriver"
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1280,900",
)


def missing() -> str | None:
    """Why the browser tests cannot run here, or None."""
    for exe, package in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if shutil.which(exe) is None:
            return f"{exe} not found (Debian package {package}; `make setup` installs it as root with apt-get)"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "the selenium package is not installed (requirements.txt)"
    return None


class Browser:
    def __init__(self):
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service

        self.profile = tempfile.mkdtemp(prefix="deploycc-chromium-")
        options = webdriver.ChromeOptions()
        options.binary_location = shutil.which(CHROMIUM)
        for flag in FLAGS:
            options.add_argument(flag)
        options.add_argument(f"--user-data-dir={self.profile}")
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        self.driver = webdriver.Chrome(options=options, service=Service(executable_path=shutil.which(CHROMEDRIVER)))

    def close(self) -> None:
        try:
            self.driver.quit()
        finally:
            shutil.rmtree(self.profile, ignore_errors=True)

    def render(self, path: Path, shot: Path) -> dict:
        d = self.driver
        d.get_log("browser")  # drop messages of the previous page
        d.get(Path(path).resolve().as_uri())
        facts = d.execute_script("""
            const imgs = [...document.images];
            return {
              kind: document.body.dataset.report,
              title: document.title,
              sections: [...document.querySelectorAll('section')].map(s => s.id),
              figures: [...document.querySelectorAll('figure')].map(f => f.dataset.figure),
              images: imgs.map(i => ({alt: i.alt, ok: i.complete && i.naturalWidth > 0, w: i.naturalWidth})),
              verdicts: [...document.querySelectorAll('.verdict')].map(b => b.dataset.verdict),
              links: [...document.querySelectorAll('a[href]')].map(a => a.getAttribute('href')),
              resources: performance.getEntriesByType('resource').map(r => r.name),
              height: document.documentElement.scrollHeight,
              text: document.body.innerText,
            };""")
        facts["errors"] = [e for e in d.get_log("browser") if e.get("level") in ("SEVERE", "ERROR")]
        png = d.execute_cdp_cmd("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True})
        shot.parent.mkdir(parents=True, exist_ok=True)
        shot.write_bytes(base64.b64decode(png["data"]))
        facts["screenshot"] = shot
        return facts
