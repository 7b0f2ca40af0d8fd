"""Django settings as plain attributes, for code that reads them on every request.

``django.conf.settings`` answers each attribute through ``LazyObject.__getattribute__``, a
Python-level hook that costs about a microsecond; a small /v1 request reads some forty
settings (2% of the gateway's CPU in scenario d of ``make bench``). ``cached_settings.NAME``
reads the setting once and keeps it as an ordinary attribute. Django's ``setting_changed``
signal (``override_settings``, pytest-django's ``settings`` fixture) empties the cache, so a
changed setting is read afresh.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

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

T = TypeVar("T")


def from_settings(build: Callable[[], T]) -> Callable[[], T]:
    """``build()`` (a value made of settings) made once and kept until a setting changes."""
    kept = functools.cache(build)
    setting_changed.connect(lambda **_signal: kept.cache_clear(), weak=False)
    return kept
