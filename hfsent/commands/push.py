"""``hfsent push OUTPUT_DIR REPO_ID``: publish a fine-tuned or pretrained model to the Hugging Face Hub."""

from __future__ import annotations

import argparse
import contextlib
import logging
import shlex
import sys
from collections.abc import Iterator

from ..errors import report_error

PROG = "hfsent push"


def build_parser() -> argparse.ArgumentParser:
    """The command's options."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Push an hfsent output directory to the Hugging Face Hub in ONE commit: weights, config, model "
        "code, tokenizer, the model card (README.md, rendered with the repo id), handler.py for Inference "
        "Endpoints, results and plots (an `hfsent pretrain` output: the standard checkpoint, tokenizer, card and "
        "results). Intermediate checkpoints and optimizer states stay local unless asked.",
    )
    parser.add_argument("output_dir", help="the output directory of `hfsent train` or `hfsent pretrain`")
    parser.add_argument("repo_id", help="the Hub repo, e.g. user/hfsent (created if missing)")
    parser.add_argument("--private", action="store_true", default=None, help="create the repo private")
    parser.add_argument("--revision", help="branch to push to (created if missing; default: main)")
    parser.add_argument("--commit-message", help="the commit's title")
    parser.add_argument("--commit-description", help="the commit's description")
    parser.add_argument("--create-pr", action="store_true", help="open a pull request instead of committing")
    parser.add_argument(
        "--include-checkpoints", action="store_true", help="also upload checkpoint-*/ folders (optimizer states too)"
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="print the file list and the card; contact nothing, upload nothing"
    )
    parser.add_argument("--token", help="Hub token (default: HF_TOKEN or `hf auth login`); never printed")
    return parser


def retry_command(args: argparse.Namespace) -> str:
    """The command that runs this push again (never with the token: it is read from HF_TOKEN or the login)."""
    words = ["hfsent", "push", args.output_dir, args.repo_id]
    for flag in ("private", "create_pr", "include_checkpoints"):
        if getattr(args, flag):
            words.append("--" + flag.replace("_", "-"))
    for option in ("revision", "commit_message", "commit_description"):
        if getattr(args, option) is not None:
            words += ["--" + option.replace("_", "-"), getattr(args, option)]
    return shlex.join(words)


@contextlib.contextmanager
def _console() -> Iterator[None]:
    """hfsent's progress and retry messages on stderr (once); upload progress bars only on a terminal."""
    from huggingface_hub.utils import are_progress_bars_disabled, disable_progress_bars, enable_progress_bars

    hfsent_logger = logging.getLogger("hfsent")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    level = hfsent_logger.level
    hfsent_logger.setLevel(logging.INFO)
    has_console = logging.getLogger().handlers and any(
        isinstance(h, logging.StreamHandler) and getattr(h, "stream", None) in (sys.stderr, sys.stdout)
        for h in logging.getLogger().handlers
    )
    if not has_console:
        hfsent_logger.addHandler(handler)
    bars_were_disabled = are_progress_bars_disabled()
    if not sys.stderr.isatty():
        disable_progress_bars()  # no progress-bar debris in logs, and the error stays on its own line
    try:
        yield
    finally:
        hfsent_logger.removeHandler(handler)
        hfsent_logger.setLevel(level)
        if not bars_were_disabled:
            enable_progress_bars()


def main(argv: list[str] | None = None) -> int:
    """Run ``hfsent push``; a push that cannot be done prints a one-line error and exits 2 when the folder or repo
    id given is at fault, 1 when the Hub, the network or the login is."""
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    with _console():
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    from ..hub import HubError, plan_push, push_to_hub

    try:
        if args.dry_run:
            plan = plan_push(args.output_dir, args.repo_id, include_checkpoints=args.include_checkpoints)
            print(f"Dry run: nothing was sent. One commit to {args.repo_id}@{args.revision or 'main'} would hold:")
            print(plan.describe())
            print(f"\n----- {'README.md':^20} -----")
            print(plan.card if plan.card is not None else "(no model card)")
            return 0
        result = push_to_hub(
            args.output_dir,
            args.repo_id,
            private=args.private,
            revision=args.revision,
            commit_message=args.commit_message,
            commit_description=args.commit_description,
            create_pr=args.create_pr,
            include_checkpoints=args.include_checkpoints,
            token=args.token,
        )
    except HubError as err:
        advice = f"; push again with: {retry_command(args)}" if err.retryable else ""
        report_error(PROG, f"{err}{advice}")
        return 2 if err.bad_input else 1
    if not result.created:
        print(f"Nothing to push: {result.repo_id}@{result.revision} already holds these files ({result.commit_url})")
        return 0
    print(f"Pushed {len(result.files)} files to {result.repo_id} in one commit: {result.commit_url}")
    if result.pr_url:
        print(f"Pull request: {result.pr_url}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
