"""What a run is given: its options, the shapes of its workloads, and the error that stops it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Final

from services.common.proto import outcome_pb2

RPC_TIMEOUT: Final = 30.0
START_TIMEOUT: Final = 60.0
#: Slots each client cycles through (ENTER on all, then EXIT on all): the venue's fill of a
#: slot's entry has that many of the client's intents' time to arrive before the slot's EXIT.
SLOTS_PER_CLIENT: Final = 4
LATENCY_SLOTS: Final = 16
#: The isolated run: intents at concurrency 1 with a pause after each, so the venue's ack and
#: fill of the previous order are committed before the next intent arrives (the intent path alone).
ISOLATED_INTENTS: Final = 320
ISOLATED_PAUSE: Final = 0.010
#: Refusals that only mean "the venue's answer to the slot's previous order is not in yet".
NOT_READY: Final = frozenset({outcome_pb2.DIAGNOSTIC_CODE_ENTRY_IN_PROGRESS, outcome_pb2.DIAGNOSTIC_CODE_SLOT_BUSY})
#: The replay journal: tail after the snapshot in the "snapshot + tail" start.
SNAPSHOT_TAIL: Final = 10_000
TRACEPARENT: Final = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


class BenchError(Exception):
    """The benchmark could not run as designed (a refused intent, a service that did not start...)."""


@dataclass(frozen=True)
class Options:
    concurrency: int
    duration: float
    latency_intents: int
    replay_records: int
    work_dir: Path | None
