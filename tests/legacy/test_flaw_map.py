"""Completeness of the legacy flaw map (ACCEPTANCE.md, "Legacy flaw traceability").

``tests/legacy/flaw_map.tsv`` must have exactly one row per id of
``../shared/legacy/flaw-ids.tsv`` (same order, same severity), a valid status for each,
and every test it names must exist: a ``#[test]`` Rust function, a pytest function, the
model checker, or a lint gate of this repository. ``docs/legacy-flaws.md`` must agree
with it (counts, and a row for every Critical flaw).
"""

from __future__ import annotations

import ast
import csv
import re
from collections import Counter
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FLAW_IDS = ROOT.parent / "shared" / "legacy" / "flaw-ids.tsv"
FLAW_MAP = ROOT / "tests" / "legacy" / "flaw_map.tsv"
SUMMARY = ROOT / "docs" / "legacy-flaws.md"

HEADER = ["id", "severity", "layer", "status", "how_removed", "tests"]
LAYERS = {
    "kernel",
    "bridge",
    "contracts",
    "build",
    "runtime",
    "venue",
    "simulator",
    "stream",
    "persistence",
    "projection",
    "config",
    "lifecycle",
    "observability",
    "tests",
    "deploy",
}
# Layers this repository owns: every flaw of theirs must already be removed.
OWNED_LAYERS = {"kernel", "bridge", "contracts"}
STATUSES = ("removed", "not-applicable", "pending")
PENDING = {
    "pending: issue 3 (kernel service)",
    "pending: issue 4 (BingX simulator)",
    "pending: issue 5 (venue service)",
    "pending: persistence service (no issue yet)",
    "pending: policy service (no issue yet)",
    "pending: deploy/k8s (no issue yet)",
}
LINTS = {"clippy", "mypy", "ruff", "buf"}
CLIPPY_GATES = ("unwrap_used", "panic", "indexing_slicing", "arithmetic_side_effects")
TOTAL = 243


@dataclass(frozen=True)
class Row:
    id: str
    severity: str
    layer: str
    status: str
    how_removed: str
    tests: tuple[str, ...]

    @property
    def kind(self) -> str:
        """removed, not-applicable or pending (without the pending target)."""
        return self.status.split(":", 1)[0]


def _read_tsv(path: Path) -> list[list[str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE))


@cache
def legacy_ids() -> tuple[tuple[str, str], ...]:
    """(id, severity) of every legacy flaw, in file order."""
    if not FLAW_IDS.is_file():
        pytest.fail(
            f"{FLAW_IDS} is missing: the legacy flaw list must be checked out at ../shared beside the repository "
            "(CI provides it). The flaw map cannot be verified without it.",
            pytrace=False,
        )
    lines = _read_tsv(FLAW_IDS)
    assert lines[0] == ["id", "severity", "title"], f"unexpected header in {FLAW_IDS}: {lines[0]}"
    return tuple((line[0], line[1]) for line in lines[1:] if line)


@cache
def flaw_map() -> tuple[Row, ...]:
    lines = _read_tsv(FLAW_MAP)
    assert lines[0] == HEADER, f"flaw_map.tsv header must be {HEADER}, got {lines[0]}"
    rows = []
    for number, cells in enumerate(lines[1:], start=2):
        assert len(cells) == len(HEADER), f"flaw_map.tsv line {number}: {len(cells)} fields, expected {len(HEADER)}"
        refs = tuple(ref.strip() for ref in cells[5].split(";") if ref.strip())
        assert len(refs) == cells[5].count(";") + 1 or not cells[5].strip(), f"line {number}: empty test reference"
        rows.append(Row(cells[0], cells[1], cells[2], cells[3], cells[4], refs))
    return tuple(rows)


# ----------------------------------------------------------------------------- test references


@dataclass(frozen=True)
class Resolved:
    """What a test reference points at."""

    problem: str | None  # why it does not resolve, if it does not
    behavioural: bool  # a test that runs code (not a lint gate)
    disabled: bool  # ignored (Rust) or xfail (pytest): proves nothing today


_RUST_REF = re.compile(r"rust:(?P<path>[\w./-]+\.rs)::(?P<name>[A-Za-z_]\w*)")
_PY_REF = re.compile(r"py:(?P<path>[\w./-]+\.py)::(?P<name>[A-Za-z_]\w*)")
_LINT_REF = re.compile(r"lint:(?P<tool>[a-z]+)")


def _inside_proptest(text: str, position: int) -> bool:
    """Whether ``position`` lies inside a ``proptest! { ... }`` block."""
    for match in re.finditer(r"proptest!\s*\{", text[:position]):
        depth = 0
        for char in text[match.end() - 1 : position]:
            depth += {"{": 1, "}": -1}.get(char, 0)
        if depth > 0:
            return True
    return False


def resolve_rust(path: str, name: str) -> Resolved:
    file = ROOT / path
    if not file.is_file():
        return Resolved(f"no file {path}", True, False)
    text = file.read_text(encoding="utf-8")
    lines = text.splitlines()
    definition = re.compile(rf"^\s*(pub\s+)?(async\s+)?fn\s+{re.escape(name)}\s*(<[^>]*>)?\s*\(")
    for index, line in enumerate(lines):
        if not definition.match(line):
            continue
        attributes = []
        above = index - 1
        while above >= 0 and lines[above].strip().startswith(("#[", "///", "//")):
            attributes.append(lines[above].strip())
            above -= 1
        is_test = any(re.fullmatch(r"#\[test\]", attribute) for attribute in attributes)
        position = sum(len(text_line) + 1 for text_line in lines[:index])
        if is_test or _inside_proptest(text, position):
            disabled = any(attribute.startswith("#[ignore") for attribute in attributes)
            return Resolved(None, True, disabled)
        return Resolved(f"{path}::{name} is not a #[test] function", True, False)
    return Resolved(f"no fn {name}( in {path}", True, False)


@cache
def _python_tests(path: str) -> dict[str, bool]:
    """Test functions of a module (module level or in a class): name -> xfail."""
    file = ROOT / path
    if not file.is_file():
        return {}
    tree = ast.parse(file.read_text(encoding="utf-8"), filename=path)
    found: dict[str, bool] = {}
    candidates: list[ast.stmt] = list(tree.body)
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            candidates.extend(node.body)
    for node in candidates:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith("test"):
            found[node.name] = any("xfail" in ast.unparse(decorator) for decorator in node.decorator_list)
    return found


def resolve_python(path: str, name: str) -> Resolved:
    if not (ROOT / path).is_file():
        return Resolved(f"no file {path}", True, False)
    if not name.startswith("test"):
        return Resolved(f"{name} is not a pytest test (names start with 'test')", True, False)
    tests = _python_tests(path)
    if name not in tests:
        return Resolved(f"no test function {name} in {path}", True, False)
    return Resolved(None, True, tests[name])


def _clippy_gates() -> set[str]:
    text = (ROOT / "kernel-rs/pink-core/src/lib.rs").read_text(encoding="utf-8")
    gates: set[str] = set()
    for block in re.findall(r"#!\[deny\((.*?)\)\]", text, flags=re.DOTALL):
        gates |= {item.strip().removeprefix("clippy::") for item in block.split(",") if item.strip()}
    return gates


def resolve_gate(tool: str) -> Resolved:
    """A lint gate: one of the allowed tools; clippy must still deny the four kernel lints."""
    if tool not in LINTS:
        return Resolved(f"unknown lint gate {tool!r} (allowed: {sorted(LINTS)})", False, False)
    missing = [gate for gate in CLIPPY_GATES if gate not in _clippy_gates()] if tool == "clippy" else []
    if missing:
        return Resolved(f"kernel-rs/pink-core/src/lib.rs no longer denies {missing}", False, False)
    return Resolved(None, False, False)


def resolve_checker() -> Resolved:
    checker = ROOT / "kernel-rs/pink-core/src/bin/pink_verify.rs"
    if not checker.is_file() or "fn main(" not in checker.read_text(encoding="utf-8"):
        return Resolved("the model checker kernel-rs/pink-core/src/bin/pink_verify.rs is missing", True, False)
    return Resolved(None, True, False)


def resolve(ref: str) -> Resolved:
    """What ``ref`` points at, with the reason when it points at nothing valid."""
    if match := _RUST_REF.fullmatch(ref):
        return resolve_rust(match["path"], match["name"])
    if match := _PY_REF.fullmatch(ref):
        return resolve_python(match["path"], match["name"])
    if match := _LINT_REF.fullmatch(ref):
        return resolve_gate(match["tool"])
    if ref == "verify:pink-verify":
        return resolve_checker()
    return Resolved(
        f"malformed reference {ref!r}: use rust:<path>::<fn>, py:<path>::<fn>, verify:pink-verify or lint:<tool>",
        False,
        False,
    )


# ----------------------------------------------------------------------------- tests


def test_the_map_has_exactly_the_legacy_ids_in_order_with_their_severities() -> None:
    expected = legacy_ids()
    assert len(expected) == TOTAL, f"{FLAW_IDS} lists {len(expected)} ids, expected {TOTAL}"
    mapped = [row.id for row in flaw_map()]
    duplicates = sorted(fid for fid, count in Counter(mapped).items() if count > 1)
    assert duplicates == [], f"ids mapped more than once: {duplicates}"
    known = {fid for fid, _ in expected}
    assert sorted(known - set(mapped)) == [], "legacy ids missing from the map"
    assert sorted(set(mapped) - known) == [], "ids in the map that are not legacy ids"
    assert mapped == [fid for fid, _ in expected], "the map must follow the order of flaw-ids.tsv"
    severities = dict(expected)
    wrong = [(row.id, row.severity, severities[row.id]) for row in flaw_map() if row.severity != severities[row.id]]
    assert wrong == [], f"severity differs from flaw-ids.tsv (id, map, legacy): {wrong}"


def test_every_row_has_a_layer_a_valid_status_and_an_explanation() -> None:
    problems = []
    for row in flaw_map():
        if row.layer not in LAYERS:
            problems.append(f"{row.id}: unknown layer {row.layer!r}")
        if row.kind not in STATUSES or (row.kind == "pending" and row.status not in PENDING):
            problems.append(f"{row.id}: status {row.status!r} is not removed, not-applicable or one of {PENDING}")
        if row.kind in ("removed", "not-applicable") and row.status != row.kind:
            problems.append(f"{row.id}: status {row.status!r} has trailing text")
        if len(row.how_removed.split()) < 6:
            problems.append(f"{row.id}: how_removed must say how (one or two sentences)")
    assert problems == []


def test_not_applicable_rows_give_the_reason() -> None:
    problems = [
        row.id
        for row in flaw_map()
        if row.kind == "not-applicable" and not row.how_removed.lower().startswith("not applicable:")
    ]
    assert problems == [], "a not-applicable row must start its how_removed with 'Not applicable: <reason>'"


def test_removed_rows_name_a_test_that_runs() -> None:
    problems = []
    for row in flaw_map():
        if row.kind != "removed":
            continue
        resolved = [resolve(ref) for ref in row.tests]
        if not row.tests:
            problems.append(f"{row.id}: removed but names no test")
        elif row.layer in OWNED_LAYERS and not any(r.behavioural and not r.disabled for r in resolved):
            problems.append(f"{row.id}: a {row.layer} flaw needs a behavioural test, not only a lint gate")
        elif not any(not r.disabled for r in resolved):
            problems.append(f"{row.id}: every test it names is ignored or xfail")
    assert problems == []


def test_every_kernel_bridge_and_contracts_flaw_is_removed() -> None:
    open_rows = [f"{row.id} ({row.layer}): {row.status}" for row in flaw_map() if row.layer in OWNED_LAYERS]
    open_rows = [text for text in open_rows if not text.endswith(": removed")]
    assert open_rows == [], "this repository owns these layers: their flaws must be removed"


def test_every_referenced_test_exists() -> None:
    problems = []
    for row in flaw_map():
        for ref in row.tests:
            resolved = resolve(ref)
            if resolved.problem is not None:
                problems.append(f"{row.id}: {resolved.problem}")
    assert problems == []


def test_the_reference_checker_rejects_what_does_not_exist() -> None:
    """The checker itself: a typo, a non-test function or an unknown gate is caught."""
    assert resolve("rust:kernel-rs/pink-core/tests/legacy.rs::event_id_zero_is_a_real_id").problem is None
    assert resolve("rust:kernel-rs/pink-core/tests/properties.rs::trade_pnl_is_exact").problem is None
    assert resolve("rust:kernel-rs/pink-core/tests/legacy.rs::no_such_test").problem is not None
    assert resolve("rust:kernel-rs/pink-core/tests/legacy.rs::legal").problem is not None, "a helper is not a test"
    assert resolve("rust:kernel-rs/pink-core/tests/nope.rs::x").problem is not None
    assert resolve("py:tests/legacy/test_flaw_map.py::test_every_referenced_test_exists").problem is None
    assert resolve("py:tests/legacy/test_flaw_map.py::resolve").problem is not None
    assert resolve("py:tests/legacy/test_flaw_map.py::test_nothing").problem is not None
    assert resolve("lint:clippy").problem is None
    assert resolve("lint:pylint").problem is not None
    assert resolve("pytest:tests/x.py::test_y").problem is not None
    assert resolve("verify:pink-verify").problem is None


def test_counts_by_status_add_up() -> None:
    counts = Counter(row.kind for row in flaw_map())
    assert set(counts) <= set(STATUSES)
    assert sum(counts.values()) == TOTAL, counts
    assert counts["removed"] > 0


def _summary() -> str:
    assert SUMMARY.is_file(), f"{SUMMARY} is missing"
    return SUMMARY.read_text(encoding="utf-8")


def test_the_summary_agrees_with_the_map() -> None:
    """docs/legacy-flaws.md: its status and layer counts match the map, and every Critical
    flaw has a row there with its status and the tests the map names."""
    text = _summary()
    rows = flaw_map()
    counts = Counter(row.kind for row in rows)
    for kind in STATUSES:
        match = re.search(rf"^\|\s*{kind}\s*\|\s*(\d+)\s*\|", text, flags=re.MULTILINE)
        assert match is not None, f"no '| {kind} | N |' row in {SUMMARY.name}"
        assert int(match[1]) == counts[kind], f"{kind}: the summary says {match[1]}, the map {counts[kind]}"
    for layer in sorted({row.layer for row in rows}):
        by_status = Counter(row.kind for row in rows if row.layer == layer)
        expected = [by_status[kind] for kind in STATUSES] + [sum(by_status.values())]
        pattern = rf"^\|\s*{layer}\s*\|" + r"\s*(\d+)\s*\|" * 4
        match = re.search(pattern, text, flags=re.MULTILINE)
        assert match is not None, f"no layer row for {layer} in {SUMMARY.name}"
        assert [int(match[i]) for i in range(1, 5)] == expected, f"layer {layer}: expected {expected}"
    for row in rows:
        if row.severity != "Critical":
            continue
        line = re.search(rf"^\|\s*{row.id}\s*\|.*$", text, flags=re.MULTILINE)
        assert line is not None, f"Critical flaw {row.id} has no row in {SUMMARY.name}"
        assert row.kind in line[0], f"{row.id}: the summary row does not say {row.kind}"
        for ref in row.tests:
            name = ref.rsplit("::", 1)[-1]
            assert name in line[0], f"{row.id}: the summary row does not name {name}"
