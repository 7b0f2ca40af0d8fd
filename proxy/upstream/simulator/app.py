"""The Command Code upstream simulator: a plain ASGI 3 app (no Django) that speaks protocol §4-§11.

``build_simulator(config)`` returns the app; ``proxy/upstream/simulator/server.py`` serves it with
uvicorn (``manage.py ccsimulator``). Every stream is deterministic, so tests and the
benchmark can check it exactly with ``expected_text``/``expected_usage``.

Routes
    POST /alpha/generate          NDJSON stream of §8 (HTTP 200, text/event-stream) or a §9.1 error
    GET  /alpha/whoami, /alpha/billing/credits, /alpha/billing/subscriptions, /alpha/usage/summary
    POST /alpha/lifecycle-events, /alpha/fingerprint/record, any other /alpha/*   {"success":true}
    GET  /provider/v1/models      the §13 catalog, no auth
    GET  /_sim/health, GET|DELETE /_sim/requests, POST /_sim/keys, POST /_sim/reset, GET /_sim/scenarios
    POST /_sim/models  change the live list: {"add": [{"id", "name"?, "context_length"?} | "id"],
                       "remove": ["id"], "fail": 503 | null} (fail: the list answers that status)

Validation of /alpha/generate (in this order, like the real service)
    401 unless ``Authorization: Bearer user_...`` (and the key is configured, when unknown keys are
    refused); 400 unless content-type contains application/json (§3) and the body is JSON of the
    §5 shape (config object, memory/taste/skills null or string, permissionMode, threadId UUID,
    mode, params with model/messages/tools/system, max_tokens <= 200000, stream, tool_choice,
    tool results only after their call); 403 "Model/provider not recognized" unless the model is
    a §13 catalog id, ``sim/<scenario>`` or listed in ``extra_models``.

Choosing a scenario (first match wins)
    1. the key's ``fail_first`` counter: its first N generate calls get ``fail_with``;
    2. the key's forced ``scenario`` (``http-401`` fails every authenticated route);
    3. a directive in the last user message, ``[sim:<scenario> key=value ...]``;
    4. the model ``sim/<scenario>``;
    5. ``default_scenario`` (``text``).
    Parameters: scenario defaults < key ``defaults`` < the selection's own key=value pairs.
    A key's ``credits`` and ``period_days`` set its billing/credits monthlyCredits and its
    subscription's currentPeriodEnd (days from now), for billing and routing tests.

Scenarios (name: what the stream does; defaults in brackets)
    text            start, start-step, text-start, N text-deltas, text-end, finish-step, finish
                    ("stop"), provider-metadata [deltas=4: "Hello from the simulator."]
                    (alias text-only)
    long / paced / slow     text with deltas=1000 / deltas=20 delay_ms=50 / first_delay_ms=2000
    length          text whose finish is "length" (rawFinishReason "max_tokens")
    huge-start-step text with a start-step line padded to start_step_kb KiB [4096]
    reasoning       reasoning-start, R reasoning-deltas, text-start, reasoning-end, text... [R=3]
    cache-usage     reasoning with input=212 cache_read=1792 cache_write=256
    tool-call / tool-calls  text, then 1 / 3 tool calls, each tool-input-start, arg_deltas
                    tool-input-deltas, tool-input-end, tool-call; finish "tool-calls". When the
                    last message is a tool result they answer with the text scenario instead.
    echo            the last user text without directives, in at most `deltas` pieces
    unicode         words with multi-byte UTF-8, U+2028, U+2029 and U+0085 [deltas=10]
    stall           `after` text deltas, then nothing until the client disconnects [after=1]
    stall-headers   no response at all until the client disconnects
    truncate        `after` text deltas, then EOF without finish (§8.3) [after=2]
    error-retryable `after` deltas, then {"type":"error","error":{message,statusCode:503,
                    isRetryable:true}} and EOF (example 04) [after=1] (alias error-midstream)
    error-fatal     the same with statusCode 402, isRetryable false
    abort           `after` deltas, then {"type":"abort"} (a clean end, §8.2) [after=2]
    http-401, http-402 (example 05), http-403 (MODEL_NOT_IN_PLAN), http-429 (usage window,
    example 06, retry-after, rateLimit.reset; window=fiveHour|weekly|daily), http-429-plain
    (retryable), http-500, http-529, and http-NNN for any 4xx/5xx: a §9.1 JSON error.

Parameters (any scenario): deltas, reasoning_deltas, delay_ms (between deltas), first_delay_ms
    (after the 200 headers), headers_delay_ms (before them), after, tools, tool, file, args,
    arg_deltas, status, retryable, window, start_step_kb, input, cache_read, cache_write,
    finish (stop|length|content-filter|tool-calls|error|other). ``tool`` is a name or a comma
    list cycled over the calls; without it, read_file when the request declares read_file or no
    tools, else the first declared tool. read_file gets {"file_path": <config.workingDir>/<file>}
    (a path inside the CLI's cwd, example 03); other tools get {"arg1": "value 1", ...} (`args`).

Deterministic output
    text delta i is WORDS[i % 16] followed by " " (the last one by "."); reasoning delta i is
    "Thought {i+1}." (space-separated); tool call j of turn t (assistant messages so far) has id
    ``call_sim_{t}_{j}``; usage: noCacheTokens=input, inputTokens=input+cache_read+cache_write,
    textTokens = text deltas + tool-input deltas, reasoningTokens = reasoning deltas,
    outputTokens = their sum. ``scenarios.expected_text(selection)`` and
    ``events.expected_usage(selection)`` compute them; only finish-step's response id
    (``gen_sim_<request id>``) and timestamp vary.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

from proxy.translate.catalog import all_models
from proxy.upstream.simulator import account as sim_account
from proxy.upstream.simulator import recorder as sim_recorder
from proxy.upstream.simulator import scenarios as sc
from proxy.upstream.simulator.asgi import ClientGone, Receive, Send, StreamSender, read_body, send_response
from proxy.upstream.simulator.config import ConfigError, KeyBehaviour, SimConfig, key_behaviour
from proxy.upstream.simulator.errors import RequestRejected, SimResponse, json_response, scenario_error
from proxy.upstream.simulator.events import build_script
from proxy.upstream.simulator.recorder import Recorder, RequestRecord, key_fingerprint
from proxy.upstream.simulator.select import Selection, select, stream_plan
from proxy.upstream.simulator.validate import (
    bearer_key,
    check_json_content_type,
    parse_json_body,
    validate_envelope,
)

GENERATE = "/alpha/generate"
CONTROL_PREFIX = "/_sim/"
CONTROL_BODY_LIMIT = 1024 * 1024


def _timestamp() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class Simulator:
    """The ASGI app. State (keys, counters, recorder) lives on the instance."""

    def __init__(self, config: SimConfig) -> None:
        self.config = config
        self.recorder = Recorder(limit=config.record_limit, body_limit=config.record_body_limit)
        self.keys: dict[str, KeyBehaviour] = dict(config.keys)
        self.generate_calls: Counter[str] = Counter()  # per key, for fail_first
        self._catalog = frozenset(info.id for info in all_models()) | frozenset(config.extra_models)
        self._listed_extra: dict[str, dict[str, Any]] = {}  # added over /_sim/models
        self._listed_removed: set[str] = set()
        self._models_fail: int | None = None
        self._account_routes: dict[tuple[str, str], Callable[[str], dict[str, Any]]] = {
            ("GET", "/alpha/whoami"): sim_account.whoami,
            ("GET", "/alpha/billing/credits"): _credits,
            ("GET", "/alpha/billing/subscriptions"): _subscriptions,
            ("GET", "/alpha/usage/summary"): self._usage_summary,
        }

    def is_known_model(self, model: str) -> bool:
        known = model in self._catalog or model in self._listed_extra
        return known and model not in self._listed_removed or sc.is_scenario_model(model)

    def _model_list(self) -> SimResponse:
        if self._models_fail is not None:
            raise RequestRejected(self._models_fail, "The model list is unavailable.")
        listing = sim_account.model_list()
        data = [entry for entry in listing["data"] if entry["id"] not in self._listed_removed]
        data += [
            entry for model_id, entry in self._listed_extra.items() if model_id not in self._listed_removed
        ]
        return json_response(200, {**listing, "data": data})

    def _change_models(self, data: Any) -> SimResponse:
        if not isinstance(data, dict) or set(data) - {"add", "remove", "fail"}:
            return RequestRejected(400, 'expected {"add": [...], "remove": [...], "fail": status}').response()
        for entry in data.get("add") or ():
            entry = {"id": entry} if isinstance(entry, str) else dict(entry)
            entry.setdefault("name", entry["id"])
            entry.setdefault("context_length", 200_000)
            self._listed_extra[entry["id"]] = {**entry, "created": sim_account.CATALOG_CREATED}
            self._listed_removed.discard(entry["id"])
        self._listed_removed.update(data.get("remove") or ())
        if "fail" in data:
            self._models_fail = data["fail"]
        return json_response(200, {"ok": True})

    def reset(self) -> None:
        """Forget recorded requests, counters and keys set over HTTP."""
        self.recorder.clear()
        self.generate_calls.clear()
        self.keys = dict(self.config.keys)
        self._listed_extra.clear()
        self._listed_removed.clear()
        self._models_fail = None

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
        elif scope["type"] == "http":
            await self._http(scope, receive, send)

    async def _http(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["path"].startswith(CONTROL_PREFIX):
            await send_response(send, await self._control(scope, receive))
            return
        record = self.recorder.start(
            method=scope["method"],
            path=scope["path"],
            query=scope.get("query_string", b"").decode("latin-1"),
            headers=scope["headers"],
        )
        try:
            await self._serve(scope, receive, send, record)
        except RequestRejected as rejected:
            await self._respond(send, rejected.response(), record)
        except ClientGone:
            record.end(sim_recorder.DISCONNECTED)
        finally:
            if record.outcome == sim_recorder.STREAMING:
                record.end(sim_recorder.CANCELLED)  # shut down mid-response

    async def _serve(
        self, scope: dict[str, Any], receive: Receive, send: Send, record: RequestRecord
    ) -> None:
        method, path = scope["method"], scope["path"]
        if (method, path) == ("POST", GENERATE):
            await self._generate(scope, receive, send, record)
        elif path == GENERATE:
            raise RequestRejected(
                405, f"Method {method} not allowed on {GENERATE}", code="METHOD_NOT_ALLOWED"
            )
        elif (method, path) == ("GET", "/provider/v1/models"):
            await self._respond(send, self._model_list(), record)
        elif path.startswith("/alpha/"):
            body = await read_body(receive, self.config.max_body_bytes)
            key = self._authenticate(scope, record)
            self.recorder.keep_body(record, body, _json_or_none(body))
            if (method, path) == ("GET", "/alpha/billing/credits"):
                answer = sim_account.credits(self._behaviour(key).credits)
            elif (method, path) == ("GET", "/alpha/billing/subscriptions"):
                answer = sim_account.subscriptions(period_days=self._behaviour(key).period_days)
            else:
                answer = self._account_routes.get((method, path), _success)(key_fingerprint(key))
            await self._respond(send, json_response(200, answer), record)
        else:
            raise RequestRejected(404, f"No route for {method} {path}")

    async def _respond(self, send: Send, response: SimResponse, record: RequestRecord) -> None:
        record.status = response.status
        await send_response(send, response)
        record.end(sim_recorder.COMPLETED)

    def _authenticate(self, scope: dict[str, Any], record: RequestRecord) -> str:
        key = bearer_key(scope["headers"])
        record.key_fingerprint = key_fingerprint(key)
        behaviour = self.keys.get(key)
        if behaviour is None and not self.config.accept_unknown_keys:
            raise RequestRejected(401, "Invalid API key.")
        if behaviour is not None and behaviour.always_unauthorized:
            raise RequestRejected(401, "Invalid API key.")
        return key

    def _behaviour(self, key: str) -> KeyBehaviour:
        return self.keys.get(key) or KeyBehaviour()

    def _usage_summary(self, fingerprint: str) -> dict[str, Any]:
        count = len(self.recorder.records(path=GENERATE, key_fingerprint=fingerprint))
        return sim_account.usage_summary(count)

    async def _generate(
        self, scope: dict[str, Any], receive: Receive, send: Send, record: RequestRecord
    ) -> None:
        body = await read_body(receive, self.config.max_body_bytes)
        headers = scope["headers"]
        key = self._authenticate(scope, record)
        check_json_content_type(headers)
        envelope = parse_json_body(body)
        self.recorder.keep_body(record, body, envelope)
        validate_envelope(envelope, is_known_model=self.is_known_model)
        self.generate_calls[key] += 1
        selection = self._select(envelope, key, record)
        if selection.scenario.kind == sc.HTTP:
            raise scenario_error(selection.params, model=envelope["params"]["model"])
        if selection.scenario.kind == sc.STALL_HEADERS:
            await _wait_for_disconnect(receive)
            record.end(sim_recorder.DISCONNECTED)
            return
        script = build_script(stream_plan(selection, envelope))
        sender = StreamSender(
            send, receive, record, response_id=f"gen_sim_{record.id}", timestamp=_timestamp()
        )
        await sender.send(script, selection.params, selection.scenario.name)

    def _select(self, envelope: dict[str, Any], key: str, record: RequestRecord) -> Selection:
        selection = select(
            envelope,
            self.keys.get(key),
            attempt=self.generate_calls[key],
            default=self.config.default_scenario,
        )
        record.scenario = selection.scenario.name
        record.selected_by = selection.selected_by
        record.params = asdict(selection.params)
        return selection

    async def _control(self, scope: dict[str, Any], receive: Receive) -> SimResponse:
        """Simulator-only routes for tests in other processes (never recorded)."""
        method, path = scope["method"], scope["path"]
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        body = await read_body(receive, CONTROL_BODY_LIMIT)
        if (method, path) == ("GET", "/_sim/health"):
            return json_response(200, {"ok": True})
        if (method, path) == ("GET", "/_sim/requests"):
            return json_response(200, self._requests_listing(query))
        if (method, path) == ("DELETE", "/_sim/requests"):
            self.recorder.clear()
            return json_response(200, {"ok": True})
        if (method, path) == ("POST", "/_sim/reset"):
            self.reset()
            return json_response(200, {"ok": True})
        if (method, path) == ("POST", "/_sim/keys"):
            return self._set_key(_json_or_none(body))
        if (method, path) == ("POST", "/_sim/models"):
            return self._change_models(_json_or_none(body))
        if (method, path) == ("GET", "/_sim/scenarios"):
            return json_response(200, {name: dict(s.defaults) for name, s in sc.SCENARIOS.items()})
        return RequestRejected(404, f"No route for {method} {path}").response()

    def _requests_listing(self, query: dict[str, list[str]]) -> dict[str, Any]:
        def first(name: str) -> str | None:
            return query.get(name, [None])[0]

        records = self.recorder.records(
            path=first("path"), key_fingerprint=first("key"), since=int(first("since") or 0)
        )
        with_body = first("bodies") != "0"
        return {
            "total_seen": self.recorder.total_seen,
            "requests": [record.as_json(with_body=with_body) for record in records],
        }

    def _set_key(self, data: Any) -> SimResponse:
        if not isinstance(data, dict) or not isinstance(data.get("key"), str):
            return RequestRejected(400, 'expected {"key": "user_...", ...behaviour}').response()
        key = data.pop("key")
        try:
            self.keys[key] = key_behaviour(data, "behaviour")
        except ConfigError as exc:
            return RequestRejected(400, str(exc)).response()
        self.generate_calls.pop(key, None)
        return json_response(200, {"ok": True, "key_fingerprint": key_fingerprint(key)})


def _credits(_fingerprint: str) -> dict[str, Any]:
    return sim_account.credits()


def _subscriptions(_fingerprint: str) -> dict[str, Any]:
    return sim_account.subscriptions()


def _success(_fingerprint: str) -> dict[str, Any]:
    return sim_account.success()


def _json_or_none(body: bytes) -> Any:
    try:
        return parse_json_body(body) if body else None
    except RequestRejected:
        return None


async def _wait_for_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


def build_simulator(config: SimConfig | None = None) -> Simulator:
    """The simulator app for ``config`` (defaults: any ``user_`` key, no failures)."""
    return Simulator(config or SimConfig())
