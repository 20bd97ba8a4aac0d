"""The kernel service as a real child process (``python -m services.kernel``), for crash tests.

:func:`kernel_env` turns a :class:`KernelSettings` into the ``PINK_KERNEL_*`` environment that
makes the child load exactly those settings (so the test's own ``settings`` object, e.g. for
``clean_replay``, describes the child's kernel). :func:`kernel_process` starts the child and
always kills it (SIGKILL) and reaps it on exit, whatever happened in between.

The child itself is a :class:`services.launcher.children.Child` (output read continuously,
port learnt from its start-up log line, readiness = gRPC health SERVING).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from services.common.config import env_var_name
from services.kernel.config import KernelSettings
from services.launcher.children import Child, child_process, inherited_env

__all__ = ["REPO_ROOT", "KernelProcess", "kernel_env", "kernel_process"]

REPO_ROOT = Path(__file__).resolve().parents[2]


def kernel_env(settings: KernelSettings) -> dict[str, str]:
    """The environment under which ``python -m services.kernel`` loads exactly ``settings``.

    Every field is passed explicitly (defaults too), and no other ``PINK_*`` or ``OTEL_*``
    variable is inherited from the test's environment.
    """
    env = inherited_env()
    for name, value in settings.model_dump(mode="json").items():
        if value is None:
            continue
        if isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, list | dict):
            text = json.dumps(value)
        else:
            text = str(value)
        env[env_var_name(KernelSettings, name)] = text
    return env


#: The tests' name for a kernel child process.
KernelProcess = Child


@asynccontextmanager
async def kernel_process(settings: KernelSettings) -> AsyncIterator[Child]:
    """``python -m services.kernel`` under :func:`kernel_env` (``settings``); always killed and reaped on exit."""
    async with child_process("kernel", "services.kernel", kernel_env(settings), cwd=REPO_ROOT) as child:
        yield child
