"""The model-server stand-in serves the real language model from a converted checkpoint on GCS, as published."""

from __future__ import annotations

from pathlib import Path

import grpc
from lm_fixture import GPTJ
from sax_cell import SaxCell

from reconciler.sandbox.sax.lm import DirectoryCheckpoint, load
from reconciler.saxproto import admin_pb2, lm_pb2, lm_pb2_grpc


def test_a_published_checkpoint_is_loaded_from_gcs_and_generates_as_the_model_does(sax_cell: SaxCell,
                                                                                    tiny_checkpoint: Path):
    for path in sorted(tiny_checkpoint.rglob("*")):
        if path.is_file():
            sax_cell.write(f"checkpoints/tiny/checkpoint_00000000/{path.relative_to(tiny_checkpoint)}",
                           path.read_bytes())
    sax_cell.start_admin()
    server = sax_cell.start_model_server(devices=1, topology="1x1", real_model=True)
    sax_cell.wait_for("the model server joined with GPT-J", lambda: sax_cell.servers_for(GPTJ) == 1)

    model_id = sax_cell.publish("tiny", GPTJ, checkpoint=sax_cell.checkpoint("tiny"))
    sax_cell.admin().WaitForReady(admin_pb2.WaitForReadyRequest(model_id=model_id, num_replicas=1), timeout=240)
    with grpc.insecure_channel(server.address) as channel:
        served = lm_pb2_grpc.LMServiceStub(channel).Generate(
            lm_pb2.GenerateRequest(model_key=model_id, text="The cat"), timeout=120).texts

    expected = load(GPTJ, DirectoryCheckpoint(tiny_checkpoint), device_count=1, warm_up=False).generate("The cat")
    assert [(text.text, round(text.score, 4)) for text in served] == [(text, round(score, 4))
                                                                       for text, score in expected]
