"""Fuzz: bad run folders and checkpoints at ``hfsent train`` / ``hfsent pretrain`` (in-process, deterministic).

Each case damages a copy of a real output folder (or builds a bad one) and asserts: exit 2, no traceback,
one ``hfsent <command>: error: ...`` line naming the culprit, nothing written, the earlier output intact.
All fail before any data is loaded or model built, so the module runs in a few seconds.
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from hfsent.cli import main as hfsent_main

from ..fixtures.helpers import tiny_pretrain_recipe, tiny_recipe


def _tree(directory: Path) -> dict[str, str]:
    if directory.is_file():
        return {"": hashlib.sha256(directory.read_bytes()).hexdigest()}
    return {
        str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


def _newest(out: Path) -> Path:
    return max(out.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1]))


def _truncate(path: Path, keep: int) -> None:
    path.write_bytes(path.read_bytes()[:keep])


def _other_recipe(case: Path, out: Path, recipe: Path) -> list[str]:
    shutil.copytree(out, case)
    return [str(recipe), "--output_dir", str(case), "--seed", "7"]


def _foreign_files(case: Path, out: Path, recipe: Path) -> list[str]:
    case.mkdir()
    (case / "notes.txt").write_text("not a run", encoding="utf-8")
    (case / "data.csv").write_text("a,b\n", encoding="utf-8")
    return [str(recipe), "--output_dir", str(case)]


def _output_dir_is_a_file(case: Path, out: Path, recipe: Path) -> list[str]:
    case.write_text("a file", encoding="utf-8")
    return [str(recipe), "--output_dir", str(case)]


def _foreign_checkpoint(case: Path, out: Path, recipe: Path) -> list[str]:
    case.mkdir()
    shutil.copytree(_newest(out), case / "checkpoint-99")
    (case / "checkpoint-99" / "recipe.yaml").write_text(yaml.safe_dump({"seed": 123}), encoding="utf-8")
    return [str(recipe), "--output_dir", str(case), "--resume_from_checkpoint", "last"]


def _resume(damage: Callable[[Path], None]):
    def make(case: Path, out: Path, recipe: Path) -> list[str]:
        shutil.copytree(out, case)
        checkpoint = _newest(case)
        damage(checkpoint)
        return [str(recipe), "--output_dir", str(case), "--resume_from_checkpoint", str(checkpoint)]

    return make


def _missing_checkpoint(case: Path, out: Path, recipe: Path) -> list[str]:
    shutil.copytree(out, case)
    return [str(recipe), "--output_dir", str(case), "--resume_from_checkpoint", str(case / "checkpoint-12345")]


TRAIN_CASES = {
    "another recipe's run": (_other_recipe, ["holds a run of another recipe", "seed: 0 there, 7 now"]),
    "foreign files": (_foreign_files, ["is not empty and holds no hfsent run", "data.csv, notes.txt"]),
    "output_dir is a file": (_output_dir_is_a_file, ["cannot be created", "is a file"]),
    "foreign checkpoint, resume last": (_foreign_checkpoint, ["holds a run of another recipe", "seed: 123 there"]),
    "resume: truncated weights": (
        _resume(lambda c: _truncate(c / "model.safetensors", 1000)),
        ["is incomplete (model.safetensors is truncated)"],
    ),
    "resume: weights not safetensors": (
        _resume(lambda c: (c / "model.safetensors").write_bytes(b"\x00" * 64)),
        ["is incomplete (model.safetensors is"],
    ),
    "resume: no weights": (
        _resume(lambda c: (c / "model.safetensors").unlink()),
        ["is incomplete (no model weights (model.safetensors))"],
    ),
    "resume: no optimizer": (_resume(lambda c: (c / "optimizer.pt").unlink()), ["is incomplete (no optimizer.pt)"]),
    "resume: truncated optimizer": (
        _resume(lambda c: _truncate(c / "optimizer.pt", 100)),
        ["is incomplete (optimizer.pt is truncated)"],
    ),
    "resume: no scheduler": (_resume(lambda c: (c / "scheduler.pt").unlink()), ["is incomplete (no scheduler.pt)"]),
    "resume: broken trainer state": (
        _resume(lambda c: (c / "trainer_state.json").write_text("{", encoding="utf-8")),
        ["is incomplete (trainer_state.json is unreadable)"],
    ),
    "resume: not a checkpoint": (_missing_checkpoint, ["checkpoint-12345", "checkpoint not found"]),
}


@pytest.mark.parametrize("case", list(TRAIN_CASES))
def test_bad_run_folder_at_train(case, tmp_path, finetuned_dir, capsys):
    make, expected = TRAIN_CASES[case]
    target = tmp_path / "case"
    argv = ["train", *make(target, finetuned_dir, finetuned_dir.parent / "recipe.yaml")]
    before = _tree(target)
    assert hfsent_main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    [line] = [line for line in err.splitlines() if line.startswith("hfsent train: error: ")]
    for fragment in expected:
        assert fragment in line
    assert _tree(target) == before  # nothing written, nothing removed
    assert not (target / ".staging").exists()


def test_one_label_train_split(tmp_path, tokenizer_dir, capsys):
    data = tmp_path / "neg.csv"
    data.write_text("label,review\n" + "".join(f"0,差评第{i}条，不推荐\n" for i in range(30)), encoding="utf-8")
    recipe = tiny_recipe(tmp_path, tokenizer_dir, data)
    assert hfsent_main(["train", str(recipe)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    [line] = [line for line in err.splitlines() if line.startswith("hfsent train: error: ")]
    assert "train split of" in line and "neg.csv" in line and "with label 1" in line
    assert not (tmp_path / "out").exists()


@pytest.fixture
def pretrain_recipe(tmp_path, tokenizer_dir) -> Path:
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("今天天气很好。\n我们去公园散步。\n", encoding="utf-8")
    return tiny_pretrain_recipe(tmp_path / "pretrain.yaml", tokenizer_dir, corpus, tmp_path / "unused")


@pytest.mark.parametrize("case", ["another recipe's run", "foreign files", "resume: no optimizer"])
def test_bad_run_folder_at_pretrain(case, tmp_path, finetuned_dir, pretrain_recipe, capsys):
    target = tmp_path / "case"
    if case == "another recipe's run":  # a fine-tuning run is not this pretraining run
        shutil.copytree(finetuned_dir, target)
        argv, expected = ["--output_dir", str(target)], "holds a run of another recipe"
    elif case == "foreign files":
        target.mkdir()
        (target / "notes.txt").write_text("x", encoding="utf-8")
        argv, expected = ["--output_dir", str(target)], "holds no hfsent run (notes.txt)"
    else:
        shutil.copytree(finetuned_dir, target)
        (_newest(target) / "optimizer.pt").unlink()
        argv = ["--output_dir", str(target / "new"), "--resume_from_checkpoint", str(_newest(target))]
        expected = "is incomplete (no optimizer.pt)"
    before = _tree(target)
    assert hfsent_main(["pretrain", str(pretrain_recipe), *argv]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    [line] = [line for line in err.splitlines() if line.startswith("hfsent pretrain: error: ")]
    assert expected in line
    assert _tree(target) == before
