from __future__ import annotations

import re

import pytest
from django.urls import reverse

from accounts.models import ClientKey, UpstreamCredential
from tests.factories import make_client_key, make_credential

pytestmark = pytest.mark.django_db

SECRET = "user_admin_0123456789abcdefQRST"


@pytest.mark.parametrize(
    "url_name",
    [
        "admin:accounts_user_changelist",
        "admin:accounts_clientkey_changelist",
        "admin:accounts_upstreamcredential_changelist",
        "admin:accounts_clientkey_add",
        "admin:accounts_upstreamcredential_add",
        "admin:accounts_user_add",
        "admin:index",
    ],
)
def test_admin_pages_render_for_a_superuser(admin_client, url_name):
    assert admin_client.get(reverse(url_name)).status_code == 200


def test_change_pages_render(admin_client, user):
    key, _ = make_client_key(user=user)
    credential = make_credential(api_key=SECRET)
    for url in (
        reverse("admin:accounts_user_change", args=[user.pk]),
        reverse("admin:accounts_clientkey_change", args=[key.pk]),
        reverse("admin:accounts_upstreamcredential_change", args=[credential.pk]),
    ):
        assert admin_client.get(url).status_code == 200


def test_creating_a_key_shows_the_secret_once(admin_client, user):
    response = admin_client.post(reverse("admin:accounts_clientkey_add"), {"user": user.pk, "name": "ci"})
    key = ClientKey.objects.get(user=user, name="ci")
    # POST/redirect/GET, and the secret is not in the URL it redirects to.
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:accounts_clientkey_created", args=[key.pk])
    response = admin_client.get(response["Location"])
    assert "no-store" in response["Cache-Control"]
    shown = re.search(r'id="new-client-key"[^>]*>(ccs_[A-Za-z0-9]+)<', response.content.decode()).group(1)
    assert shown.startswith(key.prefix)
    # A refresh of the "created" page makes no second key and shows the secret no more.
    refreshed = admin_client.get(reverse("admin:accounts_clientkey_created", args=[key.pk]), follow=True)
    assert shown not in refreshed.content.decode()
    assert "already shown" in refreshed.content.decode()
    assert ClientKey.objects.filter(user=user).count() == 1
    # Never again: neither the list nor the change page holds the secret.
    for url in (
        reverse("admin:accounts_clientkey_changelist"),
        reverse("admin:accounts_clientkey_change", args=[key.pk]),
    ):
        assert shown not in admin_client.get(url).content.decode()


def test_credential_secret_never_appears_in_admin_pages(admin_client):
    credential = make_credential(api_key=SECRET)
    for url in (
        reverse("admin:accounts_upstreamcredential_changelist"),
        reverse("admin:accounts_upstreamcredential_change", args=[credential.pk]),
    ):
        page = admin_client.get(url).content.decode()
        assert SECRET not in page
        assert credential.secret_encrypted not in page
        assert "…QRST" in page


def test_credential_secret_field_is_write_only(admin_client):
    url = reverse("admin:accounts_upstreamcredential_add")
    response = admin_client.post(url, {"label": "new", "api_key": SECRET, "enabled": "on", "weight": 1})
    assert response.status_code == 302, response.content.decode()[:2000]
    credential = UpstreamCredential.objects.get(label="new")
    # Changing other fields with the key left empty keeps the stored key.
    change = reverse("admin:accounts_upstreamcredential_change", args=[credential.pk])
    response = admin_client.post(change, {"label": "new", "api_key": "", "weight": 2})
    assert response.status_code == 302
    credential.refresh_from_db()
    assert (credential.weight, credential.enabled, credential.secret_last4) == (2, False, "QRST")


def test_admin_actions_revoke_keys_and_toggle_credentials(admin_client, user):
    key, secret = make_client_key(user=user)
    credential = make_credential(api_key=SECRET)
    admin_client.post(
        reverse("admin:accounts_clientkey_changelist"),
        {"action": "revoke_keys", "_selected_action": [key.pk]},
    )
    key.refresh_from_db()
    assert key.revoked
    other, _ = make_client_key(user=user)
    again = admin_client.post(
        reverse("admin:accounts_clientkey_changelist"),
        {"action": "revoke_keys", "_selected_action": [key.pk, other.pk]},
        follow=True,
    )
    assert [str(m) for m in again.context["messages"]][-1] == "Revoked 1 key(s); 1 already revoked."
    admin_client.post(
        reverse("admin:accounts_upstreamcredential_changelist"),
        {"action": "disable_credentials", "_selected_action": [credential.pk]},
    )
    credential.refresh_from_db()
    assert not credential.enabled


def _change_form_data(admin_client, url: str, **changes: str) -> dict[str, object]:
    """The change form's current values as the browser would post them, with ``changes``."""
    form = admin_client.get(url).context["adminform"].form
    data: dict[str, object] = {}
    for name, field in form.fields.items():
        value, widget = form[name].value(), field.widget
        if hasattr(widget, "widgets"):  # a split date and time
            for index, part in enumerate(widget.decompress(value)):
                data[f"{name}_{index}"] = "" if part is None else str(part)
        elif isinstance(value, bool):
            if value:
                data[name] = "on"
        elif isinstance(value, list | tuple):
            data[name] = [str(item) for item in value]
        elif value is not None:
            data[name] = str(value)
    data.update(changes)
    return data


@pytest.mark.parametrize("target", ["key", "user"])
def test_a_cost_budget_over_unpriced_models_saves_with_a_warning(admin_client, user, target):
    key, _ = make_client_key(user=user)
    url = (
        reverse("admin:accounts_clientkey_change", args=[key.pk])
        if target == "key"
        else reverse("admin:accounts_user_change", args=[user.pk])
    )
    response = admin_client.post(url, _change_form_data(admin_client, url, budget_cost="5"), follow=True)
    assert response.status_code == 200
    row = key if target == "key" else user
    row.refresh_from_db()
    assert row.budget_cost == 5
    warnings = [str(m) for m in response.context["messages"] if m.level_tag == "warning"]
    assert len(warnings) == 1 and "no price" in warnings[0] and "manage.py models price" in warnings[0]
    assert "no price" in response.content.decode()  # shown on the page the admin lands on
