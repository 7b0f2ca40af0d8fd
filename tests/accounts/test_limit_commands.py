"""The operators' limit commands: `client_keys list|revoke|limit` and `user_limits`, with their
errors (non-zero exit: CommandError), and what they change as the hot path reads it."""

from __future__ import annotations

import io
import json
from decimal import Decimal

import pytest
from asgiref.sync import async_to_sync
from django.core.management import CommandError, call_command

from accounts.models import ClientKey
from accounts.selectors import client_key_get_by_secret
from tests.factories import UserFactory, make_client_key

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


@pytest.fixture
def alice_key():
    alice = UserFactory(username="alice")
    key, secret = make_client_key(user=alice, name="laptop")
    return key, secret


def test_list_json_gives_prefix_name_user_state_and_limits_never_a_secret(alice_key):
    key, secret = alice_key
    make_client_key(user=UserFactory(username="bob"), name="ci")
    listed = json.loads(run("client_keys", "list", "--user", "alice", "--json"))
    assert [entry["prefix"] for entry in listed] == [key.prefix]
    entry = listed[0]
    assert (entry["name"], entry["user"], entry["state"]) == ("laptop", "alice", "active")
    assert entry["limits"]["rpm"] is None and entry["limits"]["allowed_models"] == []
    everything = run("client_keys", "list")
    assert "alice" in everything and "bob" in everything and secret not in everything


def test_limit_sets_and_clears_a_keys_limits_as_the_gateway_reads_them(alice_key):
    key, secret = alice_key
    output = run(
        "client_keys", "limit", key.prefix, "--rpm", "60", "--concurrent", "3",
        "--budget-cost", "12.50", "--period", "week", "--models", "claude-*, deepseek/*",
    )  # fmt: skip
    assert "rpm=60" in output and "concurrent=3" in output
    key.refresh_from_db()
    assert (key.rpm_limit, key.concurrent_limit, key.budget_cost) == (60, 3, Decimal("12.50"))
    assert key.allowed_models == ["claude-*", "deepseek/*"]
    limits = async_to_sync(client_key_get_by_secret)(secret).limits
    assert limits.key.rpm == 60 and limits.key.budget_micro_usd == 12_500_000 and limits.key.period == "week"
    assert limits.models.allows("claude-sonnet-4-6") and not limits.models.allows("gpt-5.5")
    run("client_keys", "limit", key.prefix, "--rpm", "none", "--budget-tokens", "1000")
    key.refresh_from_db()
    assert key.rpm_limit is None and key.budget_tokens == 1000 and key.budget_cost is None  # one budget


def test_revoke_by_prefix_refuses_the_key_at_once(alice_key):
    key, secret = alice_key
    assert "Revoked" in run("client_keys", "revoke", key.prefix)
    assert ClientKey.objects.get(pk=key.pk).revoked
    assert async_to_sync(client_key_get_by_secret)(secret) is None
    assert json.loads(run("client_keys", "list", "--json"))[0]["state"] == "revoked"


def test_revoking_a_revoked_key_says_so_and_changes_nothing(alice_key):
    key, _ = alice_key
    run("client_keys", "revoke", key.prefix)
    revoked_at = ClientKey.objects.get(pk=key.pk).revoked_at
    again = run("client_keys", "revoke", key.prefix)  # exit status 0: revoking is idempotent
    assert "already revoked" in again and not again.startswith("Revoked")
    assert ClientKey.objects.get(pk=key.pk).revoked_at == revoked_at


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("client_keys", "revoke", "ccs_nosuchkey0000"), "no client key with prefix"),
        (("client_keys", "limit", "ccs_nosuchkey0000", "--rpm", "5"), "no client key with prefix"),
        (("user_limits", "nobody", "--rpm", "5"), "no user 'nobody'"),
        (("user_limits", "alice", "--rpm", "0"), "at least 1"),
        (("user_limits", "alice", "--tpm", "many"), "whole number"),
        (("user_limits", "alice", "--budget-cost", "lots"), "--budget-cost expects an amount"),
    ],
)
def test_errors_are_clear_and_fail_the_command(alice_key, args, message):
    with pytest.raises(CommandError, match=message):
        run(*args)


def test_a_limit_command_without_a_limit_is_an_error(alice_key):
    key, _ = alice_key
    with pytest.raises(CommandError, match="at least one limit option"):
        run("client_keys", "limit", key.prefix)


def test_user_limits_show_and_set_what_bounds_all_the_users_keys(alice_key):
    _, secret = alice_key
    assert "no limits" in run("user_limits", "alice")
    shown = json.loads(run("user_limits", "alice", "--tpm", "50000", "--budget-tokens", "9000", "--json"))
    assert shown["user"] == "alice"
    assert shown["limits"]["tpm"] == 50000 and shown["limits"]["budget_tokens"] == 9000
    limits = async_to_sync(client_key_get_by_secret)(secret).limits
    assert limits.user.tpm == 50000 and limits.key is None


def run_with_stderr(*args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command(*args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_a_cost_budget_over_unpriced_models_is_saved_with_a_warning(alice_key):
    key, _ = alice_key
    # The seeded catalog has no prices: the budget would count nothing.
    out, err = run_with_stderr("client_keys", "limit", key.prefix, "--budget-cost", "5")
    key.refresh_from_db()
    assert key.budget_cost == Decimal("5") and "budget_cost=5.0" in out
    assert err.startswith("warning:") and "manage.py models price" in err and "no price" in err
    out, err = run_with_stderr("user_limits", "alice", "--budget-cost", "7")
    assert err.startswith("warning:") and "manage.py models price" in err
    assert "budget_cost=7.0" in out

    # Once every model the key may use is priced, no warning; other limit changes never warn.
    from catalog.services import set_prices

    set_prices("deepseek/deepseek-v4-flash", input="0.27", output="1.10")
    _, err = run_with_stderr(
        "client_keys", "limit", key.prefix, "--budget-cost", "5", "--models", "deepseek/deepseek-v4-flash"
    )
    assert err == ""
    _, err = run_with_stderr("user_limits", "alice", "--rpm", "10")
    assert err == ""


def test_a_cost_budget_finer_than_the_column_is_refused_not_rounded_to_zero(alice_key):
    key, _ = alice_key
    with pytest.raises(CommandError, match=r"steps of 0\.0001 USD"):
        run("client_keys", "limit", key.prefix, "--budget-cost", "0.0000001")
    key.refresh_from_db()
    assert key.budget_cost is None
    run("client_keys", "limit", key.prefix, "--budget-cost", "0.0001")
    key.refresh_from_db()
    assert key.budget_cost == Decimal("0.0001")
