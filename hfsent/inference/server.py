"""An HTTP server speaking the Hugging Face Inference Endpoints text-classification contract.

Requests and answers are exactly those of hfsent's Inference Endpoints handler (`hfsent.endpoint_handler`,
whose `parse_payload` and `format_predictions` this server uses), so a client sees no difference between
``hfsent serve`` and the model deployed on Inference Endpoints: ``POST /`` with
``{"inputs": "text" | ["text", ...], "parameters": {"top_k": 1 | 2 | null, "threshold", "truncation",
"max_length"}}``; a single string gets ``[{"label": "pos", "score": 0.97}]``, a list one answer per text;
the label is decided at ``config.threshold`` (or the server's ``threshold``) and ``score`` is its
probability; with ``top_k`` 2 or null both labels, the decided one first. ``GET /health`` answers
``{"status": "ok"}``, ``GET /`` describes the model and counts the requests, model calls and texts served.

Errors are JSON ``{"error": "..."}``: 400 for malformed JSON and any payload `parse_payload` rejects
(missing ``inputs``, non-string inputs, unknown or ill-typed parameters); 411 without a Content-Length;
413 for a body over ``max_body_bytes``; 404/405 otherwise. Texts longer than the model accepts are
always truncated (``truncation: false`` cannot make the model read past its last position).

Concurrency: one thread per connection (stdlib ``ThreadingHTTPServer``, HTTP/1.1 keep-alive) parses
requests; a single `MicroBatcher` thread runs the model, gathering the texts of requests that arrive
together into one length-sorted batch.
"""

from __future__ import annotations

import collections
import json
import socket
import sys
import threading
import time
import traceback
from collections.abc import Iterator, Sequence
from concurrent.futures import Future
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from ..endpoint_handler import format_predictions, parse_payload
from .backends import InferenceBackend
from .labels import validate_threshold

DEFAULT_MAX_BODY_BYTES = 1 << 20
DEFAULT_MAX_BATCH_SIZE = 64
DEFAULT_MAX_WAIT_MS = 5.0
# An oversized body up to this size is read and dropped before the 413, so the client sees the answer
# (closing a socket with unread data resets the connection); a larger one just closes it.
DRAIN_LIMIT = 16 << 20


class RequestError(Exception):
    """A request the server refuses: an HTTP status and a message for the JSON ``error`` field."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class MicroBatcher:
    """Scores the texts of many requests on one worker thread, batching requests that arrive together.

    The worker takes the queued requests (up to ``max_batch_size`` texts, all with the first one's
    ``max_length``) and, while other requests are still being read (`incoming`), waits up to
    ``max_wait_ms`` for them; a lone request is not delayed.
    """

    def __init__(
        self,
        backend: InferenceBackend,
        max_batch_size: int = DEFAULT_MAX_BATCH_SIZE,
        max_wait_ms: float = DEFAULT_MAX_WAIT_MS,
        max_length: int | None = None,
    ) -> None:
        self.backend = backend
        self.max_batch_size = max_batch_size
        self.max_wait = max_wait_ms / 1000.0
        self.max_length = max_length
        self._queue: collections.deque[tuple[Sequence[str], int | None, Future]] = collections.deque()
        self._queued_texts = 0
        self._incoming = 0
        self._closed = False
        self._cond = threading.Condition()
        self.stats = {"requests": 0, "batches": 0, "texts": 0}  # written by the worker thread only
        self._thread = threading.Thread(target=self._run, name="hfsent-batcher", daemon=True)
        self._thread.start()

    @contextmanager
    def incoming(self) -> Iterator[None]:
        """Mark a request as being read, so the worker may wait for it to join the next batch."""
        with self._cond:
            self._incoming += 1
        try:
            yield
        finally:
            with self._cond:
                self._incoming -= 1
                self._cond.notify_all()

    def submit(self, texts: Sequence[str], max_length: int | None = None) -> Future:
        """Queue ``texts`` (truncated to ``max_length`` tokens, if given, else to the batcher's);
        the future resolves to their P(pos), in order."""
        future: Future = Future()
        with self._cond:
            if self._closed:
                raise RuntimeError("the batcher is closed")
            self._queue.append((texts, max_length or self.max_length, future))
            self._queued_texts += len(texts)
            self._cond.notify_all()
        return future

    def _next_batch(self) -> list[tuple[Sequence[str], int | None, Future]] | None:
        with self._cond:
            while not self._queue and not self._closed:
                self._cond.wait()
            if not self._queue:
                return None
            deadline = time.monotonic() + self.max_wait
            while self._queued_texts < self.max_batch_size and self._incoming and not self._closed:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._cond.wait(remaining)
            batch, rest = [self._queue.popleft()], []
            size = len(batch[0][0])
            while self._queue:  # more requests with the same max_length, in arrival order
                item = self._queue.popleft()
                if item[1] == batch[0][1] and size + len(item[0]) <= self.max_batch_size:
                    batch.append(item)
                    size += len(item[0])
                else:
                    rest.append(item)
            self._queue.extend(rest)
            self._queued_texts -= size
            return batch

    def _run(self) -> None:
        while (batch := self._next_batch()) is not None:
            texts = [text for request, _, _ in batch for text in request]
            self.stats["requests"] += len(batch)
            self.stats["batches"] += 1
            self.stats["texts"] += len(texts)
            try:
                probs = self.backend.positive_probabilities(texts, self.max_batch_size, batch[0][1])
            except Exception as err:  # one failing batch must not stop the server
                for _, _, future in batch:
                    future.set_exception(err)
                continue
            start = 0
            for request, _, future in batch:
                future.set_result(probs[start : start + len(request)])
                start += len(request)

    def close(self) -> None:
        """Finish the queued requests and stop the worker."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._thread.join()


class InferenceServer(ThreadingHTTPServer):
    """A `ThreadingHTTPServer` answering text-classification requests with ``backend``.

    Args:
        address: ``(host, port)``; port 0 picks a free port (see ``server_address``).
        backend: the loaded model.
        threshold: decision threshold (default: the model's ``config.threshold``).
        max_batch_size: texts per model call; max_wait_ms: how long a batch waits for requests being read.
        max_body_bytes: larger request bodies get 413. max_length: truncate texts to this many tokens.
        access_log: log one line per request to stderr.
    """

    daemon_threads = True
    request_queue_size = 128

    def __init__(
        self,
        address: tuple[str, int],
        backend: InferenceBackend,
        *,
        threshold: float | None = None,
        max_batch_size: int = DEFAULT_MAX_BATCH_SIZE,
        max_wait_ms: float = DEFAULT_MAX_WAIT_MS,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        max_length: int | None = None,
        access_log: bool = False,
    ) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, _Handler)
        self.backend = backend
        self.threshold = validate_threshold(backend.config.threshold if threshold is None else threshold)
        self.max_body_bytes = max_body_bytes
        self.access_log = access_log
        self.batcher = MicroBatcher(backend, max_batch_size, max_wait_ms, max_length)

    @property
    def url(self) -> str:
        """``http://host:port`` of the listening socket."""
        host, port = self.server_address[:2]
        return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"

    def classify(self, body: bytes) -> list[Any]:
        """Answer one request body (raises `RequestError` for a bad one)."""
        with self.batcher.incoming():
            try:
                request = parse_payload(json.loads(body))
            except (json.JSONDecodeError, UnicodeDecodeError) as err:
                raise RequestError(400, f"malformed JSON body: {err}") from None
            except ValueError as err:
                raise RequestError(400, str(err)) from None
            limits = [n for n in (request.max_length, self.batcher.max_length) if n]
            future = self.batcher.submit(request.texts, min(limits) if limits else None)
        threshold = self.threshold if request.threshold is None else request.threshold
        labels = (self.backend.config.id2label[0], self.backend.config.id2label[1])
        return format_predictions(future.result(), threshold, request.top_k, request.batched, labels)

    def info(self) -> dict[str, Any]:
        """What ``GET /`` answers."""
        config = self.backend.config
        return {
            "task": "text-classification",
            "model_type": config.model_type,
            "backend": self.backend.name,
            "labels": list(config.id2label.values()),
            "threshold": self.threshold,
            "served": dict(self.batcher.stats),
        }

    def server_close(self) -> None:
        """Stop listening and stop the batching thread."""
        super().server_close()
        self.batcher.close()


class _Handler(BaseHTTPRequestHandler):
    server: InferenceServer
    protocol_version = "HTTP/1.1"
    server_version = "hfsent"
    timeout = 60  # seconds a connection may sit idle or stall mid-request
    # Headers and body go out in two writes: with Nagle's algorithm on, the body would wait for the
    # client's delayed ACK (~40 ms a request on Linux).
    disable_nagle_algorithm = True

    def _send_json(self, status: int, obj: Any, close: bool = False) -> None:
        data = json.dumps(obj, ensure_ascii=False).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(data)

    def _error(self, status: int, message: str, close: bool = False) -> None:
        self._send_json(status, {"error": message}, close=close)

    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        if path == "/health":
            self._send_json(200, {"status": "ok"})
        elif path == "/":
            self._send_json(200, self.server.info())
        else:
            self._error(404, f"no route GET {path}; try POST / or GET /health")

    def do_POST(self) -> None:
        path = urlsplit(self.path).path
        length = self.headers.get("Content-Length")
        if self.headers.get("Transfer-Encoding") or length is None:
            self._error(411, "send the body with a Content-Length header", close=True)
            return
        try:
            size = int(length)
            if size < 0:
                raise ValueError
        except ValueError:
            self._error(400, f"bad Content-Length {length!r}", close=True)
            return
        if size > self.server.max_body_bytes:
            remaining = size if size <= DRAIN_LIMIT else 0
            while remaining > 0 and (chunk := self.rfile.read(min(1 << 16, remaining))):
                remaining -= len(chunk)
            self._error(413, f"the body is {size} bytes; the limit is {self.server.max_body_bytes}", close=True)
            return
        body = self.rfile.read(size)
        if path != "/":
            self._error(404, f"no route POST {path}; post text-classification requests to /")
            return
        try:
            self._send_json(200, self.server.classify(body))
        except RequestError as err:
            self._error(err.status, str(err))
        except Exception as err:
            traceback.print_exc(file=sys.stderr)
            self._error(500, f"internal error: {type(err).__name__}: {err}")

    def _method_not_allowed(self) -> None:
        self._error(405, f"method {self.command} not allowed; use POST / or GET /health", close=True)

    do_PUT = do_DELETE = do_PATCH = _method_not_allowed

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.access_log:
            super().log_message(format, *args)
