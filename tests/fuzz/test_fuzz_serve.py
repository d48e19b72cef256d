"""Fuzz ``hfsent serve`` (issue 12): malformed requests against one running server.

Every answer has a status and a JSON body with ``"error"`` (HEAD: no body; OPTIONS: ``Allow``); no traceback
reaches stderr, also when clients leave early; the server keeps answering correctly afterwards.
"""

from __future__ import annotations

import http.client
import json
import socket
import threading

import pytest

from hfsent.inference import load_backend
from hfsent.inference.server import InferenceServer

from ..fixtures.helpers import review_tokenizer
from ..fixtures.inference_helpers import save_trained_tiny_checkpoint

MAX_BODY, MAX_INPUTS = 50_000, 100


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    model_dir = save_trained_tiny_checkpoint(tmp_path_factory.mktemp("fuzz-serve") / "model", review_tokenizer(), 5)
    # In this process (`hfsent serve` itself starts in tests/inference): a subprocess costs more than all the cases.
    srv = InferenceServer(
        ("127.0.0.1", 0), load_backend(str(model_dir), threads=1), max_body_bytes=MAX_BODY, max_inputs=MAX_INPUTS
    )
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield srv
    srv.shutdown()
    srv.server_close()


def raw(server, data: bytes, half_close: bool = False) -> tuple[int, dict[str, str], bytes]:
    """Send raw bytes on a fresh connection; return (status, headers, body) of the answer."""
    with socket.create_connection(server.server_address[:2], timeout=30) as sock:
        sock.sendall(data)
        if half_close:
            sock.shutdown(socket.SHUT_WR)
        response = http.client.HTTPResponse(sock, method=data.split(b" ", 1)[0].decode("ascii", "replace"))
        response.begin()
        return response.status, dict(response.getheaders()), response.read()


def post(body: bytes, content_length: int | None = None) -> bytes:
    length = len(body) if content_length is None else content_length
    return b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: " + str(length).encode() + b"\r\n\r\n" + body


def post_json(obj) -> bytes:
    return post(json.dumps(obj).encode("utf-8"))


CASES = {
    "truncated JSON": (post(b'{"inputs": "unterminated'), 400, "malformed JSON body"),
    "not UTF-8": (post(b'{"inputs": "\xff\xfe"}'), 400, "malformed JSON body"),
    "lone surrogate": (post(b'{"inputs": "\\ud800"}'), 400, "lone surrogate at position 0"),
    "surrogate in a list": (post(b'{"inputs": ["ok", "a\\udfffb"]}'), 400, "item 1 of"),
    "nested 20,000 deep": (post(b"[" * 20_000 + b"]" * 20_000), 400, "nested too deeply"),
    "empty text": (post_json({"inputs": ""}), 400, '"inputs" is empty text'),
    "blank text in a list": (post_json({"inputs": ["好", "\t\n "]}), 400, 'item 1 of "inputs" is empty text'),
    "null inputs": (post_json({"inputs": None}), 400, '"inputs" must be a string or a list of strings, got null'),
    "object inputs": (post_json({"inputs": {"txt": "好"}}), 400, "got dict with keys ['txt']"),
    "NaN inputs": (post(b'{"inputs": NaN}'), 400, "got float"),
    "top-level string": (post_json("好"), 400, "must be a JSON object"),
    "unknown key": (post_json({"inputs": "好", "options": {}}), 400, "unknown payload key(s) ['options']"),
    "negative top_k": (post_json({"inputs": "好", "parameters": {"top_k": -1}}), 400, '"top_k" must be'),
    "bad function_to_apply": (
        post_json({"inputs": "好", "parameters": {"function_to_apply": "max"}}),
        400,
        '"function_to_apply" must be one of',
    ),
    "threshold as a string": (post_json({"inputs": "好", "parameters": {"threshold": "0.5"}}), 400, '"threshold"'),
    "max_length 0": (post_json({"inputs": "好", "parameters": {"max_length": 0}}), 400, '"max_length"'),
    "body shorter than its Content-Length": (
        post(b'{"inputs": "good"}', content_length=500),
        400,
        "the body ended after 18 of its Content-Length 500 bytes",
    ),
    "no Content-Length": (b"POST / HTTP/1.1\r\nHost: x\r\n\r\n", 411, "Content-Length"),
    "Content-Length not a number": (b"POST / HTTP/1.1\r\nContent-Length: abc\r\n\r\n", 400, "bad Content-Length 'abc'"),
    "body over --max-body-bytes": (post(b"", content_length=10**12), 413, "the limit is 50000"),
    "inputs over --max-inputs": (post_json({"inputs": ["好"] * 101}), 413, "the limit is 100 per request"),
    "unknown method": (b"BREW / HTTP/1.1\r\nHost: x\r\n\r\n", 501, "Unsupported method ('BREW')"),
    "PUT": (b"PUT / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", 405, "method PUT not allowed"),
    "unknown route": (b"GET /admin HTTP/1.1\r\nHost: x\r\n\r\n", 404, "no route GET /admin"),
    "garbage request line": (b"HELLO\r\n\r\n", 400, "Bad request"),
    "HTTP/2 request line": (b"GET / HTTP/2.0\r\n\r\n", 505, "HTTP"),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_malformed_request_gets_a_json_error(server, capfd, case):
    data, status, message = case
    got, headers, body = raw(server, data, half_close=b"Content-Length: 500" in data)
    assert got == status, body
    assert headers["Content-Type"] == "application/json"
    error = json.loads(body)["error"]
    assert message.lower() in error.lower()
    if status == 405:
        assert headers["Allow"] == "GET, HEAD, POST, OPTIONS"
    assert "Traceback" not in capfd.readouterr().err


def test_head_and_options_answer_like_get_in_json(server):
    status, headers, body = raw(server, b"HEAD /health HTTP/1.1\r\nHost: x\r\n\r\n")
    assert (status, body) == (200, b"") and headers["Content-Type"] == "application/json"
    assert int(headers["Content-Length"]) == len(b'{"status": "ok"}')
    status, headers, body = raw(server, b"OPTIONS / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status == 200 and headers["Allow"] == "GET, HEAD, POST, OPTIONS"
    assert json.loads(body) == {"allow": ["GET", "HEAD", "POST", "OPTIONS"]}


def test_clients_that_leave_early_are_dropped_quietly(server, capfd):
    """200 clients send a request and close the socket at once (the answer hits a closed socket): no BrokenPipe
    traceback, and the server answers the next client."""
    sockets = []
    for i in range(200):
        sock = socket.create_connection(server.server_address[:2], timeout=30)
        sock.sendall(post_json({"inputs": ["好的", "坏了"] * (i % 5 + 1)}))
        sockets.append(sock)
    for sock in sockets:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")  # reset
        sock.close()
    status, _, body = raw(server, post_json({"inputs": "物流很快"}))
    assert status == 200 and json.loads(body)[0]["label"] in ("neg", "pos")
    assert "Traceback" not in capfd.readouterr().err


def test_server_still_answers_correctly_after_the_fuzz(server):
    status, _, body = raw(server, b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
    assert (status, json.loads(body)) == (200, {"status": "ok"})
    status, _, body = raw(server, post_json({"inputs": ["物流很快", "用了两天就坏了"], "parameters": {"top_k": 2}}))
    answer = json.loads(body)
    assert status == 200 and len(answer) == 2
    assert all(r[0]["score"] + r[1]["score"] == pytest.approx(1.0) for r in answer)
