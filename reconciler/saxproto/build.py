"""Regenerate the committed Python code of Sax's protos: `python -m reconciler.saxproto.build [OUT_DIR]`.

The `.proto` files beside this module are compiled with grpcio-tools (a test extra: only regeneration needs it)
from the repository root, so their imports (`reconciler/saxproto/common.proto`) become package imports
(`from reconciler.saxproto import common_pb2`). tests/sax/test_saxproto.py fails when the committed files differ
from a fresh compile.
"""

from __future__ import annotations

import sys
from pathlib import Path

PROTO_DIR = Path(__file__).resolve().parent
REPO_ROOT = PROTO_DIR.parent.parent
PROTOS = ("common.proto", "admin.proto", "modelet.proto", "lm.proto")
SERVICE_PROTOS = ("admin.proto", "modelet.proto", "lm.proto")  # those that declare a service get *_pb2_grpc.py


def compile_protos(out_dir: Path) -> list[Path]:
    """Compile every proto into out_dir (laid out as reconciler/saxproto/…); return the files written."""
    from grpc_tools import protoc  # only here: the runtime needs the generated code, not the compiler

    out_dir.mkdir(parents=True, exist_ok=True)
    _protoc(protoc, f"--python_out={out_dir}", PROTOS)
    _protoc(protoc, f"--grpc_python_out={out_dir}", SERVICE_PROTOS)
    generated = out_dir / PROTO_DIR.relative_to(REPO_ROOT)
    return sorted(generated.glob("*_pb2*.py"))


def _protoc(protoc, output_flag: str, names: tuple[str, ...]) -> None:
    sources = [str((PROTO_DIR / name).relative_to(REPO_ROOT)) for name in names]
    status = protoc.main(["grpc_tools.protoc", f"-I{REPO_ROOT}", output_flag, *sources])
    if status != 0:
        raise RuntimeError(f"protoc failed with status {status} on {', '.join(sources)}")


def main(argv: list[str]) -> int:
    out_dir = Path(argv[0]) if argv else REPO_ROOT
    for path in compile_protos(out_dir):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
