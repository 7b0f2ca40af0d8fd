"""The real Command Code CLI (command-code@1.64.0) against the simulator (protocol §1).

Opt-in: set ``CCSITE_COMMANDCODE_CLI`` to the CLI's ``cmd`` binary, with Node 22 first on
PATH. ``make cc-cli-check`` installs both into a cache folder outside the repo and runs this.
It checks that the simulator accepts everything the CLI sends (§3 headers, §5 envelope) and
that the CLI reacts to each scenario as the protocol doc says (§9.2 exit codes, §10 retries).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from proxy.upstream.simulator.config import KeyBehaviour
from proxy.upstream.simulator.recorder import RequestRecord
from proxy.upstream.simulator.scenarios import expected_text
from proxy.upstream.simulator.server import SimulatorThread

CLI = os.environ.get("CCSITE_COMMANDCODE_CLI", "")
if not CLI:
    pytest.skip(
        "set CCSITE_COMMANDCODE_CLI to the cmd binary of command-code@1.64.0 (make cc-cli-check does)",
        allow_module_level=True,
    )

pytestmark = [pytest.mark.e2e, pytest.mark.live]

CLI_VERSION = "1.64.0"
KEY = "user_cli_e2e_check"
README = "# sample project\nThe simulator's tool call reads this file.\n"
# protocol §3: the generate headers the CLI sends, in this order (undici adds host/connection
# before them and accept/... after).
GENERATE_HEADER_ORDER = [
    "content-type",
    "user-agent",
    "x-command-code-version",
    "x-cli-environment",
    "x-project-slug",
    "x-taste-learning",
    "x-session-id",
    "authorization",
]
# protocol §5: top-level key order of the envelope.
ENVELOPE_ORDER = ["config", "memory", "taste", "skills", "permissionMode", "threadId", "params"]


@pytest.fixture(scope="module")
def sim() -> Iterator[SimulatorThread]:
    with SimulatorThread() as server:
        yield server


@pytest.fixture(scope="module", autouse=True)
def _cli_is_the_pinned_version(tmp_path_factory):
    home = tmp_path_factory.mktemp("home")
    result = subprocess.run(
        [CLI, "--version"], capture_output=True, text=True, timeout=60, env=_env(home, "http://127.0.0.1:9")
    )
    assert result.returncode == 0, f"cmd --version failed (is Node 22 first on PATH?): {result.stderr[-500:]}"
    assert result.stdout.strip() == CLI_VERSION


def _env(home: Path, api_url: str, key: str = KEY) -> dict[str, str]:
    return {
        "PATH": os.environ["PATH"],
        "HOME": str(home),
        "COMMANDCODE_SANDBOX": "true",
        "COMMANDCODE_API_URL": api_url,
        "COMMAND_CODE_API_KEY": key,
        "DO_NOT_TRACK": "1",
        "COMMANDCODE_SKIP_UPDATES": "1",
    }


@dataclass
class CliRunner:
    """Runs ``cmd -p`` in a project folder with its own HOME, against the simulator."""

    cli_url: str
    workdir: Path
    home: Path

    def __call__(self, prompt: str, *args: str, key: str = KEY) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [CLI, "-p", prompt, *args],
            cwd=self.workdir,
            env=_env(self.home, self.cli_url, key),
            capture_output=True,
            text=True,
            timeout=120,
        )


@pytest.fixture
def run_cli(sim, tmp_path) -> CliRunner:
    sim.app.reset()
    workdir = tmp_path / "project"
    workdir.mkdir()
    (workdir / "README.md").write_text(README)
    home = tmp_path / "home"
    home.mkdir()
    return CliRunner(sim.url, workdir, home)


def generate_calls(sim: SimulatorThread) -> list[RequestRecord]:
    return sim.app.recorder.records(path="/alpha/generate")


def test_plain_text_prints_and_exits_0(run_cli, sim):
    result = run_cli("Say hello")

    assert result.returncode == 0, result.stderr
    assert expected_text() in result.stdout
    assert all(record.status == 200 for record in sim.app.recorder.records())
    [call] = generate_calls(sim)
    assert call.finish_sent and call.outcome == "completed"


def test_simulator_accepts_the_headers_and_envelope_the_cli_sends(run_cli, sim):
    assert run_cli("Say hello").returncode == 0
    [call] = generate_calls(sim)

    names = [name for name, _ in call.headers]
    assert [name for name in names if name in GENERATE_HEADER_ORDER] == GENERATE_HEADER_ORDER
    assert "application/json" in (call.header("content-type") or "")
    assert call.header("user-agent") == "cli"
    assert call.header("x-command-code-version") == CLI_VERSION
    assert call.header("x-cli-environment") == "production"
    assert call.header("traceparent") is None  # DO_NOT_TRACK=1
    body = call.body
    assert list(body) == ENVELOPE_ORDER
    assert call.header("x-session-id") == body["threadId"]
    assert body["memory"] is None and body["permissionMode"] == "standard"
    assert body["config"]["workingDir"] == str(run_cli.workdir)
    params = body["params"]
    assert params["stream"] is True and params["max_tokens"] == 64000
    assert params["model"] == "deepseek/deepseek-v4-flash"
    assert {tool["name"] for tool in params["tools"]} >= {"read_file", "shell_command"}
    assert params["messages"][-1] == {"role": "user", "content": [{"type": "text", "text": "Say hello"}]}


def test_reasoning_model_with_effort(run_cli, sim):
    result = run_cli("[sim:reasoning] think", "--model", "claude-sonnet-4-6", "--effort", "high")

    assert result.returncode == 0, result.stderr
    assert expected_text("reasoning") in result.stdout
    [call] = generate_calls(sim)
    assert call.body["params"]["model"] == "claude-sonnet-4-6"
    assert call.body["params"]["reasoning_effort"] == "high"


def test_tool_call_is_run_and_its_result_sent_back(run_cli, sim):
    result = run_cli("[sim:tool-call] read the readme")

    assert result.returncode == 0, result.stderr
    first, second = generate_calls(sim)
    assert first.scenario == second.scenario == "tool-call"
    messages = second.body["params"]["messages"]
    assert messages[-2]["role"] == "assistant"
    assert {"type": "tool-call", "toolCallId": "call_sim_0_0", "toolName": "read_file"}.items() <= (
        messages[-2]["content"][-1].items()
    )
    [tool_result] = messages[-1]["content"]
    assert (messages[-1]["role"], tool_result["type"], tool_result["toolCallId"]) == (
        "tool",
        "tool-result",
        "call_sim_0_0",
    )
    assert "The simulator's tool call reads this file." in tool_result["output"]["value"]


def test_parallel_tool_calls_are_all_answered(run_cli, sim):
    assert run_cli("[sim:tool-calls] read it three times").returncode == 0

    results = generate_calls(sim)[-1].body["params"]["messages"][-1]["content"]
    assert [part["toolCallId"] for part in results] == ["call_sim_0_0", "call_sim_0_1", "call_sim_0_2"]


@pytest.mark.parametrize(
    ("directive", "exit_code"),
    [
        ("http-402", 1),  # example 05: plan gating, not retried
        ("http-429", 5),  # example 06: usage window, not retried
        ("http-401", 3),  # authentication failed
        ("error-fatal", 1),  # in-band 402 isRetryable false (example 04 notes)
    ],
)
def test_terminal_errors_exit_without_retry(run_cli, sim, directive, exit_code):
    result = run_cli(f"[sim:{directive}] go")

    assert result.returncode == exit_code, result.stderr
    assert len(generate_calls(sim)) == 1


def test_retryable_inband_error_is_retried_as_stream_restarts(run_cli, sim):
    result = run_cli("[sim:error-retryable] go")

    # protocol §10 / example 04: 3 stream restarts after visible text, then exit 7.
    assert result.returncode == 7
    assert len(generate_calls(sim)) == 4


def test_truncated_stream_is_retried(run_cli, sim):
    result = run_cli("[sim:truncate] go")

    assert result.returncode == 7
    assert len(generate_calls(sim)) == 4


@pytest.mark.parametrize(
    ("failure", "statuses"),
    [("http-500", [500, 500, 200]), ("http-529", [529, 529, 200]), ("http-429-plain", [429, 429, 200])],
)
def test_retryable_http_errors_are_retried_until_success(run_cli, sim, failure, statuses):
    sim.app.keys["user_flaky_cli"] = KeyBehaviour(fail_first=2, fail_with=failure)

    result = run_cli("hello", key="user_flaky_cli")

    assert result.returncode == 0, result.stderr
    assert expected_text() in result.stdout
    assert [record.status for record in generate_calls(sim)] == statuses
