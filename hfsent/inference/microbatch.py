"""Micro-batching for the server: worker threads (one per batch the backend runs at once) score the texts of many
requests, fairly.

Requests that arrive together share a length-sorted model call; a large request is taken in chunks, in turn
with the others, so a one-text request never waits for the whole of a large one (`MicroBatcher`).
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from ..configuration_hfsent import MULTI_LABEL
from .backends import InferenceBackend
from .batching import TOKENS_PER_TEXT
from .defaults import DEFAULT_MAX_BATCH_SIZE, DEFAULT_MAX_WAIT_MS

# The longest text a model call counts on when the request sets no max_length (BERT's usual position count).
DEFAULT_TOKENS_PER_TEXT_CAP = 512


@dataclass(eq=False)
class _Job:
    """One request in the batcher: its texts (shortest first; with ``pairs``, text pairs, the shortest pair first),
    how many have been handed to the model, and their P(pos) (a multi-label model: their logits) in that order;
    ``order[k]`` is the request's index of ``texts[k]``."""

    texts: Sequence[str]
    order: list[int]
    max_length: int | None
    future: Future
    pairs: Sequence[str] | None = None
    taken: int = 0
    scored: int = 0
    probabilities: list[Any] = field(init=False)

    def __post_init__(self) -> None:
        self.probabilities = [0.0] * len(self.texts)

    def length(self, index: int) -> int:
        """The characters of text ``index`` (and of its pair)."""
        return len(self.texts[index]) + (len(self.pairs[index]) if self.pairs is not None else 0)

    @property
    def left(self) -> int:
        return len(self.texts) - self.taken


class MicroBatcher:
    """Scores the texts of many requests on worker threads (one per backend ``workers``: while one call finishes,
    the next is under way), batching requests that arrive together.

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
        self.multi_label = getattr(backend.config, "problem_type", None) == MULTI_LABEL
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
        # One thread per batch the backend runs at once: while one call finishes, the next is under way.
        self._threads = [
            threading.Thread(target=self._run, name=f"hfsent-batcher-{i}", daemon=True)
            for i in range(getattr(backend, "workers", 1))
        ]
        for thread in self._threads:
            thread.start()

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

    def submit(self, texts: Sequence[str], max_length: int | None = None, pairs: Sequence[str] | None = None) -> Future:
        """Queue ``texts`` (truncated to ``max_length`` tokens, if given, else to the batcher's; with ``pairs``,
        the text pairs of a text-pair model); the future resolves to their P(pos), in order (a multi-label model:
        each text's logits, a list of K floats)."""
        future: Future = Future()
        if not texts:
            future.set_result([])
            return future
        with self._cond:
            if self._closed:
                raise RuntimeError("the batcher is closed")
            # Shortest first: a large request's chunks then hold texts of like length, which pad little, and
            # what it adds to the calls it shares with small requests is short.
            size = (lambda i: len(texts[i])) if pairs is None else (lambda i: len(texts[i]) + len(pairs[i]))
            order = sorted(range(len(texts)), key=size)
            ordered_pairs = None if pairs is None else [pairs[i] for i in order]
            job = _Job([texts[i] for i in order], order, max_length or self.max_length, future, ordered_pairs)
            self._queue.append(job)
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
        the call holds ``max_batch_size`` texts or ``max_tokens`` estimated tokens, at least one text.

        A job's share of a call is also capped at an equal part of ``max_tokens`` (beyond its first text): a large
        request alone fills whole calls, but beside small ones it adds only its part, so calls stay short and the
        small requests queued behind them wait less.
        """
        counts = dict.fromkeys(jobs, 0)
        cap = max_length or DEFAULT_TOKENS_PER_TEXT_CAP
        size = tokens = 0
        active = [job for job in jobs if job.left]
        share = self.max_tokens // max(1, len(active))
        used = dict.fromkeys(active, 0)
        while active:
            for job in list(active):
                index = job.taken + counts[job]
                if index == len(job.texts):
                    active.remove(job)
                    continue
                cost = min(job.length(index), cap) + 2  # characters bound BERT tokens (+ [CLS], [SEP])
                if size and (size == self.max_batch_size or tokens + cost > self.max_tokens):
                    return counts
                if counts[job] and used[job] + cost > share:
                    active.remove(job)
                    continue
                counts[job] += 1
                used[job] += cost
                size += 1
                tokens += cost
        return counts

    def _run(self) -> None:
        while (batch := self._next_batch()) is not None:
            texts = [text for job, start, end in batch for text in job.texts[start:end]]
            with self._cond:
                self.stats["requests"] += sum(1 for job, start, _ in batch if start == 0)
                self.stats["batches"] += 1
                self.stats["texts"] += len(texts)
            pairs = None if batch[0][0].pairs is None else [p for job, s, e in batch for p in job.pairs[s:e]]
            try:
                probs = self._score(texts, pairs, batch[0][0].max_length)
            except Exception as err:  # one failing batch must not stop the server
                self._fail({job for job, _, _ in batch}, err)
                continue
            offset = 0
            for job, start, end in batch:
                with self._cond:  # another thread may be scoring another chunk of the same request
                    job.probabilities[start:end] = probs[offset : offset + end - start]
                    job.scored += end - start
                    finished = job.scored == len(job.texts)
                offset += end - start
                if finished and not job.future.done():
                    in_order: list[Any] = [0.0] * len(job.texts)
                    for k, i in enumerate(job.order):
                        in_order[i] = job.probabilities[k]
                    job.future.set_result(in_order)

    def _score(self, texts: list[str], pairs: list[str] | None, max_length: int | None) -> list[Any]:
        """One model call: P(pos) of each text (or text pair), or each text's logits for a multi-label model."""
        if self.multi_label:
            return self.backend.logits(texts, self.max_batch_size, max_length, pairs=pairs).tolist()
        if pairs is not None:
            return self.backend.positive_probabilities(texts, self.max_batch_size, max_length, pairs=pairs)
        return self.backend.positive_probabilities(texts, self.max_batch_size, max_length)

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
        for thread in self._threads:
            thread.join()
