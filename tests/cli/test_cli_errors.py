"""Bad recipe values, bad checkpoints and environment faults end as ONE line through the public CLI.

Every case runs ``hfsent.cli.main([...])`` in-process, as a user's ``hfsent train``/``hfsent pretrain`` would.
Convention (issue 12): exit 2 for bad input, 1 for environment failures, 130 for Ctrl-C; a traceback only
with ``--debug`` or ``HFSENT_DEBUG=1``.
"""

from __future__ import annotations

import importlib
import os
import resource
import signal
import tempfile
import threading
import time
from pathlib import Path

import pytest

from hfsent.cli import COMMANDS
from hfsent.cli import main as hfsent_main

from ..fixtures.helpers import ROOT, run_cli, tiny_pretrain_recipe, tiny_recipe


def _one_error_line(capsys, prog: str = "hfsent train") -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith(f"{prog}: ")]
    assert len(lines) == 1, err[-3000:]
    return lines[0]


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("max_length", 64.7, "expected an integer"),
        ("seed", 1.5, "expected an integer"),
        ("dataset_name", ["a.csv", "b.csv"], "expected a string"),
        ("per_device_train_batch_size", 0, "expected an integer >= 1"),
        ("learning_rate", -1, "expected a number > 0"),
        ("num_train_epochs", 0, "expected a number > 0 (or max_steps >= 1)"),
        ("num_train_epochs", -1, "expected a number >= 0"),
    ],
)
def test_recipe_values_are_checked_by_type_and_range_before_any_work(
    key, value, expected, tmp_path, tokenizer_dir, review_csv, capsys
):
    recipe = tiny_recipe(tmp_path, tokenizer_dir, review_csv, **{key: value})
    assert hfsent_main(["train", str(recipe)]) == 2
    line = _one_error_line(capsys)
    assert f"invalid value for {key!r}" in line and repr(value) in line
    assert expected in line
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("option", ["--learning_rat", "--num_train", "--learning_rte"])
def test_command_line_keys_must_be_exact(option, tmp_path, tokenizer_dir, review_csv, capsys):
    recipe = tiny_recipe(tmp_path, tokenizer_dir, review_csv)
    assert hfsent_main(["train", str(recipe), option, "1e-3"]) == 2
    line = _one_error_line(capsys)
    assert f"unknown key {option!r} on the command line; did you mean" in line
    assert not (tmp_path / "out").exists()


def test_a_checkpoint_no_backbone_family_handles_is_rejected_by_its_model_type(
    tmp_path, tokenizer_dir, review_csv, capsys
):
    # GPT-2, Qwen2, RoBERTa, ... checkpoints start a model (tests/conformance/test_backbone_checkpoints.py); T5 does not
    from transformers import T5Config, T5ForConditionalGeneration

    t5 = tmp_path / "t5"
    config = T5Config(d_model=16, d_kv=8, d_ff=32, num_layers=1, num_heads=2, vocab_size=64)
    T5ForConditionalGeneration(config).save_pretrained(t5)
    recipe = tiny_recipe(tmp_path, tokenizer_dir, review_csv, model_name_or_path=str(t5), config_overrides=None)
    assert hfsent_main(["train", str(recipe)]) == 2
    line = _one_error_line(capsys)
    assert "'t5'" in line and str(t5) in line
    assert all(f"'{t}'" in line for t in ("bert", "hfsent", "roberta", "ernie", "deberta-v2", "gpt2", "qwen2", "llama"))
    assert not (tmp_path / "out").exists()


def test_first_token_pooling_of_a_decoder_checkpoint_is_refused_before_any_work(
    tmp_path, tokenizer_dir, review_csv, capsys
):
    # recipes/finetune/bert-base-chinese.yaml sets pooling: cls; started from a GPT-2 it would train on a token that
    # sees only itself
    from transformers import GPT2Config, GPT2LMHeadModel

    gpt = tmp_path / "gpt"
    GPT2LMHeadModel(GPT2Config(n_embd=16, n_layer=1, n_head=2, n_positions=64, vocab_size=64)).save_pretrained(gpt)
    recipe = tiny_recipe(
        tmp_path, tokenizer_dir, review_csv, model_name_or_path=str(gpt), config_overrides=None, pooling="cls"
    )
    assert hfsent_main(["train", str(recipe)]) == 2
    line = _one_error_line(capsys)
    assert "invalid value for 'pooling'" in line and "gpt2" in line and "use 'last'" in line
    assert not (tmp_path / "out").exists()


def test_a_checkpoint_with_a_new_tokenizer_or_config_is_refused_naming_the_keys_to_clear(
    tmp_path, tokenizer_dir, review_csv, capsys
):
    # recipes/finetune/asap-*.yaml build from scratch (config_overrides, tokenizer_vocab_size): a checkpoint given on
    # the command line would otherwise get a freshly trained tokenizer whose ids its embeddings never learned
    from transformers import BertConfig, BertModel

    bert = tmp_path / "bert"
    BertModel(
        BertConfig(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32)
    ).save_pretrained(bert)
    recipe = tiny_recipe(tmp_path, tokenizer_dir, review_csv, tokenizer_vocab_size=300)
    assert hfsent_main(["train", str(recipe), "--model_name_or_path", str(bert)]) == 2
    line = _one_error_line(capsys)
    assert "config_overrides and tokenizer_vocab_size are for a model built from scratch" in line
    assert "--config_overrides null --tokenizer_vocab_size null" in line and str(bert) in line
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("key", ["model_name_or_path", "tokenizer_name", "config_name", "resume_from_checkpoint"])
def test_a_missing_local_path_is_named(key, tmp_path, tokenizer_dir, review_csv, capsys):
    missing = tmp_path / "no" / "such-model"
    keys = {key: str(missing)}
    if key == "model_name_or_path":
        keys["config_overrides"] = None
    recipe = tiny_recipe(tmp_path, tokenizer_dir, review_csv, **keys)
    assert hfsent_main(["train", str(recipe)]) == 2
    line = _one_error_line(capsys)
    assert f"not found: '{missing}'" in line and key in line
    assert "Repo id" not in line
    assert not (tmp_path / "out").exists()


def test_a_tokenizer_larger_than_the_checkpoint_vocabulary_is_named(tmp_path, tokenizer_dir, review_csv, capsys):
    from transformers import BertConfig, BertModel

    bert = tmp_path / "bert"
    config = BertConfig(vocab_size=64, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32)
    BertModel(config).save_pretrained(bert)
    recipe = tiny_recipe(tmp_path, tokenizer_dir, review_csv, model_name_or_path=str(bert), config_overrides=None)
    assert hfsent_main(["train", str(recipe)]) == 2
    line = _one_error_line(capsys)
    assert "the tokenizer (Bert" in line and "tokens but the model's vocab_size is 64" in line
    assert "the tokenizer the model was trained with (tokenizer_name)" in line


def test_a_hub_config_without_the_hub_says_to_name_a_local_folder(tmp_path):
    # recipes/pretrain/zh-mini-gpt.yaml names openai-community/gpt2's config; offline, with an empty cache
    recipe = ROOT / "recipes" / "pretrain" / "zh-mini-gpt.yaml"
    proc = run_cli("pretrain", str(recipe), "--output_dir", str(tmp_path / "out"), env={"HF_HOME": str(tmp_path)})
    assert proc.returncode == 2, proc.stderr[-2000:]
    [line] = [line for line in proc.stderr.splitlines() if line.startswith("hfsent pretrain: error: ")]
    assert "config_name 'openai-community/gpt2'" in line
    assert 'without the Hub, set config_name to a local folder holding a config.json (or to "" for' in line


def test_pretrain_rejects_a_missing_checkpoint_the_same_way(tmp_path, tokenizer_dir, capsys):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("物流很快\n质量很好\n", encoding="utf-8")
    missing = tmp_path / "nope"
    argv = ["pretrain", "--model_name_or_path", str(missing), "--dataset_name", str(corpus)]
    assert hfsent_main([*argv, "--output_dir", str(tmp_path / "out"), "--use_cpu"]) == 2
    line = _one_error_line(capsys, "hfsent pretrain")
    assert f"not found: '{missing}'" in line and "model_name_or_path" in line
    assert not (tmp_path / "out").exists()


@pytest.fixture
def read_only_dir():
    """A folder no one but root may write to (the test runs hfsent as user nobody where it runs as root)."""
    folder = Path(tempfile.mkdtemp(prefix="hfsent-ro-"))
    folder.chmod(0o555)
    yield folder
    folder.chmod(0o755)
    folder.rmdir()


def test_an_unwritable_output_folder_exits_1_naming_it(read_only_dir, tmp_path, tokenizer_dir, review_csv, capsys):
    recipe = tiny_recipe(tmp_path, tokenizer_dir, review_csv, output_dir=str(read_only_dir / "out"))
    recipe.chmod(0o644)
    importlib.import_module(COMMANDS["train"][0])  # the interpreter may live where user nobody cannot read
    as_root = os.geteuid() == 0
    dirs = [p for p in (tmp_path, *tmp_path.parents) if p != Path("/")]
    modes = {p: p.stat().st_mode for p in dirs}
    try:
        if as_root:  # root writes anywhere: run as user nobody, who may read the recipe but not write the folder
            for p in dirs:
                p.chmod(modes[p] | 0o555)
            try:
                os.seteuid(65534)
            except PermissionError:
                pytest.skip("root without CAP_SETUID: cannot make a folder unwritable here")
        code = hfsent_main(["train", str(recipe)])
    finally:
        if as_root:
            if os.geteuid() != 0:
                os.seteuid(0)
            for p, mode in modes.items():
                p.chmod(mode)
    assert code == 1
    line = _one_error_line(capsys)
    assert "not writable" in line and f"'{read_only_dir / 'out'}'" in line
    assert list(read_only_dir.iterdir()) == []


def test_a_full_disk_exits_1_naming_the_folder_and_leaves_no_half_written_output(
    tmp_path, tokenizer_dir, review_csv, capsys
):
    """The disk "fills" at 200 kB: RLIMIT_FSIZE makes any larger write fail (EFBIG; Python ignores SIGXFSZ),
    the same path through hfsent as ENOSPC. The first large file is the model saved at the end."""
    recipe = tiny_recipe(tmp_path, tokenizer_dir, review_csv, num_train_epochs=1, save_strategy="no")
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, hard))
    try:
        code = hfsent_main(["train", str(recipe), "--load_best_model_at_end", "false"])
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    assert code == 1
    line = _one_error_line(capsys)
    assert "File too large" in line and "(EFBIG)" in line and str(tmp_path / "out") in line
    out = tmp_path / "out"
    assert not (out / ".staging").exists()
    assert not (out / "config.json").exists() and not (out / "model.safetensors").exists()


def test_a_full_disk_at_pretrainings_final_save_leaves_no_half_written_output(tmp_path, tokenizer_dir, capsys):
    """As for fine-tuning: the disk "fills" (RLIMIT_FSIZE) while the final output is saved; nothing of it is left
    (a folder holding a model without its tokenizer and recipe would look like a foreign folder to the rerun),
    and the rerun on a disk with room succeeds."""
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("今天天气很好。\n我们去公园散步。\n", encoding="utf-8")
    out = tmp_path / "out"
    recipe = tiny_pretrain_recipe(tmp_path / "pretrain.yaml", tokenizer_dir, corpus, out, save_strategy="no")
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, hard))  # the model (>= 100 kB) is the first large file
    try:
        code = hfsent_main(["pretrain", str(recipe)])
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    assert code == 1
    line = _one_error_line(capsys, "hfsent pretrain")
    assert "File too large" in line and "(EFBIG)" in line and str(out) in line
    assert sorted(p.name for p in out.iterdir()) == []

    assert hfsent_main(["pretrain", str(recipe)]) == 0
    assert {"config.json", "model.safetensors", "tokenizer.json", "recipe.yaml"} <= {p.name for p in out.iterdir()}
    assert not (out / ".staging").exists()


def test_ctrl_c_exits_130_with_the_resume_command(tmp_path, tokenizer_dir, review_csv, capsys):
    # no early stopping: the tiny model fits the data in 4 epochs (under a second), and a run that ended before the
    # Ctrl-C would pass nothing on to test
    recipe = tiny_recipe(tmp_path, tokenizer_dir, review_csv, num_train_epochs=100, early_stopping_patience=None)
    out = tmp_path / "out"

    def press_ctrl_c_after_the_first_checkpoint() -> None:
        deadline = time.monotonic() + 120
        while not any(out.glob("checkpoint-*/trainer_state.json")) and time.monotonic() < deadline:
            time.sleep(0.05)
        os.kill(os.getpid(), signal.SIGINT)

    threading.Thread(target=press_ctrl_c_after_the_first_checkpoint, daemon=True).start()
    assert hfsent_main(["train", str(recipe), "--learning_rate", "1e-3"]) == 130
    line = _one_error_line(capsys)
    assert line == (
        f"hfsent train: interrupted; resume with: hfsent train {recipe} --learning_rate 1e-3 "
        "--resume_from_checkpoint last"
    )
    assert not (out / ".staging").exists() and not (out / "config.json").exists()  # no final output
    assert any(out.glob("checkpoint-*"))  # what resuming continues from


def test_an_unexpected_failure_is_one_line_unless_debug(
    tmp_path, tiny_checkpoint, tokenizer_dir, review_csv, capsys, monkeypatch
):
    weights = tiny_checkpoint / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])  # a truncated download
    recipe = tiny_recipe(
        tmp_path, tokenizer_dir, review_csv, model_name_or_path=str(tiny_checkpoint), config_overrides=None
    )
    monkeypatch.delenv("HFSENT_DEBUG", raising=False)
    assert hfsent_main(["train", str(recipe)]) == 1
    line = _one_error_line(capsys)
    assert line.startswith("hfsent train: error: SafetensorError: ")
    assert line.endswith("(run with --debug or HFSENT_DEBUG=1 for the traceback)")

    assert hfsent_main(["train", "--debug", str(recipe)]) == 1  # --debug anywhere on the command line
    assert "Traceback" in capsys.readouterr().err
    monkeypatch.setenv("HFSENT_DEBUG", "1")
    assert hfsent_main(["train", str(recipe)]) == 1
    assert "Traceback" in capsys.readouterr().err


def test_values_keep_their_meaning_through_the_checks(tmp_path):
    """`eval_strategy: no` (YAML 1.1 reads a bool), a whole number for a float key and `--key null` still work."""
    from hfsent.finetune.arguments import DataArguments, HfSentTrainingArguments, ModelArguments
    from hfsent.recipe import RecipeParser

    recipe = tmp_path / "r.yaml"
    recipe.write_text("eval_strategy: no\nsave_strategy: no\nload_best_model_at_end: false\nwarmup_steps: 100\n")
    parser = RecipeParser((ModelArguments, DataArguments, HfSentTrainingArguments))
    model_args, _, training_args = parser.parse_recipe([str(recipe), "--use_cpu", "--model_name_or_path", "null"])
    assert training_args.eval_strategy == "no" and training_args.save_strategy == "no"
    assert training_args.warmup_steps == 100 and isinstance(training_args.warmup_steps, int)
    assert model_args.model_name_or_path is None
