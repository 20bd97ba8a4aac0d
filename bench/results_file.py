"""How every benchmark ends: its figures printed, then written as JSON for comparing runs."""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any


def publish(lines: Sequence[str], doc: Mapping[str, Any], out: Path) -> None:
    """Prints ``lines``, writes ``doc`` to ``out`` (creating its folder) and says where."""
    sys.stdout.write("\n".join(lines) + "\n")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    sys.stdout.write(f"wrote {out}\n")
