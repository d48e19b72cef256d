"""``hfsent serve MODEL [--host 127.0.0.1] [--port 8080]``: the Inference Endpoints text-classification API."""

from __future__ import annotations

import argparse

from ..errors import report_error
from . import add_model_arguments, load_backend_or_exit, positive_int

DESCRIPTION = """Serve a model over HTTP with the Hugging Face Inference Endpoints text-classification contract,
answering exactly as hfsent's Inference Endpoints handler: POST / with {"inputs": "text" or ["text", ...],
"parameters": {"top_k": 2}} (huggingface_hub.InferenceClient(model=URL).text_classification works); GET /health.
A multi-label model answers every label with its score, as the hosted task; a text-pair model takes
{"inputs": {"text": ..., "text_pair": ...}} or a list of them.
Concurrent requests are micro-batched. Binds to loopback unless --host says otherwise; there is no
authentication."""

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def build_parser() -> argparse.ArgumentParser:
    """The ``hfsent serve`` argument parser."""
    from ..inference.defaults import DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_INPUTS, DEFAULT_MAX_WAIT_MS

    parser = argparse.ArgumentParser(prog="hfsent serve", description=DESCRIPTION)
    add_model_arguments(parser)
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1, loopback only)")
    parser.add_argument("--port", type=int, default=8080, help="port (default 8080; 0 picks a free one)")
    parser.add_argument(
        "--max-wait-ms",
        type=float,
        default=DEFAULT_MAX_WAIT_MS,
        help=f"how long a batch waits for requests still being read (default {DEFAULT_MAX_WAIT_MS:g} ms)",
    )
    parser.add_argument(
        "--max-body-bytes",
        type=positive_int,
        default=DEFAULT_MAX_BODY_BYTES,
        help=f"larger request bodies get 413 (default {DEFAULT_MAX_BODY_BYTES})",
    )
    parser.add_argument(
        "--max-inputs",
        type=positive_int,
        default=DEFAULT_MAX_INPUTS,
        help=f"requests with more texts than this get 413 (default {DEFAULT_MAX_INPUTS}); large requests are "
        "scored in chunks of --batch-size, taking turns with the other requests",
    )
    parser.add_argument("--access-log", action="store_true", help="log every request to stderr")
    return parser


def main(argv: list[str]) -> int:
    """Run ``hfsent serve`` until stopped: SIGTERM exits 0 (an orderly stop), Ctrl-C (SIGINT) 130."""
    import signal
    import socket

    from ..cli import EXIT_INTERRUPTED

    parser = build_parser()
    args = parser.parse_args(argv)
    from ..configuration_hfsent import MULTI_LABEL
    from ..inference.server import InferenceServer

    if not 0 <= args.port <= 65535:
        parser.error(f"--port must be between 0 and 65535, got {args.port}")
    if args.max_wait_ms < 0:
        parser.error(f"--max-wait-ms must be >= 0, got {args.max_wait_ms:g}")
    backend = load_backend_or_exit(parser, args.model, args.backend, args.threads)
    multi_label = getattr(backend.config, "problem_type", None) == MULTI_LABEL
    if multi_label and args.threshold is not None:
        parser.error(
            f"{args.model!r} is a multi-label model, whose answers rank every label by its score (as the hosted "
            "text-classification task's): leave --threshold out"
        )
    try:
        server = InferenceServer(
            (args.host, args.port),
            backend,
            threshold=args.threshold,
            max_batch_size=args.batch_size,
            max_wait_ms=args.max_wait_ms,
            max_body_bytes=args.max_body_bytes,
            max_inputs=args.max_inputs,
            max_length=args.max_length,
            access_log=args.access_log,
        )
    except socket.gaierror as err:  # --host names no address: a usage error
        parser.error(f"cannot listen on {args.host}:{args.port}: {err.strerror or err}")
    except OSError as err:  # port in use, no permission: the environment's, exit 1
        report_error("hfsent serve", f"cannot listen on {args.host}:{args.port}: {err.strerror or err}")
        return 1
    if args.host not in LOOPBACK:
        print(f"hfsent serve: warning: listening on {args.host}, reachable from other machines, without authentication")

    terminated = []

    def stop(signum: int, frame: object) -> None:
        terminated.append(signum)
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    try:  # from the banner on, a stop signal always ends here (closed server, "stopped")
        what = f"{len(server.labels)} labels" if multi_label else f"threshold {server.threshold:g}"
        pairs = ", text pairs" if server.text_pairs else ""
        print(f"hfsent serve: {args.model} ({backend.name}, {what}{pairs}) listening on {server.url}", flush=True)
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    print("hfsent serve: stopped", flush=True)
    return 0 if terminated else EXIT_INTERRUPTED
