"""The usage report in a real headless Chromium (Debian's chromium + chromium-driver): the page
loads from a live Daphne with its vendored chart library, the charts draw, and a screenshot is
kept in var/artifacts/ (git-ignored) for a person to look at."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.factories import UserFactory, make_client_key, make_credential
from tests.usage.factories import make_rows, store

pytestmark = [pytest.mark.live]

ARTIFACTS = Path(__file__).resolve().parents[2] / "var" / "artifacts"
CHROMEDRIVER = shutil.which("chromedriver")


@pytest.fixture
def browser():
    if CHROMEDRIVER is None:
        pytest.skip("chromium-driver is not installed (apt-get install chromium chromium-driver)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,2200"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def test_the_report_page_draws_its_charts(live_gateway, transactional_db, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    UserFactory(username="ops", is_staff=True, is_superuser=True).set_password("pw-for-the-test")
    staff = UserFactory._meta.model.objects.get(username="ops")
    staff.set_password("pw-for-the-test")
    staff.save()
    keys = [make_client_key(user=UserFactory())[0] for _ in range(2)]
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    store(
        make_rows(
            400,
            users=[k.user_id for k in keys],
            keys=[k.pk for k in keys],
            credentials=[make_credential().pk],
            start=today - timedelta(days=6),
            hours=24 * 7 - 1,
        )
    )

    browser.get(f"{live_gateway.url}/admin/login/?next=/admin/usage/requestlog/report/")
    browser.find_element(By.NAME, "username").send_keys("ops")
    browser.find_element(By.NAME, "password").send_keys("pw-for-the-test")
    browser.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
    WebDriverWait(browser, 15).until(lambda d: d.execute_script("return !!window.usageCharts"))

    drawn = browser.execute_script(
        """
        const counts = {};
        for (const [id, chart] of Object.entries(window.usageCharts)) {
          const canvas = document.getElementById(id);
          const pixels = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
          let painted = 0;
          for (let i = 3; i < pixels.length; i += 4) if (pixels[i] > 0) painted++;
          counts[id] = {painted: painted, points: chart.data.datasets.reduce((n, s) => n + s.data.length, 0),
                        sum: chart.data.datasets[0].data.reduce((a, b) => a + (b || 0), 0)};
        }
        return counts;
        """
    )
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(ARTIFACTS / "usage-report.png"))
    assert set(drawn) == {"chart-requests", "chart-tokens", "chart-outcomes", "chart-cost", "chart-latency"}
    for chart_id, figures in drawn.items():
        assert figures["painted"] > 1000 and figures["points"] > 0, chart_id
    assert drawn["chart-requests"]["sum"] == 400  # every row in the week is on the chart
    assert (ARTIFACTS / "usage-report.png").stat().st_size > 10_000
    totals = browser.find_element(By.CSS_SELECTOR, "table[data-title='Totals'] tbody tr td").text
    assert totals == "400"
