"""Running a flow run: one step at a time, each checkpointed before the next starts.

A run resumes at its first unfinished step after any interruption; a finished step is never
run again. The step that was in flight when a process died runs again with the same
idempotency key (run id + step id), which plugins pass to the vendor or check before acting.
"""

from __future__ import annotations

import enum
import logging
import random
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import httpx
from jsonschema import Draft202012Validator
from sqlalchemy import or_, update
from sqlmodel import Session, col, select

from latchflow.core import expressions
from latchflow.core.clock import Clock
from latchflow.core.connections import Connections
from latchflow.core.errors import (
    ExpressionError,
    FatalError,
    LatchflowError,
    RateLimitedError,
    RetryableError,
    RunFiltered,
    SkipError,
)
from latchflow.core.flows import Flow, Step, json_path
from latchflow.core.models import EventRecord, RunRecord, StepRecord
from latchflow.core.registry import Registry
from latchflow.core.runqueue import enqueue
from latchflow.core.secrets import redact
from latchflow.core.store import Store
from latchflow.core.types import JSON, Action, Pending, RunContext

log = logging.getLogger("latchflow.run")

ACTIVE = ("queued", "running", "waiting")
RUNS = RunRecord.__table__  # type: ignore[attr-defined]
FINISHED = ("succeeded", "failed", "filtered", "cancelled")


_VALIDATORS: dict[int, tuple[JSON, Draft202012Validator]] = {}


def validator(schema: JSON) -> Draft202012Validator:
    """A validator for an action's schema, built once (actions' schemas do not change)."""
    cached = _VALIDATORS.get(id(schema))
    if cached is None or cached[0] is not schema:
        cached = _VALIDATORS[id(schema)] = (schema, Draft202012Validator(schema))
    return cached[1]


class Outcome(enum.Enum):
    CONTINUE = "continue"
    WAIT = "wait"
    DONE = "done"


class Executor:
    """Advances runs; where their work comes from is the dispatcher's business."""

    def __init__(
        self,
        store: Store,
        registry: Registry,
        connections: Connections,
        clock: Clock,
        worker_id: str = "local",
        lease_seconds: float = 300.0,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self.store = store
        self.registry = registry
        self.connections = connections
        self.clock = clock
        self.worker_id = worker_id
        self.lease = timedelta(seconds=lease_seconds)
        self.rand = rand
        self.stopping = False
        """Set while the process shuts down: a run stops after its current step."""
        self._flows: dict[tuple[str, int], Flow] = {}

    # claiming

    def claim(self, run_id: str) -> bool:
        """Take a run for this worker unless another holds an unexpired claim on it."""
        now = self.clock.now()
        with self.store.engine.begin() as connection:  # Core: no ORM bookkeeping on a hot path
            result = connection.execute(
                update(RUNS)
                .where(
                    RUNS.c.id == run_id,
                    RUNS.c.status.in_(ACTIVE),
                    or_(RUNS.c.claimed_by.is_(None), RUNS.c.claimed_until < now),
                )
                .values(claimed_by=self.worker_id, claimed_until=now + self.lease)
            )
            return bool(result.rowcount)

    def release(self, run_id: str) -> None:
        with self.store.engine.begin() as connection:
            connection.execute(
                update(RUNS)
                .where(RUNS.c.id == run_id, RUNS.c.claimed_by == self.worker_id)
                .values(claimed_by=None, claimed_until=None)
            )

    def due_runs(self, limit: int = 100) -> list[str]:
        """Unclaimed active runs whose time has come, oldest first."""
        now = self.clock.now()
        with self.store.session() as session:
            rows = session.exec(
                select(RunRecord.id)
                .where(
                    col(RunRecord.status).in_(ACTIVE),
                    col(RunRecord.due_at) <= now,
                    or_(col(RunRecord.claimed_by).is_(None), col(RunRecord.claimed_until) < now),
                )
                .order_by(col(RunRecord.due_at))
                .limit(limit)
            )
            return list(rows)

    def next_due(self) -> datetime | None:
        """When the earliest waiting run falls due."""
        with self.store.session() as session:
            return session.exec(
                select(RunRecord.due_at)
                .where(col(RunRecord.status).in_(ACTIVE), col(RunRecord.claimed_by).is_(None))
                .order_by(col(RunRecord.due_at))
                .limit(1)
            ).first()

    # running

    async def execute(self, run_id: str) -> str | None:
        """Claim a run and advance it until it finishes or must wait; returns its status."""
        if not self.claim(run_id):
            return None
        try:
            while await self.advance(run_id) is Outcome.CONTINUE:
                if self.stopping:
                    break  # checkpointed: the next start goes on from the next step
        finally:
            self.release(run_id)
        with self.store.session() as session:
            run = session.get(RunRecord, run_id)
            return run.status if run else None

    def flow(self, flow_id: str, version: int) -> Flow:
        key = (flow_id, version)
        if key not in self._flows:
            self._flows[key] = self.store.flow_version(flow_id, version)
        return self._flows[key]

    async def advance(self, run_id: str) -> Outcome:
        """Run the next step of a claimed run and checkpoint what happened."""
        with self.store.session() as session:
            run = session.get(RunRecord, run_id)
            if run is None or run.status not in ACTIVE:
                return Outcome.DONE
            flow = self.flow(run.flow_id, run.flow_version)
            scope = self._scope(session, run, flow)
            if run.step_index >= len(flow.steps):
                return self._succeed(session, run, flow, scope)
            step = flow.steps[run.step_index]
            where = f"$.steps[{run.step_index}]"
            record = session.get(StepRecord, (run.id, step.id))
            if record is None:
                try:
                    record = self._start_step(session, run, step, scope, where)
                except LatchflowError as exc:
                    return self._fail(session, run, None, step, str(exc))
                if record.status == "skipped":
                    return self._next(session, run)
            elif record.status in ("succeeded", "skipped"):
                return self._next(session, run)
            resume_at = self._cooling(step)
            if resume_at is not None:
                return self._postpone(session, run, record, resume_at)
            previous = record.status
            if previous != "waiting":  # a pending job's checks are not new attempts
                record.attempts += 1
            record.status = "running"
            run.status = "running"
            session.add_all([record, run])
            session.commit()
            return await self._call(session, run, flow, step, record, where, previous)

    def _scope(self, session: Session, run: RunRecord, flow: Flow) -> JSON:
        event = session.get(EventRecord, run.event_id)
        outputs = {}
        for record in session.exec(select(StepRecord).where(StepRecord.run_id == run.id)):
            if record.status == "succeeded" and record.output_sealed:
                outputs[record.step_id] = self.store.sealer.unseal(record.output_sealed)
        return {
            "trigger": event.data if event else {},
            "steps": outputs,
            "flow": {"id": flow.id, "name": flow.name, "version": flow.version},
            "run": {"id": run.id},
            "now": self.clock.now().isoformat(),
        }

    def _start_step(
        self, session: Session, run: RunRecord, step: Step, scope: JSON, where: str
    ) -> StepRecord:
        action = self._action(step, where)
        record = StepRecord(
            run_id=run.id,
            step_id=step.id,
            position=run.step_index,
            action=step.action,
            started_at=self.clock.now(),
        )
        if step.condition is not None:
            condition = expressions.render(step.condition, scope, f"{where}.if")
            if not expressions.is_truthy(condition):
                record.status, record.finished_at = "skipped", self.clock.now()
                record.error = f"'if' was {condition!r}"
                session.add(record)
                return record
        rendered = expressions.render(step.input, scope, f"{where}.input")
        problems = list(validator(action.input_schema).iter_errors(rendered))
        if problems:
            first = problems[0]
            raise FatalError(
                f"{json_path(first.absolute_path, where + '.input')}: {first.message}"
                " (after evaluating expressions)"
            )
        record.input = redact(rendered, self._secrets())
        record.input_sealed = self.store.sealer.seal(rendered)
        session.add(record)
        return record

    def _action(self, step: Step, where: str) -> Action:
        action = self.registry.actions.get(step.action)
        if action is None:
            raise FatalError(f"{where}.action: action {step.action!r} is not installed")
        return action

    async def _call(
        self,
        session: Session,
        run: RunRecord,
        flow: Flow,
        step: Step,
        record: StepRecord,
        where: str,
        previous: str,
    ) -> Outcome:
        connection_id: str | None = None
        try:
            action = self._action(step, where)
            ctx = await self._context(run, step, record, action, where)
            rendered = self.store.sealer.unseal(record.input_sealed or "null")
            if ctx.connection is not None:
                connection_id = ctx.connection.id
                live = await self.connections.get(connection_id)
                async with live.slots:
                    # a 429 may have arrived while this call waited for a slot
                    resume_at = self.connections.cooling_until(connection_id)
                    if resume_at is not None:
                        if previous != "waiting":
                            record.attempts -= 1
                        record.status = previous
                        return self._postpone(session, run, record, resume_at)
                    result = await action.run(ctx, rendered)
            else:
                result = await action.run(ctx, rendered)
        except RateLimitedError as exc:
            return self._retry(session, run, step, record, action, exc, cool=connection_id)
        except RetryableError as exc:
            return self._retry(session, run, step, record, action, exc)
        except httpx.TransportError as exc:
            return self._retry(
                session, run, step, record, action, RetryableError(str(exc) or type(exc).__name__)
            )
        except SkipError as exc:
            record.status, record.error, record.finished_at = "skipped", str(exc), self.clock.now()
            session.add(record)
            return self._next(session, run)
        except RunFiltered as exc:
            record.status, record.error, record.finished_at = "filtered", str(exc), self.clock.now()
            run.status, run.error, run.finished_at = "filtered", str(exc), self.clock.now()
            session.add_all([record, run])
            session.commit()
            return Outcome.DONE
        except (LatchflowError, ExpressionError) as exc:
            return self._fail(session, run, record, step, str(exc))
        except Exception as exc:  # a plugin bug must fail the run, not the worker
            log.exception("step %s of run %s raised", step.id, run.id)
            return self._fail(session, run, record, step, f"unexpected {type(exc).__name__}: {exc}")
        if isinstance(result, Pending):
            record.status, record.state = "waiting", result.state
            run.status, run.due_at = "waiting", result.check_at
            session.add_all([record, run])
            enqueue(session, run.id, result.check_at)
            session.commit()
            return Outcome.WAIT
        problems = list(validator(action.output_schema).iter_errors(result))
        if problems:
            return self._fail(
                session,
                run,
                record,
                step,
                f"action {action.key!r} returned output that does not match its schema:"
                f" {json_path(problems[0].absolute_path)}: {problems[0].message}",
            )
        record.status, record.finished_at, record.error = "succeeded", self.clock.now(), None
        record.output = redact(result, self._secrets())
        record.output_sealed = self.store.sealer.seal(result)
        record.state = None
        session.add(record)
        return self._next(session, run)

    async def _context(
        self, run: RunRecord, step: Step, record: StepRecord, action: Action, where: str
    ) -> RunContext:
        connection = None
        if action.connection is not None:
            connection_id = self.connections.resolve(action.connection, step.connection, where)
            connection = (await self.connections.get(connection_id)).connection
        return RunContext(
            run_id=run.id,
            flow_id=run.flow_id,
            step_id=step.id,
            attempt=record.attempts,
            idempotency_key=f"{run.id}:{step.id}",
            connection=connection,
            http=connection.http if connection else self.connections.http,
            logger=logging.LoggerAdapter(
                logging.getLogger(f"latchflow.action.{action.key}"),
                {"run_id": run.id, "step_id": step.id},
            ),
            clock=self.clock,
            state=record.state,
        )

    def _secrets(self) -> set[str]:
        return self.connections.secret_values()

    def _cooling(self, step: Step) -> datetime | None:
        """When the step's connection comes out of a rate-limit cool-down, if it is in one."""
        if not self.connections.any_cooling:
            return None
        action = self.registry.actions.get(step.action)
        if action is None or action.connection is None:
            return None
        try:
            connection_id = self.connections.resolve(action.connection, step.connection, "")
        except LatchflowError:
            return None  # the call itself reports it
        return self.connections.cooling_until(connection_id)

    def _postpone(
        self, session: Session, run: RunRecord, record: StepRecord, resume_at: datetime
    ) -> Outcome:
        """Wait for the connection's cool-down without a worker and without using an attempt."""
        run.status, run.due_at = "waiting", resume_at
        session.add_all([record, run])
        enqueue(session, run.id, resume_at)
        session.commit()
        log.info(
            "run %s step %s: connection cooling down until %s", run.id, record.step_id, resume_at
        )
        return Outcome.WAIT

    def _retry(
        self,
        session: Session,
        run: RunRecord,
        step: Step,
        record: StepRecord,
        action: Action,
        exc: RetryableError,
        cool: str | None = None,
    ) -> Outcome:
        """Retry the step later; ``cool`` names a rate-limited connection to hold back as long."""
        policy = step.retry_policy(action.retry)
        delay = (
            exc.retry_after
            if exc.retry_after is not None
            else policy.delay(record.attempts, self.rand())
        )
        if cool is not None:
            until = self.connections.cool_down(cool, delay)
            log.warning("connection %s is rate-limited: its calls wait until %s", cool, until)
        if record.attempts >= policy.max_attempts:
            return self._fail(
                session, run, record, step, f"gave up after {record.attempts} attempts: {exc}"
            )
        record.status, record.error = "retrying", str(exc)
        run.status, run.due_at = "waiting", self.clock.now() + timedelta(seconds=delay)
        session.add_all([record, run])
        enqueue(session, run.id, run.due_at)
        session.commit()
        log.info(
            "run %s step %s: retry %d in %.1fs: %s", run.id, step.id, record.attempts, delay, exc
        )
        return Outcome.WAIT

    def _next(self, session: Session, run: RunRecord) -> Outcome:
        run.step_index += 1
        run.status, run.updated_at = "running", self.clock.now()
        session.add(run)
        enqueue(session, run.id, run.updated_at)
        session.commit()
        return Outcome.CONTINUE

    def _succeed(self, session: Session, run: RunRecord, flow: Flow, scope: JSON) -> Outcome:
        try:
            if flow.output_template is not None:
                output: Any = expressions.render(flow.output_template, scope, "$.output")
            else:
                finished = [s.id for s in flow.steps if s.id in scope["steps"]]
                output = scope["steps"][finished[-1]] if finished else None
        except ExpressionError as exc:
            return self._fail(session, run, None, None, str(exc))
        run.status, run.finished_at, run.updated_at = (
            "succeeded",
            self.clock.now(),
            self.clock.now(),
        )
        run.output = redact(output, self._secrets())
        session.add(run)
        session.commit()
        return Outcome.DONE

    def _fail(
        self,
        session: Session,
        run: RunRecord,
        record: StepRecord | None,
        step: Step | None,
        message: str,
    ) -> Outcome:
        now = self.clock.now()
        if record is not None:
            record.status, record.error, record.finished_at = "failed", message, now
            session.add(record)
        run.status, run.finished_at, run.updated_at = "failed", now, now
        run.error = f"step {step.id!r}: {message}" if step else message
        session.add(run)
        session.commit()
        log.warning("run %s failed: %s", run.id, run.error)
        return Outcome.DONE
