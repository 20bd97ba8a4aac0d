"""A child process that ignores SIGTERM (``python -m tests.launcher.stubborn_child``): what
``Child.close`` must still stop, with SIGKILL after its grace period."""

from __future__ import annotations

import json
import signal
import sys


def main() -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    sys.stdout.write(json.dumps({"event": "ignoring_sigterm"}) + "\n")
    sys.stdout.flush()
    while True:
        signal.pause()


if __name__ == "__main__":
    main()
