"""Serving latency and throughput: `hfsent serve` (torch and ONNX int8) at 1 and 16 concurrent clients.

The server runs as `python -m hfsent serve MODEL --port 0 [--backend onnx]` (default settings: micro-batches
of up to 64 texts, 5 ms wait while requests are being read). Each client is a thread with its own
keep-alive `http.client` connection, sending one review per request (`{"inputs": review}`) and timing
each request from send to parsed answer. The clients run on the same 2 cores as the server.

Run: python bench/bench_serve.py   (reads $HFSENT_SHARED, default ../shared; ~2 minutes on 2 cores)

Mixed load (issue 12 acceptance 3): python bench/bench_serve.py --mixed [--backends torch onnx-fp32 onnx]
("onnx" serves the export's int8 graph, "onnx-fp32" its model.onnx; --serve-args passes more `hfsent serve` options)
64 clients each send 50 one-review requests while one more client keeps sending requests of 10,000 reviews;
every answer is checked against `hfsent.predict` with the same backend in this process, and the one-review
requests' p50/p99 are reported (results in bench/results/serve-mixed.json).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import queue
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
from common import ROOT, machine
from inference_setup import prepare_model, prepare_onnx, reviews, write_report


def start_server(model: Path, backend: str, threads: int | None, *extra: str) -> tuple[subprocess.Popen, str]:
    cmd = [sys.executable, "-m", "hfsent", "serve", str(model), "--port", "0", "--backend", backend, *extra]
    if threads:
        cmd += ["--threads", str(threads)]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout], daemon=True).start()
    first = lines.get(timeout=300)
    if "listening on" not in first:
        proc.kill()
        raise RuntimeError(f"server did not start: {first}")
    return proc, first.rsplit(" ", 1)[-1].strip()


def call(conn: http.client.HTTPConnection, method: str, body: dict | None = None) -> dict:
    data = None if body is None else json.dumps(body, ensure_ascii=False).encode("utf-8")
    conn.request(method, "/", body=data, headers={"Content-Type": "application/json"})
    response = conn.getresponse()
    answer = json.loads(response.read())
    if response.status != 200:
        raise RuntimeError(f"HTTP {response.status}: {answer}")
    return answer


def served(url: str) -> dict:
    """The server's counters (requests, model calls, texts), on a fresh connection: the server closes
    connections left idle for 60 s."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
    try:
        return call(conn, "GET")["served"]
    finally:
        conn.close()


def load(url: str, texts: list[str], clients: int, requests: int) -> tuple[float, list[float]]:
    """``requests`` single-review requests from ``clients`` threads; returns (wall seconds, latencies)."""
    parts = urlsplit(url)

    def client(worker: int) -> list[float]:
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=120)
        latencies = []
        for i in range(worker, requests, clients):
            start = time.perf_counter()
            call(conn, "POST", {"inputs": texts[i % len(texts)]})
            latencies.append(time.perf_counter() - start)
        conn.close()
        return latencies

    start = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        latencies = [t for part in pool.map(client, range(clients)) for t in part]
    return time.perf_counter() - start, latencies


def mixed(
    url: str,
    texts: list[str],
    reference: dict[str, dict],
    clients: int,
    requests: int,
    big: int,
    tolerance: float = 1e-4,
) -> dict:
    """``clients`` threads each send ``requests`` one-text requests while one more thread keeps sending requests
    of ``big`` texts until they finish. Every answer is checked against ``reference`` (label and score by text,
    the score to ``tolerance``)."""
    parts = urlsplit(url)
    done = threading.Event()
    wrong: list[str] = []

    def check(text: str, answer: dict) -> None:
        want = reference[text]
        if answer["label"] != want["label"] or abs(answer["score"] - want["score"]) > tolerance:
            wrong.append(f"{text[:20]!r}: {answer} vs {want}")

    def small_client(worker: int) -> list[float]:
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=300)
        latencies = []
        for i in range(requests):
            text = texts[(worker * requests + i) % len(texts)]
            start = time.perf_counter()
            answer = call(conn, "POST", {"inputs": text})
            latencies.append(time.perf_counter() - start)
            check(text, answer[0])
        conn.close()
        return latencies

    def big_client() -> list[float]:
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=600)
        seconds, k = [], 0
        while not done.is_set():
            batch = [texts[(k + j) % len(texts)] for j in range(big)]
            start = time.perf_counter()
            answers = call(conn, "POST", {"inputs": batch})
            seconds.append(time.perf_counter() - start)
            for text, answer in zip(batch, answers, strict=True):
                check(text, answer)
            k += 7919
        conn.close()
        return seconds

    start = time.perf_counter()
    with ThreadPoolExecutor(clients + 1) as pool:
        big_future = pool.submit(big_client)
        time.sleep(0.5)  # the first huge request is queued before the small ones start
        latencies = [t for part in pool.map(small_client, range(clients)) for t in part]
        done.set()
        big_seconds = big_future.result()
    return {
        "clients": clients,
        "requests": len(latencies),
        "p50_ms": 1000 * float(np.percentile(latencies, 50)),
        "p99_ms": 1000 * float(np.percentile(latencies, 99)),
        "max_ms": 1000 * max(latencies),
        "seconds": time.perf_counter() - start,
        "big_requests": len(big_seconds),
        "big_request_seconds": big_seconds,
        "wrong_answers": len(wrong),
        "first_wrong": wrong[:3],
    }


def main_mixed(args: argparse.Namespace) -> None:
    import hfsent
    from hfsent.inference import load_backend

    texts, train_rows = reviews()
    model_dir = prepare_model(train_rows, args.train_steps)
    onnx_dir = prepare_onnx(model_dir) if any(b.startswith("onnx") for b in args.backends) else None
    # "onnx" serves the export folder (its int8 graph), "onnx-fp32" the folder's unquantized model.onnx
    folders = {"torch": model_dir, "onnx": onnx_dir, "onnx-fp32": onnx_dir and onnx_dir / "model.onnx"}
    titles = {"torch": "torch", "onnx": "ONNX int8", "onnx-fp32": "ONNX fp32"}
    results = []
    for name in args.backends:
        backend = "onnx" if name.startswith("onnx") else "torch"
        local = load_backend(str(folders[name]), backend, 1)
        reference = dict(zip(texts, hfsent.predict(texts, local), strict=True))
        del local
        extra = ["--max-body-bytes", str(64 << 20), "--max-inputs", str(args.big), *args.serve_args.split()]
        proc, url = start_server(folders[name], backend, args.threads, *extra)
        try:
            load(url, texts[-50:], 2, 50)  # warm-up
            load_before = os.getloadavg()
            # int8: dynamic quantization scales activations per batch, so a score depends on its batch (~1e-3)
            tolerance = 1e-2 if name == "onnx" else 1e-4
            result = mixed(url, texts, reference, args.clients, args.requests_each, args.big, tolerance)
            result["score_tolerance"] = tolerance
            result = {"backend": titles[name], **result}
            result["load_average"] = [list(load_before), list(os.getloadavg())]
            results.append(result)
            print(json.dumps({k: v for k, v in result.items() if k != "big_request_seconds"}), flush=True)
        finally:
            proc.terminate()
            proc.wait(timeout=60)
    write_report(
        args,
        data=f"{args.clients} clients x {args.requests_each} one-review requests, while one more client sends "
        f"requests of {args.big} reviews (the 2,000 reviews of online_shopping_10_cats, cycled)",
        uptime=subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip(),
        results=results,
    )
    print(machine())
    print("| backend | one-text requests | p50 ms | p99 ms | max ms | 10,000-text requests (s each) | wrong answers |")
    print("| --- | ---: | ---: | ---: | ---: | --- | ---: |")
    for r in results:
        big = ", ".join(f"{s:.1f}" for s in r["big_request_seconds"])
        print(
            f"| {r['backend']} | {r['requests']} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} | {r['max_ms']:.1f} | "
            f"{r['big_requests']} ({big}) | {r['wrong_answers']} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mixed", action="store_true", help="the mixed load of issue 12 (see above)")
    parser.add_argument("--backends", nargs="+", choices=["torch", "onnx", "onnx-fp32"], default=["torch", "onnx"])
    parser.add_argument("--clients", type=int, default=64, help="--mixed: one-text clients")
    parser.add_argument("--requests-each", type=int, default=50, help="--mixed: requests per one-text client")
    parser.add_argument("--big", type=int, default=10_000, help="--mixed: texts per large request")
    parser.add_argument("--train-steps", type=int, default=100)
    parser.add_argument("--requests", type=int, default=600, help="requests per concurrency level")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 16])
    parser.add_argument("--threads", type=int, default=None, help="model threads (default: one per core)")
    parser.add_argument("--serve-args", default="", help="--mixed: more `hfsent serve` options, e.g. '--batch-size 16'")
    parser.add_argument("--output", type=Path, default=None, help="default bench/results/serve[-mixed].json")
    args = parser.parse_args()
    if args.output is None:
        args.output = ROOT / "bench" / "results" / ("serve-mixed.json" if args.mixed else "serve.json")
    if args.mixed:
        main_mixed(args)
        return

    texts, train_rows = reviews()
    model_dir = prepare_model(train_rows, args.train_steps)
    onnx_dir = prepare_onnx(model_dir)
    results = []
    for backend, model in (("torch", model_dir), ("onnx", onnx_dir)):
        proc, url = start_server(model, backend, args.threads)
        try:
            load(url, texts[-50:], 2, 50)  # warm-up, other texts
            for clients in args.concurrency:
                before = served(url)
                load_before = os.getloadavg()[0]
                seconds, latencies = load(url, texts, clients, args.requests)
                after = served(url)
                batches = after["batches"] - before["batches"]
                results.append(
                    {
                        "backend": "torch" if backend == "torch" else "ONNX int8",
                        "clients": clients,
                        "requests": len(latencies),
                        "p50_ms": 1000 * float(np.percentile(latencies, 50)),
                        "p99_ms": 1000 * float(np.percentile(latencies, 99)),
                        "requests_per_second": len(latencies) / seconds,
                        "texts_per_model_call": (after["texts"] - before["texts"]) / max(1, batches),
                        "load_average_1min": [load_before, os.getloadavg()[0]],
                    }
                )
                print(json.dumps(results[-1]), flush=True)
        finally:
            proc.terminate()
            proc.wait(timeout=60)

    write_report(
        args, data="one review per request, cycling through 2,000 reviews of online_shopping_10_cats", results=results
    )
    print(f"{machine()}")
    print("| backend | clients | requests | p50 ms | p99 ms | requests/s | texts per model call |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in results:
        print(
            f"| {r['backend']} | {r['clients']} | {r['requests']} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} | "
            f"{r['requests_per_second']:.0f} | {r['texts_per_model_call']:.1f} |"
        )


if __name__ == "__main__":
    main()
