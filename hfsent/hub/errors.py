"""Hub failures: `HubError` (what went wrong and what to do), the token check, and retries of transient failures
(network errors, 5xx, 429) with exponential backoff."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterator
from typing import TypeVar

logger = logging.getLogger("hfsent")

NO_TOKEN_MESSAGE = (
    "no Hugging Face token found: log in with `hf auth login`, or set the HF_TOKEN environment variable "
    "to a token with write access (https://huggingface.co/settings/tokens)"
)

T = TypeVar("T")


class HubError(RuntimeError):
    """A push that cannot be done; the message says why and what to do. ``status`` is the Hub's HTTP status.

    ``bad_input``: the folder or repo id given is at fault (not the Hub, the network or the login);
    ``retryable``: the same push, run again, may succeed.
    """

    def __init__(
        self, message: str, status: int | None = None, *, retryable: bool = False, bad_input: bool = False
    ) -> None:
        super().__init__(message)
        self.status = status
        self.retryable = retryable
        self.bad_input = bad_input


def resolve_token(token: str | None = None) -> str:
    """``token``, else the logged-in / ``HF_TOKEN`` token; `HubError` telling how to log in if there is none."""
    from huggingface_hub import get_token

    token = token or get_token()
    if not token:
        raise HubError(NO_TOKEN_MESSAGE)
    return token


def _causes(err: BaseException) -> Iterator[BaseException]:
    """``err`` and the exceptions it was raised from (huggingface_hub wraps upload failures in a RuntimeError)."""
    seen: set[int] = set()
    current: BaseException | None = err
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _status(err: BaseException) -> int | None:
    for cause in _causes(err):
        status = getattr(getattr(cause, "response", None), "status_code", None)
        if status is not None:
            return status
    return None


def _is_transient(err: BaseException) -> bool:
    from huggingface_hub.errors import OfflineModeIsEnabled

    try:
        from httpx2 import TransportError  # huggingface_hub >= 2 uses httpx2
    except ImportError:  # pragma: no cover
        from httpx import TransportError

    if isinstance(err, OfflineModeIsEnabled):
        return False
    status = _status(err)
    if status is not None:
        return status >= 500 or status == 429
    return any(isinstance(cause, (TransportError, ConnectionError, TimeoutError)) for cause in _causes(err))


def with_retries(
    what: str, action: Callable[[], T], max_retries: int, retry_delay: float, repo_id: str, revision: str
) -> T:
    """Run ``action`` (``what`` it does, for messages); retry transient failures ``max_retries`` times, waiting
    ``retry_delay`` seconds, then twice as long each time. Any other failure, or the last, raises `HubError`."""
    for attempt in range(max_retries + 1):
        try:
            return action()
        except Exception as err:
            if not _is_transient(err):
                raise _hub_error(err, what, repo_id, revision) from err
            if attempt == max_retries:
                raise HubError(
                    f"could not {what} on the Hub after {attempt + 1} attempts ({_reason(err)}): {repo_id}@{revision} "
                    "holds no partial upload (a push is one atomic commit); check your connection",
                    _status(err),
                    retryable=True,
                ) from None
            delay = retry_delay * 2**attempt
            logger.warning(
                "could not %s (%s); retrying in %.1f s (attempt %d of %d)",
                what,
                _reason(err),
                delay,
                attempt + 2,
                max_retries + 1,
            )
            time.sleep(delay)
    raise AssertionError("unreachable")  # pragma: no cover


def _reason(err: BaseException) -> str:
    status = _status(err)
    return f"HTTP {status}" if status is not None else type(list(_causes(err))[-1]).__name__


UPLOAD_FAILED = re.compile(r"Error while uploading '(?P<path>.+)' to the Hub")


def _hub_error(err: Exception, what: str, repo_id: str, revision: str) -> HubError:
    """A clear `HubError` for a Hub refusal (the server's own message appended when there is one)."""
    from huggingface_hub.errors import OfflineModeIsEnabled, RevisionNotFoundError

    if isinstance(err, HubError):
        return err
    if isinstance(err, OfflineModeIsEnabled):
        return HubError("HF_HUB_OFFLINE is set: unset it (or set HF_HUB_OFFLINE=0) to push to the Hub")
    status = _status(err)
    upload = UPLOAD_FAILED.search(str(err))
    if upload:
        return HubError(
            f"uploading {upload['path']} to {repo_id} failed ({_reason(err)}): nothing was committed, "
            f"{repo_id}@{revision} is unchanged (a push is one atomic commit)",
            status,
            retryable=True,
        )
    namespace = repo_id.split("/")[0] if "/" in repo_id else "your"
    server = getattr(err, "server_message", None)
    detail = f" (the Hub said: {' '.join(server.split())})" if server else ""
    if status == 401:
        message = (
            "the Hub rejected your token (401 Unauthorized): it is invalid or expired. Log in again with "
            "`hf auth login` or set HF_TOKEN to a valid token with write access"
        )
    elif status == 403:
        message = (
            f"your token may not write to {repo_id} (403 Forbidden): use a token with write access to the "
            f"{namespace!r} namespace (a fine-grained token needs write permission on this repo), push to your own "
            "namespace, or open a pull request with --create-pr"
        )
    elif status == 404 and isinstance(err, RevisionNotFoundError):
        message = f"revision {revision!r} of {repo_id} was not found (404): check the branch name"
    elif status == 404:
        message = f"{repo_id} was not found (404): check the repo id, and that your token can see it if it is private"
    elif status == 409:
        message = (
            f"conflict on {repo_id} (409 Conflict) while trying to {what}: another operation on the repo may be in "
            "progress, or a repo of another type has this name; wait and push again"
        )
        return HubError(message + detail, status, retryable=True)
    elif status == 412:
        message = (
            f"{repo_id}@{revision} changed while pushing (412): someone else committed to it; nothing was committed"
        )
        return HubError(message + detail, status, retryable=True)
    else:
        said = " ".join(str(err).split())
        message = f"could not {what} on the Hub ({_reason(err)}: {said[:300]})"
        if what == "commit":  # uploads happen before the commit: nothing of them is in the repo
            message += f"; nothing was committed, {repo_id}@{revision} is unchanged (a push is one atomic commit)"
        return HubError(message, status, retryable=status is not None and status not in (400, 422))
    return HubError(" ".join((message + detail).split()), status)


__all__ = ["NO_TOKEN_MESSAGE", "HubError", "resolve_token", "with_retries"]
