"""``hfsent serve``: the Inference Endpoints text-classification contract over real HTTP, and InferenceClient."""

from __future__ import annotations

import http.client
import json
import queue
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import pytest
from huggingface_hub import InferenceClient

import hfsent
from hfsent.endpoint_handler import EndpointHandler
from hfsent.inference import load_backend

from ..fixtures.helpers import PROBABILITY_TOLERANCE, ROOT, decisive, review_tokenizer
from ..fixtures.inference_helpers import one_torch_thread, review_texts, save_trained_tiny_checkpoint

MAX_BODY = 20_000
CLIENTS, REQUESTS_EACH = 32, 20


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return save_trained_tiny_checkpoint(tmp_path_factory.mktemp("serve") / "model", review_tokenizer())


def start_server(model, *args: str, log_path, banner: str = "") -> tuple[subprocess.Popen, str, queue.Queue]:
    """Start ``hfsent serve MODEL --port 0 ARGS``; return the process, its URL and its further stdout lines.
    The first line must hold ``banner``."""
    with open(log_path, "w") as log:  # the child keeps its own copy of the file descriptor
        proc = subprocess.Popen(
            [sys.executable, "-m", "hfsent", "serve", str(model), "--port", "0", "--threads", "1", *args],
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
        )
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout], daemon=True).start()
    try:
        first = lines.get(timeout=120)
    except queue.Empty:
        proc.kill()
        raise AssertionError(f"the server printed nothing; stderr:\n{log_path.read_text()[-3000:]}") from None
    assert "listening on http://127.0.0.1:" in first and banner in first, first + log_path.read_text()[-3000:]
    return proc, first.rsplit(" ", 1)[-1].strip(), lines


def stop_server(proc: subprocess.Popen, lines: queue.Queue) -> None:
    """SIGTERM the server; it must stop cleanly."""
    proc.terminate()
    assert proc.wait(timeout=30) == 0
    assert lines.get(timeout=5).strip() == "hfsent serve: stopped"


@pytest.fixture(scope="module")
def server(model_dir, tmp_path_factory):
    proc, url, lines = start_server(
        model_dir, "--max-body-bytes", str(MAX_BODY), log_path=tmp_path_factory.mktemp("log") / "serve.log"
    )
    yield url
    stop_server(proc, lines)


@pytest.fixture(scope="module")
def expected(model_dir):
    """hfsent.predict in this process: what the server must answer for a list of texts."""
    backend = load_backend(str(model_dir), "torch", threads=1)  # batches not cut by this machine's CPU count

    def run(texts):
        with one_torch_thread():
            return hfsent.predict(texts, backend)

    return run


@pytest.fixture(scope="module")
def handler(model_dir):
    """hfsent's Inference Endpoints handler on the same model: the contract the server must speak."""
    with one_torch_thread():
        return EndpointHandler(str(model_dir))


def request(url, method="GET", path="/", body=None, headers=None, conn=None):
    """One HTTP request with http.client; returns (status, parsed JSON body)."""
    parts = urlsplit(url)
    own = conn is None
    conn = conn or http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        if body is not None and not isinstance(body, bytes):
            body = json.dumps(body, ensure_ascii=False).encode("utf-8")
        conn.request(method, path, body=body, headers={"Content-Type": "application/json", **(headers or {})})
        response = conn.getresponse()
        return response.status, json.loads(response.read())
    finally:
        if own:
            conn.close()


def assert_same(answer, result):
    """One text's answer ({label, score}) against hfsent.predict's result for it. The server batches texts
    differently (by timing), so P(pos) agrees to PROBABILITY_TOLERANCE, and the label wherever P(pos) lies further
    than that from the threshold (0.5)."""
    p = result["positive_probability"]
    assert (answer["score"] if answer["label"] == "pos" else 1 - answer["score"]) == pytest.approx(
        p, abs=PROBABILITY_TOLERANCE
    )
    if decisive([p])[0]:
        assert answer["label"] == result["label"]


def test_health_and_info(server):
    assert request(server, path="/health") == (200, {"status": "ok"})
    status, info = request(server, path="/")
    assert status == 200
    assert info["task"] == "text-classification" and info["labels"] == ["neg", "pos"] and info["threshold"] == 0.5


PAYLOADS = {
    "single": lambda texts: {"inputs": texts[0]},
    "list": lambda texts: {"inputs": texts},
    "list, both labels": lambda texts: {"inputs": texts, "parameters": {"top_k": 2}},
    "single, both labels": lambda texts: {"inputs": texts[1], "parameters": {"top_k": None}},
    "threshold": lambda texts: {"inputs": texts, "parameters": {"threshold": 0.9}},
    "max_length": lambda texts: {"inputs": texts, "parameters": {"max_length": 6, "truncation": True}},
    "empty list": lambda texts: {"inputs": []},
    "sigmoid": lambda texts: {"inputs": texts, "parameters": {"function_to_apply": "sigmoid"}},
    "softmax, both labels": lambda texts: {
        "inputs": texts[2],
        "parameters": {"function_to_apply": "softmax", "top_k": 2},
    },
    "raw logits": lambda texts: {"inputs": texts, "parameters": {"function_to_apply": "none", "top_k": None}},
    "hosted defaults": lambda texts: {"inputs": texts[3], "parameters": {"function_to_apply": None, "top_k": None}},
}


def approx_answer(answer):
    """The answer with scores compared to 1e-4 (the server batches texts differently from the handler)."""
    if isinstance(answer, list):
        return [approx_answer(a) for a in answer]
    return {"label": answer["label"], "score": pytest.approx(answer["score"], abs=1e-4)}


@pytest.mark.parametrize("payload", PAYLOADS.values(), ids=PAYLOADS.keys())
def test_answers_equal_the_inference_endpoints_handler(server, handler, payload):
    body = payload(review_texts(6, seed=11))
    status, answer = request(server, "POST", body=body)
    assert status == 200
    assert answer == approx_answer(handler(body))


def test_answers_match_hfsent_predict(server, expected):
    texts = review_texts(6, seed=11)
    results = expected(texts)
    status, answer = request(server, "POST", body={"inputs": texts[0]})
    assert status == 200 and len(answer) == 1
    assert_same(answer[0], results[0])

    status, answer = request(server, "POST", body={"inputs": texts, "parameters": {"top_k": 2}})
    assert status == 200 and len(answer) == len(texts)
    for ranked, result in zip(answer, results, strict=True):
        assert_same(ranked[0], result)
        assert {r["label"] for r in ranked} == {"neg", "pos"}
        assert ranked[0]["score"] + ranked[1]["score"] == pytest.approx(1.0)
    assert {r["label"] for r in results} == {"neg", "pos"}


def test_inference_client_against_the_server(server, expected, local_http_client):
    text = review_texts(1, seed=12)[0]
    result = expected([text])[0]
    # huggingface_hub 2.4 returns the first element of the hosted-format answer: the decided label.
    top = InferenceClient(model=server, timeout=30).text_classification(text)
    assert_same({"label": top.label, "score": top.score}, result)


@pytest.mark.parametrize("function", ["sigmoid", "softmax", "none"])
def test_inference_client_function_to_apply(server, expected, local_http_client, function):
    """The hosted task's parameter (issue 11 item 11): sigmoid and softmax of the model's [0, z] give P(label);
    none gives the logit of the decided label (z for pos, 0 for neg)."""
    import math

    text = review_texts(1, seed=16)[0]
    result = expected([text])[0]
    top = InferenceClient(model=server, timeout=30).text_classification(text, function_to_apply=function)
    assert top.label == result["label"]
    p = result["positive_probability"]
    want = result["score"] if function != "none" else (math.log(p / (1 - p)) if result["label"] == "pos" else 0.0)
    assert top.score == pytest.approx(want, abs=1e-4)


def test_concurrent_clients_are_all_answered_correctly(server, expected):
    texts = review_texts(CLIENTS * REQUESTS_EACH, seed=13)
    results = expected(texts)
    parts = urlsplit(server)

    def client(worker: int) -> list:
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)  # one keep-alive connection
        try:
            mine = range(worker * REQUESTS_EACH, (worker + 1) * REQUESTS_EACH)
            return [(i, *request(server, "POST", body={"inputs": texts[i]}, conn=conn)) for i in mine]
        finally:
            conn.close()

    with ThreadPoolExecutor(CLIENTS) as pool:
        answers = [a for batch in pool.map(client, range(CLIENTS)) for a in batch]
    assert len(answers) == CLIENTS * REQUESTS_EACH
    for i, status, answer in answers:
        assert status == 200, answer
        assert_same(answer[0], results[i])
    served = request(server, path="/")[1]["served"]
    assert served["requests"] >= CLIENTS * REQUESTS_EACH
    assert served["batches"] < served["requests"]  # concurrent requests shared model calls


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"inputs": "unterminated', "malformed JSON"),
        (b"\xff\xfe", "malformed JSON"),
        ({"text": "好"}, 'the payload has no "inputs"'),
        (["好"], "the payload must be a JSON object"),
        ({"inputs": 42}, '"inputs" must be a string or a list of strings, got int'),
        ({"inputs": ["好", None]}, "item 1 is null"),
        ({"inputs": ["好", 3]}, "item 1 is int"),
        ({"inputs": "好", "parameters": {"top_k": 0}}, '"top_k" must be a positive integer or null'),
        ({"inputs": "好", "parameters": {"top_k": "2"}}, '"top_k" must be a positive integer or null'),
        ({"inputs": "好", "parameters": {"threshold": 1.5}}, '"threshold" must be a number'),
        ({"inputs": "好", "parameters": {"temperature": 1}}, "unknown parameter(s) ['temperature']"),
        ({"inputs": "好", "parameters": {"function_to_apply": "tanh"}}, '"function_to_apply" must be one of'),
        ({"inputs": ""}, '"inputs" is empty text'),
        ({"inputs": ["好", " \n"]}, 'item 1 of "inputs" is empty text'),
        (b'{"inputs": "\\ud800"}', '"inputs" is not valid Unicode (a lone surrogate at position 0)'),
        (b"[" * 5000 + b"]" * 5000, "malformed JSON body: nested too deeply"),
    ],
)
def test_bad_payloads_get_400_with_a_json_error(server, body, message):
    status, answer = request(server, "POST", body=body)
    assert status == 400
    assert message in answer["error"]


def test_oversized_body_gets_413_and_the_server_stays_up(server, expected):
    status, answer = request(server, "POST", body={"inputs": "好" * MAX_BODY})
    assert status == 413 and "limit is 20000" in answer["error"]
    status, answer = request(server, "POST", path="/elsewhere", body={"inputs": "好"})
    assert status == 404 and "error" in answer

    assert request(server, path="/health") == (200, {"status": "ok"})
    text = review_texts(1, seed=14)[0]
    status, answer = request(server, "POST", body={"inputs": text})
    assert status == 200
    assert_same(answer[0], expected([text])[0])


def test_overlong_text_is_truncated(server, expected):
    text = "，".join(review_texts(60, seed=15))  # far beyond the tiny model's 128 positions
    status, answer = request(server, "POST", body={"inputs": text})
    assert status == 200
    assert_same(answer[0], expected([text])[0])


@pytest.fixture
def in_process_server(model_dir):
    """Start an `InferenceServer` in this process (``hfsent serve`` itself runs in the module's server); yield a
    function that starts one with the given options and returns its URL."""
    from hfsent.inference.server import InferenceServer

    servers = []

    def start(threads: int = 1, **options) -> str:
        server = InferenceServer(("127.0.0.1", 0), load_backend(str(model_dir), threads=threads), **options)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return server.url

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("threads", [1, 3])
def test_small_requests_beside_a_huge_one_are_all_answered_correctly(in_process_server, expected, threads):
    """Issue 12: one-text requests while another client sends requests of thousands of texts. The batcher takes
    the huge one in chunks (shortest texts first) in turn with the others; with several threads, chunks of one
    request finish out of order (timing is measured in bench/bench_serve.py --mixed)."""
    url = in_process_server(threads=threads, max_body_bytes=1 << 22)
    big = review_texts(3000, seed=17)
    small = review_texts(8 * 8, seed=18)
    results = {t: r for t, r in zip(big + small, expected(big + small), strict=True)}
    parts = urlsplit(url)

    def small_client(worker: int) -> list:
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
        out = [(i, *request(url, "POST", body={"inputs": small[i]}, conn=conn)) for i in range(worker, len(small), 8)]
        conn.close()
        return out

    with ThreadPoolExecutor(9) as pool:
        huge = pool.submit(request, url, "POST", "/", {"inputs": big})
        answers = [a for part in pool.map(small_client, range(8)) for a in part]
        status, big_answer = huge.result()
    assert status == 200 and len(big_answer) == len(big)
    for text, answer in zip(big, big_answer, strict=True):
        assert_same(answer, results[text])
    assert len(answers) == len(small)
    for i, status, answer in answers:
        assert status == 200, answer
        assert_same(answer[0], results[small[i]])
    served = request(url, path="/")[1]["served"]
    assert served["texts"] == len(big) + len(small)
    assert served["batches"] >= len(big) // 64  # the huge request went through in chunks of --batch-size


def test_too_many_inputs_get_413(in_process_server):
    url = in_process_server(max_inputs=5)
    status, answer = request(url, "POST", body={"inputs": ["好"] * 6})
    assert status == 413
    assert answer["error"].startswith("the request has 6 inputs; the limit is 5 per request")
    assert request(url, "POST", body={"inputs": ["好"] * 5})[0] == 200


def test_serve_on_a_busy_port_exits_1_with_one_line(model_dir, capsys):
    """Issue 12: the bind error was hidden by ``AttributeError: ... 'batcher'``."""
    import socket

    from hfsent import cli

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        code = cli.main(["serve", str(model_dir), "--port", str(port), "--threads", "1"])
    err = capsys.readouterr().err
    assert code == 1
    assert err.strip() == f"hfsent serve: error: cannot listen on 127.0.0.1:{port}: Address already in use"
