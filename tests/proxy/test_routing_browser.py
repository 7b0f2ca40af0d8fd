"""The admin's routing pages in headless Chromium against a live gateway: the routing settings
(a singleton form: choose a policy, see the one in force) and the credential list with its live
state."""

from __future__ import annotations

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from accounts.models import User
from tests.browser import click_to_load, headless_chromium, screenshot

pytestmark = [pytest.mark.live]
PASSWORD = "routing-admin-password-1"


@pytest.fixture
def browser():
    with headless_chromium() as driver:
        yield driver


def test_routing_settings_and_credential_list_in_chromium(live, browser):
    User.objects.create_superuser("routing-admin", password=PASSWORD)
    browser.get(f"{live.url}/admin/login/")
    browser.find_element(By.ID, "id_username").send_keys("routing-admin")
    browser.find_element(By.ID, "id_password").send_keys(PASSWORD)
    click_to_load(browser, browser.find_element(By.CSS_SELECTOR, "input[type=submit]"))

    # From the admin index to the one settings row (the list opens its change form).
    click_to_load(browser, browser.find_element(By.LINK_TEXT, "Routing settings"))
    assert browser.current_url.endswith("/admin/proxy/routingsettings/1/change/")
    assert "(server setting; CCSITE_ROUTING_POLICY=auto)" in browser.page_source
    Select(browser.find_element(By.ID, "id_policy")).select_by_value("least_in_flight")
    click_to_load(browser, browser.find_element(By.NAME, "_continue"))
    in_force = browser.find_element(By.CSS_SELECTOR, ".field-in_force .readonly").text
    assert in_force == "least_in_flight (set here; CCSITE_ROUTING_POLICY=auto)"
    screenshot(browser, "admin-routing-settings")

    # The credential list: the live columns drew for the live fixture's key.
    browser.get(f"{live.url}/admin/accounts/upstreamcredential/")
    headers = [th.text.strip().lower() for th in browser.find_elements(By.CSS_SELECTOR, "#result_list th")]
    for column in ("state", "cooling until", "in flight", "last error", "billing"):
        assert column in headers
    assert browser.find_element(By.CSS_SELECTOR, "td.field-routing_state").text == "ready"
    assert live.upstream_key not in browser.page_source
    screenshot(browser, "admin-credentials-live-state")

    # Back to the server setting, so the shared gateway routes as configured again.
    browser.get(f"{live.url}/admin/proxy/routingsettings/")
    Select(browser.find_element(By.ID, "id_policy")).select_by_value("")
    click_to_load(browser, browser.find_element(By.NAME, "_continue"))
    assert "auto (server setting" in browser.find_element(By.CSS_SELECTOR, ".field-in_force .readonly").text
