"""Settings read on the hot path are cached, and a changed setting is read afresh."""

from __future__ import annotations

from django.test import override_settings

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
