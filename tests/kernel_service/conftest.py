"""Shared fixtures of the kernel-service tests: a venue double, kernel settings, a running kernel.

Async tests use AnyIO's pytest plugin on asyncio (``pytestmark = pytest.mark.anyio`` in the
module; the ``anyio_backend`` fixture below picks asyncio, which grpc.aio needs). Async fixtures
run on the test's event loop.

Fixtures:

``venue``
    A started :class:`VenueDouble` serving ``pink.v1.VenueService`` on 127.0.0.1 (an ephemeral
    port; ``venue.address``), stopped after the test.
``venue_channel``
    A ``grpc.aio`` channel to ``venue``, closed after the test.
``journal_dir``
    ``tmp_path / "journal"``: where :func:`running_kernel` keeps the journal of
    ``kernel_settings`` (``data_dir / "journal"``, the layout of ``services.kernel.server``).
``kernel_settings``
    :func:`make_settings` for ``tmp_path`` (fsync off; the venue address is a placeholder, pass
    ``venue_address=venue.address`` to :func:`make_settings` when a test needs the real one).
``kernel``
    A :class:`KernelHarness` from :func:`running_kernel`: a :class:`RecordingCore` recovered from
    the journal (empty at first) with its writer task running.

Helpers: :func:`make_settings`, :func:`running_kernel` (reopen the same ``settings`` to restart
a kernel from its journal), :func:`clean_replay` (the reference kernel: every journaled record
replayed from sequence 1 with no snapshot), :class:`RecordingCore` (every submission and its judgement,
accepted or not), :class:`ManualClock` (the kernel's time, moved by the test).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc.aio
import pytest
from prometheus_client import CollectorRegistry

import pink_kernel
from services.common.config import load_settings
from services.kernel.config import KernelSettings
from services.kernel.core import Committed, KernelCore, Payload
from services.kernel.journal import Journal
from services.kernel.metrics import KernelMetrics
from services.kernel.recovery import Recovered, recover
from tests.kernel_service.venue_double import VenueDouble

__all__ = [
    "UNUSED_VENUE_ADDRESS",
    "Judged",
    "KernelHarness",
    "ManualClock",
    "RecordingCore",
    "clean_replay",
    "make_settings",
    "running_kernel",
]

#: A syntactically valid venue address for settings of tests that do not dial the venue.
UNUSED_VENUE_ADDRESS = "127.0.0.1:9"


@dataclass(frozen=True)
class Judged:
    """One submission to a :class:`RecordingCore` and the kernel's answer."""

    payload: Payload
    committed: Committed
    stream_position: str

    @property
    def accepted(self) -> bool:
        return self.committed.accepted


class RecordingCore(KernelCore):
    """A :class:`KernelCore` that also keeps every submission with its judgement, in order.

    ``KernelCore.wait_for`` wakes on commits only; :meth:`wait_judged` wakes on every judgement,
    rejected ones included (e.g. a duplicate venue event).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.judged: list[Judged] = []
        self._judged_changed = asyncio.Event()

    def enqueue(
        self, payload: Payload, *, trace: Mapping[str, str] | None = None, stream_position: str = ""
    ) -> asyncio.Future[Committed]:
        answer = super().enqueue(payload, trace=trace, stream_position=stream_position)

        def judged(done: asyncio.Future[Committed]) -> None:
            if done.cancelled() or done.exception() is not None:
                return
            self.judged.append(Judged(payload, done.result(), stream_position))
            changed, self._judged_changed = self._judged_changed, asyncio.Event()
            changed.set()

        answer.add_done_callback(judged)
        return answer

    async def wait_judged(self, predicate: Callable[[list[Judged]], bool], seconds: float = 5.0) -> None:
        """Returns once ``predicate(self.judged)`` holds; ``TimeoutError`` after ``seconds``."""
        async with asyncio.timeout(seconds):
            while True:
                changed = self._judged_changed
                if predicate(self.judged):
                    return
                await changed.wait()


class ManualClock:
    """A clock for ``KernelCore(clock=...)`` that moves only when the test says so (nanoseconds)."""

    def __init__(self, start_ns: int | None = None) -> None:
        self.now_ns = time.time_ns() if start_ns is None else start_ns

    def __call__(self) -> int:
        return self.now_ns

    def advance(self, seconds: float) -> None:
        self.now_ns += round(seconds * 1_000_000_000)


@dataclass(frozen=True)
class KernelHarness:
    """A running kernel: its settings, journal, recovery report, core and writer task."""

    settings: KernelSettings
    journal: Journal
    recovered: Recovered
    core: RecordingCore
    writer: asyncio.Task[None]


def make_settings(data_dir: Path, **overrides: object) -> KernelSettings:
    """KernelSettings for a test: ``data_dir``, fsync off, defaults otherwise (10 slots, BTC/ETH)."""
    values: dict[str, object] = {"data_dir": data_dir, "venue_address": UNUSED_VENUE_ADDRESS, "fsync": False}
    values.update(overrides)
    return load_settings(KernelSettings, **values)


@asynccontextmanager
async def running_kernel(
    settings: KernelSettings, *, clock: Callable[[], int] = time.time_ns
) -> AsyncIterator[KernelHarness]:
    """Opens ``settings.data_dir / "journal"``, recovers the kernel (snapshot + replay) and runs its writer.

    On exit the writer is stopped and the journal closed (no final snapshot: what is on disk is
    exactly what was committed). Entering again with the same settings is a restart.
    """
    journal = await Journal.open(
        settings.data_dir / "journal", segment_bytes=settings.segment_bytes, fsync=settings.fsync
    )
    try:
        recovered = await recover(journal, settings.kernel_config())
        core = RecordingCore(
            recovered.kernel,
            journal,
            kernel_id=settings.kernel_id,
            slot_count=settings.slot_count,
            max_batch=settings.max_batch,
            queue_limit=settings.queue_limit,
            snapshot_every=settings.snapshot_every,
            metrics=KernelMetrics(CollectorRegistry()),
            venue_stream_position=recovered.venue_stream_position,
            clock=clock,
        )
        writer = asyncio.create_task(core.run(), name="kernel-writer")
        try:
            yield KernelHarness(settings, journal, recovered, core, writer)
        finally:
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await writer
    finally:
        await journal.close()


async def clean_replay(settings: KernelSettings, *, upto: int | None = None) -> pink_kernel.Kernel:
    """A fresh kernel fed every record of the journal from sequence 1 (up to ``upto``), checksums verified.

    No snapshot is used, so it is the independent reference a recovered or running kernel must
    equal (``state_hash``). Needs the whole journal (``snapshot_every`` large enough that nothing
    was compacted); the journal must not be open elsewhere.
    """
    kernel = pink_kernel.Kernel(settings.kernel_config().SerializeToString())
    journal = await Journal.open(settings.data_dir / "journal", segment_bytes=settings.segment_bytes, fsync=False)
    try:
        assert journal.last_sequence == 0 or journal.first_sequence == 1, "part of the journal was compacted"
        end = journal.last_sequence if upto is None else upto
        assert end <= journal.last_sequence, f"the journal ends at {journal.last_sequence}, before {end}"
        while kernel.last_sequence < end:
            chunk = await journal.read(kernel.last_sequence, min(4096, end - kernel.last_sequence))
            kernel.replay([payload for _, payload in chunk])
    finally:
        await journal.close()
    return kernel


@pytest.fixture
def anyio_backend() -> str:
    """Async tests run on asyncio (grpc.aio needs it)."""
    return "asyncio"


@pytest.fixture
async def venue() -> AsyncIterator[VenueDouble]:
    """A started venue double on a loopback port."""
    double = VenueDouble()
    await double.start()
    try:
        yield double
    finally:
        await double.stop()


@pytest.fixture
async def venue_channel(venue: VenueDouble) -> AsyncIterator[grpc.aio.Channel]:
    """A grpc.aio channel to ``venue``."""
    async with grpc.aio.insecure_channel(venue.address) as channel:
        yield channel


@pytest.fixture
def journal_dir(tmp_path: Path) -> Path:
    """The journal directory of ``kernel_settings`` (``tmp_path / "journal"``)."""
    return tmp_path / "journal"


@pytest.fixture
def kernel_settings(tmp_path: Path) -> KernelSettings:
    """Settings with ``data_dir = tmp_path`` (see :func:`make_settings`)."""
    return make_settings(tmp_path)


@pytest.fixture
async def kernel(kernel_settings: KernelSettings) -> AsyncIterator[KernelHarness]:
    """A running kernel over a fresh journal in ``journal_dir``."""
    async with running_kernel(kernel_settings) as harness:
        yield harness
