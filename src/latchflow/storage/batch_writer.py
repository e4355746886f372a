"""Group commit: concurrent writes share one transaction, each caller still waits for its own.

A caller awaits ``submit(item)``; the single writer task takes whatever was submitted while the
previous batch was being written and writes it in one transaction with ``write_batch``, which
keeps batches small when traffic is light and large when it is heavy. Every caller gets its
item's result only after the batch's commit, so nothing is acknowledged before it is durable.
The writer runs on the event loop's thread: in a worker thread every SQLite call would wait for
the GIL behind the loop (measured: slower than one transaction per request).

If a batch fails (a unique key another process took at the same moment, one item's bad row),
each of its items is written again in a transaction of its own, so one item's fault is only
that item's. An item that fails alone on a unique key is tried once more: the other writer's
row is visible by then, and ``write_batch`` answers it as it would any known key.

On a single-writer database (SQLite) the writer has a connection of its own and awaits the
write lock on the event loop (``write_lock``) before it takes the next batch: while another
process writes, the loop goes on serving requests (SQLite's busy handler would stall it), and
what is submitted meanwhile joins the batch. A batch that fails closes that connection; the
next batch opens another. Elsewhere each batch takes a pooled connection.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

from sqlalchemy import Connection, Engine, event
from sqlalchemy.exc import IntegrityError

from latchflow.storage.database import single_writer
from latchflow.storage.write_lock import WRITE_LOCK_TIMEOUT, begin_immediate, connect_for_writes

Item = TypeVar("Item")
Result = TypeVar("Result")
MAX_BATCH = 512


class BatchWriter(Generic[Item, Result]):
    """Writes submitted items in batches: one writer task, one transaction per batch."""

    def __init__(
        self,
        engine: Engine,
        write_batch: Callable[[Connection, Sequence[Item]], Sequence[Result | Exception]],
        *,
        name: str,
        max_batch: int = MAX_BATCH,
        lock_timeout: float = WRITE_LOCK_TIMEOUT,
        copies_wal: bool = True,
    ) -> None:
        self.engine = engine
        self.write_batch = write_batch
        """Writes a batch on a connection in a transaction (the writer commits it); an item's
        result that is an exception is raised to that item's caller."""
        self.name = name
        self.max_batch = max_batch
        self.lock_timeout = lock_timeout
        """Seconds a batch waits for SQLite's write lock before each of its items fails."""
        self.copies_wal = copies_wal
        """False: this writer's commits never copy SQLite's WAL back into the database (a long
        pause on the event loop); the other connections' commits do it instead."""
        self._single_writer = single_writer(engine)
        self._connection: Connection | None = None
        self._pending: list[tuple[Item, asyncio.Future[Result]]] = []
        self._task: asyncio.Task[None] | None = None
        event.listen(engine, "engine_disposed", lambda _engine: self._close())

    async def submit(self, item: Item) -> Result:
        """Write ``item`` with whatever else is submitted meanwhile; its result once committed."""
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self._pending.append((item, future))
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._write_while_pending(), name=self.name)
        return await future

    async def write(self, items: Sequence[Item]) -> Sequence[Result | Exception]:
        """Write ``items`` as one batch now (or each on its own if the batch fails)."""
        return self._write(await self._batch_connection(), items)

    async def close(self) -> None:
        """Let the batch in progress finish, then close the writer's connection."""
        if self._task is not None:
            await self._task
        self._close()

    async def _write_while_pending(self) -> None:
        """Write batches until nothing is pending; the next submit starts a new task."""
        while self._pending:
            try:
                connection = await self._batch_connection()
            except Exception as exc:  # the write lock stayed taken: everything pending fails
                batch, self._pending = self._pending, []
                _answer(batch, [exc] * len(batch))
                continue
            batch = self._pending[: self.max_batch]  # with what arrived while the lock was awaited
            self._pending = self._pending[self.max_batch :]
            _answer(batch, self._write(connection, [item for item, _ in batch]))
            await asyncio.sleep(0)  # let the loop read the requests that arrived meanwhile

    async def _batch_connection(self) -> Connection | None:
        """On a single-writer database, the writer's own connection holding the write lock;
        elsewhere None (each batch takes a pooled connection)."""
        if not self._single_writer:
            return None
        if self._connection is None:
            self._connection = connect_for_writes(self.engine)
            if not self.copies_wal:
                self._connection.exec_driver_sql("PRAGMA wal_autocheckpoint=0")
                self._connection.commit()
        try:
            await begin_immediate(self._connection, self.lock_timeout)
        except Exception:
            self._close()
            raise
        return self._connection

    def _write(
        self, connection: Connection | None, items: Sequence[Item]
    ) -> Sequence[Result | Exception]:
        try:
            return self._write_once(connection, items)
        except Exception as exc:
            if len(items) > 1:
                return [result for item in items for result in self._write_alone(item)]
            return self._write_alone(items[0]) if isinstance(exc, IntegrityError) else [exc]

    def _write_once(
        self, connection: Connection | None, items: Sequence[Item]
    ) -> list[Result | Exception]:
        if connection is None:
            with self.engine.begin() as pooled:
                return list(self.write_batch(pooled, items))
        try:
            results = self.write_batch(connection, items)
            connection.commit()
        except Exception:
            self._close()  # rolls back; the next batch opens another connection
            raise
        return list(results)

    def _write_alone(self, item: Item) -> Sequence[Result | Exception]:
        """``item`` in a transaction of its own; once more after a unique-key race."""
        tries = 2
        while True:
            tries -= 1
            try:
                return self._write_once(None, [item])
            except IntegrityError as exc:  # a concurrent writer took the key: the retry sees it
                if not tries:
                    return [exc]
            except Exception as exc:
                return [exc]

    def _close(self) -> None:
        if self._connection is not None:
            connection, self._connection = self._connection, None
            connection.close()


def _answer(
    batch: Sequence[tuple[Item, asyncio.Future[Result]]],
    results: Sequence[Result | Exception],
) -> None:
    for (_, future), result in zip(batch, results, strict=True):
        if future.done():
            continue
        if isinstance(result, Exception):
            future.set_exception(result)
        else:
            future.set_result(result)
