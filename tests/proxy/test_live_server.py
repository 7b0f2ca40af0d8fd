from __future__ import annotations

import httpx
import pytest

from tests.live import daphne_process, free_port

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]


def test_real_daphne_serves_health_and_head_probes():
    with daphne_process(port=free_port()) as gateway:
        health = httpx.get(f"{gateway.url}/health", timeout=10)
        assert health.status_code == 200 and health.json()["status"] == "ok"
        probe = httpx.head(f"{gateway.url}/api/hello", timeout=10)
        assert probe.status_code == 200
        unauthenticated = httpx.get(f"{gateway.url}/v1/models", timeout=10)
        assert unauthenticated.status_code == 401 and "error" in unauthenticated.json()
