"""The PostgreSQL dispatch backend: procrastinate jobs, a worker in every ``latchflow serve`` node.

How the guarantees are kept:

- **A run's steps never overlap.** Each due moment of a run is one ``advance_run`` job locked by
  the run id (``pg_queue``); procrastinate never starts a job while another with the same lock
  is being worked on, on any node. A job advances ONE step: the step's checkpoint and the next
  job commit in one transaction, so whichever node is free takes the next step.
- **No lease from a dead node blocks a run.** Jobs call ``Executor.advance`` without the
  executor's claim (``claimed_by``/``claimed_until``): the procrastinate lock is the only mutual
  exclusion here, and it belongs to the job row, not to a process. A claim left in the runs table
  by an earlier embedded process is ignored. A killed node's job stays ``doing`` (holding the
  lock) until its worker's heartbeat is ``STALLED_SECONDS`` old; then ``retry_stalled_jobs``
  puts it back to ``todo`` and any node resumes the run from its last checkpoint. Only the step
  that was in flight runs again, with the same idempotency key.
- **Stale and duplicate jobs are harmless.** A job whose run is no longer active, or is not due
  yet (a later job exists for it), does nothing. A job retried after its node died between the
  checkpoint commit and procrastinate's "succeeded" update advances the run one more step, which
  the checkpoints make safe; the extra chain ends at the next wait or when the run finishes.
- **Nothing is left without a job.** ``requeue_orphans`` looks every ``SWEEP_SECONDS`` for active
  runs past due with no waiting or running job (say a job that failed on a database error more
  than its retries allow) and queues them again.
- **One run per schedule tick.** ``cron_tick`` runs every second (procrastinate defers each
  periodic tick once across all nodes, and the task's lock keeps ticks from overlapping); it
  stores each fire under the unique key ``schedule:<flow>:<tick>`` through ``ScheduleFires``,
  the same code as the embedded scheduler, and polls due polling triggers with the cursor
  committed together with the runs a poll creates.
- Finished jobs are deleted by procrastinate's ``remove_old_jobs`` every hour.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import datetime, timedelta

from procrastinate import App, PsycopgConnector, RetryStrategy, builtin_tasks, job_context
from procrastinate.worker import Worker

from latchflow.backends.base import DEFAULT_WORKERS
from latchflow.backends.postgres.queue import (
    ADVANCE_TASK,
    RUNS_QUEUE,
    ProcrastinateJobs,
    conninfo,
)
from latchflow.intake.schedules import ScheduleFires
from latchflow.intake.ticks import next_tick, polled, schedule_trigger
from latchflow.plugin.timeparse import parse_moment
from latchflow.runs.executor import Executor

log = logging.getLogger("latchflow.dispatch.pg")

HOUSEKEEPING_QUEUE = "latchflow-housekeeping"
HEARTBEAT_SECONDS = 2.0
"""How often a node's procrastinate worker records that it is alive."""
STALLED_SECONDS = 10.0
"""A job is retried once its worker's heartbeat is this old (the node is taken for dead)."""
POLL_SECONDS = 1.0
"""How often a worker looks for scheduled jobs that came due (new jobs arrive by NOTIFY)."""
SWEEP_SECONDS = 10
EARLY_TOLERANCE = timedelta(seconds=1)
"""A job may start this much before its run's ``due_at`` (clocks of nodes and database differ)."""
FINISHED_JOBS_HOURS = 1


class RunWorker(Worker):
    """procrastinate's worker, looking for work again as soon as a job's outcome is stored.

    A run's next job is inserted while its current job still holds the run's lock, so the
    NOTIFY for it arrives too early to be taken; without this, the next step would wait for
    the next poll (``POLL_SECONDS``).
    """

    async def _process_job(self, context: job_context.JobContext) -> None:
        await super()._process_job(context)
        self._new_job_event.set()


class ProcrastinateDispatcher:
    """Runs due runs through procrastinate; every node runs one worker in its event loop."""

    fires_schedules = True

    def __init__(
        self, executor: Executor, workers: int = DEFAULT_WORKERS, name: str = "node"
    ) -> None:
        if workers < 1:
            raise ValueError("workers must be at least 1")
        store = executor.store
        self.executor = executor
        self.journal = store.journal
        self.clock = executor.clock
        self.workers = workers
        self.name = name
        self.database = store.engine
        self.jobs = ProcrastinateJobs(self.clock)
        self.fires = ScheduleFires(store, executor.registry, executor.connections, self.notify)
        self.app = App(
            connector=PsycopgConnector(
                conninfo=conninfo(store.settings.database_url), min_size=1, max_size=4
            ),
            periodic_defaults={"max_delay": 60},
        )
        self._register_tasks()
        self._workers: list[tuple[Worker, asyncio.Task[None]]] = []
        self._in_flight = 0
        self._open = False

    # the interface

    def notify(self) -> None:
        """Nothing to do: inserting the job row wakes listening workers (LISTEN/NOTIFY)."""

    def wake_at(self, when: datetime) -> None:
        """Nothing to do: the job is stored with ``scheduled_at``; workers poll for due ones."""

    @property
    def in_flight(self) -> int:
        return self._in_flight

    async def start(self) -> None:
        """Start two workers: one for run steps, one for the periodic tasks, so that stalled-job
        recovery and schedule ticks never wait for a slot behind slow steps."""
        await self._ensure_open()
        for queue, concurrency in ((RUNS_QUEUE, self.workers), (HOUSEKEEPING_QUEUE, 2)):
            worker = self._make_worker(wait=True, queues=[queue], concurrency=concurrency)
            task = asyncio.create_task(
                worker.run(),  # type: ignore[no-untyped-call]  # procrastinate leaves it untyped
                name=f"latchflow-worker-{queue}",
            )
            self._workers.append((worker, task))

    async def stop(self, grace_seconds: float = 10.0) -> None:
        """Stop fetching; running steps get ``grace_seconds``, then are aborted (and retried)."""
        for worker, _ in self._workers:
            worker.shutdown_graceful_timeout = grace_seconds
            worker.stop()  # type: ignore[no-untyped-call]
        for _, task in self._workers:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._workers = []
        if self._open:
            await self.app.close_async()
            self._open = False

    async def drain(self) -> None:
        """Run every run job due by the engine's clock, until none is left.

        Jobs are due by the database's clock; a job whose ``scheduled_at`` the engine's clock
        has passed (a test's fake clock runs ahead) is made due now first.
        """
        await self._ensure_open()
        while True:
            ready = self.jobs.make_due(self.database)
            if not ready:
                return
            before = self._in_flight
            worker = self._make_worker(wait=False, queues=[RUNS_QUEUE], concurrency=self.workers)
            await worker.run()  # type: ignore[no-untyped-call]
            if self._in_flight == before:  # another worker holds the run's lock: let it work
                await asyncio.sleep(0.05)

    # the tasks

    def _register_tasks(self) -> None:
        app = self.app
        app.task(
            name=ADVANCE_TASK,
            queue=RUNS_QUEUE,
            retry=RetryStrategy(max_attempts=5, linear_wait=2),
        )(self.advance_run)
        app.periodic(cron="* * * * * *")(
            app.task(
                name="latchflow.cron_tick",
                queue=HOUSEKEEPING_QUEUE,
                lock="latchflow.cron_tick",
                queueing_lock="latchflow.cron_tick",
            )(self.cron_tick)
        )
        app.periodic(cron="* * * * * */2")(  # croniter: seconds are the 6th field
            app.task(
                name="latchflow.retry_stalled_jobs",
                queue=HOUSEKEEPING_QUEUE,
                queueing_lock="latchflow.retry_stalled_jobs",
            )(self.retry_stalled_jobs)
        )
        app.periodic(cron=f"* * * * * */{SWEEP_SECONDS}")(
            app.task(
                name="latchflow.requeue_orphans",
                queue=HOUSEKEEPING_QUEUE,
                queueing_lock="latchflow.requeue_orphans",
            )(self.requeue_orphans)
        )
        app.periodic(cron="17 * * * *")(
            app.task(
                name="latchflow.remove_old_jobs",
                queue=HOUSEKEEPING_QUEUE,
                queueing_lock="latchflow.remove_old_jobs",
                pass_context=True,
            )(self.remove_old_jobs)
        )

    async def advance_run(self, run_id: str) -> None:
        """One step of a run, unless the job is stale (run finished, or not due yet)."""
        if not self.journal.is_due(run_id, self.clock.now() + EARLY_TOLERANCE):
            return
        self._in_flight += 1
        try:
            await self.executor.advance(run_id)
        finally:
            self._in_flight -= 1

    async def cron_tick(self, timestamp: int) -> None:
        """Fire due schedules and poll due polling triggers (one tick at a time, cluster-wide).

        One query reads every timed flow with its cursor; only flows with something due are
        touched further, so a tick over thousands of idle schedules stays cheap."""
        now = self.clock.now()
        due: list[tuple[str, str]] = []
        for flow_id, trigger_type, document, _, cursor, polled_at in self.fires.timed_flows():
            try:
                if trigger_type == "schedule":
                    last = (cursor or {}).get("last_tick")
                    trigger = schedule_trigger(document["trigger"].get("input") or {})
                    tick = next_tick(trigger, parse_moment(last)) if last else now
                    if tick is not None and tick <= now:
                        due.append(("schedule", flow_id))
                    continue
                trigger_def = self.executor.registry.triggers[trigger_type]
                interval = timedelta(seconds=trigger_def.poll_interval)
                if polled(trigger_def, document) and (
                    polled_at is None or polled_at + interval <= now
                ):
                    due.append(("poll", flow_id))
            except Exception:  # one broken flow must not stop the other flows' ticks
                log.exception("flow %s: tick failed", flow_id)
        for kind, flow_id in due:
            try:
                if kind == "schedule":
                    self.fires.fire_due(flow_id)
                else:
                    await self.fires.poll_flow(flow_id)
            except Exception:
                log.exception("flow %s: tick failed", flow_id)

    async def retry_stalled_jobs(self, timestamp: int) -> None:
        """Put the jobs of nodes whose heartbeat stopped back in the queue (procrastinate how-to)."""
        manager = self.app.job_manager
        for job in await manager.get_stalled_jobs(seconds_since_heartbeat=STALLED_SECONDS):
            log.warning("retrying job %s (%s) of a stalled node", job.id, job.call_string)
            await manager.retry_job(job)

    async def requeue_orphans(self, timestamp: int) -> None:
        """Queue active runs that are past due and have no job (a safety net; normally none)."""
        cutoff = self.clock.now() - timedelta(seconds=SWEEP_SECONDS)
        for run_id in self.jobs.requeue_orphans(self.database, cutoff):
            log.warning("run %s had no job; queued it again", run_id)

    async def remove_old_jobs(self, context: job_context.JobContext, timestamp: int) -> None:
        await builtin_tasks.remove_old_jobs(context, max_hours=FINISHED_JOBS_HOURS)

    # helpers

    async def _ensure_open(self) -> None:
        if not self._open:
            await self.app.open_async()
            self._open = True

    def _make_worker(self, wait: bool, queues: list[str], concurrency: int) -> Worker:
        return RunWorker(
            self.app,
            queues=queues,
            name=self.name,
            concurrency=concurrency,
            wait=wait,
            listen_notify=wait,
            install_signal_handlers=False,
            fetch_job_polling_interval=POLL_SECONDS,
            update_heartbeat_interval=HEARTBEAT_SECONDS,
            stalled_worker_timeout=STALLED_SECONDS,
        )
