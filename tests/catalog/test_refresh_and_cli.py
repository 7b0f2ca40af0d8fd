"""Live refresh from the simulator's GET /provider/v1/models, and the `models` command."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import httpx
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from catalog import snapshot
from catalog.models import Model, ModelAlias, RefreshRecord
from catalog.refresh import refresh
from tests.live import PROJECT_ROOT


@pytest.fixture
def upstream(simulator, settings, db):
    settings.CC_UPSTREAM_BASE_URL = simulator.url

    def change(**body):
        httpx.post(f"{simulator.url}/_sim/models", json=body, timeout=10).raise_for_status()

    yield change
    httpx.post(f"{simulator.url}/_sim/reset", timeout=10).raise_for_status()


def test_refresh_adds_new_models_enabled_and_marks_vanished_ones(upstream):
    upstream(
        add=[{"id": "vendor/new-model-9", "name": "New Model 9", "context_length": 123_000}],
        remove=["tencent/Hy3"],
    )
    record = refresh("cli")
    assert record.ok and record.added == ["vendor/new-model-9"] and record.vanished == ["tencent/Hy3"]
    new = Model.objects.get(upstream_id="vendor/new-model-9")
    assert new.enabled and new.source == "live" and new.context_window == 123_000
    assert new.first_seen_upstream is not None and new.display_name == "New Model 9"
    gone = Model.objects.get(upstream_id="tencent/Hy3")  # marked, never deleted
    assert gone.missing_upstream and gone.enabled
    assert snapshot.served_model("new-model-9").id == "vendor/new-model-9"  # live here at once
    upstream(add=["tencent/Hy3"])
    assert refresh("cli").returned == ["tencent/Hy3"]
    assert not Model.objects.get(upstream_id="tencent/Hy3").missing_upstream


def test_new_models_arrive_disabled_when_the_setting_says_so(upstream, settings):
    settings.CCSITE_MODELS_NEW_ENABLED = False
    upstream(add=["vendor/brand-new-model"])
    assert refresh("admin").added == ["vendor/brand-new-model"]
    assert not Model.objects.get(upstream_id="vendor/brand-new-model").enabled
    assert snapshot.current().catalog.resolve("vendor/brand-new-model").enabled is False


def test_a_failed_refresh_keeps_the_list_and_records_why(upstream):
    before = list(Model.objects.values_list("upstream_id", "enabled", "missing_upstream"))
    upstream(fail=503)
    record = refresh("schedule")
    assert not record.ok and "HTTP 503" in record.error
    assert list(Model.objects.values_list("upstream_id", "enabled", "missing_upstream")) == before
    assert RefreshRecord.objects.get(pk=record.pk).error == record.error


def test_cli_refresh_reports_changes_and_failures(upstream, capsys):
    upstream(add=["vendor/cli-model"])
    call_command("models", "refresh")
    assert "added 1: vendor/cli-model" in capsys.readouterr().out
    upstream(fail=500)
    with pytest.raises(CommandError, match="refresh failed, the catalog is unchanged: HTTP 500"):
        call_command("models", "refresh")


@pytest.mark.django_db
def test_cli_list_enable_disable_alias_price(capsys):
    call_command("models", "disable", "zai-org/GLM-5", "ZAI-ORG/glm-5.1")
    assert "Disabled: zai-org/GLM-5, zai-org/GLM-5.1" in capsys.readouterr().out
    assert snapshot.current().catalog.resolve("glm-5").enabled is False
    call_command("models", "list", "--enabled", "--json")
    listed = json.loads(capsys.readouterr().out)
    assert (
        "zai-org/GLM-5" not in [row["id"] for row in listed]
        and len(listed) == Model.objects.filter(enabled=True).count()
    )
    call_command("models", "enable", "zai-org/GLM-5")
    call_command("models", "alias", "fast", "deepseek/deepseek-v4-flash-fast")
    assert snapshot.served_model("FAST").id == "deepseek/deepseek-v4-flash-fast"
    call_command("models", "alias", "--remove", "fast")
    assert not ModelAlias.objects.filter(name="fast").exists()
    call_command("models", "price", "gpt-5.5", "--input", "1.25", "--output", "10", "--cache-read", "0.125")
    assert snapshot.prices_for("gpt-5.5") == snapshot.Prices(1.25, 0.125, None, 10.0)
    call_command("models", "list")
    table = capsys.readouterr().out
    assert "off zai-org/GLM-5.1" in table and "on  zai-org/GLM-5 " in table


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["enable", "no/such-model"], "Unknown model id(s): no/such-model"),
        (["alias", "x", "no/such-model"], "Unknown model id(s): no/such-model"),
        (["alias", "--remove", "never-made"], "No alias named 'never-made'"),
        (["alias", "gpt-5.5", "gpt-5.4"], "already a model id"),
        (["price", "gpt-5.5", "--input", "cheap", "--output", "1"], "input: 'cheap' is not a number"),
        (["price", "gpt-5.5", "--input", "-1", "--output", "1"], "non-negative"),
    ],
)
def test_cli_errors_are_clear(args, message):
    with pytest.raises(CommandError) as error:
        call_command("models", *args)
    assert message in str(error.value)


def test_cli_error_exits_non_zero_with_one_line(transactional_db):
    result = subprocess.run(
        [sys.executable, "manage.py", "models", "disable", "no/such-model"],
        cwd=PROJECT_ROOT,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings", "CCSITE_USE_TEST_DB": "1"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "Unknown model id(s): no/such-model" in result.stderr and "Traceback" not in result.stderr


def test_admin_refresh_action_shows_what_changed(upstream, admin_client):
    from django.urls import reverse

    upstream(add=["vendor/admin-model"], remove=["tencent/hy3-paid"])
    any_model = Model.objects.first()
    response = admin_client.post(
        reverse("admin:catalog_model_changelist"),
        {"action": "refresh_from_upstream", "_selected_action": [any_model.pk], "index": "0"},
        follow=True,
    )
    page = response.content.decode()
    assert "added vendor/admin-model" in page and "vanished tencent/hy3-paid" in page
    upstream(fail=502)
    response = admin_client.post(
        reverse("admin:catalog_model_changelist"),
        {"action": "refresh_from_upstream", "_selected_action": [any_model.pk], "index": "0"},
        follow=True,
    )
    assert "Refresh failed; the catalog is unchanged: HTTP 502" in response.content.decode()


def test_alias_added_in_the_admin_applies_at_once(admin_client):
    from django.urls import reverse

    target = Model.objects.get(upstream_id="xai/grok-4.7")
    response = admin_client.post(
        reverse("admin:catalog_modelalias_add"), {"name": "grok", "model": target.pk}
    )
    assert response.status_code == 302
    assert snapshot.served_model("Grok").id == "xai/grok-4.7"


def test_a_refresh_that_cannot_connect_names_the_url_it_tried(settings, db, capsys):
    """A wrong or missing CC_UPSTREAM_BASE_URL (say, .env without the simulator's) shows in the
    error of `models refresh` and `credentials refresh` alike."""
    from tests.factories import make_credential
    from tests.live import free_port

    closed = f"http://127.0.0.1:{free_port()}"  # a free port: nothing listens there
    settings.CC_UPSTREAM_BASE_URL = closed
    with pytest.raises(
        CommandError, match=f"unchanged: cannot reach {closed}/provider/v1/models: ConnectError"
    ):
        call_command("models", "refresh")
    make_credential(label="offline", api_key="user_offline_0000000000")
    call_command("credentials", "refresh")
    assert f"offline: failed: {closed}/alpha/" in capsys.readouterr().out
