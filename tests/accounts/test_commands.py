from __future__ import annotations

import io
import json
import os
import subprocess
import sys

import pytest
from asgiref.sync import async_to_sync
from django.core.management import CommandError, call_command

from accounts import crypto
from accounts.models import UpstreamCredential, User
from accounts.selectors import client_key_get_by_secret
from tests.factories import make_client_key
from tests.live import PROJECT_ROOT

pytestmark = pytest.mark.django_db

CLI_KEY = "user_fromcli_0123456789abcdefLMNO"


def run(*args: str) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_create_client_key_prints_a_working_key_on_the_last_line():
    output = run("create_client_key", "--user", "alice", "--name", "laptop", "--create-user")
    secret = output.strip().splitlines()[-1]
    principal = async_to_sync(client_key_get_by_secret)(secret)
    assert principal is not None and principal.username == "alice" and principal.key_name == "laptop"


def test_create_client_key_says_how_a_user_without_a_password_gets_one():
    output = run("create_client_key", "--user", "alice", "--create-user")
    assert "alice has no password" in output and "manage.py changepassword alice" in output
    user = User.objects.get(username="alice")
    user.set_password("a-long-test-password-1")
    user.save()
    assert "no password" not in run("create_client_key", "--user", "alice", "--name", "second")


def test_create_client_key_for_a_missing_user_fails_clearly():
    with pytest.raises(CommandError, match="no user 'bob'.*--create-user"):
        run("create_client_key", "--user", "bob")


def test_add_upstream_credential_from_cli_auth_file(tmp_path):
    auth = tmp_path / "auth.json"
    auth.write_text(json.dumps({"apiKey": CLI_KEY, "userId": "u1", "userName": "dev", "keyName": "cli"}))
    output = run("add_upstream_credential", "--label", "team", "--from-cli-auth", str(auth))
    credential = UpstreamCredential.objects.get(label="team")
    assert crypto.decrypt_secret(credential.secret_encrypted) == CLI_KEY
    assert CLI_KEY not in output and "…LMNO" in output


def test_add_upstream_credential_with_api_key():
    run("add_upstream_credential", "--label", "direct", "--api-key", CLI_KEY, "--weight", "2")
    assert UpstreamCredential.objects.get(label="direct").weight == 2


@pytest.mark.parametrize(
    "contents, message",
    [(None, "no Command Code auth file"), ("not json", "not a readable"), ("{}", "holds no apiKey")],
)
def test_bad_cli_auth_files_fail_clearly(tmp_path, contents, message):
    auth = tmp_path / "auth.json"
    if contents is not None:
        auth.write_text(contents)
    with pytest.raises(CommandError, match=message):
        run("add_upstream_credential", "--label", "x", "--from-cli-auth", str(auth))


def _manage(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings", "CCSITE_USE_TEST_DB": "1"}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    "args",
    [
        ("create_client_key",),  # --user missing
        ("add_upstream_credential", "--label", "x"),  # no key source
        ("add_upstream_credential", "--label", "x", "--api-key", "k" * 12, "--from-cli-auth"),  # both
        ("add_upstream_credential", "--label", "x", "--api-key", "k" * 12, "--weight", "heavy"),
        ("add_upstream_credential", "--label", "x", "--from-cli-auth", "/nonexistent/auth.json"),
    ],
)
def test_bad_arguments_exit_non_zero_with_one_line_and_no_traceback(args):
    result = _manage(*args)
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--tpm", "100000000000"), "tpm limit can be at most 2,147,483,647"),
        (("--budget-cost", "100000000"), "the cost budget must be less than 100,000,000 USD"),
    ],
)
def test_limits_past_the_columns_range_are_refused_the_same_on_every_database(args, message):
    key, _ = make_client_key()
    with pytest.raises(CommandError, match=message):
        call_command("client_keys", "limit", key.prefix, *args)
    key.refresh_from_db()
    assert key.tpm_limit is None and key.budget_cost is None
