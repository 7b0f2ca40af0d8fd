"""The self-service key form at the calendar's edge: the last day a date can name is refused
with a message (its end is past what a date-time can hold), never a server error."""

from __future__ import annotations

import pytest
from django.urls import reverse

from accounts.models import ClientKey
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_an_expiry_on_the_last_day_of_the_calendar_is_refused_with_a_message(client):
    client.force_login(UserFactory())
    response = client.post(reverse("portal:key-create"), {"name": "forever", "expires_on": "9999-12-31"})
    assert response.status_code == 400 and not ClientKey.objects.exists()
    assert "Pick a day before 9999-12-31." in response.content.decode()


def test_an_expiry_the_day_before_is_kept(client):
    user = UserFactory()
    client.force_login(user)
    response = client.post(reverse("portal:key-create"), {"name": "long", "expires_on": "9999-12-30"})
    assert response.status_code == 302
    assert ClientKey.objects.get(user=user).expires_at.isoformat() == "9999-12-31T00:00:00+00:00"
