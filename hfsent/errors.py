"""Errors and how they reach the user: `RecipeError` (bad input), environment failures (disk full, read-only,
permission, port, network) told from everything else, and `report_error`, the one way a command prints its one-line
``hfsent <command>: error: ...``.

`hfsent.cli` formats what escapes a command with these; commands that know the path at stake (the
recipe commands' ``output_dir``) use `environment_error` to name it.
"""

from __future__ import annotations

import errno
import os
import re
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager


class RecipeError(ValueError):
    """A recipe file or command line that cannot be used; the message names the culprit."""


def first_line(message: BaseException | str) -> str:
    """The first non-blank line of an error's message (its type's name when it has none)."""
    lines = [line.strip() for line in str(message).strip().splitlines() if line.strip()]
    if lines:
        return lines[0]
    return type(message).__name__ if isinstance(message, BaseException) else ""


# OSErrors that come from the machine, not from hfsent or the user's input
_ENVIRONMENT_ERRNO_NAMES = (
    "EACCES",
    "EPERM",
    "EROFS",
    "ENOSPC",
    "EDQUOT",
    "EFBIG",
    "EIO",
    "EMFILE",
    "ENFILE",
    "ENOMEM",
    "EADDRINUSE",
    "EADDRNOTAVAIL",
    "ECONNREFUSED",
    "ECONNRESET",
    "ECONNABORTED",
    "ENETUNREACH",
    "ENETDOWN",
    "EHOSTUNREACH",
    "ETIMEDOUT",
    "EPIPE",
)
ENVIRONMENT_ERRNOS = frozenset(getattr(errno, name) for name in _ENVIRONMENT_ERRNO_NAMES if hasattr(errno, name))
# Those a file system gives (the others are the network's, or the process's)
FILE_SYSTEM_ERRNOS = frozenset(
    getattr(errno, name)
    for name in ("EACCES", "EPERM", "EROFS", "ENOSPC", "EDQUOT", "EFBIG", "EIO")
    if hasattr(errno, name)
)
DEBUG_ENV = "HFSENT_DEBUG"
_debug_flag = False


def set_debug(enabled: bool) -> None:
    """Turn tracebacks on for this process (``hfsent ... --debug``); `HFSENT_DEBUG` turns them on too."""
    global _debug_flag
    _debug_flag = enabled


def debug_enabled() -> bool:
    """Whether failures should also print their traceback (``--debug`` or ``HFSENT_DEBUG=1``)."""
    return _debug_flag or os.environ.get(DEBUG_ENV, "").strip().lower() not in ("", "0", "false", "no")


# How long a process other than rank 0 waits for rank 0 to report a failure they share (see `report_error`)
RANK_ZERO_GRACE_S = 30.0


def reports_for_all_processes() -> bool:
    """Whether this process reports a failure that every process meets alike (bad input, Ctrl-C): the only
    process, or rank 0 of those a launcher (``accelerate launch``, ``torchrun``) started."""
    return os.environ.get("RANK", "0").strip() in ("", "0")


def report_error(prog: str, message: str, shared: bool = True) -> None:
    """Print the one line ``<prog>: error: <message>`` on stderr (every command's failures end this way) and, with
    ``--debug``, the traceback being handled.

    ``shared``: every process meets it alike (bad input). Under a launcher, processes other than rank 0 then
    wait up to `RANK_ZERO_GRACE_S` first: the launcher ends them as soon as rank 0 has printed the line and exited,
    so the line is printed once, before the launcher's own report, and still printed if rank 0 did not fail."""
    import time
    import traceback

    if shared and not reports_for_all_processes():
        time.sleep(RANK_ZERO_GRACE_S)
    if debug_enabled():
        traceback.print_exc()
    print(f"{prog}: error: {message}", file=sys.stderr, flush=True)


# Rust-backed writers (safetensors, tokenizers) report an OS error inside their own exception type
_RUST_OS_ERROR = re.compile(r"\(os error (\d+)\)")


def environment_error(err: BaseException | None) -> OSError | None:
    """The OSError of an environment kind (`ENVIRONMENT_ERRNOS`) behind ``err`` (its causes included), if any.

    An error of a Rust-backed library that says ``(os error 28)`` counts too (as an OSError without a path).
    """
    seen: set[int] = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        if isinstance(err, OSError) and err.errno in ENVIRONMENT_ERRNOS:
            return err
        match = _RUST_OS_ERROR.search(str(err))
        if match and int(match.group(1)) in ENVIRONMENT_ERRNOS:
            code = int(match.group(1))
            return OSError(code, os.strerror(code))
        err = err.__cause__ or err.__context__
    return None


def describe_environment_error(err: OSError) -> str:
    """One line naming what failed, where and the errno: ``No space left on device: '/out' (ENOSPC)``."""
    where = next((repr(str(p)) for p in (err.filename, err.filename2) if p), None)
    reason = err.strerror or str(err) or type(err).__name__
    return f"{reason}{': ' + where if where else ''} ({errno.errorcode.get(err.errno, err.errno)})"


# ------------------------------------------------------------------------------------------- interrupts

_interrupt_pending = False


@contextmanager
def interrupts_kept() -> Iterator[None]:
    """While a command runs, Ctrl-C raises `KeyboardInterrupt` as always and is also recorded, so that one swallowed
    by a library (``datasets`` catches everything, Ctrl-C included, while it hashes a map's function) is raised again
    at the next safe point (`raise_pending_interrupt`). Only in the main thread, and only where SIGINT has Python's
    default handler (an ignored SIGINT stays ignored)."""
    global _interrupt_pending
    if threading.current_thread() is not threading.main_thread() or (
        signal.getsignal(signal.SIGINT) is not signal.default_int_handler
    ):
        yield
        return

    def record(signum: int, frame: object) -> None:
        global _interrupt_pending
        _interrupt_pending = True
        raise KeyboardInterrupt

    _interrupt_pending = False
    signal.signal(signal.SIGINT, record)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)
        _interrupt_pending = False


def raise_pending_interrupt() -> None:
    """Raise `KeyboardInterrupt` if a Ctrl-C arrived that has not ended the run yet (see `interrupts_kept`)."""
    global _interrupt_pending
    if _interrupt_pending:
        _interrupt_pending = False
        raise KeyboardInterrupt
