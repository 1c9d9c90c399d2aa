"""Headless Chromium (Debian's chromium + chromedriver, driven by Selenium) against a live ComfyUI server that
loads this pack and the test-only tiny loader. Without Chromium the tier is skipped, and the run says so."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import harness
import live_server
import pytest

ARTIFACTS = Path(os.environ.get("NEGATIVE_GUIDANCE_ARTIFACTS", harness.PACK_ROOT / "tests" / "artifacts"))
FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync", "--window-size=1400,900"]


@pytest.fixture(scope="session")
def ui_server(tmp_path_factory):
    yield from live_server.serve(live_server.make_base(tmp_path_factory.mktemp("ui_base")))


@pytest.fixture(scope="session")
def browser(ui_server, tmp_path_factory):
    """A page on the server's frontend, ready once window.app has a graph."""
    chromium, driver_path = shutil.which("chromium"), shutil.which("chromedriver")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
        from selenium.webdriver.support.ui import WebDriverWait
    except ImportError:
        chromium = None
    if not (chromium and driver_path):
        pytest.skip("BROWSER TESTS SKIPPED: install Debian's chromium and chromium-driver, and selenium")
    import requests

    requests.post(ui_server.url + "/settings/Comfy.TutorialCompleted", json=True, timeout=30)
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in [*FLAGS, f"--user-data-dir={tmp_path_factory.mktemp('chromium')}"]:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    driver.set_script_timeout(120)
    try:
        driver.get(ui_server.url)
        WebDriverWait(driver, 90).until(lambda d: d.execute_script(
            "return !!(window.app && app.graph && window.LiteGraph && app.extensions?.length)"))
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """Where screenshots go: tests/artifacts (ignored by git) or $NEGATIVE_GUIDANCE_ARTIFACTS."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS
