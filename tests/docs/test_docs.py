"""The documentation's code runs as written: README.md and every page of the site (docs/).

Each fenced code block is run here, run by the test its marker names, or marked with why it is not run (see
tests/docs/blocks.py for the markers). Blocks run in a folder holding ``outputs/quickstart`` (a copy of the tiny
model ``hfsent train`` trains once per session) and ``reviews.csv`` (a CSV with a ``review`` column), so that the
commands and Python a user copies from the page are the ones that run. The README's shell blocks run in bash with
the ``hfsent`` console script, as a user would; the guides' ``hfsent`` commands run through ``hfsent.cli.main`` in
this process, with the same arguments (the shell's word splitting), which saves a Python start-up per command.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from hfsent.cli import COMMANDS, main

from ..fixtures.helpers import write_review_csv
from .blocks import ROOT, RUNNABLE, Block, page_blocks, pages

BLOCKS = [block for page in pages() for block in page_blocks(page)]
RUN_PAGES = sorted({b.page for b in BLOCKS if b.marker in (None, "run in background")})
GUIDES = [page for page in RUN_PAGES if page != "README.md"]


def test_every_code_block_is_run_or_marked():
    problems = []
    for block in BLOCKS:
        if block.marker is None and block.lang not in RUNNABLE:
            problems.append(
                f"{block.where}: a {block.lang or 'plain'!r} block is neither run here ({', '.join(RUNNABLE)} only) "
                "nor marked: put <!-- not run: why --> or <!-- tested by: tests/...::test_... --> on the line before"
            )
        if block.marker == "run in background" and (block.lang != "bash" or not block.marker_text.startswith("http")):
            problems.append(f"{block.where}: 'run in background' needs a bash block and the URL that answers when up")
        if block.marker == "not run" and len(block.marker_text.split()) < 3:
            problems.append(f"{block.where}: say why it is not run (got {block.marker_text!r})")
    assert not problems, "\n".join(problems)
    assert len(BLOCKS) > 20 and RUN_PAGES  # the pages were found and parsed


def test_tested_by_markers_name_tests_that_exist():
    missing = []
    for block in BLOCKS:
        if block.marker != "tested by":
            continue
        path, _, name = block.marker_text.partition("::")
        source = ROOT / path
        if not (source.is_file() and re.search(rf"^def {re.escape(name)}\(", source.read_text(), re.MULTILINE)):
            missing.append(f"{block.where}: no test {block.marker_text}")
    assert not missing, "\n".join(missing)


# --------------------------------------------------------------------------------------------------- running


@pytest.fixture(scope="module")
def workdir(tmp_path_factory, finetuned_dir) -> Path:
    """A folder as a reader's would be after the quickstart: outputs/quickstart, reviews.csv, recipes/."""
    root = tmp_path_factory.mktemp("docs")
    shutil.copytree(finetuned_dir, root / "outputs" / "quickstart")
    write_review_csv(root / "reviews.csv", n=40)
    (root / "recipes").symlink_to(ROOT / "recipes")
    return root


def cli_env(workdir: Path) -> dict[str, str]:
    """The environment of a shell block: ``hfsent`` on the PATH (this Python's console script, else a shim)."""
    bin_dir = Path(sys.executable).parent
    if not (bin_dir / "hfsent").exists():
        bin_dir = workdir / "bin"
        bin_dir.mkdir(exist_ok=True)
        shim = bin_dir / "hfsent"
        shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m hfsent "$@"\n')
        shim.chmod(0o755)
    pythonpath = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "PYTHONPATH": pythonpath, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def run_shell(block: Block, workdir: Path) -> None:
    result = subprocess.run(
        ["bash", "-c", "set -euo pipefail\n" + block.code],
        cwd=workdir,
        env=cli_env(workdir),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, f"{block.where} exited {result.returncode}:\n{block.code}\n{result.stderr[-3000:]}"


def hfsent_commands(code: str) -> list[list[str]] | None:
    """The argument lists of a shell block whose every command is ``hfsent ...``, else None."""
    lines = [shlex.split(line, comments=True) for line in code.replace("\\\n", " ").splitlines()]
    commands = [words for words in lines if words]
    return commands if commands and all(words[0] == "hfsent" for words in commands) else None


def run_hfsent(argv: list[str]) -> int:
    """``hfsent argv...`` in this process: its exit code (``--help`` exits through SystemExit)."""
    try:
        return main(argv)
    except SystemExit as err:
        return 0 if err.code is None else int(err.code)


def run_in_process(block: Block, commands: list[list[str]], capsys: pytest.CaptureFixture) -> None:
    for words in commands:
        code = run_hfsent(words[1:])
        err = capsys.readouterr().err
        assert code == 0, f"{block.where}: {shlex.join(words)} exited {code}:\n{err[-3000:]}"


def start_in_background(block: Block, workdir: Path, log: Path) -> subprocess.Popen:
    url = block.marker_text
    if answers(url):
        pytest.skip(f"{block.where}: something else already answers {url}")
    with log.open("w") as out:
        process = subprocess.Popen(
            ["bash", "-c", block.code],
            cwd=workdir,
            env=cli_env(workdir),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    deadline = time.monotonic() + 180
    while not answers(url):
        assert process.poll() is None, f"{block.where} exited {process.returncode}:\n{log.read_text()[-3000:]}"
        assert time.monotonic() < deadline, f"{block.where}: {url} did not answer within 180 s"
        time.sleep(0.2)
    return process


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, 15)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, 9)
            process.wait(timeout=30)


def run_page(page: str, workdir: Path, request: pytest.FixtureRequest, in_process: bool = False) -> None:
    """Run a page's blocks in order: Python in one namespace, shell blocks as scripts (``hfsent`` commands through
    ``hfsent.cli.main`` with ``in_process``), servers in the background."""
    monkeypatch = request.getfixturevalue("monkeypatch")
    monkeypatch.chdir(workdir)
    monkeypatch.setattr(sys, "path", list(sys.path))  # a block may import handler.py from a model folder
    monkeypatch.delitem(sys.modules, "handler", raising=False)
    namespace: dict = {"__name__": "__docs__"}
    background: list[subprocess.Popen] = []
    try:
        for block in page_blocks(ROOT / page):
            if block.marker == "run in background":
                background.append(start_in_background(block, workdir, workdir / f"background-{block.line}.log"))
                request.getfixturevalue("local_http_client")  # clients may talk to it although HF_HUB_OFFLINE=1
            elif block.marker is not None:
                continue
            elif block.lang == "python":
                exec(compile(block.code, block.where, "exec"), namespace)
            elif in_process and (commands := hfsent_commands(block.code)) is not None:
                run_in_process(block, commands, request.getfixturevalue("capsys"))
            else:
                run_shell(block, workdir)
    finally:
        for process in background:
            stop(process)
        sys.modules.pop("handler", None)


def test_readme_runs_as_written(workdir, request):
    run_page("README.md", workdir, request)


@pytest.mark.parametrize("page", GUIDES)
def test_guide_code_runs_as_written(page, workdir, request):
    run_page(page, workdir, request, in_process=True)


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_command_prints_its_help(command, capsys):
    assert run_hfsent([command, "--help"]) == 0
    out, err = capsys.readouterr()
    assert out.startswith("usage: hfsent " + command) and err == ""


def test_recipe_reference_lists_every_key_hfsent_declares():
    """The recipes reference (generated at build time by docs/hooks/recipe_reference.py) has a row per key."""
    import dataclasses
    import importlib.util

    from transformers import TrainingArguments

    from hfsent.validation import TRAINING_ARGUMENT_RANGES

    spec = importlib.util.spec_from_file_location("recipe_reference", ROOT / "docs" / "hooks" / "recipe_reference.py")
    hook = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hook)
    page = hook.on_page_markdown("# Keys\n\n<!-- recipe-keys: finetune -->\n\n<!-- recipe-keys: pretrain -->\n")
    assert "recipe-keys" not in page
    for recipe in ("finetune", "pretrain"):
        for dtype in hook.recipe_dataclasses(recipe):
            if issubclass(dtype, TrainingArguments):
                names = [n for n in TRAINING_ARGUMENT_RANGES if n in {f.name for f in dataclasses.fields(dtype)}]
                names += [n for n in dtype.__dataclass_fields__ if n not in TrainingArguments.__dataclass_fields__]
            else:
                names = [f.name for f in dataclasses.fields(dtype) if f.init]
            missing = [n for n in names if f"| `{n}` |" not in page]
            assert not missing, f"{dtype.__name__}: {missing}"
    assert "95% of bootstrap" in page  # help texts as written, not argparse's %-escaped form
