"""The durable empty RPC: the floor server's empty method made durable, and nothing else.

Each call appends one ``PROBE_BYTES`` record to a ``services.kernel.journal.Journal`` (the
kernel's own journal: the Rust writer thread, fsync on) and answers once it is synced. Calls
that arrive while a batch is being synced share the next one (group commit, as the kernel's
writer does). No validation, no kernel step, no record building, no venue traffic: what is left
is what any Python service on this stack pays for a durable answer. Its ratios to the floor are
the best a kernel written this way could reach, whatever its handler does.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Final

import grpc
import grpc.aio
from google.protobuf import empty_pb2

from bench.kernel_service.floor import EMPTY_SERVICE, PROBE_BYTES
from services.kernel.journal import Journal

DURABLE_NAME: Final = "Durable"
DURABLE_METHOD: Final = f"/{EMPTY_SERVICE}/{DURABLE_NAME}"


class GroupCommit:
    """One appender task: everything queued while a batch syncs goes into the next batch."""

    def __init__(self, journal: Journal) -> None:
        self._journal = journal
        self._payload = os.urandom(PROBE_BYTES)
        self._pending: list[asyncio.Future[None]] = []
        self._queued = asyncio.Event()
        self._failure: BaseException | None = None

    async def commit(self) -> None:
        """Returns once a record for this call is durable; raises the appender's failure if it failed."""
        if self._failure is not None:
            raise RuntimeError(f"the durable server's journal failed: {self._failure!r}")
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append(done)
        self._queued.set()
        await done

    async def run(self) -> None:
        """Appends batches until cancelled; a journal error fails every waiting call and ends the task."""
        while True:
            await self._queued.wait()
            self._queued.clear()
            batch, self._pending = self._pending, []
            first = self._journal.last_sequence + 1
            try:
                await self._journal.append([(first + i, self._payload) for i in range(len(batch))])
            except Exception as error:
                self._failure = error
                for done in [*batch, *self._pending]:
                    done.set_exception(error)
                raise
            for done in batch:
                done.set_result(None)


@contextlib.asynccontextmanager
async def durable_service(data_dir: Path) -> AsyncIterator[GroupCommit]:
    """A journal in ``data_dir`` (fsync on) and its running appender, closed on exit."""
    journal = await Journal.open(data_dir, fsync=True)
    group = GroupCommit(journal)
    task = asyncio.create_task(group.run())
    try:
        yield group
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await journal.close()


def durable_handler(group: GroupCommit) -> grpc.RpcMethodHandler[Any, Any]:
    """The ``Durable`` method: an empty answer once its record is synced."""

    async def call(request: empty_pb2.Empty, context: grpc.aio.ServicerContext[Any, Any]) -> empty_pb2.Empty:
        await group.commit()
        return empty_pb2.Empty()

    return grpc.unary_unary_rpc_method_handler(
        call,
        request_deserializer=empty_pb2.Empty.FromString,
        response_serializer=empty_pb2.Empty.SerializeToString,
    )
