"""Flow documents: validation with JSON paths and suggestions, the published schema, the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from latchflow.flows.document import full_schema, validate_flow
from latchflow.plugin.errors import ValidationError
from latchflow.plugin.host import Registry

from .support import flow

ROOT = Path(__file__).parent.parent


def errors_of(document: object, registry: Registry) -> list[str]:
    with pytest.raises(ValidationError) as caught:
        validate_flow(document, registry)
    return [str(e) for e in caught.value.errors]


def test_missing_input_unknown_action_and_later_reference_are_all_named(registry: Registry) -> None:
    document = flow(
        [
            {"id": "pin", "action": "acme.record", "input": {"value": "{{ steps.notify.status }}"}},
            {"id": "notify", "action": "acme.recrod", "input": {"name": "x"}},
        ]
    )
    assert errors_of(document, registry) == [
        "$.steps[0].input.name: 'name' is a required property",
        "$.steps[0].input: refers to step 'notify', which runs later ($.steps[1]);"
        " a step can only use the outputs of steps before it",
        "$.steps[1].action: unknown action 'acme.recrod'; did you mean 'acme.record'?",
    ]


def test_duplicate_ids_unknown_steps_and_triggers(registry: Registry) -> None:
    document = flow(
        [
            {"id": "a", "action": "core.set", "input": {"values": {}}},
            {"id": "a", "action": "core.set", "input": {"values": {"x": "{{ steps.aa.x }}"}}},
        ],
        trigger={"type": "shedule", "input": {}},
    )
    assert errors_of(document, registry) == [
        "$.trigger.type: unknown trigger 'shedule'; did you mean 'schedule'?",
        "$.steps[1].id: duplicate step id 'a' (also $.steps[0])",
        "$.steps[1].input: refers to step 'aa', which does not exist; did you mean 'a'?",
    ]


def test_document_shape_errors_come_first_with_paths(registry: Registry) -> None:
    assert errors_of({"id": "Bad Id", "name": "", "version": 0, "steps": [{}]}, registry) == [
        "$.id: 'Bad Id' does not match '^[a-z0-9][a-z0-9_-]{0,63}$'",
        "$.name: '' should be non-empty",
        "$.steps[0].action: 'action' is a required property",
        "$.steps[0].id: 'id' is a required property",
        "$.trigger: 'trigger' is a required property",
        "$.version: 0 is less than the minimum of 1",
    ]


def test_expressions_are_checked_where_values_are_only_known_later(registry: Registry) -> None:
    ok = flow([{"id": "w", "action": "core.delay", "input": {"seconds": "{{ trigger.wait }}"}}])
    assert validate_flow(ok, registry).steps[0].input == {"seconds": "{{ trigger.wait }}"}
    bad = flow([{"id": "w", "action": "core.delay", "input": {"seconds": "{{ trigger. }}"}}])
    assert errors_of(bad, registry)[0].startswith("$.steps[0].input.seconds:")


def test_the_published_schema_knows_every_action_input(registry: Registry) -> None:
    schema = full_schema(registry)
    Draft202012Validator.check_schema(schema)
    validator = Draft202012Validator(schema)
    good = flow([{"id": "w", "action": "core.delay", "input": {"seconds": "{{ trigger.wait }}"}}])
    assert list(validator.iter_errors(good)) == []
    bad = flow([{"id": "w", "action": "core.delay", "input": {"secnds": 5}}])
    assert list(validator.iter_errors(bad))
    assert "acme.record" in schema["properties"]["steps"]["items"]["properties"]["action"]["enum"]


def cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "latchflow.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
    )


def test_cli_validate_lists_every_error_and_exits_1(tmp_path: Path) -> None:
    good = tmp_path / "good.json"
    good.write_text(json.dumps(flow([{"id": "a", "action": "core.set", "input": {"values": {}}}])))
    bad = tmp_path / "bad.json"
    bad.write_text(
        json.dumps(
            flow(
                [
                    {"id": "a", "action": "http.request", "input": {"json": "{{ steps.b.x }}"}},
                    {"id": "b", "action": "core.sett", "input": {}},
                ]
            )
        )
    )
    broken = tmp_path / "broken.json"
    broken.write_text('{"id": "x",\n "name": }')
    assert cli("validate", str(good)).returncode == 0
    result = cli("validate", str(good), str(bad), str(broken))
    assert result.returncode == 1
    assert f"{bad} $.steps[0].input.url: 'url' is a required property" in result.stderr
    assert f"{bad} $.steps[0].input: refers to step 'b', which runs later" in result.stderr
    assert (
        f"{bad} $.steps[1].action: unknown action 'core.sett'; did you mean 'core.set'"
        in result.stderr
    )
    assert f"{broken}:2:10: not valid JSON" in result.stderr


def test_cli_run_prints_the_finished_run(tmp_path: Path) -> None:
    document = flow(
        [
            {
                "id": "v",
                "action": "core.set",
                "input": {
                    "values": {"pin": "{{ random_pin(`6`) }}", "guest": "{{ trigger.guest }}"}
                },
            }
        ]
    )
    (tmp_path / "f.json").write_text(json.dumps(document))
    (tmp_path / "e.json").write_text('{"guest": "Ada"}')
    result = cli("run", "f.json", "--event", "e.json", "--data-dir", "data", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    run = json.loads(result.stdout)
    assert run["status"] == "succeeded"
    assert run["output"]["guest"] == "Ada" and len(run["output"]["pin"]) == 6
    listed = cli("runs", "list", "--data-dir", "data", cwd=tmp_path)
    assert run["id"] in listed.stdout and "succeeded" in listed.stdout


def test_cli_schema_and_plugins() -> None:
    schema = json.loads(cli("schema").stdout)
    assert "core.delay" in schema["properties"]["steps"]["items"]["properties"]["action"]["enum"]
    plugins = json.loads(cli("plugins", "--json").stdout)
    assert {"core.set", "http.request"} <= {a for p in plugins for a in p["actions"]}


def test_cli_connections_add_list_remove_never_show_secrets(tmp_path: Path) -> None:
    code = (
        f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); from support import AcmePlugin;"
        "import latchflow.plugin.host as r; load = r.load_registry;"
        "r.load_registry = lambda extra=(): load(extra=[AcmePlugin()]);"
        "import latchflow.cli as c; c.load_registry = r.load_registry; c.app()"
    )

    def acme_cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-c", code, *args, "--data-dir", str(tmp_path)],
            capture_output=True,
            text=True,
            timeout=120,
        )

    added = acme_cli(
        "connections",
        "add",
        "acme-1",
        "--vendor",
        "acme",
        "--set",
        "api_key=acme-key",
        "--set",
        "api_secret=very-secret-value",
        "--test",
    )
    assert added.returncode == 0, added.stderr
    shown = json.loads(added.stdout)
    assert shown.pop("revision").startswith('"')
    assert shown == {
        "id": "acme-1",
        "vendor": "acme",
        "name": "acme-1",
        "config": {"api_key": "acme-key"},
        "webhook_sources": None,
        "test": {"ok": True},
    }
    listed = acme_cli("connections", "list")
    assert "acme-1" in listed.stdout and "very-secret-value" not in listed.stdout
    bad = acme_cli("connections", "add", "acme-2", "--vendor", "acme", "--set", "api_key=k")
    assert (
        bad.returncode == 1
        and "$.config.api_secret: 'api_secret' is a required property" in bad.stderr
    )
    assert acme_cli("connections", "remove", "acme-1").returncode == 0
    assert acme_cli("connections", "remove", "acme-1").returncode == 1
