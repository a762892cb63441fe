"""What the browser tests share besides fixtures."""

from pathlib import Path

from playwright.sync_api import Page

from harness.paths import ARTIFACTS

SCREENSHOTS = ARTIFACTS / "screenshots"


def screenshot(page: Page, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
