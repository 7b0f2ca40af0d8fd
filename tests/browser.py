"""Headless Chromium for page tests (Debian's chromium + chromium-driver, driven by selenium)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.live import PROJECT_ROOT

SCREENSHOTS = PROJECT_ROOT / "var" / "artifacts"


def _binary(*names: str) -> str | None:
    return next((found for name in names if (found := shutil.which(name))), None)


@contextmanager
def headless_chromium() -> Iterator[object]:
    """A selenium Chrome driver on a private profile; skipped (saying why) where it cannot run."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    browser, driver_binary = _binary("chromium", "chromium-browser"), _binary("chromedriver")
    if browser is None or driver_binary is None:
        pytest.skip("headless Chromium not installed (apt-get install -y chromium chromium-driver)")
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,1600"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(driver_binary), options=options)
    driver.implicitly_wait(2)
    try:
        yield driver
    finally:
        driver.quit()


def screenshot(driver: object, name: str) -> Path:
    """Keep a picture of what drew (an artifact under var/artifacts)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    driver.save_screenshot(str(path))  # type: ignore[attr-defined]
    return path


def click_to_load(driver: object, element: object, timeout: float = 10.0) -> None:
    """Click something that loads a new page and wait until the new page has replaced the old
    one: an element looked up right after the click could otherwise be found on the old page
    (and go stale under the caller), or the URL still be the old one."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    page = driver.find_element(By.TAG_NAME, "html")  # type: ignore[attr-defined]
    element.click()  # type: ignore[attr-defined]
    WebDriverWait(driver, timeout).until(expected_conditions.staleness_of(page))
