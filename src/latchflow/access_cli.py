"""The ``latchflow`` commands for access: places, people, grants, ``why`` and the audit record.

They work on the data directory's database directly, as ``latchflow runs`` does: a grant made
here is carried out at the vendors by the runs ``latchflow serve`` advances.
"""

from __future__ import annotations

import asyncio
import getpass
import json
import socket
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from latchflow.commands import DatabaseUrl, DataDir, console, engine_for, print_json
from latchflow.engine import Engine
from latchflow.flows.document import schema_errors
from latchflow.plugin.errors import FatalError, LatchflowError, ValidationError
from latchflow.plugin.host import Registry
from latchflow.plugin.timeparse import parse_moment
from latchflow.plugin.types import JSON
from latchflow.runs.progress import validator

places_app = typer.Typer(
    help="Places and the vendor resources that open them.", no_args_is_help=True
)
people_app = typer.Typer(help="People who may be granted access.", no_args_is_help=True)
grants_app = typer.Typer(help="Grant, change and cancel access.", no_args_is_help=True)
audit_app = typer.Typer(help="The hash-chained audit record.", no_args_is_help=True)
err = Console(stderr=True, soft_wrap=True, highlight=False, markup=False)
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON")]
Places = Annotated[list[str] | None, typer.Option("--place", help="A place's name (repeat)")]
Starts = Annotated[str | None, typer.Option(help="ISO 8601 (with a zone) or unix seconds")]
Ends = Annotated[str | None, typer.Option(help="ISO 8601 (with a zone) or unix seconds")]
Zone = Annotated[str | None, typer.Option(help="IANA time zone of --weekly hours")]
Kinds = Annotated[
    list[str] | None, typer.Option("--kind", help="pin, mobile_key, key_handover, card (repeat)")
]
Weekly = Annotated[
    str | None, typer.Option(help='Only these days and hours, e.g. "mon,tue 08:00-18:00"')
]


def _engine(data_dir: Path | None, database_url: str | None, plugins: bool = True) -> Engine:
    return engine_for(data_dir, database_url, None if plugins else Registry())


def _actor() -> str:
    return f"cli ({getpass.getuser()}@{socket.gethostname()})"


def _listing(
    rows: list[JSON], as_json: bool, columns: tuple[str, ...], cells: Callable[[JSON], list[str]]
) -> None:
    """Print ``rows`` as JSON, or as a table of ``columns``."""
    if as_json:
        print_json(rows)
        return
    table = Table(*columns)
    for row in rows:
        table.add_row(*cells(row))
    console.print(table)


def _fail(exc: LatchflowError) -> typer.Exit:
    """Print what was wrong (with JSON paths) and exit 1."""
    if isinstance(exc, ValidationError):
        for detail in exc.errors:
            err.print(f"{detail.path}: {detail.message}")
    else:
        err.print(str(exc))
    return typer.Exit(1)


def _checked(engine: Engine, action: str, data: JSON) -> JSON:
    """``data`` as the ``action``'s input schema allows it (else exit 1 with JSON paths)."""
    errors = schema_errors(validator(engine.registry.actions[action].input_schema), data, "$")
    if errors:
        raise _fail(ValidationError(errors))
    return data


# places and people


@places_app.command("list")
def places_list(
    as_json: AsJson = False, data_dir: DataDir = None, database_url: DatabaseUrl = None
) -> None:
    """List places with their vendor resources."""
    places = _engine(data_dir, database_url, plugins=False).access.records.places()
    _listing(
        [p.model_dump() for p in places],
        as_json,
        ("place", "time zone", "resources (connection:kind:id)", "id"),
        lambda p: [
            p["name"],
            p["timezone"],
            "\n".join(f"{r['connection']}:{r['kind']}:{r['id']}" for r in p["resources"]),
            p["id"],
        ],
    )


@places_app.command("show")
def places_show(key: str, data_dir: DataDir = None, database_url: DatabaseUrl = None) -> None:
    """Print a place (by name or id) as JSON."""
    place = _engine(data_dir, database_url, plugins=False).access.records.place(key)
    if place is None:
        err.print(f"no place {key!r}; `latchflow places list` shows them")
        raise typer.Exit(1)
    print_json(place.model_dump())


@places_app.command("save")
def places_save(
    name: str,
    resource: Annotated[
        list[str], typer.Option(help="CONNECTION:KIND:ID, e.g. keyvox:keyvox.unit:U-12 (repeat)")
    ],
    timezone: Annotated[str | None, typer.Option(help="IANA time zone (default UTC)")] = None,
    description: Annotated[str | None, typer.Option(help="What the place is")] = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Create a place, or update the one with the same name."""
    resources = []
    for i, item in enumerate(resource):
        parts = item.split(":", 2)
        if len(parts) != 3 or not all(parts):
            err.print(f"--resource {item!r} ($.resources[{i}]): write CONNECTION:KIND:ID")
            raise typer.Exit(2)
        resources.append(dict(zip(("connection", "kind", "id"), parts, strict=True)))
    data: JSON = {"name": name, "resources": resources}
    data |= {k: v for k, v in (("timezone", timezone), ("description", description)) if v}
    engine = _engine(data_dir, database_url)
    try:
        place = engine.access.grants.save_place(data)
    except LatchflowError as exc:
        raise _fail(exc) from None
    print_json(place.model_dump())


@people_app.command("list")
def people_list(
    as_json: AsJson = False, data_dir: DataDir = None, database_url: DatabaseUrl = None
) -> None:
    """List the people who were granted access."""
    people = _engine(data_dir, database_url, plugins=False).access.records.people()
    _listing(
        [p.model_dump() for p in people],
        as_json,
        ("name", "phone", "email", "reference", "id"),
        lambda p: [p[k] or "" for k in ("name", "phone", "email", "reference", "id")],
    )


# grants


@grants_app.command("list")
def grants_list(
    person: Annotated[str | None, typer.Option(help="A person's name, reference or id")] = None,
    state: Annotated[str | None, typer.Option(help="active, cancelled or ended")] = None,
    as_json: AsJson = False,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """List grants, the latest start first, with their credentials' states."""
    if state is not None and state not in ("active", "cancelled", "ended"):
        raise typer.BadParameter("give active, cancelled or ended", param_hint="--state")
    access = _engine(data_dir, database_url, plugins=False).access
    person_id = None
    if person is not None:
        found = access.records.person(person)
        if found is None:
            err.print(f"--person: nobody is known by {person!r}; `latchflow people list`")
            raise typer.Exit(1)
        person_id = found.id
    views = [access.view(g) for g in access.records.grants(person_id, state)]
    _listing(
        views,
        as_json,
        ("grant", "person", "places", "starts", "ends", "state", "credentials"),
        lambda v: [
            v["reference"] or v["id"],
            v["person"],
            ", ".join(v["places"]),
            v["starts"],
            v["ends"],
            v["state"],
            ", ".join(f"{c['place']}: {c['state']}" for c in v["credentials"]),
        ],
    )


@grants_app.command("show")
def grants_show(key: str, data_dir: DataDir = None, database_url: DatabaseUrl = None) -> None:
    """Print a grant (by reference or id) with its credentials as JSON."""
    access = _engine(data_dir, database_url, plugins=False).access
    grant = access.records.grant(key)
    if grant is None:
        err.print(f"no grant has the id or reference {key!r}; `latchflow grants list`")
        raise typer.Exit(1)
    print_json(access.view(grant))


def _window(
    places: list[str] | None,
    starts: str | None,
    ends: str | None,
    timezone: str | None,
    kinds: list[str] | None,
    weekly: str | None,
) -> JSON:
    """The window fields given on the command line, as the grant actions take them."""
    given = {"places": places, "starts": starts, "ends": ends, "timezone": timezone, "kinds": kinds}
    data: JSON = {k: v for k, v in given.items() if v}
    if weekly is not None:
        data["weekly"] = _weekly(weekly)
    return data


def _weekly(text: str) -> JSON:
    """``"mon,tue 08:00-18:00"`` as ``{"days": [...], "start", "end"}``."""
    days, _, hours = text.strip().partition(" ")
    start, _, end = hours.strip().partition("-")
    if not days or not start or not end:
        err.print(f'--weekly {text!r}: write DAYS START-END, e.g. "mon,tue 08:00-18:00"')
        raise typer.Exit(2)
    return {"days": [d.strip().lower() for d in days.split(",")], "start": start, "end": end}


@grants_app.command("create")
def grants_create(
    person: Annotated[str, typer.Option(help="The person's full name")],
    place: Annotated[list[str], typer.Option(help="A place's name (repeat)")],
    starts: Annotated[str, typer.Option(help="ISO 8601 (with a zone) or unix seconds")],
    ends: Annotated[str, typer.Option(help="ISO 8601 (with a zone) or unix seconds")],
    phone: Annotated[str | None, typer.Option(help="The person's phone number")] = None,
    email: Annotated[str | None, typer.Option(help="The person's e-mail address")] = None,
    person_ref: Annotated[
        str | None, typer.Option(help="The person's id in another system")
    ] = None,
    reference: Annotated[
        str | None,
        typer.Option(help="The grant's reference (a booking id); one that has a grant changes it"),
    ] = None,
    timezone: Zone = None,
    kind: Kinds = None,
    weekly: Weekly = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Grant a person access to places from a start to an end; print the grant as JSON."""
    who = {"name": person, "phone": phone, "email": email, "reference": person_ref}
    data: JSON = {"person": {k: v for k, v in who.items() if v}}
    data |= _window(place, starts, ends, timezone, kind, weekly)
    if reference:
        data["reference"] = reference
    engine = _engine(data_dir, database_url)
    try:
        grant = engine.access.grants.grant(_checked(engine, "access.grant", data), _actor())
    except LatchflowError as exc:
        raise _fail(exc) from None
    print_json(engine.access.view(grant))


@grants_app.command("update")
def grants_update(
    key: str,
    place: Places = None,
    starts: Starts = None,
    ends: Ends = None,
    timezone: Zone = None,
    kind: Kinds = None,
    weekly: Weekly = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Change a grant (by reference or id): what is given changes, the rest stays."""
    data = _window(place, starts, ends, timezone, kind, weekly)
    if not data:
        err.print("give what changes: --starts, --ends, --place, --timezone, --kind or --weekly")
        raise typer.Exit(2)
    engine = _engine(data_dir, database_url)
    try:
        checked = _checked(engine, "access.update_grant", {"reference": key, **data})
        grant = engine.access.grants.update(key, checked, _actor())
    except LatchflowError as exc:
        raise _fail(exc) from None
    print_json(engine.access.view(grant))


@grants_app.command("cancel")
def grants_cancel(key: str, data_dir: DataDir = None, database_url: DatabaseUrl = None) -> None:
    """Cancel a grant (by reference or id): every credential it has is revoked."""
    engine = _engine(data_dir, database_url)
    try:
        grant = engine.access.grants.cancel(key, _actor())
    except LatchflowError as exc:
        raise _fail(exc) from None
    print_json(engine.access.view(grant))


# why, and the audit record


def why(
    person: Annotated[str, typer.Argument(help="A person's name, reference or id")],
    place: Annotated[str, typer.Argument(help="A place's name or id")],
    at: Annotated[str | None, typer.Option(help="ISO 8601 or unix seconds (default: now)")] = None,
    as_json: AsJson = False,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Why PERSON can or cannot open PLACE: each link of grant → credential → vendor checked
    (the vendor is asked). Exit 0 if the person can open, 1 if not."""
    moment: datetime | None = None
    if at is not None:
        try:
            moment = parse_moment(at)
        except FatalError as exc:
            raise typer.BadParameter(str(exc), param_hint="--at") from None
    engine = _engine(data_dir, database_url)
    answer = asyncio.run(_explain(engine, person, place, moment))
    if as_json:
        print_json(answer)
    else:
        for link in answer["links"]:
            mark = ("✓", "green") if link["ok"] else ("✗", "red")
            console.print(Text.assemble(mark, f" {link['link']}: {link['detail']}"))
        verdict = "can open" if answer["can_open"] else "cannot open"
        console.print(Text(f"{answer['person']} {verdict} {answer['place']} at {answer['at']}"))
        if not answer["can_open"]:
            console.print(Text(f"because: {answer['reason']}"))
    raise typer.Exit(0 if answer["can_open"] else 1)


async def _explain(engine: Engine, person: str, place: str, at: datetime | None) -> JSON:
    try:
        return await engine.access.explainer.explain(person, place, at)
    finally:
        await engine.close()


@audit_app.command("verify")
def audit_verify(data_dir: DataDir = None, database_url: DatabaseUrl = None) -> None:
    """Check the audit record's hash chain; exit 1 naming the first entry edited or removed."""
    entries, head, broken = _engine(data_dir, database_url, plugins=False).store.audit.verify()
    if broken is not None:
        err.print(f"audit record broken at entry {broken.seq} ({broken.id})", style="red")
        err.print(f"{broken.problem}; {entries} entries before it check out")
        raise typer.Exit(1)
    console.print(f"{entries} entries checked; the chain holds. head {head}", highlight=False)


@audit_app.command("list")
def audit_list(
    limit: Annotated[int, typer.Option(help="How many, newest first")] = 50,
    subject: Annotated[
        str | None, typer.Option(help='Only about this, e.g. "grant <id>" (a prefix with --prefix)')
    ] = None,
    prefix: Annotated[bool, typer.Option(help="--subject is a prefix")] = False,
    as_json: AsJson = False,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """List audit entries, newest first."""
    audit = _engine(data_dir, database_url, plugins=False).store.audit
    entries = [e.model_dump(exclude={"hash"}) for e in audit.events(limit, subject, prefix)]
    _listing(
        entries,
        as_json,
        ("seq", "at", "actor", "action", "subject", "detail"),
        lambda e: [
            str(e["seq"]),
            e["at"].isoformat(),
            e["actor"],
            e["action"],
            e["subject"],
            json.dumps(e["detail"]) if e["detail"] is not None else "",
        ],
    )
