"""The self-service page in headless Chromium against a live gateway: log in, create a key
(shown once; a refresh makes no second key), use it and see the usage, copy a set-up block;
a second user cannot reach the first user's keys by URL."""

from __future__ import annotations

import re
import time

import httpx
import pytest
from selenium.webdriver.common.by import By

from accounts.models import ClientKey
from tests.browser import headless_chromium, screenshot
from tests.factories import UserFactory
from usage.models import RequestLog

pytestmark = [pytest.mark.live]

PASSWORD = "a-long-test-password-1"


@pytest.fixture
def browser():
    with headless_chromium() as driver:
        yield driver


def member(username: str):
    user = UserFactory(username=username)
    user.set_password(PASSWORD)
    user.save()
    return user


def log_in(driver, url: str, username: str) -> None:
    driver.delete_all_cookies()
    driver.get(f"{url}/login/")
    driver.find_element(By.ID, "id_username").send_keys(username)
    driver.find_element(By.ID, "id_password").send_keys(PASSWORD)
    driver.find_element(By.ID, "login-button").click()
    assert driver.find_element(By.ID, "keys")


def wait_for(check, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while not (result := check()):
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.1)
    return result


def test_self_service_page_in_chromium(live, browser):
    alice = member("alice-browser")
    log_in(browser, live.url, alice.username)

    # Create a key: the secret is shown once, and a refresh neither shows it nor makes another.
    browser.find_element(By.ID, "id_name").clear()
    browser.find_element(By.ID, "id_name").send_keys("alices-laptop")
    browser.find_element(By.ID, "create-key").click()
    secret = browser.find_element(By.ID, "new-key").text
    key = ClientKey.objects.get(user=alice)
    assert secret.startswith(key.prefix) and secret not in browser.current_url
    screenshot(browser, "portal-key-created")
    browser.refresh()
    assert secret not in browser.page_source and "cannot be shown again" in browser.page_source
    assert ClientKey.objects.filter(user=alice).count() == 1

    # Use the key; the usage section and its chart show it once the request log has it.
    reply = httpx.post(
        f"{live.url}/v1/chat/completions",
        headers={"Authorization": f"Bearer {secret}"},
        json={"model": "deepseek/deepseek-v4-flash", "messages": [{"role": "user", "content": "hi"}]},
        timeout=10,
    )
    assert reply.status_code == 200
    wait_for(lambda: RequestLog.objects.filter(client_key_id=key.pk, outcome="ok").exists())
    browser.get(f"{live.url}/")
    logged = RequestLog.objects.get(client_key_id=key.pk, outcome="ok")
    tokens = browser.find_element(By.ID, "usage-tokens").text.replace(",", "")
    assert int(tokens) == logged.input_tokens + logged.output_tokens
    bars = browser.find_elements(By.CSS_SELECTOR, "#usage-chart rect.bar")
    assert len(bars) == 1 and int(bars[0].get_attribute("data-tokens")) == int(tokens)
    assert int(float(bars[0].get_attribute("height"))) > 0

    # Copy a set-up block: it is this server's URL with the chosen key's prefix placeholder.
    browser.execute_cdp_cmd(
        "Browser.grantPermissions",
        {"origin": live.url, "permissions": ["clipboardReadWrite", "clipboardSanitizedWrite"]},
    )
    block = browser.find_element(By.ID, "code-claude-code").text
    assert f"ANTHROPIC_BASE_URL={live.url}" in block and key.prefix in block
    browser.find_element(By.CSS_SELECTOR, "#setup-claude-code button.copy").click()
    wait_for(lambda: browser.find_element(By.CSS_SELECTOR, "#setup-claude-code .copied").text == "Copied")
    copied = browser.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "navigator.clipboard.readText().then(done, error => done(String(error)));"
    )
    assert copied == block
    screenshot(browser, "portal-dashboard")

    # Another member sees none of it, and cannot reach alice's key by URL.
    bob = member("bob-browser")
    log_in(browser, live.url, bob.username)
    assert key.prefix not in browser.page_source and "alices-laptop" not in browser.page_source
    browser.get(f"{live.url}/keys/{key.pk}/created")
    assert re.search(r"Not Found|404", browser.page_source)
    assert key.prefix not in browser.page_source
    key.refresh_from_db()
    assert not key.revoked
