"""Sax's protos: the committed generated code is what the .proto files compile to, and it speaks Sax's names."""

from __future__ import annotations

from pathlib import Path

from reconciler.saxproto import admin_pb2, build, lm_pb2, modelet_pb2


def test_committed_generated_code_is_a_fresh_compile(tmp_path: Path):
    fresh = {path.name: path.read_bytes() for path in build.compile_protos(tmp_path)}
    committed = {path.name: path.read_bytes() for path in build.PROTO_DIR.glob("*_pb2*.py")}
    assert sorted(committed) == sorted(fresh), "run: python -m reconciler.saxproto.build"
    stale = [name for name in fresh if committed[name] != fresh[name]]
    assert not stale, f"{stale} differ from a fresh compile; run: python -m reconciler.saxproto.build"


def test_services_and_messages_keep_sax_wire_names():
    services = {descriptor.full_name: sorted(descriptor.methods_by_name)
                for module in (admin_pb2, modelet_pb2, lm_pb2)
                for descriptor in module.DESCRIPTOR.services_by_name.values()}
    assert services == {
        "sax.Admin": ["Join", "List", "Publish", "Stats", "Unpublish", "Update", "WaitForReady"],
        "sax.Modelet": ["GetStatus", "Load", "Unload"],
        "sax.server.lm.LMService": ["Generate", "Score"],
    }
    # A field number read from another spelling of the message would decode as garbage: check the odd ones.
    assert admin_pb2.PublishRequest.DESCRIPTOR.fields_by_name["model"].number == 2
    assert admin_pb2.Model.DESCRIPTOR.fields_by_name["overrides"].number == 7
    assert lm_pb2.ScoreRequest.DESCRIPTOR.fields_by_name["prefix"].number == 3
    assert admin_pb2.ModelServer.ChipType.Value("CHIP_TYPE_TPU_V5E") == 15
