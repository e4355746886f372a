"""The ``latchflow`` command line."""

from __future__ import annotations

import asyncio
import getpass
import json
import socket
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from latchflow import access_cli
from latchflow.commands import DatabaseUrl, DataDir, console, engine_for, err, print_json
from latchflow.engine import Engine
from latchflow.flows.document import full_schema, load_document, validate_flow
from latchflow.plugin.errors import LatchflowError, ValidationError
from latchflow.plugin.host import Registry, load_registry
from latchflow.runs.connections import new_webhook_token
from latchflow.runs.history import event_list, replay_run, run_detail, run_list
from latchflow.storage.api_keys import Scope
from latchflow.storage.models import ApiKey
from latchflow.storage.status import RunStatus

app = typer.Typer(
    help="Low-code automation for smart locks, lockers and key automats.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
runs_app = typer.Typer(help="Inspect and replay runs.", no_args_is_help=True)
connections_app = typer.Typer(help="Manage vendor connections.", no_args_is_help=True)
app.add_typer(runs_app, name="runs")
app.add_typer(connections_app, name="connections")
app.add_typer(access_cli.places_app, name="places")
app.add_typer(access_cli.people_app, name="people")
app.add_typer(access_cli.grants_app, name="grants")
app.add_typer(access_cli.audit_app, name="audit")
app.command("why")(access_cli.why)


@app.command()
def validate(files: Annotated[list[Path], typer.Argument(help="Flow documents to check")]) -> None:
    """Check flow documents; exit 1 listing every problem with its JSON path."""
    registry = load_registry()
    failed = False
    for path in files:
        try:
            validate_flow(load_document(path), registry)
            console.print(f"[green]ok[/green] {path}")
        except ValidationError as exc:
            failed = True
            for detail in exc.errors:
                err.print(f"[red]{path}[/red] {detail.path}: {detail.message}", highlight=False)
    raise typer.Exit(1 if failed else 0)


@app.command()
def run(
    file: Annotated[Path, typer.Argument(help="Flow document")],
    event: Annotated[Path | None, typer.Option(help="JSON file with the trigger event")] = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Run a flow once in this process and print the run as JSON."""
    engine = engine_for(data_dir, database_url)
    try:
        record = engine.install_flow(load_document(file))
        data = json.loads(event.read_text()) if event else {}
        accepted = engine.start(record.id, data)
        asyncio.run(_run_once(engine, accepted.run_id))
        detail = run_detail(engine.store, accepted.run_id)
    except ValidationError as exc:
        for detail_line in exc.errors:
            err.print(f"[red]{file}[/red] {detail_line}", highlight=False)
        raise typer.Exit(1) from None
    print_json(detail)
    raise typer.Exit(0 if detail["status"] in (RunStatus.SUCCEEDED, RunStatus.FILTERED) else 1)


async def _run_once(engine: Engine, run_id: str) -> None:
    try:
        await engine.run_until_done(run_id)
    finally:
        await engine.connections.close()


@app.command()
def plugins(as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False) -> None:
    """List the loaded plugins with their vendors, triggers and actions."""
    registry = load_registry()
    rows = [
        {
            "name": p.name,
            "version": p.version,
            "vendors": p.vendors,
            "triggers": p.triggers,
            "actions": p.actions,
        }
        for p in registry.plugins
    ]
    if as_json:
        print_json(rows)
        return
    table = Table("plugin", "version", "vendors", "triggers", "actions")
    for p in registry.plugins:
        table.add_row(
            p.name,
            p.version or "",
            "\n".join(p.vendors),
            "\n".join(p.triggers),
            "\n".join(p.actions),
        )
    console.print(table)


@app.command()
def schema() -> None:
    """Print the flow JSON Schema with every installed trigger's and action's input."""
    print_json(full_schema(load_registry()))


@runs_app.command("list")
def runs_list(
    flow: Annotated[str | None, typer.Option(help="Only this flow's runs")] = None,
    status: Annotated[str | None, typer.Option(help="Only runs with this status")] = None,
    limit: Annotated[int, typer.Option(help="How many, newest first")] = 50,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """List runs, newest first."""
    engine = engine_for(data_dir, database_url)
    table = Table("run", "flow", "status", "step", "created", "error")
    for r in run_list(engine.store, flow_id=flow, status=status, limit=limit):
        table.add_row(
            r["id"],
            r["flow_id"],
            r["status"],
            str(r["step_index"]),
            str(r["created_at"]),
            r["error"] or "",
        )
    console.print(table)


@app.command()
def events(
    flow: Annotated[str | None, typer.Option(help="Only this flow's events")] = None,
    status: Annotated[
        str | None,
        typer.Option(help="Only events with this status: accepted, duplicate, filtered, dropped"),
    ] = None,
    limit: Annotated[int, typer.Option(help="How many, newest first")] = 50,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """List events, newest first: what started a run, and why others did not."""
    engine = engine_for(data_dir, database_url)
    table = Table("event", "received", "status", "flow or connection", "trigger", "run", "reason")
    for e in event_list(engine.store, flow_id=flow, status=status, limit=limit):
        table.add_row(
            e["id"],
            str(e["received_at"]),
            e["status"],
            e["flow_id"] or e["connection_id"] or "",
            e["trigger"] or f"(vendor type {e['vendor_type']})",
            e["run_id"] or "",
            e["reason"] or "",
        )
    console.print(table)


@runs_app.command("show")
def runs_show(
    run_id: str,
    reveal: Annotated[
        bool, typer.Option(help="Show credentials unmasked (recorded in the audit log)")
    ] = False,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Print a run with its steps' inputs and outputs (secrets and credentials masked)."""
    engine = engine_for(data_dir, database_url)
    try:
        detail = run_detail(engine.store, run_id, reveal=reveal)
    except KeyError:
        err.print(f"no run {run_id!r}; `latchflow runs list` shows the runs")
        raise typer.Exit(1) from None
    if reveal:
        actor = f"cli ({getpass.getuser()}@{socket.gethostname()})"
        engine.store.audit.record(actor, "reveal", f"run {run_id}", engine.clock.now())
    print_json(detail)


@runs_app.command("replay")
def runs_replay(
    run_id: str,
    from_start: Annotated[bool, typer.Option("--from-start", help="Replay every step")] = False,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Replay a run from its failed step (or from the start) and wait for it."""
    engine = engine_for(data_dir, database_url)
    try:
        replay_run(engine.store, run_id, from_start=from_start, now=engine.clock.now())
    except LatchflowError as exc:
        err.print(str(exc))
        raise typer.Exit(1) from None
    asyncio.run(_run_once(engine, run_id))
    print_json(run_detail(engine.store, run_id))


@connections_app.command("add")
def connections_add(
    connection_id: Annotated[str, typer.Argument(help="Id flows use to name the connection")],
    vendor: Annotated[str, typer.Option(help="Vendor key, e.g. keyvox")],
    config: Annotated[list[str], typer.Option("--set", help="field=value (repeat)")] = [],  # noqa: B006
    name: Annotated[str | None, typer.Option(help="Display name")] = None,
    test: Annotated[bool, typer.Option(help="Test the connection after saving")] = False,
    webhook_source: Annotated[
        list[str] | None,
        typer.Option(help="Network the vendor's webhooks come from, e.g. 203.0.113.0/24 (repeat)"),
    ] = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Add or update a connection; secret fields are encrypted at rest. A new connection to a
    vendor that sends webhooks prints its webhook path once."""
    engine = engine_for(data_dir, database_url)
    values: dict[str, Any] = {}
    for item in config:
        key, sep, value = item.partition("=")
        if not sep:
            err.print(f"--set {item!r}: write field=value")
            raise typer.Exit(2)
        values[key] = _parse_value(value)
    try:
        result = asyncio.run(
            engine.connections.save(
                connection_id,
                vendor,
                name or connection_id,
                values,
                test=test,
                webhook_sources=webhook_source,
            )
        )
    except LatchflowError as exc:
        err.print(str(exc), highlight=False)
        raise typer.Exit(1) from None
    token = result.pop("webhook_token", None)
    if token is not None:
        result["webhook_path"] = webhook_path(vendor, connection_id, token)
    print_json(result)


def webhook_path(vendor: str, connection_id: str, token: str) -> str:
    return f"/vendors/{vendor}/{connection_id}/{token}"


@connections_app.command("rotate-webhook-token")
def connections_rotate_webhook_token(
    connection_id: str, data_dir: DataDir = None, database_url: DatabaseUrl = None
) -> None:
    """Give a connection a new webhook URL and print its path (the old URL stops working)."""
    engine = engine_for(data_dir, database_url)
    record = engine.store.get_connection(connection_id)
    if record is None:
        err.print(f"no connection {connection_id!r}; `latchflow connections list` shows them")
        raise typer.Exit(1)
    token = new_webhook_token()
    engine.store.rotate_webhook_token(connection_id, token)
    print(webhook_path(record.vendor, connection_id, token))


def _parse_value(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


@connections_app.command("list")
def connections_list(data_dir: DataDir = None, database_url: DatabaseUrl = None) -> None:
    """List connections (secrets are never shown)."""
    engine = engine_for(data_dir, database_url)
    table = Table("id", "vendor", "name", "settings")
    for record in engine.store.list_connections():
        table.add_row(record.id, record.vendor, record.name, json.dumps(record.config))
    console.print(table)


@connections_app.command("remove")
def connections_remove(
    connection_id: str, data_dir: DataDir = None, database_url: DatabaseUrl = None
) -> None:
    """Delete a connection."""
    engine = engine_for(data_dir, database_url)
    if not engine.store.delete_connection(connection_id):
        err.print(f"no connection {connection_id!r}")
        raise typer.Exit(1)
    console.print(f"removed {connection_id}")


@app.command()
def nodes(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """List the serve processes on this database: heartbeat, jobs in flight, alive or not."""
    from latchflow.backends.nodes import list_nodes

    engine = engine_for(data_dir, database_url, registry=Registry())
    found = list_nodes(engine.store, engine.clock.now())
    if as_json:
        print_json([vars(node) for node in found])
        return
    table = Table("node", "host", "backend", "started", "last heartbeat", "in flight", "alive")
    for node in found:
        table.add_row(
            node.id,
            node.host,
            node.backend,
            node.started_at.isoformat(timespec="seconds"),
            node.last_heartbeat.isoformat(timespec="seconds"),
            str(node.jobs_in_flight),
            "yes" if node.alive else "[red]no[/red]",
        )
    console.print(table)


apikey_app = typer.Typer(help="Manage management API keys.", no_args_is_help=True)
app.add_typer(apikey_app, name="apikey")


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on")] = 8080,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    flows: Annotated[
        Path | None, typer.Option(help="Install/refresh every *.json flow in this directory")
    ] = None,
    sandbox: Annotated[
        bool, typer.Option(help="Start every vendor simulator and sandbox-<vendor> connections")
    ] = False,
    workers: Annotated[int, typer.Option(help="Runs advanced at the same time")] = 16,
    body_limit: Annotated[int, typer.Option(help="Largest accepted webhook body, bytes")] = 1048576,
    access_log: Annotated[bool, typer.Option(help="Log a line for every HTTP request")] = False,
    run_process: Annotated[
        bool | None,
        typer.Option(
            help="Advance runs in child processes (default: with SQLite on more than one CPU)",
            show_default=False,
        ),
    ] = None,
    run_processes: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="How many child processes advance runs (default: one per CPU, at most 2)",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Run the HTTP API, trigger URLs, scheduler and run workers."""
    from latchflow.process import configure_logging, new_event_loop
    from latchflow.serve import ServeOptions
    from latchflow.serve import serve as run_server

    configure_logging()
    options = ServeOptions(
        host,
        port,
        data_dir,
        database_url,
        flows,
        sandbox,
        workers,
        body_limit,
        access_log,
        run_process,
        run_processes,
    )
    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        runner.run(run_server(options))


@apikey_app.command("create")
def apikey_create(
    name: Annotated[str, typer.Option(help="What the key is for")] = "default",
    scope: Annotated[
        Scope, typer.Option(help="read: see; write: also change; admin: also manage keys")
    ] = Scope.ADMIN,
    expires: Annotated[
        int | None, typer.Option(help="Days until the key is refused (default: never)", min=1)
    ] = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Create a management API key and print it once (only its hash is stored)."""
    engine = engine_for(data_dir, database_url, registry=Registry())
    until = engine.clock.now() + timedelta(days=expires) if expires else None
    _, key = engine.store.api_keys.create(name, scope, until)
    print(key)


@apikey_app.command("list")
def apikey_list(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """List the API keys (never the keys themselves): scope, expiry, last use."""
    engine = engine_for(data_dir, database_url, registry=Registry())
    keys = engine.store.api_keys.all()
    if as_json:
        print_json([shown_key(k) for k in keys])
        return
    table = Table("id", "name", "scope", "created", "expires", "last used")
    for k in keys:
        row = shown_key(k)
        table.add_row(*(str(row[c] or "") for c in row))
    console.print(table)


def shown_key(record: ApiKey) -> dict[str, Any]:
    return {
        "id": record.id,
        "name": record.name,
        "scope": record.scope,
        "created_at": _when(record.created_at),
        "expires_at": _when(record.expires_at),
        "last_used_at": _when(record.last_used_at),
    }


def _when(moment: datetime | None) -> str | None:
    return moment.isoformat(timespec="seconds") if moment else None


@apikey_app.command("revoke")
def apikey_revoke(key_id: str, data_dir: DataDir = None, database_url: DatabaseUrl = None) -> None:
    """Revoke an API key: requests with it are refused from now on."""
    engine = engine_for(data_dir, database_url, registry=Registry())
    if not engine.store.api_keys.revoke(key_id):
        err.print(f"no API key {key_id!r}; `latchflow apikey list` shows them")
        raise typer.Exit(1)
    console.print(f"revoked {key_id}")


if __name__ == "__main__":
    app()
