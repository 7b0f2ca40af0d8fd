"""The self-service pages through Django's test client: scoping, PRG, CSRF-protected writes."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from accounts.models import ClientKey
from tests.factories import UserFactory, make_client_key

pytestmark = pytest.mark.django_db


@pytest.fixture
def member(client):
    user = UserFactory()
    client.force_login(user)
    return user


def test_the_landing_page_replaces_the_404_and_invites_to_log_in(client):
    response = client.get("/")
    assert response.status_code == 200
    assert reverse("portal:login") in response.content.decode()


def test_creating_a_key_redirects_and_shows_the_secret_once(client, member):
    response = client.post(reverse("portal:key-create"), {"name": "laptop"})
    key = ClientKey.objects.get(user=member)
    assert response.status_code == 302 and response["Location"] == reverse(
        "portal:key-created", args=[key.pk]
    )
    assert "ccs_" not in response["Location"]
    page = client.get(response["Location"])
    secret = re.search(r'id="new-key"[^>]*>(ccs_\w+)<', page.content.decode()).group(1)
    assert secret.startswith(key.prefix) and page["Cache-Control"] == "no-store"
    again = client.get(response["Location"], follow=True)
    assert secret not in again.content.decode() and "cannot be shown again" in again.content.decode()
    assert ClientKey.objects.filter(user=member).count() == 1


def test_a_past_expiry_is_refused(client, member):
    response = client.post(reverse("portal:key-create"), {"name": "old", "expires_on": "2001-01-01"})
    assert response.status_code == 400 and not ClientKey.objects.exists()


def test_nobody_sees_or_revokes_another_users_key(client, member):
    other_key, _ = make_client_key(user=UserFactory(), name="not-yours")
    page = client.get("/").content.decode()
    assert other_key.prefix not in page and "not-yours" not in page
    assert client.post(reverse("portal:key-revoke", args=[other_key.pk])).status_code == 404
    assert client.get(reverse("portal:key-created", args=[other_key.pk])).status_code == 404
    other_key.refresh_from_db()
    assert not other_key.revoked


def test_revoking_an_own_key(client, member):
    key, _ = make_client_key(user=member)
    assert client.get(reverse("portal:key-revoke", args=[key.pk])).status_code == 405  # writes are POSTs
    client.post(reverse("portal:key-revoke", args=[key.pk]))
    key.refresh_from_db()
    assert key.revoked


def test_writes_need_the_csrf_token(member):
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    strict.force_login(member)
    assert strict.post(reverse("portal:key-create"), {"name": "x"}).status_code == 403
    assert not ClientKey.objects.exists()


def test_setup_blocks_carry_this_servers_url(client, member, settings):
    settings.ALLOWED_HOSTS = ["gateway.example.test"]
    page = client.get("/", HTTP_HOST="gateway.example.test").content.decode()
    for needle in (
        "ANTHROPIC_BASE_URL=http://gateway.example.test",
        "wire_api = &quot;responses&quot;",
        "base_url=&quot;http://gateway.example.test/v1&quot;",
        "@ai-sdk/openai-compatible",
        "api_base: http://gateway.example.test/v1",
        "curl http://gateway.example.test/v1/chat/completions",
    ):
        assert needle in page, needle


def test_staff_get_a_link_to_the_admin(client):
    client.force_login(UserFactory(is_staff=True))
    assert 'id="admin-link"' in client.get("/").content.decode()


def test_limits_are_shown_in_words_with_reset_times_in_utc(client, member):
    from accounts.services import limits_update

    limits_update(target=member, changes={"rpm_limit": 60, "budget_tokens": 5000, "concurrent_limit": 2})
    key, _ = make_client_key(user=member)
    limits_update(target=key, changes={"rpm_limit": 10, "budget_cost": 5})
    page = client.get("/").content.decode()
    limits = page[page.index('id="limits"') :]
    for words in ("Requests per minute", "Token budget (per month)", "Requests at once"):
        assert words in limits
    for identifier in ("requests_per_minute", "budget_tokens", "concurrent_requests"):
        assert f">{identifier}" not in limits  # only in data attributes, never as text
    # The token budget resets when the month ends, written out in UTC as the 429s say it.
    resets = re.findall(
        r"<time datetime=\"([^\"]+)\">resets at (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) UTC</time>", limits
    )
    assert resets and all(iso.startswith(text.replace(" ", "T")) for iso, text in resets)
    assert not re.search(r">\s*\d{10}\s*<", limits)  # no raw epoch seconds
    # The key's own limits in words too, not rpm=10, budget_cost=5.0.
    assert "10 requests per minute, 5 USD per month (estimated)" in page and "rpm=" not in page
