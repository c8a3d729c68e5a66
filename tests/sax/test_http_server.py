"""The sax-http stand-in answers the tutorial's routes with sax-http:v1.0.0's shapes and errors (RECIPES §7, §11),
speaking to the admin and model servers with Sax's protos."""

from __future__ import annotations

import http.client
import json

import pytest
from fake_lm import GPTJ
from sax_cell import SaxCell, StandIn

from reconciler.saxproto import admin_pb2


def call(server: StandIn, method: str, path: str, body: object = None) -> tuple[int, http.client.HTTPResponse, str]:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    try:
        connection.request(method, path, body=None if body is None else json.dumps(body))
        reply = connection.getresponse()
        return reply.status, reply, reply.read().decode()
    finally:
        connection.close()


@pytest.fixture
def http_cell(sax_cell: SaxCell):
    sax_cell.start_admin()
    return sax_cell, sax_cell.start_http_server()


def test_root_answers_as_the_tutorial_server_does(http_cell):
    _, server = http_cell
    status, reply, text = call(server, "GET", "/")
    assert (status, text) == (200, json.dumps({"message": "HTTP Server for SAX Client"}, indent=4) + "\n")
    assert reply.version == 10 and reply.getheader("Content-Type") is None


def test_publish_listcell_update_unpublish(http_cell):
    cell, server = http_cell
    checkpoint = cell.checkpoint("gptj")

    status, _, text = call(server, "POST", "/publish", {"model": "/sax/test/gptj", "model_path": GPTJ,
                                                       "checkpoint": checkpoint, "replicas": "2"})
    assert (status, json.loads(text)) == (200, {"model": "/sax/test/gptj", "path": GPTJ, "checkpoint": checkpoint,
                                                "replicas": 2})
    published = cell.admin().List(admin_pb2.ListRequest(model_id="/sax/test/gptj"), timeout=10).published_models[0]
    assert (published.model.model_path, published.model.requested_num_replicas) == (GPTJ, 2)

    status, _, text = call(server, "GET", "/listcell", {"model": "/sax/test/gptj"})
    assert (status, json.loads(text)) == (200, {"model": "/sax/test/gptj", "model_path": GPTJ,
                                                "checkpoint": checkpoint, "max_replicas": 2, "active_replicas": 0})

    status, _, text = call(server, "PUT", "/update", {"model": "/sax/test/gptj", "model_path": GPTJ,
                                                     "checkpoint": checkpoint, "replicas": 1})
    assert (status, json.loads(text)["replicas"]) == (200, 1)

    status, _, text = call(server, "POST", "/unpublish", {"model": "/sax/test/gptj"})
    assert (status, json.loads(text)) == (200, {"model": "/sax/test/gptj"})
    assert cell.admin().List(admin_pb2.ListRequest(), timeout=10).published_models == []


def test_generate_answers_with_the_candidates_and_scores(http_cell):
    cell, server = http_cell
    cell.start_model_server(devices=4)
    cell.wait_for("the model server joined", lambda: cell.servers_for(GPTJ) == 1)
    cell.write_checkpoint("gptj", reply="once more")
    model_id = cell.publish("gptj", GPTJ)
    cell.admin().WaitForReady(admin_pb2.WaitForReadyRequest(model_id=model_id, num_replicas=1), timeout=60)

    status, _, text = call(server, "POST", "/generate", {"model": model_id, "query": "Say"})

    assert status == 200
    assert json.loads(text)["generate_response"][0] == ["Say once more", -0.5]
    assert len(json.loads(text)["generate_response"]) == 4


def test_generate_with_no_server_ready_gives_up_with_the_client_text(http_cell):
    cell, server = http_cell
    model_id = cell.publish("m", GPTJ)  # no model server at all

    status, _, text = call(server, "POST", "/generate", {"model": model_id, "query": "Hi"})

    assert (status, json.loads(text)) == (400, {"Error": f"UNAVAILABLE: pick for model {model_id} unable to find "
                                                         "server rpc error: code = Unavailable desc = Unavailable"})


@pytest.mark.parametrize("request_, error", [
    pytest.param(("POST", "/publish", {"model": "/sax/test/m"}),
                 "Provide model, model path, checkpoint, and replica number for publish", id="publish-key-count"),
    pytest.param(("PUT", "/update", {"model": "/sax/test/m"}),
                 "Provide model, model path, checkpoint, and replica number for update", id="update-key-count"),
    pytest.param(("POST", "/unpublish", {"model": "/sax/test/m", "x": 1}), "Provide model for unpublish",
                 id="unpublish-key-count"),
    pytest.param(("POST", "/generate", {"model": "/sax/test/m"}), "Provide model and query for generate",
                 id="generate-key-count"),
    pytest.param(("GET", "/listcell", {}), "Provide model for list cell", id="listcell-key-count"),
    pytest.param(("POST", "/unpublish", {"name": "/sax/test/m"}), "'model'", id="missing-key"),
    pytest.param(("POST", "/unpublish", {"model": "/sax/test/nope"}),
                 "UNKNOWN: rpc error: code = Unknown desc = model {test nope} not found: rpc error: code = NotFound "
                 "desc = NotFound", id="unknown-model"),
    pytest.param(("POST", "/unpublish", {"model": "nope"}),
                 'INVALID_ARGUMENT: model full name "nope" should have the form /sax/<cell name>/<model name>: '
                 "rpc error: code = InvalidArgument desc = InvalidArgument", id="not-a-model-id"),
])
def test_errors_are_400_with_the_exception_text(http_cell, request_, error):
    method, path, body = request_
    _, server = http_cell

    status, _, text = call(server, method, path, body)

    assert (status, text) == (400, json.dumps({"Error": error}, indent=4) + "\n")


def test_publishing_twice_shows_the_admin_text(http_cell):
    cell, server = http_cell
    body = {"model": "/sax/test/m", "model_path": GPTJ, "checkpoint": cell.checkpoint("m"), "replicas": 1}
    assert call(server, "POST", "/publish", body)[0] == 200

    status, _, text = call(server, "POST", "/publish", body)

    assert (status, json.loads(text)) == (400, {"Error": "UNKNOWN: rpc error: code = Unknown desc = model {test m} "
                                                         "already exists: rpc error: code = AlreadyExists desc = "
                                                         "AlreadyExists"})


@pytest.mark.parametrize("method, path", [("GET", "/publish"), ("POST", "/listcell"), ("GET", "/listall"),
                                          ("PUT", "/publish")])
def test_unknown_routes_are_400_invalid_request(http_cell, method, path):
    _, server = http_cell
    assert call(server, method, path, {"model": "m"})[::2] == (400, '{"message": "Invalid Request"}\n')


def test_a_body_that_is_not_json_closes_the_connection_unanswered(http_cell):
    _, server = http_cell
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    connection.request("POST", "/publish", body="not json")
    with pytest.raises(http.client.RemoteDisconnected):
        connection.getresponse()
    connection.close()
