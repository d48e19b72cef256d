"""Publishing: push an hfsent output directory to the Hugging Face Hub in one commit.

`push_to_hub` uploads, in ONE commit, what makes the model usable and trustworthy: weights, config (with
``auto_map``), model code, tokenizer, the model card (re-rendered with the repo id), ``handler.py`` (Inference
Endpoints), results and plots; intermediate checkpoints (with their optimizer states) only when asked.
`plan_push` computes the same file list and card without contacting anything (``hfsent push --dry-run``).
Transient failures (network errors, 5xx, 429) are retried with exponential backoff; Hub refusals become a
`HubError` that says what to do. The commit is atomic: a failed push leaves the repo as it was.
"""

from __future__ import annotations

import contextlib
import fnmatch
import json
import logging
import os
import re
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from .cards import CARD_FILE, card_for_push, public_value
from .recipe import RECIPE_FILE, RESULTS_FILE, TRAINER_STATE_FILE

logger = logging.getLogger("hfsent")

HANDLER_FILE = "handler.py"
HANDLER_SOURCE = Path(__file__).with_name("endpoint_handler.py")
DEFAULT_COMMIT_MESSAGE = "Upload hfsent model"
NO_TOKEN_MESSAGE = (
    "no Hugging Face token found: log in with `hf auth login`, or set the HF_TOKEN environment variable "
    "to a token with write access (https://huggingface.co/settings/tokens)"
)
# What a published model repo holds (top level of the output directory), by glob.
ALLOWED_FILES = (
    # weights and config
    "config.json", "generation_config.json", "model.safetensors", "model-*-of-*.safetensors",
    "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model-*-of-*.bin", "pytorch_model.bin.index.json",
    # model code (remote code) and the Inference Endpoints handler
    "configuration_*.py", "modeling_*.py", "tokenization_*.py", HANDLER_FILE,
    # tokenizer
    "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json", "vocab.txt",
    "vocab.json", "merges.txt", "*.model",
    # card, results, plots
    CARD_FILE, RESULTS_FILE, "*_results.json", RECIPE_FILE, TRAINER_STATE_FILE, "*.png",
)  # fmt: skip
CHECKPOINT_DIR = "checkpoint-*"
# What a checkpoint-*/ folder holds besides ALLOWED_FILES: the Trainer's state to resume from.
CHECKPOINT_STATE_FILES = (
    "optimizer.pt", "scheduler.pt", "scaler.pt", "rng_state*.pth", "training_args.bin",
    "adapter_config.json", "adapter_model.safetensors",  # LoRA runs checkpoint their adapters
)  # fmt: skip
# Files uploaded with local paths reduced to ``<local>/<name>`` (as in the card); the local file is not changed.
REDACTED_FILES = {RECIPE_FILE: "yaml", TRAINER_STATE_FILE: "json"}
WEIGHT_FILES = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
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


def copy_endpoint_handler(directory: str | os.PathLike) -> Path:
    """Copy the Inference Endpoints handler (`hfsent.endpoint_handler`) to ``directory/handler.py``."""
    target = Path(directory) / HANDLER_FILE
    shutil.copyfile(HANDLER_SOURCE, target)
    return target


# ------------------------------------------------------------------------------------------------ planning


@dataclass
class PushPlan:
    """What a push sends: ``files`` maps each path in the repo to a local file or to its content (the card)."""

    output_dir: Path
    repo_id: str
    files: dict[str, Path | bytes]
    card: str | None
    left_out: dict[str, str] = field(default_factory=dict)  # path (folders end in "/") -> why it stays local

    @property
    def total_bytes(self) -> int:
        """Size of everything uploaded."""
        return sum(len(v) if isinstance(v, bytes) else v.stat().st_size for v in self.files.values())

    def describe(self) -> str:
        """The file list with sizes, and what is left out."""
        width = max((len(p) for p in self.files), default=0)
        lines = [f"  {path:<{width}}  {_size(self.files[path])}" for path in sorted(self.files)]
        lines.append(f"{len(self.files)} files, {_human(self.total_bytes)}")
        if self.left_out:
            lines.append("left out (not uploaded):")
            width = max(len(p) for p in self.left_out)
            lines += [f"  {path:<{width}}  {why}" for path, why in sorted(self.left_out.items())]
        return "\n".join(lines)


def _size(value: Path | bytes) -> str:
    return _human(len(value) if isinstance(value, bytes) else value.stat().st_size)


def _human(size: float) -> str:
    if size < 1000:
        return f"{size:.0f} B"
    for unit in ("kB", "MB", "GB"):
        size /= 1000
        if size < 1000 or unit == "GB":
            break
    return f"{size:.1f} {unit}"


def _is_hfsent_model(output_dir: Path) -> bool:
    try:
        return json.loads((output_dir / "config.json").read_text()).get("model_type") == "hfsent"
    except (OSError, ValueError):
        return False


def plan_push(output_dir: str | os.PathLike, repo_id: str, *, include_checkpoints: bool = False) -> PushPlan:
    """The files and card a push of ``output_dir`` to ``repo_id`` would send; reads local files only.

    Only regular files inside ``output_dir`` whose names a model repo holds (`ALLOWED_FILES`; in ``checkpoint-*/``
    folders also `CHECKPOINT_STATE_FILES`) are sent. Everything else is listed in ``left_out`` with the reason:
    hidden files and folders at any depth, symbolic links (whether they point inside the folder or out of it: the
    repo would get a copy of whatever they point to when the push runs), other folders, other files. Files in
    `REDACTED_FILES` are sent with local paths reduced to ``<local>/<name>``.
    Raises `HubError` when ``output_dir`` is not a saved model (no config.json or weights).
    """
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    try:
        validate_repo_id(repo_id)
    except HFValidationError:
        raise HubError(
            f"{repo_id!r} is not a valid Hub repo id: use 'name' or 'namespace/name' (letters, digits, '-', '_' and "
            "'.', at most 96 characters, no '--' or '..')",
            bad_input=True,
        ) from None
    output_dir = Path(output_dir)
    if not output_dir.is_dir():
        what = "does not exist" if not output_dir.exists() else "is not a folder"
        raise HubError(f"{str(output_dir)!r} {what}: push the output directory of `hfsent train`", bad_input=True)
    if not (output_dir / "config.json").is_file():
        raise HubError(
            f"{str(output_dir)!r} is not a saved model: it has no config.json (push an output directory)",
            bad_input=True,
        )
    if not any((output_dir / name).is_file() and not (output_dir / name).is_symlink() for name in WEIGHT_FILES):
        raise HubError(
            f"{str(output_dir)!r} has no model weights (model.safetensors): push a finished output", bad_input=True
        )
    files: dict[str, Path | bytes] = {}
    left_out: dict[str, str] = {}
    _collect(output_dir, "", files, left_out, include_checkpoints=include_checkpoints, in_checkpoint=False)
    if _is_hfsent_model(output_dir) and HANDLER_FILE not in files:
        files[HANDLER_FILE] = HANDLER_SOURCE
    for path, content in files.items():
        kind = REDACTED_FILES.get(path.rsplit("/", 1)[-1])
        if kind is not None and isinstance(content, Path):
            files[path] = _redacted(content, kind)
    card = card_for_push(output_dir, repo_id)
    if card is None:
        logger.warning("%s has no model card (README.md): the repo will have none", output_dir)
    else:
        files[CARD_FILE] = card.encode("utf-8")
    return PushPlan(output_dir, repo_id, files, card, left_out)


def _collect(
    folder: Path,
    prefix: str,
    files: dict[str, Path | bytes],
    left_out: dict[str, str],
    *,
    include_checkpoints: bool,
    in_checkpoint: bool,
) -> None:
    """Add the files of ``folder`` that a push sends to ``files``, and the others to ``left_out`` with the reason."""
    allowed = ALLOWED_FILES + CHECKPOINT_STATE_FILES if in_checkpoint else ALLOWED_FILES
    for path in sorted(folder.iterdir()):
        name = prefix + path.name
        is_dir = path.is_dir()
        shown = name + "/" if is_dir else name
        if path.name.startswith("."):
            left_out[shown] = "hidden"
        elif path.is_symlink():
            left_out[shown] = "symlink: only regular files inside the folder are uploaded"
        elif is_dir and not in_checkpoint and fnmatch.fnmatch(path.name, CHECKPOINT_DIR):
            if include_checkpoints:
                _collect(path, name + "/", files, left_out, include_checkpoints=False, in_checkpoint=True)
            else:
                left_out[shown] = "checkpoint: --include-checkpoints uploads it"
        elif is_dir:
            left_out[shown] = "folder: not part of a model repo"
        elif not path.is_file():
            left_out[shown] = "not a regular file"
        elif any(fnmatch.fnmatch(path.name, pattern) for pattern in allowed):
            files[name] = path
        else:
            left_out[shown] = "not a model file"


def _redacted(path: Path, kind: str) -> bytes:
    """``path``'s content with local paths reduced to ``<local>/<name>`` (`hfsent.cards.public_value`)."""
    import yaml

    try:
        text = path.read_text(encoding="utf-8")
        if kind == "yaml":
            return yaml.safe_dump(public_value(yaml.safe_load(text)), sort_keys=False, allow_unicode=True).encode()
        return (json.dumps(public_value(json.loads(text)), indent=2, sort_keys=True) + "\n").encode()
    except (OSError, ValueError, yaml.YAMLError) as err:
        mark = getattr(err, "problem_mark", None)  # YAML marks count lines from 0, JSON errors from 1
        line = mark.line + 1 if mark is not None else getattr(err, "lineno", None)
        at = f" at line {line}" if line else ""
        raise HubError(
            f"could not read {path}: not valid {kind.upper()}{at} ({type(err).__name__}); fix or remove the file",
            bad_input=True,
        ) from None


# ------------------------------------------------------------------------------------------------- pushing


@dataclass
class PushResult:
    """Where a push landed; ``created`` is False when the branch already held exactly these files."""

    repo_id: str
    revision: str
    commit_oid: str
    commit_url: str
    pr_url: str | None
    files: list[str]
    created: bool = True


def resolve_token(token: str | None = None) -> str:
    """``token``, else the logged-in / ``HF_TOKEN`` token; `HubError` telling how to log in if there is none."""
    from huggingface_hub import get_token

    token = token or get_token()
    if not token:
        raise HubError(NO_TOKEN_MESSAGE)
    return token


def push_to_hub(
    output_dir: str | os.PathLike,
    repo_id: str,
    *,
    private: bool | None = None,
    revision: str | None = None,
    commit_message: str | None = None,
    commit_description: str | None = None,
    create_pr: bool = False,
    include_checkpoints: bool = False,
    token: str | None = None,
    max_retries: int = 4,
    retry_delay: float = 1.0,
) -> PushResult:
    """Push an hfsent output directory to the Hub repo ``repo_id`` in ONE commit (see `plan_push`).

    Creates the repo if needed (``private`` applies then) and the branch ``revision`` if missing; with
    ``create_pr`` opens a pull request instead of committing to the branch. Network errors, 5xx and 429 answers
    are retried ``max_retries`` times, waiting ``retry_delay``, then twice as long each time; a retry after a lost
    answer does not commit twice. The commit names its parent: a concurrent commit makes it fail, not overwrite.
    Raises `HubError` (no token, 401, 403, 404, 409, a moved branch, the network after the retries); the token is
    never logged or uploaded.
    """
    from huggingface_hub import CommitOperationAdd, HfApi

    token = resolve_token(token)
    plan = plan_push(output_dir, repo_id, include_checkpoints=include_checkpoints)
    _refuse_secret(plan, token)
    api = HfApi(token=token)
    message = commit_message or DEFAULT_COMMIT_MESSAGE
    branch = revision or "main"

    def retried(what: str, action: Callable[[], T]) -> T:
        return _with_retries(what, action, max_retries, retry_delay, repo_id, branch)

    repo_id = retried("create the repo", lambda: api.create_repo(repo_id, private=private, exist_ok=True)).repo_id
    if revision and not create_pr and not revision.startswith("refs/"):
        retried("create the branch", lambda: api.create_branch(repo_id, branch=revision, exist_ok=True))
    parent = retried("read the branch head", lambda: api.repo_info(repo_id, revision=branch).sha)
    logger.info("Pushing %d files (%s) to %s@%s", len(plan.files), _human(plan.total_bytes), repo_id, branch)

    def commit():
        # Fresh operations each attempt. A retry after a lost answer is no second commit: the client drops
        # files equal to the branch head's (all of them, if the first attempt landed) and skips empty commits.
        operations = [CommitOperationAdd(path, content) for path, content in sorted(plan.files.items())]
        return api.create_commit(
            repo_id,
            operations,
            commit_message=message,
            commit_description=commit_description,
            revision=revision,
            create_pr=create_pr,
            parent_commit=parent,  # someone else's commit in between fails (412) rather than being overwritten
        )

    with _hub_client_logging(), _xet_only_if_served(api, repo_id, revision, create_pr):
        info = retried("commit", commit)
    return PushResult(
        repo_id, branch, info.oid, info.commit_url, info.pr_url, sorted(plan.files), created=info.oid != parent
    )


@contextlib.contextmanager
def _hub_client_logging() -> Iterator[None]:
    """Print huggingface_hub's messages once: it has its own stderr handler, so keep them from the root's too."""
    hub_logger = logging.getLogger("huggingface_hub")
    propagate = hub_logger.propagate
    hub_logger.propagate = propagate and not hub_logger.handlers
    try:
        yield
    finally:
        hub_logger.propagate = propagate


@contextlib.contextmanager
def _xet_only_if_served(api: Any, repo_id: str, revision: str | None, create_pr: bool) -> Iterator[None]:
    """Upload through Xet only where the endpoint serves Xet write tokens; else through plain HTTP (LFS).

    With ``hf_xet`` installed, huggingface_hub uploads through Xet with no fallback, and an endpoint without Xet
    (a self-hosted or mirror Hub) makes ``hf_xet`` retry for about 40 s before failing with a misleading
    connection error. One request to the token route tells, before anything is uploaded.
    """
    from huggingface_hub import constants
    from huggingface_hub.utils import build_hf_headers, get_session
    from huggingface_hub.utils._runtime import is_xet_available

    if not is_xet_available() or _serves_xet(api, repo_id, revision, create_pr, get_session(), build_hf_headers):
        yield
        return
    disabled = constants.HF_HUB_DISABLE_XET
    constants.HF_HUB_DISABLE_XET = True
    try:
        yield
    finally:
        constants.HF_HUB_DISABLE_XET = disabled


def _serves_xet(
    api: Any, repo_id: str, revision: str | None, create_pr: bool, session: Any, headers: Callable[..., Any]
) -> bool:
    from huggingface_hub.utils._xet import XetTokenType, xet_connection_info_refresh_url

    url = xet_connection_info_refresh_url(
        token_type=XetTokenType.WRITE,
        repo_id=repo_id,
        repo_type="model",
        revision=None if create_pr else revision,  # as huggingface_hub asks for it
        endpoint=api.endpoint,
    )
    try:
        response = session.get(url + ("?create_pr=1" if create_pr else ""), headers=headers(token=api.token))
    except Exception as err:  # the upload itself will tell about a network failure
        status = f"{type(err).__name__}"
    else:
        if response.status_code == 200:
            return True
        status = f"HTTP {response.status_code}"
    logger.info("%s serves no Xet storage (%s on %s): uploading over plain HTTP (LFS)", api.endpoint, status, url)
    return False


def _refuse_secret(plan: PushPlan, token: str) -> None:
    """Never upload a file that contains the token."""
    needle = token.encode()
    for path, content in plan.files.items():
        if _contains(content, needle):
            raise HubError(
                f"refusing to push: {path} contains your Hub token; remove it from the file first", bad_input=True
            )


def _contains(content: Path | bytes, needle: bytes, chunk_size: int = 1 << 24) -> bool:
    if isinstance(content, bytes):
        return needle in content
    tail = b""
    with content.open("rb") as f:
        while chunk := f.read(chunk_size):
            if needle in tail + chunk:
                return True
            tail = chunk[-len(needle) :]
    return False


# ---------------------------------------------------------------------------------------- retries, errors


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


def _with_retries(
    what: str, action: Callable[[], T], max_retries: int, retry_delay: float, repo_id: str, revision: str
) -> T:
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


# ----------------------------------------------------------------------------------- recipes: push_to_hub


@dataclass
class PushSettings:
    """A recipe's ``push_to_hub`` settings, taken over from the Trainer (see `take_push_settings`)."""

    repo_id: str
    private: bool | None = None
    revision: str | None = None
    token: str | None = field(default=None, repr=False)

    def push(self, output_dir: str | os.PathLike, **kwargs: Any) -> PushResult:
        """Push the finished ``output_dir``; a failure says how to push it again by hand."""
        try:
            result = push_to_hub(
                output_dir, self.repo_id, private=self.private, revision=self.revision, token=self.token, **kwargs
            )
        except HubError as err:
            raise HubError(
                f"{err}. The model is saved in {output_dir}: push it with `hfsent push {output_dir} {self.repo_id}`",
                err.status,
            ) from None
        logger.info("Pushed the model to %s (%s)", result.repo_id, result.commit_url)
        return result


def take_push_settings(training_args: Any) -> PushSettings | None:
    """Take ``push_to_hub`` over from the Trainer: hfsent pushes once, at the end, with its own card.

    Turns the Trainer's own pushing off (it would push its generic card at every save) and removes
    ``hub_token`` from the arguments (the Trainer pickles them into every checkpoint). Fails at once, before
    any training, if no token is available.
    """
    if not training_args.push_to_hub:
        return None
    settings = PushSettings(
        repo_id=training_args.hub_model_id or Path(training_args.output_dir).name,
        private=training_args.hub_private_repo,
        revision=training_args.hub_revision,
        token=training_args.hub_token,
    )
    resolve_token(settings.token)
    training_args.push_to_hub = False
    training_args.hub_token = None
    return settings


__all__ = [
    "HubError",
    "PushPlan",
    "PushResult",
    "PushSettings",
    "copy_endpoint_handler",
    "plan_push",
    "push_to_hub",
    "resolve_token",
    "take_push_settings",
]
