"""The API keeps its contract: schemathesis generates requests from the OpenAPI document and
checks every answer against it, in process, with the same seed every time.

Every operation is fuzzed: the management API with an admin key, the trigger URLs, vendor
webhooks and /healthz without one. Every other request names items that exist (a flow, its
trigger URL token, a connection of the test vendor ``acme`` with its webhook token, a run, a
spare API key), so requests get past the 404s; whatever a request deleted is made again first.
Each answer must pass schemathesis' checks: no server error; a documented status, content type,
headers and body; valid input accepted and invalid input refused; ``Allow`` on a 405 naming the
documented methods.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from schemathesis import Case
from schemathesis.engine import events
from schemathesis.python import asgi

from latchflow.engine import Engine
from latchflow.plugin.errors import ValidationError
from latchflow.storage.api_keys import Scope

from .conftest import webhook_flow

SEED = 20_251_130
MAX_EXAMPLES = 50
"""Generated requests per operation; coverage cases (boundaries, each invalid part) come on top."""
MIN_CASES = 2000
WAIT_SECONDS = 0.01
MANUAL_FLOW = {
    "id": "manual",
    "name": "Manual",
    "version": 1,
    "trigger": {"type": "manual"},
    "steps": [{"id": "echo", "action": "core.set", "input": {"values": {"n": 1}}}],
}
ACCEPTED = ["2xx", "401", "403", "404", "409", "412", "413"]
"""What valid input may be answered: done, refused for its key, a missing item, a conflict with
the stored state (409; 412 for an If-Match naming another version), or a body larger than the
server's limit (the app under test has a small one)."""
REFUSED = ["400", "401", "403", "404", "405", "409", "413", "415", "422"]
"""What invalid input may be answered: each a refusal, 413 included (the gate refuses a body over
the limit before it reads it, whatever else is wrong)."""
SEMANTIC_422 = [
    "save_flow",
    "put_flow",
    "put_connection",
    "save_person",
    "save_place",
    "save_grant",
    "update_grant",
]
"""Operations whose body has rules JSON Schema cannot state (step references and expressions,
a version higher than the stored one, the id in the URL, a vendor's settings that are required
only when the connection is created, a place or time zone that must exist, a valid phone
number): a schema-valid body may be refused 422, with JSON paths."""


@dataclass
class Seeded:
    """The items the requests name, made again whenever a request removed one."""

    engine: Engine
    admin_key: str
    run_id: str = ""
    spare_key_id: str = ""
    webhook_token: str = ""
    cases: int = 0

    def ensure(self) -> dict[str, str]:
        """The path parameters that name existing items."""
        engine, store = self.engine, self.engine.store
        for document in (webhook_flow(), MANUAL_FLOW):
            if store.get_flow(document["id"]) is None:
                self.install(document)
        if store.get_connection("acme-1") is None:
            shown = asyncio.run(
                engine.connections.save("acme-1", "acme", "Acme", {"api_key": "k1"})
            )
            self.webhook_token = shown["webhook_token"]
        if not self.run_id or engine.run(self.run_id) is None:
            self.run_id = engine.start("manual", {"n": 1}).run_id
        if not any(k.id == self.spare_key_id for k in store.api_keys.all()):
            self.spare_key_id = store.api_keys.create("spare", Scope.READ)[0].id
        return {
            "flow_id": "hooked",
            "run_id": self.run_id,
            "connection_id": "acme-1",
            "key_id": self.spare_key_id,
            "vendor": "acme",
        }

    def install(self, document: dict[str, Any]) -> None:
        """Install a flow again, at the version a flow deleted with runs needs."""
        try:
            self.engine.install_flow(document)
        except ValidationError as exc:
            needed = re.search(r"version ([0-9]+) or higher", str(exc))
            if needed is None:
                raise
            self.engine.install_flow(document | {"version": int(needed[1])})

    def pin(self, case: Case) -> None:
        """Point the case's path at existing items."""
        names = self.ensure()
        if case.path.startswith("/hooks/"):
            record = self.engine.store.get_flow("hooked")
            assert record is not None
            names["token"] = record.hook_token
        elif case.path.startswith("/vendors/"):
            names["token"] = self.webhook_token
        if case.path_parameters:
            for name in case.path_parameters:
                if name in names:
                    case.path_parameters[name] = names[name]


def _config() -> schemathesis.Config:
    return schemathesis.Config.from_dict(
        {
            "seed": SEED,
            "workers": 1,
            "continue-on-failure": True,
            "generation": {
                "max-examples": MAX_EXAMPLES,
                "deterministic": True,
                "database": "none",
                "with-security-parameters": False,
            },
            "checks": {
                "positive_data_acceptance": {"expected-statuses": ACCEPTED},
                "negative_data_rejection": {"expected-statuses": REFUSED},
            },
            "operations": [
                {
                    "include-operation-id": name,
                    "checks": {
                        "positive_data_acceptance": {"expected-statuses": [*ACCEPTED, "422"]}
                    },
                }
                for name in SEMANTIC_422
            ],
        }
    )


@dataclass
class Report:
    """What a run found: cases sent, answers by status, failures by operation and check."""

    cases: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    failures: dict[tuple[str, str], str] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    def add(self, recorder: Any) -> None:
        self.cases += len(recorder.cases)
        for interaction in recorder.interactions.values():
            if interaction.response is not None:
                self.statuses[interaction.response.status_code] += 1
        for case_id, checks in recorder.checks.items():
            for check in checks:
                if check.failure_info is not None:
                    failure = check.failure_info.failure
                    where = f"{failure.operation}: {failure.title}"
                    response = recorder.find_response(case_id=case_id)
                    answer = f"{response.status_code} {response.text[:300]}" if response else "-"
                    detail = f"{failure.message}\n  {check.failure_info.code_sample}\n  -> {answer}"
                    self.failures.setdefault((where, check.name), detail)

    def describe(self) -> str:
        lines = [
            f"{where} ({check}): {message}" for (where, check), message in self.failures.items()
        ]
        return "\n".join(lines + self.errors)


def run_schemathesis(loaded: Any) -> Report:
    """Every phase (coverage, fuzzing, stateful) against the app, one request at a time."""
    report = Report()
    for event in schemathesis.engine.from_schema(loaded).execute():
        if isinstance(event, events.ScenarioFinished):
            report.add(event.recorder)
        elif isinstance(event, events.NonFatalError):
            report.errors.append(f"{event.label}: {event.info.format()}")
        elif isinstance(event, events.FatalError):
            raise event.exception
    return report


@pytest.fixture
def seeded(engine: Engine) -> Seeded:
    _, key = engine.store.api_keys.create("contract", Scope.ADMIN)
    seeded = Seeded(engine, key)
    seeded.ensure()
    return seeded


@pytest.fixture
def before_call(seeded: Seeded) -> Iterator[None]:
    """Every other request (outside stateful scenarios) names existing items."""

    def before_call(context: Any, case: Case, kwargs: dict[str, Any]) -> None:
        stateful = case.meta is not None and case.meta.phase.name == "stateful"
        if seeded.cases % 2 and not stateful:  # a stateful scenario names what it made itself
            seeded.pin(case)
        seeded.cases += 1
        if case.path.startswith("/hooks/") and case.query and _seconds(case.query.get("wait")):
            case.query["wait"] = WAIT_SECONDS  # nothing runs the runs here: waiting only sleeps

    schemathesis.hook(before_call)
    yield
    schemathesis.hooks.unregister(before_call)


def _seconds(wait: Any) -> bool:
    """Whether a ``wait`` query value would make the server wait longer than WAIT_SECONDS."""
    try:
        return not isinstance(wait, bool) and WAIT_SECONDS < float(wait) <= 60
    except (TypeError, ValueError):
        return False


def contract_schema(app: FastAPI, admin_key: str) -> Any:
    """The app's document, with the admin key for the management API (none for the rest)."""
    loaded = schemathesis.openapi.from_asgi("/openapi.json", app, config=_config())

    class AdminKey:
        def get(self, case: Case, context: Any) -> str:
            return admin_key

        def set(self, case: Case, data: str, context: Any) -> None:
            case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}

    loaded.auth.auth(refresh_interval=None, retry_on=[]).apply_to(path_regex="^/api/")(AdminKey)
    return loaded


def test_every_answer_keeps_the_contract(app: FastAPI, seeded: Seeded, before_call: None) -> None:
    loaded = contract_schema(app, seeded.admin_key)
    started = time.monotonic()
    try:
        report = run_schemathesis(loaded)
    finally:
        asgi.shutdown_lifespans()  # the app's lifespan ends before its engine is disposed
    seconds = time.monotonic() - started
    statuses = ", ".join(f"{k}: {v}" for k, v in sorted(report.statuses.items()))
    print(f"\n{report.cases} cases, {len(report.failures)} failures in {seconds:.1f} s; {statuses}")
    assert not report.failures and not report.errors, report.describe()
    assert report.cases >= MIN_CASES, f"only {report.cases} cases ran; raise MAX_EXAMPLES"


def test_the_document_is_what_a_generated_client_needs(app: FastAPI) -> None:
    document: dict[str, Any] = app.openapi()
    operations = [
        (path, operation)
        for path, methods in document["paths"].items()
        for operation in methods.values()
    ]
    ids = [operation["operationId"] for _, operation in operations]
    assert len(ids) == len(set(ids)) and all(re.fullmatch("[a-z_]+", i) for i in ids), ids
    assert {"list_flows", "save_flow", "get_run", "post_hook"} <= set(ids)
    for path, operation in operations:
        assert ("security" in operation) == path.startswith("/api/"), path
        assert all(re.fullmatch("[A-Za-z ]+", tag) for tag in operation["tags"]), operation["tags"]
        invalid = operation["responses"].get("422", {}).get("content", {})
        for content in invalid.values():
            assert content["schema"] == {"$ref": "#/components/schemas/ValidationErrorBody"}
    schemas = document["components"]["schemas"]
    assert "HTTPValidationError" not in schemas and "ValidationError" not in schemas
    for model, name in (("RunSummary", "created_at"), ("EventOut", "received_at")):
        moment = schemas[model]["properties"][name]["anyOf"][0]
        assert moment == {"type": "string", "format": "date-time"}
    hook = document["paths"]["/hooks/{flow_id}/{token}"]["post"]
    headers = {p["name"] for p in hook["parameters"] if p["in"] == "header"}
    assert {"webhook-id", "webhook-timestamp", "webhook-signature"} <= headers
    assert (
        "Standard Webhooks" in hook["description"] and "answers trigger" not in hook["description"]
    )
