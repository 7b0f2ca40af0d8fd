"""Django settings as plain attributes, for code that reads them on every request.

``django.conf.settings`` answers each attribute through ``LazyObject.__getattribute__``, a
Python-level hook that costs about a microsecond; a small /v1 request reads some forty
settings (2% of the gateway's CPU in scenario d of ``make bench``). ``cached_settings.NAME``
reads the setting once and keeps it as an ordinary attribute. Django's ``setting_changed``
signal (``override_settings``, pytest-django's ``settings`` fixture) empties the cache, so a
changed setting is read afresh.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.signals import setting_changed


class CachedSettings:
    def __getattr__(self, name: str) -> Any:  # only called when the attribute is not cached yet
        value = getattr(settings, name)
        setattr(self, name, value)
        return value

    def clear(self, **_signal: Any) -> None:
        self.__dict__.clear()


cached_settings = CachedSettings()
setting_changed.connect(cached_settings.clear, weak=False)
