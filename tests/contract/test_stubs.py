"""The generated pink.v1 stubs: conventions buf does not check, and Python usability."""

from __future__ import annotations

import importlib
import pickle
from pathlib import Path
from types import ModuleType

import pytest
from google.protobuf import descriptor

from services.common.proto import intent_pb2, types_pb2

ROOT = Path(__file__).resolve().parents[2]
PROTO_DIR = ROOT / "protos" / "pink" / "v1"


def contract_modules() -> list[ModuleType]:
    names = sorted(path.stem for path in PROTO_DIR.glob("*.proto"))
    assert names, f"no .proto files under {PROTO_DIR}"
    return [importlib.import_module(f"services.common.proto.{name}_pb2") for name in names]


def messages(module: ModuleType) -> list[descriptor.Descriptor]:
    found: list[descriptor.Descriptor] = []
    pending = list(module.DESCRIPTOR.message_types_by_name.values())
    while pending:
        message = pending.pop()
        found.append(message)
        pending.extend(message.nested_types)
    return [m for m in found if not m.GetOptions().map_entry]


def test_every_proto_file_has_a_python_module_in_package_pink_v1() -> None:
    for module in contract_modules():
        assert module.DESCRIPTOR.package == "pink.v1"
        assert module.DESCRIPTOR.name.startswith("pink/v1/")


def test_enums_start_with_unspecified_zero() -> None:
    for module in contract_modules():
        for enum in module.DESCRIPTOR.enum_types_by_name.values():
            zero = enum.values_by_number[0]
            assert zero.name == f"{_upper_snake(enum.name)}_UNSPECIFIED", enum.full_name


def test_money_and_time_never_use_floats_or_integers_for_amounts() -> None:
    """Decimals travel as pink.v1.Decimal strings and times as Timestamp/Duration."""
    float_types = {descriptor.FieldDescriptor.TYPE_FLOAT, descriptor.FieldDescriptor.TYPE_DOUBLE}
    for module in contract_modules():
        for message in messages(module):
            for field in message.fields:
                assert field.type not in float_types, f"{message.full_name}.{field.name} is a float"
                if field.name.endswith(("_time", "deadline", "clock")):
                    assert field.message_type is not None, f"{message.full_name}.{field.name}"
                    assert field.message_type.full_name == "google.protobuf.Timestamp", field.full_name


def test_messages_pickle_with_their_import_path() -> None:
    """Generated classes name their real module, so they pickle (multiprocessing, caches)."""
    intent = intent_pb2.Intent(intent_id="i-1", target_size=types_pb2.Decimal(value="0.01"))
    assert type(intent).__module__ == "services.common.proto.intent_pb2"
    assert pickle.loads(pickle.dumps(intent)) == intent  # noqa: S301 - our own bytes


@pytest.mark.parametrize("name", ["KernelInput", "Outcome", "KernelView", "KernelSnapshot", "LogRecord"])
def test_top_level_messages_exist(name: str) -> None:
    found = {m.name for module in contract_modules() for m in messages(module)}
    assert name in found


def _upper_snake(name: str) -> str:
    out = []
    for index, char in enumerate(name):
        if char.isupper() and index > 0:
            out.append("_")
        out.append(char.upper())
    return "".join(out)
