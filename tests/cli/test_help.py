"""Every ``hfsent`` command's ``--help`` runs, as the README shows it (the console script in a fresh process)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from hfsent.cli import COMMANDS

# the console script installed beside this interpreter (`pip install -e .`), else `python -m hfsent`
_SCRIPT = Path(sys.executable).with_name("hfsent")
LAUNCH = [str(_SCRIPT)] if _SCRIPT.is_file() else ([shutil.which("hfsent")] if shutil.which("hfsent") else None)


def test_every_command_help_runs():
    """`hfsent <command> --help` for each command, as the README shows it (side by side: each imports the stack)."""
    launch = LAUNCH or [sys.executable, "-m", "hfsent"]
    running = {
        command: subprocess.Popen(
            [*launch, command, "--help"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
        )
        for command in sorted(COMMANDS)
    }
    for command, proc in running.items():
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, f"hfsent {command} --help: {err[-2000:]}"
        assert out.startswith("usage: hfsent " + command), out[:200]
        assert "error" not in err.lower(), err[-2000:]


def test_recipe_help_prints_percent_signs_of_help_texts():
    """A recipe key's help text with a bare `%` ("95% of") once made `hfsent train --help` crash (argparse formats
    help texts with `%`); the text is printed as written."""
    from hfsent.finetune import DataArguments, HfSentTrainingArguments, ModelArguments
    from hfsent.recipe import RecipeParser

    parser = RecipeParser((ModelArguments, DataArguments, HfSentTrainingArguments), prog="hfsent train")
    help_text = parser.format_help()
    assert "95% of bootstrap" in " ".join(help_text.split())
    assert "%%" not in help_text
