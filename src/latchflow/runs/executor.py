"""Running a flow run: one step at a time, each checkpointed before the next starts.

A run resumes at its first unfinished step after any interruption; a finished step is never
run again. A run cancelled while a step is in flight starts no further step: the checkpoint
after that step finds it cancelled (``RunEnded``). The step that was in flight when a process died runs again with the same
idempotency key (run id + step id), which plugins pass to the vendor or check before acting.
"""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import httpx

from latchflow.flows import expressions
from latchflow.flows.document import Step, json_path
from latchflow.plugin.clock import Clock
from latchflow.plugin.errors import (
    ExpressionError,
    FatalError,
    LatchflowError,
    RateLimitedError,
    RetryableError,
    RunFiltered,
    SkipError,
    maybe_applied,
    vendor_unavailable,
)
from latchflow.plugin.host import Registry
from latchflow.plugin.types import JSON, Action, Pending
from latchflow.runs.connections import Connections, LiveConnection
from latchflow.runs.progress import ClaimLost, Outcome, Progress, validator
from latchflow.runs.step_context import action_context, call_held_until
from latchflow.storage.journal import Checkpoint, RunEnded, RunRows, StepRow
from latchflow.storage.secrets import mask_paths, redact
from latchflow.storage.status import ACTIVE, DONE, RunStatus, StepStatus
from latchflow.storage.store import Store

log = logging.getLogger("latchflow.run")


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
        self.journal = store.journal
        self.writer = store.journal.writer

    # claiming

    def release(self, run_id: str) -> None:
        self.journal.release(run_id, self.worker_id)

    def claim_due(self, limit: int = 100) -> list[RunRows]:
        """Claim up to ``limit`` due runs and read them, oldest first, for
        ``execute(run_id, claimed=rows)``; two workers never claim the same run."""
        return self.journal.claim_due(self.worker_id, self.clock.now(), self.lease, limit)

    # running

    async def execute(self, run_id: str, claimed: RunRows | None = None) -> str | None:
        """Advance a run until it finishes or must wait; returns its status (None if it is not
        active, or another worker holds it).

        The run, its event and its finished outputs are read once (or come ``claimed``, as
        ``claim_due`` read them). Unless claimed, the claim is written with the run's first
        checkpoint; it is released with the last. A step's finish is committed together with
        the next step's start, before that step's action is called.
        """
        progress = self._load(run_id, claim=True, claimed=claimed)
        if progress is None:
            if claimed is not None:
                self.release(run_id)
            return None
        try:
            while await self._step(progress) is Outcome.CONTINUE:
                if self.stopping:  # the next start goes on from the next step
                    await self._commit(progress, last=True)
                    break
        except (ClaimLost, RunEnded):  # another worker has it, or it was cancelled meanwhile
            return None
        finally:
            if progress.claimed:  # an error left the run claimed: let it be due again
                self.release(run_id)
        return progress.run.status

    async def advance(self, run_id: str) -> Outcome:
        """Run the next step of a run and checkpoint what happened (no claim: the caller's
        queue keeps a run's steps from overlapping)."""
        progress = self._load(run_id, claim=False)
        if progress is None:
            return Outcome.DONE
        try:
            outcome = await self._step(progress)
            if outcome is Outcome.CONTINUE:
                await self._commit(progress)
        except RunEnded:  # cancelled meanwhile: no further step
            return Outcome.DONE
        return outcome

    def _load(self, run_id: str, claim: bool, claimed: RunRows | None = None) -> Progress | None:
        """The run with its event and finished outputs; None if it is not active (or, with
        ``claim``, if another worker's claim on it has not expired, unless it is ``claimed``
        by this worker)."""
        rows = claimed
        if rows is None:
            found = self.journal.load([run_id])
            if not found:
                return None
            rows = found[0]
        run, trigger, records = rows
        if run.status not in ACTIVE:
            return None
        now = self.clock.now()
        held = run.claimed_by is not None and not (run.claimed_until and run.claimed_until < now)
        if claim and held and claimed is None:
            return None
        flow = self.store.flow_version(run.flow_id, run.flow_version)
        outputs = {
            step_id: self.store.sealer.unseal(r.output_sealed)
            for step_id, r in records.items()
            if r.status == StepStatus.SUCCEEDED and r.output_sealed
        }
        scope = {
            "trigger": trigger,
            "steps": outputs,
            "flow": {"id": flow.id, "name": flow.name, "version": flow.version},
            "run": {"id": run.id},
            "now": now.isoformat(),
        }
        loaded = (run.status, run.step_index, run.due_at)
        progress = Progress(
            run, flow, scope, records, claim=claim, loaded=loaded, claimed=claimed is not None
        )
        for step_id, output in outputs.items():
            progress.remember_credentials(
                self.registry.actions.get(records[step_id].action), output
            )
        return progress

    async def _commit(self, progress: Progress, last: bool = False) -> None:
        """Commit the run's pending checkpoint; the first one also claims the run, the ``last``
        one releases it."""
        run, now = progress.run, self.clock.now()
        claim = None
        if progress.claim and not progress.claimed:
            claim = (*progress.loaded, now)
            run.claimed_by, run.claimed_until = self.worker_id, now + self.lease
        if last:
            run.claimed_by, run.claimed_until = None, None
        changed = list(progress.changed.values())
        if not await self.writer.commit(Checkpoint.of(run, changed, progress.queue_at, claim)):
            raise ClaimLost(run.id)
        for record in progress.changed.values():
            record.stored = True
        progress.changed.clear()
        progress.queue_at = None
        progress.claimed = not last and (progress.claimed or claim is not None)

    async def _step(self, progress: Progress) -> Outcome:
        """Run the next step; its start is committed before its action is called."""
        run, flow, scope = progress.run, progress.flow, progress.scope
        scope["now"] = self.clock.now().isoformat()
        if run.step_index >= len(flow.steps):
            return await self._succeed(progress)
        step = flow.steps[run.step_index]
        where = f"$.steps[{run.step_index}]"
        record = progress.records.get(step.id)
        if record is None:
            try:
                record = await self._start_step(progress, step, where)
            except LatchflowError as exc:
                return await self._fail(progress, None, step, str(exc))
            if record.status == StepStatus.SKIPPED:
                return self._next(progress)
        elif record.status in DONE:
            return self._next(progress)
        resume_at = call_held_until(step, self.registry.actions.get(step.action), self.connections)
        if resume_at is not None:
            return await self._postpone(progress, record, resume_at)
        previous = record.status
        if previous == StepStatus.RUNNING and record.attempts and not self._safe_to_retry(step):
            return await self._needs_attention(
                progress, record, step, "the process running it stopped during the call"
            )
        if previous != StepStatus.WAITING:  # a pending job's checks are not new attempts
            record.attempts += 1
        record.status = StepStatus.RUNNING
        run.status = RunStatus.RUNNING
        progress.touch(record)
        if not self._local(step):
            await self._commit(progress)  # the attempt is counted before the action is called
        return await self._call(progress, step, record, where, previous)

    def _safe_to_retry(self, step: Step) -> bool:
        action = self.registry.actions.get(step.action)
        return action is None or action.safe_to_retry  # a missing action fails on its call

    def _local(self, step: Step) -> bool:
        """An idempotent action without a connection (``core.set``) reaches nothing outside:
        its start needs no checkpoint of its own; a crash at worst runs it again."""
        action = self.registry.actions.get(step.action)
        return action is not None and action.idempotent and action.connection is None

    async def _start_step(self, progress: Progress, step: Step, where: str) -> StepRow:
        run, scope = progress.run, progress.scope
        action = self._action(step, where)
        record = StepRow(
            run_id=run.id,
            step_id=step.id,
            position=run.step_index,
            action=step.action,
            started_at=self.clock.now(),
        )
        progress.records[step.id] = record
        if step.condition is not None:
            condition = await expressions.render_aside(step.condition, scope, f"{where}.if")
            if not expressions.is_truthy(condition):
                record.status, record.finished_at = StepStatus.SKIPPED, self.clock.now()
                record.error = f"'if' was {condition!r}"
                progress.touch(record)
                return record
        rendered = await expressions.render_aside(step.input, scope, f"{where}.input")
        problems = list(validator(action.input_schema).iter_errors(rendered))
        if problems:
            first = problems[0]
            raise FatalError(
                f"{json_path(first.absolute_path, where + '.input')}: {first.message}"
                " (after evaluating expressions)"
            )
        record.input = redact(rendered, self._secrets(progress))
        record.input_sealed = self.store.sealer.seal(rendered)
        progress.inputs[step.id] = rendered
        progress.touch(record)
        return record

    def _action(self, step: Step, where: str) -> Action:
        action = self.registry.actions.get(step.action)
        if action is None:
            raise FatalError(f"{where}.action: action {step.action!r} is not installed")
        return action

    async def _call(
        self, progress: Progress, step: Step, record: StepRow, where: str, previous: str
    ) -> Outcome:
        """Call the step's action (within its connection's concurrency bound) and record what
        came of it."""
        live: LiveConnection | None = None
        try:
            action = self._action(step, where)
            ctx, live = await action_context(
                progress.run, step, record, action, self.connections, self.clock, where
            )
            if step.id in progress.inputs:
                rendered = progress.inputs.pop(step.id)
            else:  # rendered before a restart or a wait
                rendered = self.store.sealer.unseal(record.input_sealed or "null")
            if live is None:
                result = await action.run(ctx, rendered)
            else:
                async with live.slots:
                    # a hold may have started while this call waited for a slot
                    resume_at = self.connections.holds.held_until(live.connection.id)
                    if resume_at is not None:
                        if previous != StepStatus.WAITING:
                            record.attempts -= 1
                        record.status = previous
                        return await self._postpone(progress, record, resume_at)
                    result = await action.run(ctx, rendered)
                self.connections.holds.succeeded(live.connection.id)
        except Exception as exc:
            return await self._raised(progress, step, record, exc, live)
        if isinstance(result, Pending):
            record.status, record.state = StepStatus.WAITING, result.state
            progress.run.status, progress.run.due_at = RunStatus.WAITING, result.check_at
            progress.touch(record)
            progress.queue_at = result.check_at
            await self._commit(progress, last=True)
            return Outcome.WAIT
        return await self._returned(progress, step, record, action, result)

    async def _raised(
        self,
        progress: Progress,
        step: Step,
        record: StepRow,
        exc: Exception,
        live: LiveConnection | None,
    ) -> Outcome:
        """What an error from the step's call means: retry, skip, filter, fail, or stop for a
        person when the vendor may have applied a call that is not safe to repeat."""
        run = progress.run
        if isinstance(exc, httpx.TransportError):
            exc = RetryableError.from_transport(exc)
        if isinstance(exc, RateLimitedError) and live is not None:
            return await self._rate_limited(progress, step, record, exc, live)
        if isinstance(exc, RetryableError):
            if live is not None and vendor_unavailable(exc):
                self.connections.holds.failed(live.connection.id, str(exc))
            if maybe_applied(exc) and not self._safe_to_retry(step):
                return await self._needs_attention(progress, record, step, str(exc))
            return await self._retry(progress, step, record, exc)
        if isinstance(exc, SkipError | RunFiltered):
            status = StepStatus.SKIPPED if isinstance(exc, SkipError) else StepStatus.FILTERED
            record.status, record.error, record.finished_at = status, str(exc), self.clock.now()
            progress.touch(record)
            if isinstance(exc, SkipError):
                return self._next(progress)
            run.status, run.error, run.finished_at = (
                RunStatus.FILTERED,
                str(exc),
                record.finished_at,
            )
            await self._commit(progress, last=True)
            return Outcome.DONE
        if isinstance(exc, LatchflowError | ExpressionError):
            return await self._fail(progress, record, step, str(exc))
        # a plugin bug must fail the run, not the worker
        log.error("step %s of run %s raised", step.id, run.id, exc_info=exc)
        return await self._fail(progress, record, step, f"unexpected {type(exc).__name__}: {exc}")

    async def _returned(
        self, progress: Progress, step: Step, record: StepRow, action: Action, result: JSON
    ) -> Outcome:
        """The step succeeded if the action's output matches its schema."""
        problems = list(validator(action.output_schema).iter_errors(result))
        if problems:
            return await self._fail(
                progress,
                record,
                step,
                f"action {action.key!r} returned output that does not match its schema:"
                f" {json_path(problems[0].absolute_path)}: {problems[0].message}",
            )
        record.status, record.finished_at = StepStatus.SUCCEEDED, self.clock.now()
        record.error = None
        progress.remember_credentials(action, result)
        record.output = redact(mask_paths(result, action.credentials), self._secrets(progress))
        record.output_sealed = self.store.sealer.seal(result)
        record.state = None
        progress.touch(record)
        progress.scope["steps"][step.id] = json.loads(json.dumps(result))  # as a resume reads it
        return self._next(progress)

    def _secrets(self, progress: Progress) -> frozenset[str]:
        """What is masked wherever the run is shown: its connections' secrets and the
        credentials its steps issued (``Action.credentials``)."""
        return self.connections.secret_values() | progress.credentials

    async def _postpone(self, progress: Progress, record: StepRow, resume_at: datetime) -> Outcome:
        """Wait for the connection's hold without a worker and without using an attempt."""
        run = progress.run
        if record.status != StepStatus.WAITING:  # a pending vendor job stays pending
            record.status = StepStatus.RETRYING
            record.error = (
                f"the connection is held (rate limit or outage) until {resume_at.isoformat()}"
            )
        run.status, run.due_at = RunStatus.WAITING, resume_at
        progress.touch(record)
        progress.queue_at = resume_at
        await self._commit(progress, last=True)
        log.info(
            "run %s step %s: connection cooling down until %s", run.id, record.step_id, resume_at
        )
        return Outcome.WAIT

    async def _rate_limited(
        self,
        progress: Progress,
        step: Step,
        record: StepRow,
        exc: RateLimitedError,
        live: LiveConnection,
    ) -> Outcome:
        """The vendor asked to wait: hold the whole connection that long, and try the step
        again after it without counting the attempt."""
        policy = step.retry_policy(self.registry.actions[step.action].retry)
        delay = exc.retry_after
        if delay is None:
            delay = policy.delay(record.attempts, self.rand())
        connection_id = live.connection.id
        until = self.connections.holds.rate_limited(connection_id, delay, str(exc))
        log.warning("connection %s is rate-limited: its calls wait until %s", connection_id, until)
        record.attempts -= 1
        resume_at = self.connections.admit(connection_id, live.connection.vendor) or until
        return await self._postpone(progress, record, resume_at)

    async def _retry(
        self, progress: Progress, step: Step, record: StepRow, exc: RetryableError
    ) -> Outcome:
        """Retry the step later, after the backoff or the vendor's ``retry_after``."""
        run = progress.run
        policy = step.retry_policy(self.registry.actions[step.action].retry)
        delay = (
            exc.retry_after
            if exc.retry_after is not None
            else policy.delay(record.attempts, self.rand())
        )
        if record.attempts >= policy.max_attempts:
            return await self._fail(
                progress, record, step, f"gave up after {record.attempts} attempts: {exc}"
            )
        record.status, record.error = StepStatus.RETRYING, str(exc)
        run.status, run.due_at = RunStatus.WAITING, self.clock.now() + timedelta(seconds=delay)
        progress.touch(record)
        progress.queue_at = run.due_at
        await self._commit(progress, last=True)
        log.info(
            "run %s step %s: retry %d in %.1fs: %s", run.id, step.id, record.attempts, delay, exc
        )
        return Outcome.WAIT

    def _next(self, progress: Progress) -> Outcome:
        """Move on to the next step; committed with whatever the run writes next."""
        run = progress.run
        run.step_index += 1
        run.status, run.updated_at = RunStatus.RUNNING, self.clock.now()
        progress.queue_at = run.updated_at
        return Outcome.CONTINUE

    async def _succeed(self, progress: Progress) -> Outcome:
        run, flow, scope = progress.run, progress.flow, progress.scope
        try:
            if flow.output_template is not None:
                output: Any = await expressions.render_aside(
                    flow.output_template, scope, "$.output"
                )
            else:
                finished = [s.id for s in flow.steps if s.id in scope["steps"]]
                output = scope["steps"][finished[-1]] if finished else None
        except ExpressionError as exc:
            return await self._fail(progress, None, None, str(exc))
        now = self.clock.now()
        run.status, run.finished_at, run.updated_at = RunStatus.SUCCEEDED, now, now
        run.output = redact(output, self._secrets(progress))
        await self._commit(progress, last=True)
        return Outcome.DONE

    async def _needs_attention(
        self, progress: Progress, record: StepRow, step: Step, cause: str
    ) -> Outcome:
        """Stop the run: its step may have reached the vendor, and another attempt could apply
        it twice (its action is not safe to retry)."""
        run, now = progress.run, self.clock.now()
        message = (
            f"{step.action} may have been applied by the vendor ({cause}); it cannot be looked"
            " up, so it was not tried again. Check the vendor for what this step would have"
            " made, then replay the run to make it, or cancel the run if it exists"
        )
        record.status, record.error, record.finished_at = StepStatus.NEEDS_ATTENTION, message, now
        progress.touch(record)
        run.status, run.finished_at, run.updated_at = RunStatus.NEEDS_ATTENTION, now, now
        run.error = f"step {step.id!r} ({step.action}): {message}"
        await self._commit(progress, last=True)
        log.warning("run %s needs attention: %s", run.id, run.error)
        return Outcome.DONE

    async def _fail(
        self, progress: Progress, record: StepRow | None, step: Step | None, message: str
    ) -> Outcome:
        run, now = progress.run, self.clock.now()
        if record is not None:
            record.status, record.error, record.finished_at = StepStatus.FAILED, message, now
            progress.touch(record)
        run.status, run.finished_at, run.updated_at = RunStatus.FAILED, now, now
        run.error = f"step {step.id!r} ({step.action}): {message}" if step else message
        await self._commit(progress, last=True)
        log.warning("run %s failed: %s", run.id, run.error)
        return Outcome.DONE
