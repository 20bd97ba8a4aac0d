"""Kernel service benchmarks (ACCEPTANCE.md "Performance"): every ratio measured in one run.

``python -m bench.kernel_service [--out PATH] [--concurrency N] [--duration S]
[--latency-intents N] [--replay-records N] [--work-dir DIR]``

1. The floor of a durable answer (:mod:`.floor`): empty unary RPC p50 on the kernel's server
   stack + one small write and fdatasync p50.
2. SubmitIntent at concurrency 1 against ``python -m services.kernel`` (fsync on) with the venue
   double filling every order (:mod:`.live`, :mod:`.callers`). Target: p50 <= 1.1 x floor.
3. Sustained SubmitIntent (and MarkPrice) against the empty RPC at the same concurrency.
   Targets: >= 0.8 x its throughput, p99 <= 2 x its p99.
4. Restart (:mod:`.replay`, :mod:`.journal_build`): replay rate of a 1M-record journal (target
   >= 500k records/s) and time to SERVING (target < 3 s) with no snapshot and with snapshot + tail.

CPU time of every process is sampled around each run (:mod:`.stats`); the figures are written as
JSON and printed (:mod:`.report`). Targets are reported, never asserted; anything that goes wrong
(a refused intent, a replay that diverges, a service that does not start) fails loudly.
"""
