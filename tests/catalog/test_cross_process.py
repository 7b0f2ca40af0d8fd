"""A toggle made in one gateway process is obeyed by another within 1 s (shared SQLite)."""

from __future__ import annotations

import time

import httpx

from accounts.models import User
from tests.live import daphne_process, free_port

MODEL = "stepfun/Step-3.5-Flash"


def _status(url: str, key: str) -> int:
    body = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}
    headers = {"Authorization": f"Bearer {key}"}
    return httpx.post(f"{url}/v1/chat/completions", json=body, headers=headers, timeout=10).status_code


def test_toggle_in_one_process_is_obeyed_by_another_within_a_second(live):
    User.objects.create_superuser("catalog-admin", password="pw-catalog")
    env = {"CC_UPSTREAM_BASE_URL": live.simulator_url, "CCSITE_CREDENTIAL_CACHE_SECONDS": "0"}
    with (
        daphne_process(port=free_port(), env=env) as first,
        daphne_process(port=free_port(), env=env) as second,
    ):
        assert _status(first.url, live.key) == 200 and _status(second.url, live.key) == 200
        # The toggle is made by the first process itself: its admin changelist, list-editable.
        _toggle_through_admin_of(first.url, enabled=False)
        toggled_at = time.monotonic()
        assert _status(first.url, live.key) == 403  # at once where it was made
        while _status(second.url, live.key) != 403:
            assert time.monotonic() - toggled_at < 1.0, "the second process still serves the model"
            time.sleep(0.02)
        elapsed = time.monotonic() - toggled_at
        _toggle_through_admin_of(first.url, enabled=True)
        while _status(second.url, live.key) != 200:
            assert time.monotonic() - toggled_at < elapsed + 2.0
            time.sleep(0.02)
    assert elapsed < 1.0


def _toggle_through_admin_of(url: str, *, enabled: bool) -> None:
    """Log in to the process's admin and use the models changelist's enable/disable action."""
    from catalog.models import Model

    with httpx.Client(base_url=url, timeout=10, follow_redirects=False) as browser:
        login = browser.get("/admin/login/")
        token = browser.cookies["csrftoken"]
        response = browser.post(
            "/admin/login/?next=/admin/",
            data={"username": "catalog-admin", "password": "pw-catalog", "csrfmiddlewaretoken": token},
            headers={"Referer": f"{url}/admin/login/"},
        )
        assert response.status_code == 302, login.text[:200]
        token = browser.cookies["csrftoken"]
        pk = Model.objects.get(upstream_id=MODEL).pk
        response = browser.post(
            "/admin/catalog/model/",
            data={
                "action": "enable_models" if enabled else "disable_models",
                "_selected_action": [str(pk)],
                "index": "0",
                "csrfmiddlewaretoken": token,
            },
            headers={"Referer": f"{url}/admin/catalog/model/"},
        )
        assert response.status_code == 302, response.text[:500]
