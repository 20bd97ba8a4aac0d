"""Generate the Python modules of the pink.v1 contract into ``services/common/proto``.

Runs ``python -m grpc_tools.protoc`` (messages, gRPC stubs and their mypy-protobuf
``.pyi`` stubs) for every ``protos/pink/v1/*.proto`` into a temporary directory, then
moves the modules flat into ``services/common/proto`` so they import as
``services.common.proto.<name>_pb2``. The only edits made to protoc's output:

* in ``.py`` files, import statements of ``pink.v1`` modules
  (``from pink.v1 import X_pb2 ...`` / ``import pink.v1.X_pb2 ...``) point at
  ``services.common.proto``, and so does the module name protoc passes to
  ``_builder.BuildTopDescriptorsAndMessages`` (it becomes the message classes'
  ``__module__``, which pickling relies on); every other line, the serialized
  descriptors above all, is written byte for byte as protoc produced it;
* in ``.pyi`` files, every ``pink.v1.<name>_pb2`` module reference does the same.

Stale generated files are removed first. Usage: ``python tools/gen_protos.py``.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import sysconfig
import tempfile
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTO_ROOT = Path("protos")
PROTO_PACKAGE = Path("pink/v1")
OUT_PACKAGE = "services.common.proto"
GENERATED_SUFFIXES = ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py", "_pb2_grpc.pyi")

# `from pink.v1 import x_pb2 [as y]` and `import pink.v1.x_pb2 [as y]`, whole lines.
_FROM_IMPORT = re.compile(r"^(?P<indent>\s*)from pink\.v1 import (?P<rest>\w+_pb2(?:_grpc)?\b.*)$")
_PLAIN_IMPORT = re.compile(r"^(?P<indent>\s*)import pink\.v1\.(?P<rest>\w+_pb2(?:_grpc)?\b.*)$")
# The module name given to the descriptor builder: _builder.Build...(DESCRIPTOR, 'pink.v1.x_pb2', _globals).
_BUILDER_MODULE = re.compile(r"^(?P<head>_builder\.\w+\(DESCRIPTOR, ')pink\.v1\.(?P<tail>\w+_pb2', _globals\))$")
# A module reference anywhere in a stub: pink.v1.x_pb2 (not part of a longer dotted name).
_STUB_REFERENCE = re.compile(r"(?<![\w.])pink\.v1\.(?=\w+_pb2(?:_grpc)?\b)")
# Anything still naming a pink.v1 module after rewriting is a bug of this script.
_LEFTOVER = re.compile(r"(?<![\w.])pink\.v1(?:\.\w+_pb2|\s+import)")


class GenerationError(RuntimeError):
    """protoc failed or produced output this script does not know how to place."""


def _plugin(name: str) -> Path:
    """Path of a protoc plugin installed with the running interpreter (works without an activated venv)."""
    scripts = Path(sysconfig.get_path("scripts"))
    for candidate in (scripts / name, Path(sys.executable).parent / name):
        if candidate.is_file():
            return candidate
    msg = f"protoc plugin {name} not found next to {sys.executable}; install mypy-protobuf"
    raise GenerationError(msg)


def rewrite_python(text: str) -> str:
    """Point the pink.v1 import statements of a generated ``.py`` module at ``services.common.proto``."""
    lines = text.splitlines(keepends=True)
    out: list[str] = []
    for line in lines:
        body = line.rstrip("\r\n")
        ending = line[len(body) :]
        builder = _BUILDER_MODULE.match(body)
        if builder is not None:
            out.append(f"{builder['head']}{OUT_PACKAGE}.{builder['tail']}{ending}")
            continue
        match = _FROM_IMPORT.match(body) or _PLAIN_IMPORT.match(body)
        if match is None:
            out.append(line)
            continue
        keyword = "from" if match.re is _FROM_IMPORT else "import"
        if keyword == "from":
            out.append(f"{match['indent']}from {OUT_PACKAGE} import {match['rest']}{ending}")
        else:
            out.append(f"{match['indent']}import {OUT_PACKAGE}.{match['rest']}{ending}")
    return "".join(out)


def rewrite_stub(text: str) -> str:
    """Point every pink.v1 module reference of a generated ``.pyi`` stub at ``services.common.proto``."""
    lines = text.splitlines(keepends=True)
    out: list[str] = []
    for line in lines:
        match = _FROM_IMPORT.match(line.rstrip("\r\n"))
        if match is not None:
            ending = line[len(line.rstrip("\r\n")) :]
            out.append(f"{match['indent']}from {OUT_PACKAGE} import {match['rest']}{ending}")
        else:
            out.append(_STUB_REFERENCE.sub(f"{OUT_PACKAGE}.", line))
    return "".join(out)


def _check_rewritten(name: str, text: str, *, stub: bool) -> None:
    for number, line in enumerate(text.splitlines(), start=1):
        is_import = line.lstrip().startswith(("import ", "from "))
        if (stub or is_import) and _LEFTOVER.search(line):
            msg = f"{name}:{number}: a pink.v1 module reference was left unrewritten: {line.strip()!r}"
            raise GenerationError(msg)


def run_protoc(root: Path, protos: Sequence[Path], out_dir: Path) -> None:
    """Run grpc_tools.protoc with the message, gRPC and mypy plugins into ``out_dir``."""
    command = [
        sys.executable,
        "-m",
        "grpc_tools.protoc",
        f"-I{PROTO_ROOT}",
        f"--plugin=protoc-gen-mypy={_plugin('protoc-gen-mypy')}",
        f"--plugin=protoc-gen-mypy_grpc={_plugin('protoc-gen-mypy_grpc')}",
        f"--python_out={out_dir}",
        f"--mypy_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        f"--mypy_grpc_out={out_dir}",
        *(str(proto) for proto in protos),
    ]
    result = subprocess.run(command, cwd=root, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        msg = f"protoc failed with exit code {result.returncode}:\n{result.stderr}{result.stdout}"
        raise GenerationError(msg)


def generate(root: Path) -> list[Path]:
    """Generate every module of ``protos/pink/v1`` into ``services/common/proto``; returns the files written."""
    protos = sorted((PROTO_ROOT / PROTO_PACKAGE / p.name) for p in (root / PROTO_ROOT / PROTO_PACKAGE).glob("*.proto"))
    if not protos:
        msg = f"no .proto files under {root / PROTO_ROOT / PROTO_PACKAGE}"
        raise GenerationError(msg)
    target = root / "services" / "common" / "proto"
    if not (target / "__init__.py").is_file():
        msg = f"{target} is not a package (missing __init__.py)"
        raise GenerationError(msg)
    with tempfile.TemporaryDirectory(prefix="pink-protos-") as tmp:
        out_dir = Path(tmp)
        run_protoc(root, protos, out_dir)
        generated = sorted((out_dir / PROTO_PACKAGE).iterdir())
        unexpected = [p.name for p in generated if not p.name.endswith(GENERATED_SUFFIXES)]
        if unexpected:
            msg = f"protoc wrote files this script does not expect: {unexpected}"
            raise GenerationError(msg)
        rendered: dict[str, str] = {}
        for path in generated:
            text = path.read_bytes().decode("utf-8")
            stub = path.suffix == ".pyi"
            new = rewrite_stub(text) if stub else rewrite_python(text)
            _check_rewritten(path.name, new, stub=stub)
            rendered[path.name] = new
    for stale in sorted(target.iterdir()):
        if stale.is_file() and stale.name.endswith(GENERATED_SUFFIXES):
            stale.unlink()
    written: list[Path] = []
    for name, text in sorted(rendered.items()):
        destination = target / name
        destination.write_text(text, encoding="utf-8", newline="")
        written.append(destination)
    return written


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", type=Path, default=ROOT, help="repository root (default: %(default)s)")
    args = parser.parse_args(argv)
    root: Path = args.root.resolve()
    try:
        written = generate(root)
    except GenerationError as error:
        print(f"gen_protos: {error}", file=sys.stderr)
        return 1
    print(f"gen_protos: wrote {len(written)} files to {root / 'services' / 'common' / 'proto'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
