"""The ``hfsent`` command line: ``hfsent <command> [args...]``.

Each command lives in its own module and exposes ``main(argv: list[str]) -> int``; it is imported
only when run, so ``hfsent --help`` stays fast.

Every failure ends as one line ``hfsent <command>: error: ...`` on stderr. Commands report what they
detect themselves (bad input: exit 2); what escapes them is formatted here: an environment failure
(read-only or full disk, permission denied, port in use, network) exits 1 naming the path or
address, anything else exits 1 with its type and message, and Ctrl-C exits 130 (for ``train`` and
``pretrain`` with the command that resumes the run). ``--debug`` anywhere on the command line, or
``HFSENT_DEBUG=1``, also prints the traceback.
"""

from __future__ import annotations

import importlib
import shlex
import sys
import traceback

from .errors import (
    RecipeError,
    debug_enabled,
    describe_environment_error,
    environment_error,
    first_line,
    interrupts_kept,
    report_error,
    reports_for_all_processes,
    set_debug,
)

# command -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "pretrain": ("hfsent.commands.pretrain", "pretrain a BERT encoder (masked LM) or a decoder (causal LM)"),
    "train": ("hfsent.commands.train", "fine-tune a sentiment model from a recipe YAML"),
    "push": ("hfsent.commands.push", "publish an output directory to the Hugging Face Hub (one commit)"),
    "predict": ("hfsent.commands.predict", "classify every row of a CSV/JSONL/Parquet/text file"),
    "export": ("hfsent.commands.export", "export a model to ONNX (optionally int8-quantized), with a parity check"),
    "serve": ("hfsent.commands.serve", "serve a model over HTTP (Inference Endpoints text-classification API)"),
    "convert-asap": ("hfsent.commands.convert_asap", "convert ASAP's aspect-sentiment CSVs into training data"),
}
# commands whose runs save checkpoints that ``--resume_from_checkpoint last`` continues from
RESUMABLE = ("train", "pretrain")

DEBUG_FLAG = "--debug"
DEBUG_HINT = f"(run with {DEBUG_FLAG} or HFSENT_DEBUG=1 for the traceback)"
EXIT_INTERRUPTED = 130


def _usage() -> str:
    lines = ["usage: hfsent <command> [args...]", "", "commands:"]
    lines += [f"  {name:<12} {help_}" for name, (_, help_) in sorted(COMMANDS.items())]
    lines += ["", "Run `hfsent <command> --help` for a command's options."]
    lines += [f"Add {DEBUG_FLAG} (or set HFSENT_DEBUG=1) to any command to see the traceback of a failure."]
    return "\n".join(lines)


def describe_failure(err: BaseException) -> tuple[int, str]:
    """``(exit code, one-line message)`` for an exception that escaped a command."""
    if isinstance(err, RecipeError):
        return 2, first_line(str(err))
    env = environment_error(err)
    if env is not None:
        return 1, describe_environment_error(env)
    message = first_line(str(err))
    return 1, f"{type(err).__name__}{': ' + message if message else ''} {DEBUG_HINT}"


def resume_command(name: str, args: list[str]) -> str:
    """The command line that resumes an interrupted ``hfsent <name> args`` from its last checkpoint."""
    kept: list[str] = []
    skip = False
    for arg in args:
        if skip:
            skip = False
        elif arg == "--resume_from_checkpoint" or arg == "--resume-from-checkpoint":
            skip = True
        elif not arg.startswith(("--resume_from_checkpoint=", "--resume-from-checkpoint=")) and arg != DEBUG_FLAG:
            kept.append(arg)
    return shlex.join(["hfsent", name, *kept, "--resume_from_checkpoint", "last"])


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``hfsent`` console script (and of ``recipes/*.py``)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    set_debug(DEBUG_FLAG in argv)
    argv = [arg for arg in argv if arg != DEBUG_FLAG]
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage())
        return 0
    if argv[0] == "--version":
        from . import __version__

        print(f"hfsent {__version__}")
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"hfsent: unknown command {name!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    prog = f"hfsent {name}"
    try:
        return _run(name, prog, rest)
    finally:
        set_debug(False)


def _run(name: str, prog: str, rest: list[str]) -> int:
    """Run one command; what escapes it becomes one line on stderr and an exit code."""
    try:
        module = importlib.import_module(COMMANDS[name][0])
        with interrupts_kept():  # a Ctrl-C that a library swallows still ends the run (exit 130)
            return int(module.main(rest) or 0)
    except KeyboardInterrupt:
        if reports_for_all_processes():  # the launcher passes Ctrl-C to every process: one line is enough
            if debug_enabled():
                traceback.print_exc()
            hint = f"; resume with: {resume_command(name, rest)}" if name in RESUMABLE else ""
            print(f"{prog}: interrupted{hint}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as err:
        code, message = describe_failure(err)
        report_error(prog, message, shared=code == 2)  # bad input: alike on every process
        return code


if __name__ == "__main__":
    sys.exit(main())
