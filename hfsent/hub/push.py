"""Pushing an output directory to the Hub in one commit: what goes (`plan_push`), the push (`push_to_hub`), and
a recipe's ``push_to_hub`` settings taken over from the Trainer (`take_push_settings`)."""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from ..cards import card_for_push
from ..outputs import CARD_FILE, HANDLER_FILE, WEIGHT_FILES
from .client import hub_client_logging, xet_only_if_served
from .errors import HubError, resolve_token, with_retries
from .files import collect_files

logger = logging.getLogger("hfsent")

HANDLER_SOURCE = Path(__file__).parents[1] / "endpoint_handler.py"
DEFAULT_COMMIT_MESSAGE = "Upload hfsent model"

T = TypeVar("T")


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

    Only regular files inside ``output_dir`` that a model repo holds are sent, some with local paths redacted;
    everything else is listed in ``left_out`` with the reason (`hfsent.hub.files.collect_files`).
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
    try:
        config = json.loads((output_dir / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        at = f" at line {err.lineno}" if isinstance(err, json.JSONDecodeError) else ""
        raise HubError(
            f"{str(output_dir / 'config.json')!r} is not valid JSON{at} ({type(err).__name__}): the model could not "
            "be loaded from the repo; push a finished output",
            bad_input=True,
        ) from None
    if not isinstance(config, dict):
        raise HubError(
            f"{str(output_dir / 'config.json')!r} must hold a JSON object: push a finished output", bad_input=True
        )
    files, left_out = collect_files(output_dir, include_checkpoints=include_checkpoints)
    if not any(name in files for name in WEIGHT_FILES):  # absent, or left out (a symlink, a hard link)
        why = next((f"{name} is a {left_out[name]}" for name in WEIGHT_FILES if name in left_out), "model.safetensors")
        raise HubError(f"{str(output_dir)!r} has no model weights ({why}): push a finished output", bad_input=True)
    if _is_hfsent_model(output_dir) and HANDLER_FILE not in files:
        files[HANDLER_FILE] = HANDLER_SOURCE
    card = card_for_push(output_dir, repo_id)
    if card is None:
        logger.warning("%s has no model card (README.md): the repo will have none", output_dir)
    else:
        files[CARD_FILE] = card.encode("utf-8")
    return PushPlan(output_dir, repo_id, files, card, left_out)


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
        return with_retries(what, action, max_retries, retry_delay, repo_id, branch)

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

    with hub_client_logging(), xet_only_if_served(api, repo_id, revision, create_pr):
        info = retried("commit", commit)
    return PushResult(
        repo_id, branch, info.oid, info.commit_url, info.pr_url, sorted(plan.files), created=info.oid != parent
    )


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
