"""An HTTP server speaking the Hugging Face Inference Endpoints text-classification contract.

Requests and answers are exactly those of hfsent's Inference Endpoints handler (`hfsent.endpoint_handler`,
whose `parse_payload` and `format_predictions` this server uses), so a client sees no difference between
``hfsent serve`` and the model deployed on Inference Endpoints: ``POST /`` with
``{"inputs": "text" | ["text", ...], "parameters": {"top_k": 1 | 2 | null, "function_to_apply": "sigmoid" |
"softmax" | "none", "threshold", "truncation", "max_length"}}``; a single string gets
``[{"label": "pos", "score": 0.97}]``, a list one answer per text; the label is decided at ``config.threshold``
(or the server's ``threshold``) and ``score`` is its probability; with ``top_k`` 2 or null both labels, the
decided one first. ``GET /health`` answers ``{"status": "ok"}``, ``GET /`` describes the model and counts the
requests, model calls and texts served; ``HEAD`` answers as ``GET`` without the body, ``OPTIONS`` with ``Allow``.

Every answer is JSON, errors ``{"error": "..."}``: 400 for a malformed body (bad JSON or UTF-8, nested too
deeply, shorter than its Content-Length) and any payload `parse_payload` rejects (missing ``inputs``, a
non-string, empty or blank text, a lone surrogate, unknown or ill-typed parameters); 411 without a
Content-Length; 413 for a body over ``max_body_bytes`` or more than ``max_inputs`` texts; 404/405/501
otherwise. Texts longer than the model accepts are always truncated (``truncation: false`` cannot make the
model read past its last position), and only a bounded prefix of a long text is tokenized. A client that
leaves before its answer is dropped quietly.

Concurrency: one thread per connection (stdlib ``ThreadingHTTPServer``, HTTP/1.1 keep-alive) parses
requests; a single `MicroBatcher` thread runs the model, gathering the texts of requests that arrive
together into one length-sorted batch and taking large requests in chunks, in turn with the others.
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
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from ..endpoint_handler import format_predictions, parse_payload
from .backends import InferenceBackend
from .batching import TOKENS_PER_TEXT
from .labels import validate_threshold

DEFAULT_MAX_BODY_BYTES = 1 << 20
DEFAULT_MAX_BATCH_SIZE = 64
DEFAULT_MAX_WAIT_MS = 5.0
# Texts per request; more get 413 (a request is scored in chunks, so this bounds memory, not latency).
DEFAULT_MAX_INPUTS = 10_000
# The longest text a model call counts on when the request sets no max_length (BERT's usual position count).
DEFAULT_TOKENS_PER_TEXT_CAP = 512
# An oversized body up to this size is read and dropped before the 413, so the client sees the answer
# (closing a socket with unread data resets the connection); a larger one just closes it.
DRAIN_LIMIT = 16 << 20


class RequestError(Exception):
    """A request the server refuses: an HTTP status and a message for the JSON ``error`` field."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(eq=False)
class _Job:
    """One request in the batcher: its texts, how many have been handed to the model, and their P(pos)."""

    texts: Sequence[str]
    max_length: int | None
    future: Future
    taken: int = 0
    scored: int = 0
    probabilities: list[float] = field(default_factory=list)

    @property
    def left(self) -> int:
        return len(self.texts) - self.taken


class MicroBatcher:
    """Scores the texts of many requests on one worker thread, batching requests that arrive together.

    Each model call takes up to ``max_batch_size`` texts and about ``max_batch_size * TOKENS_PER_TEXT``
    tokens (estimated from the characters; all texts with the same ``max_length``) from the queued requests,
    shared fairly: one text from each request in turn, the oldest first, and a request that still has texts
    left goes to the back of the queue. A large request is so scored in short chunks between which small
    ones get their turn: a one-text request waits for about one model call, not for the whole of a
    10,000-text request queued before it. While other
    requests are still being read (`incoming`) the worker waits up to ``max_wait_ms`` for them to join; a lone
    request is not delayed.
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
        self.max_tokens = max_batch_size * TOKENS_PER_TEXT
        self._queue: collections.deque[_Job] = collections.deque()
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
        if not texts:
            future.set_result([])
            return future
        with self._cond:
            if self._closed:
                raise RuntimeError("the batcher is closed")
            self._queue.append(_Job(texts, max_length or self.max_length, future))
            self._queued_texts += len(texts)
            self._cond.notify_all()
        return future

    def _next_batch(self) -> list[tuple[_Job, int, int]] | None:
        """The next model call's texts as (request, start, end) slices; None once closed and drained."""
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
            max_length = self._queue[0].max_length
            jobs = [job for job in self._queue if job.max_length == max_length]
            counts = self._shares(jobs, max_length)
            batch = []
            for job, count in counts.items():
                if count:
                    batch.append((job, job.taken, job.taken + count))
                    job.taken += count
                    self._queued_texts -= count
            served = {job for job, _, _ in batch}
            rest = [job for job in self._queue if job not in served]
            again = [job for job, _, _ in batch if job.left]  # to the back of the queue: the others go first
            self._queue = collections.deque(rest + again)
            return batch

    def _shares(self, jobs: list[_Job], max_length: int | None) -> dict[_Job, int]:
        """How many texts each job gives the next model call: one text each in turn (arrival order first) until
        the call holds ``max_batch_size`` texts or ``max_tokens`` estimated tokens, at least one text."""
        counts = dict.fromkeys(jobs, 0)
        cap = max_length or DEFAULT_TOKENS_PER_TEXT_CAP
        size = tokens = 0
        active = [job for job in jobs if job.left]
        while active:
            for job in list(active):
                index = job.taken + counts[job]
                if index == len(job.texts):
                    active.remove(job)
                    continue
                cost = min(len(job.texts[index]), cap) + 2  # characters bound BERT tokens (+ [CLS], [SEP])
                if size and (size == self.max_batch_size or tokens + cost > self.max_tokens):
                    return counts
                counts[job] += 1
                size += 1
                tokens += cost
        return counts

    def _run(self) -> None:
        while (batch := self._next_batch()) is not None:
            texts = [text for job, start, end in batch for text in job.texts[start:end]]
            self.stats["requests"] += sum(1 for job, start, _ in batch if start == 0)
            self.stats["batches"] += 1
            self.stats["texts"] += len(texts)
            try:
                probs = self.backend.positive_probabilities(texts, self.max_batch_size, batch[0][0].max_length)
            except Exception as err:  # one failing batch must not stop the server
                self._fail({job for job, _, _ in batch}, err)
                continue
            offset = 0
            for job, start, end in batch:
                job.probabilities += probs[offset : offset + end - start]
                job.scored += end - start
                offset += end - start
                if job.scored == len(job.texts) and not job.future.done():
                    job.future.set_result(job.probabilities)

    def _fail(self, jobs: set[_Job], err: Exception) -> None:
        """Fail ``jobs`` and drop their texts not yet scored."""
        with self._cond:
            for job in jobs:
                if job in self._queue:
                    self._queue.remove(job)
                    self._queued_texts -= job.left
                if not job.future.done():
                    job.future.set_exception(err)

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
        self.backend = backend
        self.threshold = validate_threshold(backend.config.threshold if threshold is None else threshold)
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
                request = parse_payload(json.loads(body))
            except (json.JSONDecodeError, UnicodeDecodeError) as err:
                raise RequestError(400, f"malformed JSON body: {err}") from None
            except RecursionError:
                raise RequestError(400, "malformed JSON body: nested too deeply") from None
            except ValueError as err:
                raise RequestError(400, str(err)) from None
            if len(request.texts) > self.max_inputs:
                raise RequestError(
                    413,
                    f"the request has {len(request.texts)} inputs; the limit is {self.max_inputs} per request "
                    "(split it, or start the server with a larger --max-inputs)",
                )
            limits = [n for n in (request.max_length, self.batcher.max_length) if n]
            future = self.batcher.submit(request.texts, min(limits) if limits else None)
        threshold = self.threshold if request.threshold is None else request.threshold
        labels = (self.backend.config.id2label[0], self.backend.config.id2label[1])
        return format_predictions(
            future.result(), threshold, request.top_k, request.batched, labels, request.function_to_apply
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
            remaining = size if size <= DRAIN_LIMIT else 0
            while remaining > 0 and (chunk := self.rfile.read(min(1 << 16, remaining))):
                remaining -= len(chunk)
            self._error(413, f"the body is {size} bytes; the limit is {self.server.max_body_bytes}", close=True)
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
