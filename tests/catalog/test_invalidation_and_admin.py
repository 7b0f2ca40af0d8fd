"""The change signal between processes, and the catalog's admin pages."""

from __future__ import annotations

import time

import pytest
from django.urls import reverse

from catalog.models import ChangeVersion, Model
from ccsite import invalidation
from tests.factories import make_credential


@pytest.mark.django_db
def test_bump_reloads_here_at_once_and_a_poll_picks_up_other_processes_bumps():
    calls = []
    invalidation.on_change("test-thing", lambda: calls.append("reload"))
    invalidation.bump("test-thing")
    assert calls == ["reload"]  # in the calling process, at once
    invalidation.poll_once()  # catches up with the version it has not seen yet
    calls.clear()
    assert invalidation.poll_once() == [] and calls == []  # nothing changed: no reload
    ChangeVersion.objects.filter(name="test-thing").update(version=99)  # another process's bump
    assert invalidation.poll_once() == ["test-thing"] and calls == ["reload"]
    invalidation._reloads.pop("test-thing")


@pytest.mark.django_db
def test_a_version_table_emptied_and_bumped_again_is_still_seen_as_a_change():
    """A flush (every transactional test) or a restore empties the table; the next bump must
    not repeat the version a process last took, or it keeps what it loaded in between."""
    invalidation.on_change("test-reset", lambda: None)
    try:
        invalidation.bump("test-reset")
        assert invalidation.poll_once() == ["test-reset"]
        ChangeVersion.objects.all().delete()  # what a flush does between tests
        invalidation.bump("test-reset")
        assert invalidation.poll_once() == ["test-reset"]
    finally:
        invalidation._reloads.pop("test-reset")


@pytest.mark.django_db
def test_changelist_toggle_filters_and_search(admin_client):
    url = reverse("admin:catalog_model_changelist")
    page = admin_client.get(url, {"q": "kimi", "source": "builtin", "vendor": "moonshotai"}).content.decode()
    assert "moonshotai/Kimi-K2.5" in page and "deepseek/deepseek-v4-flash" not in page
    model = Model.objects.get(upstream_id="zai-org/GLM-5")
    response = admin_client.post(
        url, {"action": "disable_models", "_selected_action": [model.pk], "index": "0"}, follow=True
    )
    assert "Disabled 1 model(s)." in response.content.decode()
    from catalog import snapshot

    assert snapshot.current().catalog.resolve("zai-org/GLM-5").enabled is False


@pytest.mark.django_db
def test_model_page_shows_which_credentials_may_serve_it(admin_client):
    make_credential(label="all-models")
    make_credential(label="only-gpt", allowed_models=["gpt-5.5"])
    model = Model.objects.get(upstream_id="zai-org/GLM-5")
    page = admin_client.get(reverse("admin:catalog_model_change", args=[model.pk])).content.decode()
    assert "all-models" in page and "only-gpt" not in page


@pytest.mark.django_db
def test_credential_form_picks_allowed_models_from_the_catalog(admin_client):
    from accounts.models import UpstreamCredential

    url = reverse("admin:accounts_upstreamcredential_add")
    form = admin_client.get(url).content.decode()
    assert '<option value="gpt-5.5">gpt-5.5</option>' in form
    response = admin_client.post(
        url,
        {
            "label": "picked",
            "api_key": "user_picker_key_0123456789",
            "weight": 1,
            "allowed_models": ["gpt-5.5", "gpt-5.4"],
        },
    )
    assert response.status_code == 302, response.content.decode()[:1500]
    assert sorted(UpstreamCredential.objects.get(label="picked").allowed_models) == ["gpt-5.4", "gpt-5.5"]


@pytest.fixture
def redis_url(redis_server, settings):
    """The session's private redis-server, emptied, as this process's REDIS_URL."""
    import redis

    with redis.Redis.from_url(redis_server.url) as client:
        client.flushdb()
    settings.REDIS_URL = redis_server.url
    invalidation._redis_client = None
    yield redis_server.url
    invalidation._redis_client = None


def test_with_redis_a_bump_is_seen_through_a_version_key(redis_url, transactional_db):
    import redis

    calls = []
    invalidation.on_change("test-redis", lambda: calls.append("reload"))
    try:
        before = time.time_ns()
        invalidation.bump("test-redis")  # no transaction open: the key is incremented at once
        assert calls == ["reload"]
        # A key made anew starts from the clock: after a FLUSHDB it repeats no earlier version.
        assert int(redis.Redis.from_url(redis_url).get("ccsite:changes:test-redis")) > before
        invalidation.poll_once()
        calls.clear()
        assert invalidation.poll_once() == []
        redis.Redis.from_url(redis_url).incr("ccsite:changes:test-redis")  # another process
        assert invalidation.poll_once() == ["test-redis"] and calls == ["reload"]
    finally:
        invalidation._reloads.pop("test-redis")
