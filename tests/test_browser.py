"""End to end: a real headless Chromium logs into the admin served by live_server.

Skipped only when Chromium or chromedriver is not installed (Debian packages
``chromium`` and ``chromium-driver``). The screenshot goes to the test's
temporary directory, and also to ``$DJANGO_SQLA_POOL_SCREENSHOT`` when set
(that is how docs/admin-poolstats.png is made).
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from django_sqla_pool import pool_stats
from django_sqla_pool.core import registry

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"

pytestmark = [
    pytest.mark.skipif(
        not (os.access(CHROMIUM, os.X_OK) and os.access(CHROMEDRIVER, os.X_OK)),
        reason=f"needs {CHROMIUM} and {CHROMEDRIVER} (apt-get install chromium chromium-driver)",
    ),
    pytest.mark.django_db(transaction=True),
]


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--window-size=1280,2300",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def wait_until_returned(timeout: float = 10.0) -> None:
    """live_server's thread returns its connection when each response is closed."""
    deadline = time.monotonic() + timeout
    while any(p.checkedout() for p in registry.pools()) and time.monotonic() < deadline:
        time.sleep(0.02)


def make_load(seconds: float) -> None:
    """Threads that use the default alias's pool harder, then ease off."""
    from django.db import connection

    from django_sqla_pool import release_connections

    stop = time.monotonic() + seconds

    def work(n: int) -> None:
        while time.monotonic() < stop:
            busy = (stop - time.monotonic()) % 6 < 3 or n < 3
            with release_connections(), connection.cursor() as cursor:
                cursor.execute("SELECT pg_sleep(%s)", [0.2 if busy else 0.02])
            time.sleep(0.01 if busy else 0.3)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def test_admin_page_in_a_real_browser(live_server, browser, django_user_model, tmp_path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    django_user_model.objects.create_superuser("boss", "boss@example.com", "boss-pw-123")
    browser.get(f"{live_server.url}/admin/django_sqla_pool/poolstats/?refresh=0")
    # Not logged in: the admin's login form, with the page as "next".
    browser.find_element(By.NAME, "username").send_keys("boss")
    browser.find_element(By.NAME, "password").send_keys("boss-pw-123")
    browser.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
    wait = WebDriverWait(browser, 20)
    headroom = wait.until(
        ec.presence_of_element_located((By.CSS_SELECTOR, '[data-stat="server.headroom"]'))
    )
    assert browser.find_element(By.CSS_SELECTOR, "#content h1").text == "Connection pool stats"
    assert int(headroom.text) > 0
    pool_size = browser.find_element(
        By.CSS_SELECTOR, '[data-alias="default"] [data-stat="config.pool_size"]'
    )
    checkouts = [
        int(cell.text)
        for cell in browser.find_elements(
            By.CSS_SELECTOR, '[data-alias="default"] .pool [data-stat="counters.checkouts"]'
        )
    ]
    assert browser.find_element(By.CSS_SELECTOR, "svg.sqlapool-chart").is_displayed()
    # The live server runs in this process: the page shows this process's pools.
    wait_until_returned()
    pools = pool_stats("default")["pools"]
    assert int(pool_size.text) == pools[0]["config"]["pool_size"]
    assert sorted(checkouts) == sorted(p["counters"]["checkouts"] for p in pools)
    assert max(checkouts) >= 3  # login POST, its redirect, and this page at least
    target = os.environ.get("DJANGO_SQLA_POOL_SCREENSHOT")
    if target:
        # For the documentation: real load for a few seconds, so the chart has a shape.
        make_load(seconds=20)
        browser.get(f"{live_server.url}/admin/django_sqla_pool/poolstats/?refresh=0")
        wait_until_returned()
        # The whole page: the loaded pool's chart is below the first 2300 px.
        page = "return [document.documentElement.scrollHeight, window.innerHeight]"
        height, inner = browser.execute_script(page)
        browser.set_window_size(1280, height)
        height, inner = browser.execute_script(page)
        browser.set_window_size(1280, 2 * height - inner)  # the window's own bars
        height, inner = browser.execute_script(page)
        assert inner >= height, (inner, height)
    shot = tmp_path / "admin-poolstats.png"
    assert browser.save_screenshot(str(shot))
    assert shot.stat().st_size > 10_000
    if target:
        shutil.copyfile(shot, target)


def test_admin_page_fits_a_420px_screen_and_the_chart_keeps_its_distance(
    live_server, browser, django_user_model
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    django_user_model.objects.create_superuser("narrow", "narrow@example.com", "narrow-pw-123")
    browser.set_window_size(420, 900)
    browser.get(f"{live_server.url}/admin/django_sqla_pool/poolstats/?refresh=0")
    browser.find_element(By.NAME, "username").send_keys("narrow")
    browser.find_element(By.NAME, "password").send_keys("narrow-pw-123")
    browser.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
    WebDriverWait(browser, 20).until(
        ec.presence_of_element_located((By.CSS_SELECTOR, "[data-process]"))
    )
    wait_until_returned()
    # The window is 420 px wide: the page itself must not scroll sideways; the
    # fleet table, wider than that, scrolls inside its own box.
    page = browser.execute_script(
        "const e = document.documentElement; return [e.scrollWidth, e.clientWidth];"
    )
    assert page[0] <= page[1], page
    fleet = browser.execute_script(
        "const t = document.querySelector('[data-process]').closest('.module');"
        "return [t.scrollWidth, t.clientWidth];"
    )
    assert fleet[0] > fleet[1], fleet  # the table is wider than its box: scrolled there
    # What follows the chart starts at least 16 px below it.
    gap = browser.execute_script(
        "const svg = document.querySelector('svg.sqlapool-chart');"
        "const next = svg.closest('.pool').nextElementSibling;"
        "return next.getBoundingClientRect().top - svg.getBoundingClientRect().bottom;"
    )
    assert gap >= 16, gap
