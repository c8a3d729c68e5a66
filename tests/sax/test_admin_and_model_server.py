"""The admin and model-server stand-ins, as processes against the sandbox's GCS, behave as Sax does (RECIPES §11)."""

from __future__ import annotations

import grpc
import pytest
from fake_lm import GPTJ, TINY
from sax_cell import CELL, SaxCell

from reconciler.saxproto import admin_pb2, common_pb2, lm_pb2, lm_pb2_grpc


def test_publish_is_assigned_loaded_and_generates(sax_cell: SaxCell):
    admin = sax_cell.start_admin()
    server = sax_cell.start_model_server(devices=4)
    sax_cell.wait_for("the model server joined with GPT-J", lambda: sax_cell.servers_for(GPTJ) == 1)
    sax_cell.write_checkpoint("gptj", reply="and the rest")

    model_id = sax_cell.publish("gptj", GPTJ)
    sax_cell.admin().WaitForReady(admin_pb2.WaitForReadyRequest(model_id=model_id, num_replicas=1), timeout=60)

    assert sax_cell.addresses(model_id) == [server.address]
    assert sax_cell.status(server, model_id) == (common_pb2.LOADED, "")
    with grpc.insecure_channel(server.address) as channel:
        reply = lm_pb2_grpc.LMServiceStub(channel).Generate(lm_pb2.GenerateRequest(model_key=model_id, text="Hi"),
                                                            timeout=30)
    assert [(text.text, text.score) for text in reply.texts][0] == ("Hi and the rest", -0.5)
    assert len(reply.texts) == 4
    # Sax's files: the cell's directory placeholder, its config and the admin's address; state under fs_root.
    assert sax_cell.read("sax-root/sax/test/METADATA") == b""
    config = admin_pb2.Config.FromString(sax_cell.read("sax-root/sax/test/config.proto"))
    assert config.fs_root == f"gs://{sax_cell.bucket}/sax-fs-root"
    location = admin_pb2.Location.FromString(sax_cell.read("sax-root/sax/test/location.proto")).location
    assert location == admin.address
    sax_cell.wait_for("state.proto holds the model", lambda: model_id in _saved_ids(sax_cell))


def test_more_replicas_than_servers_is_silent(sax_cell: SaxCell):
    sax_cell.start_admin()
    server = sax_cell.start_model_server(devices=4)
    sax_cell.wait_for("the model server joined", lambda: sax_cell.servers_for(GPTJ) == 1)
    sax_cell.write_checkpoint("gptj")

    model_id = sax_cell.publish("gptj", GPTJ, replicas=2)  # accepted: Sax does not check capacity

    admin = sax_cell.admin()
    admin.WaitForReady(admin_pb2.WaitForReadyRequest(model_id=model_id, num_replicas=1), timeout=60)
    with pytest.raises(grpc.RpcError) as waited:
        admin.WaitForReady(admin_pb2.WaitForReadyRequest(model_id=model_id, num_replicas=2), timeout=3)
    assert waited.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert sax_cell.addresses(model_id) == [server.address]


def test_update_of_replicas_takes_and_gives_back_servers_at_the_next_refreshes(sax_cell: SaxCell):
    sax_cell.start_admin()
    servers = [sax_cell.start_model_server(devices=4), sax_cell.start_model_server(devices=4)]
    sax_cell.wait_for("both model servers joined", lambda: sax_cell.servers_for(GPTJ) == 2)
    sax_cell.write_checkpoint("gptj")
    model_id = sax_cell.publish("gptj", GPTJ, replicas=1)
    admin = sax_cell.admin()
    admin.WaitForReady(admin_pb2.WaitForReadyRequest(model_id=model_id, num_replicas=1), timeout=60)

    spec = admin.List(admin_pb2.ListRequest(model_id=model_id), timeout=10).published_models[0].model
    spec.requested_num_replicas = 2
    admin.Update(admin_pb2.UpdateRequest(model=spec), timeout=10)
    admin.WaitForReady(admin_pb2.WaitForReadyRequest(model_id=model_id, num_replicas=2), timeout=60)
    assert sorted(sax_cell.addresses(model_id)) == sorted(server.address for server in servers)

    spec.requested_num_replicas = 1
    admin.Update(admin_pb2.UpdateRequest(model=spec), timeout=10)
    sax_cell.wait_for("one server gave the model back",
                      lambda: sorted(sax_cell.status(server, model_id) is None for server in servers) == [False, True])
    assert len(sax_cell.addresses(model_id)) == 1


def test_a_server_without_four_devices_never_advertises_gptj(sax_cell: SaxCell):
    sax_cell.start_admin()
    server = sax_cell.start_model_server(devices=1, topology="1x1")
    sax_cell.wait_for("the 1-device server joined", lambda: sax_cell.servers_for(TINY) == 1)

    assert sax_cell.servers_for(GPTJ) == 0
    model_id = sax_cell.publish("gptj", GPTJ)
    sax_cell.wait_for("a refresh has saved the model", lambda: model_id in _saved_ids(sax_cell))
    sax_cell.wait_for("a second refresh", lambda: server.calls("/sax.Modelet/GetStatus") >= 3)
    assert sax_cell.addresses(model_id) == []
    assert server.calls("/sax.Modelet/Load") == 0


def test_a_failed_load_is_sticky(sax_cell: SaxCell):
    sax_cell.start_admin()
    server = sax_cell.start_model_server(devices=4)
    sax_cell.wait_for("the model server joined", lambda: sax_cell.servers_for(GPTJ) == 1)

    model_id = sax_cell.publish("gptj", GPTJ)  # no checkpoint written: the load fails

    failed = sax_cell.wait_for("the load failed", lambda: (sax_cell.status(server, model_id) or (None,))[0]
                               == common_pb2.FAILED and sax_cell.status(server, model_id))
    assert "fake_lm.json: no such object" in failed[1]
    sax_cell.write_checkpoint("gptj")  # too late: Sax does not retry a failed load
    polls = server.calls("/sax.Modelet/GetStatus")
    sax_cell.wait_for("three more status polls", lambda: server.calls("/sax.Modelet/GetStatus") >= polls + 3)
    assert server.calls("/sax.Modelet/Load") == 1
    assert sax_cell.status(server, model_id)[0] == common_pb2.FAILED
    assert sax_cell.addresses(model_id) == [server.address]  # still assigned, so no other server gets it


def test_a_slow_load_shows_loading_and_generate_says_so(sax_cell: SaxCell):
    sax_cell.start_admin()
    server = sax_cell.start_model_server(devices=4)
    server.control("POST", "faults", [{"method": "LOAD", "path": "gptj", "delay_s": 30}])
    sax_cell.wait_for("the model server joined", lambda: sax_cell.servers_for(GPTJ) == 1)
    sax_cell.write_checkpoint("gptj")

    model_id = sax_cell.publish("gptj", GPTJ)

    sax_cell.wait_for("the load started", lambda: (sax_cell.status(server, model_id) or (None,))[0]
                      == common_pb2.LOADING)
    with grpc.insecure_channel(server.address) as channel, pytest.raises(grpc.RpcError) as generated:
        lm_pb2_grpc.LMServiceStub(channel).Generate(lm_pb2.GenerateRequest(model_key=model_id, text="Hi"), timeout=10)
    assert generated.value.code() == grpc.StatusCode.NOT_FOUND
    assert generated.value.details() == f"{model_id} is still loading or already unloaded"


def test_a_server_that_dies_is_dropped_and_its_successor_loads_the_model_again(sax_cell: SaxCell):
    sax_cell.start_admin()
    server = sax_cell.start_model_server(devices=4)
    sax_cell.wait_for("the model server joined", lambda: sax_cell.servers_for(GPTJ) == 1)
    sax_cell.write_checkpoint("gptj")
    model_id = sax_cell.publish("gptj", GPTJ)
    sax_cell.admin().WaitForReady(admin_pb2.WaitForReadyRequest(model_id=model_id, num_replicas=1), timeout=60)

    with pytest.raises(OSError):  # the sandbox's "server that dies" knob: gone before it can answer
        server.control("POST", "exit")
    assert server.process.wait(timeout=30) == 1

    sax_cell.wait_for("the silent server is dropped", lambda: sax_cell.servers_for(GPTJ) == 0)
    sax_cell.wait_for("the model lost its replica", lambda: sax_cell.addresses(model_id) == [])
    successor = sax_cell.start_model_server(devices=4, port=server.port)
    sax_cell.wait_for("the successor loaded the model",
                      lambda: sax_cell.status(successor, model_id) == (common_pb2.LOADED, ""))
    assert sax_cell.addresses(model_id) == [successor.address]


def test_admin_restart_restores_the_published_models_from_state(sax_cell: SaxCell):
    admin = sax_cell.start_admin()
    first = sax_cell.publish("one", GPTJ, replicas=2)
    second = sax_cell.publish("two", TINY, replicas=1)
    sax_cell.wait_for("state.proto holds both", lambda: _saved_ids(sax_cell) == [first, second])

    admin.kill()
    sax_cell.start_admin()

    listed = sax_cell.admin().List(admin_pb2.ListRequest(), timeout=10).published_models
    assert [(model.model.model_id, model.model.model_path, model.model.requested_num_replicas)
            for model in listed] == [(first, GPTJ, 2), (second, TINY, 1)]
    assert all(not model.model.uuid for model in listed)  # Sax keeps it in state.proto, never shows it


def test_republishing_within_the_unpublish_window_is_refused(sax_cell: SaxCell):
    sax_cell.start_admin(time_scale=1)  # Sax's own 10 s refresh: the window cannot close between two calls
    model_id = sax_cell.publish("m", GPTJ)
    sax_cell.admin().Unpublish(admin_pb2.UnpublishRequest(model_id=model_id), timeout=10)

    with pytest.raises(grpc.RpcError) as refused:
        sax_cell.publish("m", GPTJ)

    assert (refused.value.code(), refused.value.details()) == (
        grpc.StatusCode.UNKNOWN,
        "model {test m} is being unpublished, please retry later: rpc error: code = AlreadyExists desc = AlreadyExists")
    sax_cell.wait_for("the name is free after the next refresh", lambda: _publishes(sax_cell, "m"), timeout_s=40)


@pytest.mark.parametrize("call, text", [
    pytest.param(("Publish", {"model_id": "/sax/test/Bad"}),
                 'model name "Bad" must match "^[a-z]+[a-z0-9-_]*$": rpc error: code = InvalidArgument desc = '
                 'InvalidArgument', id="bad-name"),
    pytest.param(("Publish", {"model_id": "/sax/other/m"}),
                 'model /sax/other/m must be within SAX cell "/sax/test": rpc error: code = InvalidArgument desc = '
                 'InvalidArgument', id="other-cell"),
    pytest.param(("Publish", {"requested_num_replicas": -1}),
                 "number of replicas -1 must be non-negative: rpc error: code = InvalidArgument desc = "
                 "InvalidArgument", id="negative-replicas"),
    pytest.param(("Publish", {}),
                 "model {test m} already exists: rpc error: code = AlreadyExists desc = AlreadyExists",
                 id="already-exists"),
    pytest.param(("Update", {"model_path": TINY}),
                 "invalid model update: model path can't be changed: rpc error: code = InvalidArgument desc = "
                 "InvalidArgument", id="update-model-path"),
    pytest.param(("Update", {"model_id": "/sax/test/nope"}),
                 "model {test nope} not found: rpc error: code = NotFound desc = NotFound", id="update-unknown"),
])
def test_the_admin_refuses_in_sax_words_as_unknown(sax_cell: SaxCell, call, text):
    method, changes = call
    sax_cell.start_admin()
    sax_cell.publish("m", GPTJ)
    model = admin_pb2.Model(model_id=f"{CELL}/m", model_path=GPTJ, checkpoint_path=sax_cell.checkpoint("m"),
                            requested_num_replicas=1)
    for field, value in changes.items():
        setattr(model, field, value)
    request = (admin_pb2.PublishRequest if method == "Publish" else admin_pb2.UpdateRequest)(model=model)

    with pytest.raises(grpc.RpcError) as refused:
        getattr(sax_cell.admin(), method)(request, timeout=10)

    assert (refused.value.code(), refused.value.details()) == (grpc.StatusCode.UNKNOWN, text)


def _saved_ids(sax_cell: SaxCell) -> list[str]:
    saved = sax_cell.read("sax-fs-root/sax/test/state.proto")
    return sorted(model.model_id for model in admin_pb2.State.FromString(saved).models) if saved else []


def _publishes(sax_cell: SaxCell, name: str) -> bool:
    try:
        sax_cell.publish(name, GPTJ)
    except grpc.RpcError as error:
        assert "is being unpublished" in error.details()
        return False
    return True
