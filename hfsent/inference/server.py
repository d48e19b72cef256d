"""An HTTP server speaking the Hugging Face Inference Endpoints text-classification contract.

Requests and answers are exactly those of hfsent's Inference Endpoints handler (`hfsent.endpoint_handler`,
whose `parse_payload` and `format_predictions` this server uses), so a client sees no difference between
``hfsent serve`` and the model deployed on Inference Endpoints: ``POST /`` with
``{"inputs": "text" | ["text", ...], "parameters": {"top_k": 1 | 2 | null, "function_to_apply": "sigmoid" |
"softmax" | "none", "threshold", "truncation", "max_length"}}``; a single string gets
``[{"label": "pos", "score": 0.97}]``, a list one answer per text; the label is decided at ``config.threshold``
(or the server's ``threshold``) and ``score`` is its probability; with ``top_k`` 2 or null both labels, the
decided one first. A multi-label model answers every label with its sigmoid score, the best first (the handler's
`format_multilabel`), and a text-pair model takes ``{"inputs": {"text": ..., "text_pair": ...}}`` or a list of
them; the wrong kind of input gets 400 with the handler's words (`check_input_kind`). ``GET /health`` answers
``{"status": "ok"}``, ``GET /`` describes the model and counts the requests, model calls and texts served;
``HEAD`` answers as ``GET`` without the body, ``OPTIONS`` with ``Allow``.

Every answer is JSON, errors ``{"error": "..."}``: 400 for a malformed body (bad JSON or UTF-8, nested too
deeply, shorter than its Content-Length) and any payload `parse_payload` rejects (missing ``inputs``, a
non-string, empty or blank text, a lone surrogate, unknown or ill-typed parameters); 411 without a
Content-Length; 413 for a body over ``max_body_bytes`` or more than ``max_inputs`` texts; 404/405/501
otherwise. Texts longer than the model accepts are always truncated (``truncation: false`` cannot make the
model read past its last position), and only a bounded prefix of a long text is tokenized. A client that
leaves before its answer is dropped quietly.

Concurrency: one thread per connection (stdlib ``ThreadingHTTPServer``, HTTP/1.1 keep-alive) parses
requests; the `MicroBatcher`'s threads (one per batch the backend runs at once) run the model, gathering the texts
of requests that arrive together into length-sorted batches and taking large requests in chunks (shortest texts
first), in turn with the others.
"""

from __future__ import annotations

import json
import socket
import sys
import time
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import torch

from ..configuration_hfsent import MULTI_LABEL
from ..endpoint_handler import check_input_kind, format_multilabel, format_predictions, parse_payload
from .backends import InferenceBackend
from .defaults import DEFAULT_MAX_BATCH_SIZE, DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_INPUTS, DEFAULT_MAX_WAIT_MS
from .labels import validate_threshold
from .microbatch import MicroBatcher

# An oversized body gets its 413 at once (with ``Connection: close``); then up to this much of it is read and
# dropped, for at most DRAIN_SECONDS, so that a client still sending sees the answer (closing a socket with unread
# data resets the connection, and the client would get a broken pipe instead); past that the connection is closed.
DRAIN_LIMIT = 1 << 30
DRAIN_SECONDS = 30.0


class RequestError(Exception):
    """A request the server refuses: an HTTP status and a message for the JSON ``error`` field."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class InferenceServer(ThreadingHTTPServer):
    """A `ThreadingHTTPServer` answering text-classification requests with ``backend``.

    Args:
        address: ``(host, port)``; port 0 picks a free port (see ``server_address``).
        backend: the loaded model.
        threshold: decision threshold (default: the model's ``config.threshold``).
        max_batch_size: texts per model call; max_wait_ms: how long a batch waits for requests being read.
        max_body_bytes: larger request bodies get 413. max_inputs: requests with more texts get 413.
        max_length: truncate texts to this many tokens.
        access_log: log one line per request to stderr.

    Raises `OSError` when the address cannot be bound (nothing is left running then).
    """

    daemon_threads = True
    request_queue_size = 1024

    def __init__(
        self,
        address: tuple[str, int],
        backend: InferenceBackend,
        *,
        threshold: float | None = None,
        max_batch_size: int = DEFAULT_MAX_BATCH_SIZE,
        max_wait_ms: float = DEFAULT_MAX_WAIT_MS,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        max_inputs: int = DEFAULT_MAX_INPUTS,
        max_length: int | None = None,
        access_log: bool = False,
    ) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        config = backend.config
        self.backend = backend
        self.multi_label = getattr(config, "problem_type", None) == MULTI_LABEL
        self.text_pairs = bool(getattr(config, "text_pairs", False))
        if self.multi_label and threshold is not None:
            raise ValueError(
                "a multi-label model's answers rank every label by its score, as the hosted text-classification "
                "task does: there is no threshold to set"
            )
        # a multi-label model decides nothing: its answers are every label's score, as the handler's
        self.threshold = (
            None if self.multi_label else validate_threshold(config.threshold if threshold is None else threshold)
        )
        self.labels = tuple(config.id2label[i] for i in sorted(config.id2label))
        self.max_body_bytes = max_body_bytes
        self.max_inputs = max_inputs
        self.access_log = access_log
        # before binding: a failed bind calls server_close, which stops the batcher
        self.batcher = MicroBatcher(backend, max_batch_size, max_wait_ms, max_length)
        super().__init__(address, _Handler)

    @property
    def url(self) -> str:
        """``http://host:port`` of the listening socket."""
        host, port = self.server_address[:2]
        return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"

    def classify(self, body: bytes) -> list[Any]:
        """Answer one request body (raises `RequestError` for a bad one)."""
        with self.batcher.incoming():
            try:
                payload = json.loads(body)
            except ValueError as err:  # bad JSON or UTF-8, an integer of more digits than Python converts
                raise RequestError(400, f"malformed JSON body: {err}") from None
            except RecursionError:
                raise RequestError(400, "malformed JSON body: nested too deeply") from None
            try:
                request = parse_payload(payload)
            except ValueError as err:
                raise RequestError(400, str(err)) from None
            try:  # a text pair to a single-text model, or the reverse
                check_input_kind(request, self.text_pairs, self.multi_label)
            except ValueError as err:
                raise RequestError(400, str(err)) from None
            if len(request.texts) > self.max_inputs:
                raise RequestError(
                    413,
                    f"the request has {len(request.texts)} inputs; the limit is {self.max_inputs} per request "
                    "(split it, or start the server with a larger --max-inputs)",
                )
            limits = [n for n in (request.max_length, self.batcher.max_length) if n]
            future = self.batcher.submit(request.texts, min(limits) if limits else None, request.pairs)
        if self.multi_label:
            return format_multilabel(torch.tensor(future.result(), dtype=torch.float64), self.labels, request)
        threshold = self.threshold if request.threshold is None else request.threshold
        return format_predictions(
            future.result(), threshold, request.top_k, request.batched, self.labels, request.function_to_apply
        )

    def info(self) -> dict[str, Any]:
        """What ``GET /`` answers."""
        config = self.backend.config
        return {
            "task": "text-classification",
            "model_type": config.model_type,
            "backend": self.backend.name,
            "labels": list(config.id2label.values()),
            "threshold": self.threshold,
            "multi_label": self.multi_label,
            "text_pairs": self.text_pairs,
            "max_inputs": self.max_inputs,
            "max_body_bytes": self.max_body_bytes,
            "served": dict(self.batcher.stats),
        }

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that leaves early (reset, broken pipe, timeout) is no error; anything else is logged."""
        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            return
        super().handle_error(request, client_address)

    def server_close(self) -> None:
        """Stop listening and stop the batching thread."""
        super().server_close()
        self.batcher.close()


ALLOWED_METHODS = ("GET", "HEAD", "POST", "OPTIONS")


class _Handler(BaseHTTPRequestHandler):
    server: InferenceServer
    protocol_version = "HTTP/1.1"
    server_version = "hfsent"
    timeout = 60  # seconds a connection may sit idle or stall mid-request
    # Headers and body go out in two writes: with Nagle's algorithm on, the body would wait for the
    # client's delayed ACK (~40 ms a request on Linux).
    disable_nagle_algorithm = True

    def _send_json(self, status: int, obj: Any, close: bool = False, headers: dict[str, str] | None = None) -> None:
        try:
            data = json.dumps(obj, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate echoed in an error message: JSON's \u escapes hold it
            data = json.dumps(obj).encode("ascii")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if self.command != "HEAD" and status >= 200 and status not in (204, 304):
            self.wfile.write(data)

    def _error(self, status: int, message: str, close: bool = False, headers: dict[str, str] | None = None) -> None:
        self._send_json(status, {"error": message}, close=close, headers=headers)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """The errors `BaseHTTPRequestHandler` answers itself (bad request line, unsupported method, headers
        too large, ...), as JSON like every other answer; the connection is closed."""
        self.log_error("code %d, message %s", code, message)
        short, long = self.responses.get(code, ("error", ""))
        if not hasattr(self, "command"):
            self.command = None
        if self.request_version == "HTTP/0.9":  # an unparsable request line: answer with a status line anyway
            self.request_version = "HTTP/1.0"
        self._error(code, message or long or short, close=True)

    def _get(self) -> None:
        path = urlsplit(self.path).path
        if path == "/health":
            self._send_json(200, {"status": "ok"})
        elif path == "/":
            self._send_json(200, self.server.info())
        else:
            self._error(404, f"no route {self.command} {path}; try POST / or GET /health")

    do_GET = do_HEAD = _get

    def do_OPTIONS(self) -> None:
        self._send_json(200, {"allow": list(ALLOWED_METHODS)}, headers={"Allow": ", ".join(ALLOWED_METHODS)})

    def _read_body(self) -> bytes | None:
        """The request body, or None after answering an error (no or bad Content-Length, too large, short)."""
        length = self.headers.get("Content-Length")
        if self.headers.get("Transfer-Encoding") or length is None:
            self._error(411, "send the body with a Content-Length header", close=True)
            return None
        try:
            size = int(length)
            if size < 0:
                raise ValueError
        except ValueError:
            self._error(400, f"bad Content-Length {length!r}", close=True)
            return None
        if size > self.server.max_body_bytes:
            self._error(413, f"the body is {size} bytes; the limit is {self.server.max_body_bytes}", close=True)
            self._drain(min(size, DRAIN_LIMIT))
            return None
        try:
            body = self.rfile.read(size)
        except TimeoutError:
            body = b""
            self.close_connection = True
        if len(body) < size:
            self._error(400, f"the body ended after {len(body)} of its Content-Length {size} bytes", close=True)
            return None
        return body

    def _drain(self, size: int) -> None:
        """Read and drop up to ``size`` bytes of the request, for at most `DRAIN_SECONDS`."""
        deadline = time.monotonic() + DRAIN_SECONDS
        try:
            while size > 0 and time.monotonic() < deadline and (chunk := self.rfile.read1(min(1 << 16, size))):
                size -= len(chunk)
        except OSError:  # the client left, or stopped sending (the read timed out)
            pass

    def do_POST(self) -> None:
        body = self._read_body()
        if body is None:
            return
        path = urlsplit(self.path).path
        if path != "/":
            self._error(404, f"no route POST {path}; post text-classification requests to /")
            return
        try:
            status, answer = 200, self.server.classify(body)
        except RequestError as err:
            status, answer = err.status, {"error": str(err)}
        except Exception as err:
            traceback.print_exc(file=sys.stderr)
            status, answer = 500, {"error": f"internal error: {type(err).__name__}: {err}"}
        self._send_json(status, answer)

    def _method_not_allowed(self) -> None:
        self._error(
            405,
            f"method {self.command} not allowed; use POST / or GET /health",
            close=True,
            headers={"Allow": ", ".join(ALLOWED_METHODS)},
        )

    do_PUT = do_DELETE = do_PATCH = _method_not_allowed

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.access_log:
            super().log_message(format, *args)
