"""Settings read on the hot path are cached, and a changed setting is read afresh."""

from __future__ import annotations

from django.test import override_settings

from ccsite import settings_cache
from ccsite.settings_cache import cached_settings, from_settings
from proxy.upstream.commandcode import stream_limits


def test_a_cached_setting_follows_every_change(settings):
    original = cached_settings.CC_IDLE_TIMEOUT
    assert original == settings.CC_IDLE_TIMEOUT
    assert "CC_IDLE_TIMEOUT" in vars(cached_settings)  # now a plain attribute
    settings.CC_IDLE_TIMEOUT = original + 17  # pytest-django's fixture sends setting_changed
    assert cached_settings.CC_IDLE_TIMEOUT == original + 17
    with override_settings(CC_IDLE_TIMEOUT=3.5):
        assert cached_settings.CC_IDLE_TIMEOUT == 3.5
    assert cached_settings.CC_IDLE_TIMEOUT == original + 17


def test_a_value_made_from_settings_is_made_once_until_a_setting_changes(settings):
    builds = []

    @from_settings
    def built() -> tuple[float]:
        builds.append(1)
        return (settings.CC_TOTAL_TIMEOUT,)

    assert built() is built() and len(builds) == 1
    settings.CC_TOTAL_TIMEOUT = 123.0
    assert built() == (123.0,) and len(builds) == 2
    assert stream_limits().total == 123.0  # the upstream's limits follow the change too


class _ChangedWhileRead:
    """A settings object whose every read is overtaken by a change (another thread's
    override_settings landing between the read and the cache's store)."""

    def __getattr__(self, name: str) -> str:
        cached_settings.clear()  # what setting_changed does, after the new value is in place
        return "old value"


def test_a_value_read_while_the_setting_changed_is_returned_but_not_kept(monkeypatch):
    monkeypatch.setattr(settings_cache, "settings", _ChangedWhileRead())
    assert cached_settings.RACED_SETTING == "old value"  # the reader gets what it read
    assert "RACED_SETTING" not in vars(cached_settings)  # the next reader reads afresh

    @from_settings
    def built() -> str:
        return cached_settings.OTHER_RACED_SETTING

    assert built() == "old value"
    monkeypatch.setattr(settings_cache, "settings", type("Now", (), {"OTHER_RACED_SETTING": "new value"})())
    assert built() == "new value"  # the raced build was not kept
    cached_settings.clear()  # leave no test-only attribute behind
