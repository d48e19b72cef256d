"""Fuzz, round 3 (issue 21): what an adversary still got through on 951aabe, and the next cases found the same way.

The nine items of the issue come first (``test_item<N>_...``); each fails on 951aabe. Then the new cases, grouped by
the class they probe (the ``CLASS`` comment before each group): recipes, config, data, output folders, resume,
push, serve, interrupts. Every bad input must end as ONE line ``hfsent <command>: error: ...`` naming the culprit
and what is accepted, with the README's exit code, no traceback, nothing half-written and nothing uploaded.
"""

from __future__ import annotations

import http.client
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import types
from pathlib import Path

import pytest
import torch

from hfsent.cli import main as hfsent_main
from hfsent.inference import load_backend
from hfsent.inference.server import InferenceServer

from ..fixtures.helpers import ROOT, TINY_OVERRIDES, review_tokenizer, run_cli, tiny_pretrain_recipe, tiny_recipe
from ..fixtures.inference_helpers import save_trained_tiny_checkpoint

CPU_ONLY = {"CUDA_VISIBLE_DEVICES": ""}
SECRET = "round3-secret-" + "z9" * 12


def _one_line(err: str, prog: str) -> str:
    """The one error line of ``err`` (and no traceback)."""
    assert "Traceback" not in err, err[-3000:]
    lines = [line for line in err.splitlines() if line.startswith(f"{prog}: ")]
    assert len(lines) == 1, err[-3000:]
    return lines[0]


def _fails(argv: list[str], capsys, *fragments: str, code: int = 2) -> str:
    assert hfsent_main(argv) == code
    line = _one_line(capsys.readouterr().err, f"hfsent {argv[0]}")
    assert line.startswith(f"hfsent {argv[0]}: error: "), line
    for fragment in fragments:
        assert fragment in line, line
    return line


def _newest(out: Path) -> Path:
    return max(out.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1]))


def _quick(tmp_path: Path, tokenizer_dir: Path, data: Path, **keys) -> Path:
    """A tiny recipe that would train one step: what each case breaks must fail before that."""
    keys = {"max_steps": 1, "save_strategy": "no", "eval_strategy": "no", **keys}
    return tiny_recipe(tmp_path, tokenizer_dir, data, **keys)


class Evil:
    """A pickle that runs a command when loaded (torch's weights-only loader refuses it)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


# =============================================================================================== the nine items


def test_item1_push_at_the_end_with_the_hub_unreachable_blames_the_hub(
    hub, tmp_path, tokenizer_dir, review_csv, monkeypatch, capsys
):
    import hfsent.hub.errors

    monkeypatch.setattr(hfsent.hub.errors, "time", types.SimpleNamespace(sleep=lambda seconds: None))  # no waits
    recipe = tiny_recipe(
        tmp_path, tokenizer_dir, review_csv, num_train_epochs=1, max_train_samples=24, push_to_hub=True
    )
    hub.stop()  # connection refused from now on
    out = tmp_path / "out"
    assert hfsent_main(["train", str(recipe), "--hub_model_id", "user/unreachable"]) == 1
    captured = capsys.readouterr()
    line = _one_line(captured.err, "hfsent train")
    assert "while writing" not in line and "on the Hub" in line and "check your connection" in line, line
    assert line.endswith(f"push it with `hfsent push {out} user/unreachable`"), line  # the README's promise
    assert hub.token not in captured.err + captured.out
    assert (out / "model.safetensors").is_file() and (out / "README.md").is_file()  # the model is saved


def test_item2_a_hard_link_is_never_uploaded(hub, finetuned_dir, tmp_path, capfd):
    out = tmp_path / "out"
    shutil.copytree(finetuned_dir, out)
    secret = tmp_path / "secret.txt"
    secret.write_text(SECRET)
    (out / "training_curves.png").unlink()
    os.link(secret, out / "training_curves.png")  # named like an output file, content from outside
    assert hfsent_main(["push", str(out), "user/hardlink", "--dry-run"]) == 0
    left_out = capfd.readouterr().out.split("left out")[1]
    assert "training_curves.png" in left_out and "hard link" in left_out
    assert hfsent_main(["push", str(out), "user/hardlink"]) == 0
    assert hub.find_uploaded(SECRET) == []
    assert "training_curves.png" not in hub.repo("user/hardlink").files
    assert "model.safetensors" in hub.repo("user/hardlink").files  # the run's own files: one link each


ALIAS_BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 9)}]\n" for i in range(6)
)


def test_item3_a_yaml_alias_bomb_is_refused_at_once(tmp_path, capsys):
    recipe = tmp_path / "bomb.yaml"
    # 9**7 (4.8 million) strings once expanded, all inside dataset_name
    recipe.write_text("dataset_name: &top\n" + "".join("  " + line + "\n" for line in ALIAS_BOMB.splitlines()))
    _fails(["train", str(recipe), "--output_dir", str(tmp_path / "o")], capsys, "bomb.yaml", "line", "aliases")
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(
    ("command", "keys", "args", "culprit"),
    [
        ("train", {"learning_rate": float("inf")}, [], "'learning_rate'"),
        ("train", {"weight_decay": float("-inf")}, [], "'weight_decay'"),
        ("train", {}, ["--learning_rate", "inf"], "'learning_rate'"),
        ("train", {}, ["--adam_epsilon=Infinity"], "'adam_epsilon'"),
        ("train", {"neftune_noise_alpha": float("inf")}, [], "'neftune_noise_alpha'"),  # a float key with no range
        ("train", {}, ["--max_grad_norm=-inf"], "'max_grad_norm'"),
        ("pretrain", {"learning_rate": float("inf")}, [], "'learning_rate'"),
    ],
)
def test_item4_infinite_floats_are_refused_like_nan(
    command, keys, args, culprit, tmp_path, tokenizer_dir, review_csv, capsys
):
    if command == "train":
        recipe = _quick(tmp_path, tokenizer_dir, review_csv, **keys)
    else:
        corpus = tmp_path / "corpus.txt"
        corpus.write_text("今天天气很好。\n", encoding="utf-8")
        recipe = tiny_pretrain_recipe(tmp_path / "p.yaml", tokenizer_dir, corpus, tmp_path / "out", **keys)
    _fails([command, str(recipe), *args], capsys, culprit, "expected a finite number")
    assert not (tmp_path / "out").exists()


def _data_folder(tmp_path: Path, review_csv: Path) -> Path:
    folder = tmp_path / "data"
    folder.mkdir()
    shutil.copy(review_csv, folder / "train.csv")
    return folder


def test_item5_output_dir_inside_the_dataset_folder_is_refused(tmp_path, tokenizer_dir, review_csv, capsys):
    data = _data_folder(tmp_path, review_csv)
    recipe = _quick(tmp_path, tokenizer_dir, data)
    line = _fails(["train", str(recipe), "--output_dir", str(data / "run")], capsys, "lies inside the data")
    assert str(data / "run") in line and repr(str(data)) in line
    assert sorted(p.name for p in data.iterdir()) == ["train.csv"]


def test_item6_ctrl_c_while_datasets_hashes_the_tokenizer_is_not_swallowed(
    tmp_path, tokenizer_dir, review_csv, monkeypatch, capsys
):
    from datasets import fingerprint

    hash_value = fingerprint.Hasher.update
    pressed = []

    def update(self, value):
        # Ctrl-C arrives exactly while datasets hashes the map's function: inside its `except:` that catches all
        if callable(value) and getattr(value, "__name__", "") == "tokenize" and not pressed:
            pressed.append(True)
            signal.getsignal(signal.SIGINT)(signal.SIGINT, None)  # the SIGINT handler, run at this very bytecode
        return hash_value(self, value)

    monkeypatch.setattr(fingerprint.Hasher, "update", update)
    # datasets warns that it could not hash the function: on a fresh handler, not one an earlier in-process run
    # bound to a stream pytest has closed since
    monkeypatch.setattr(logging.root, "handlers", [])
    for handler in logging.getLogger("datasets").handlers:  # datasets' own handler, bound at its first import
        if isinstance(handler, logging.StreamHandler):
            monkeypatch.setattr(handler, "stream", sys.stderr)
    recipe = tiny_recipe(tmp_path, tokenizer_dir, review_csv, num_train_epochs=1)
    assert hfsent_main(["train", str(recipe)]) == 130
    assert pressed
    line = _one_line(capsys.readouterr().err, "hfsent train")
    assert line == f"hfsent train: interrupted; resume with: hfsent train {recipe} --resume_from_checkpoint last"
    assert not (tmp_path / "out" / "config.json").exists() and not (tmp_path / "out" / ".staging").exists()


def test_item7_two_processes_with_bad_input_print_hfsents_line_once_and_first(tmp_path, tokenizer_dir, review_csv):
    recipe = _quick(tmp_path, tokenizer_dir, review_csv, learnin_rate=0.1)
    launcher = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2"]
    launcher += ["--main_process_port", "0", "--num_machines", "1", "--mixed_precision", "no"]
    launcher += ["--dynamo_backend", "no"]
    proc = run_cli("recipes/finetune.py", str(recipe), launcher=launcher, env=CPU_ONLY, timeout=240)
    err = proc.stderr
    lines = [line for line in err.splitlines() if line.startswith("hfsent train: error: ")]
    assert lines == [f"hfsent train: error: unknown key 'learnin_rate' in {recipe}; did you mean 'learning_rate'?"]
    assert err.index(lines[0]) < err.index("ChildFailedError")  # hfsent's line first, the launcher's report after
    assert "exitcode  : 2" in err  # the root cause the launcher reports: rank 0's exit code, bad input
    assert proc.returncode == 1  # the launcher's own exit code for any failed process (README)
    assert not (tmp_path / "out").exists()


@pytest.fixture(scope="module")
def served_model(tmp_path_factory) -> Path:
    return save_trained_tiny_checkpoint(tmp_path_factory.mktemp("round3-serve") / "model", review_tokenizer(), 5)


def test_item8_serve_exits_130_on_ctrl_c(served_model, tmp_path):
    proc = subprocess.Popen(
        [sys.executable, "-m", "hfsent", "serve", str(served_model), "--port", "0", "--threads", "1"],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # Ctrl-C as at a terminal
    )
    try:
        assert "listening on http://127.0.0.1:" in proc.stdout.readline()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130
    assert out.strip() == "hfsent serve: stopped" and "Traceback" not in err


@pytest.fixture(scope="module")
def server(served_model):
    srv = InferenceServer(("127.0.0.1", 0), load_backend(str(served_model), threads=1), max_body_bytes=50_000)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield srv
    srv.shutdown()
    srv.server_close()


def test_item8_a_100_mb_body_gets_413_not_a_broken_pipe(server):
    size = 100 << 20
    with socket.create_connection(server.server_address[:2], timeout=60) as sock:
        sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: " + str(size).encode() + b"\r\n\r\n")
        chunk = b"x" * (1 << 20)
        for _ in range(size // len(chunk)):  # a client that streams its whole body before reading the answer
            sock.sendall(chunk)
        response = http.client.HTTPResponse(sock, method="POST")
        response.begin()
        assert response.status == 413
        assert response.getheader("Connection") == "close"
        assert "the limit is 50000" in json.loads(response.read())["error"]


@pytest.mark.parametrize("name", ["rng_state.pth", "optimizer.pt", "scheduler.pt"])
def test_item9_a_malicious_pickle_in_a_checkpoint_is_named_and_never_loaded(name, finetuned_dir, tmp_path, capsys):
    out = tmp_path / "out"
    shutil.copytree(finetuned_dir, out)
    checkpoint = _newest(out)
    marker = tmp_path / "pwned"
    torch.save({"state": Evil(marker)}, checkpoint / name)
    for resume in (str(checkpoint), "last"):  # named, or the newest found by `last`: refused, not skipped
        line = _fails(
            ["train", str(finetuned_dir.parent / "recipe.yaml"), "--output_dir", str(out), "--resume_from_checkpoint",
             resume],
            capsys,
            repr(str(checkpoint)),
            name,
            "cannot be resumed from",
        )  # fmt: skip
        assert "weights_only" not in line
    assert not marker.exists()
    assert not (out / ".staging").exists()


# =============================================================================================== new cases


# CLASS recipes: keys given twice, YAML that cannot be loaded cheaply
RECIPE_FILES = {
    "duplicate key": (
        "learning_rate: 1e-3\nseed: 1\nlearning_rate: 2e-3\n",
        ["'learning_rate' is given twice", "line 3"],
    ),
    "recursive alias": ("dataset_name: &a [*a]\n", ["line 1", "recursive"]),
    "nested 5,000 deep": ("dataset_name: " + "[" * 5000 + "]" * 5000 + "\n", ["nested too deeply"]),
    "over 1 MiB": ("# " + "x" * (1 << 20) + "\nseed: 1\n", ["bytes", "at most 1048576"]),
    "a scalar": ("just text\n", ["must hold a mapping"]),
}


@pytest.mark.parametrize("case", list(RECIPE_FILES))
def test_recipe_file_that_cannot_be_loaded_cheaply(case, tmp_path, capsys):
    text, fragments = RECIPE_FILES[case]
    recipe = tmp_path / "r.yaml"
    recipe.write_text(text, encoding="utf-8")
    _fails(["train", str(recipe), "--output_dir", str(tmp_path / "o")], capsys, "r.yaml", *fragments)
    assert not (tmp_path / "o").exists()


def test_a_key_given_twice_on_the_command_line(tmp_path, tokenizer_dir, review_csv, capsys):
    recipe = _quick(tmp_path, tokenizer_dir, review_csv)
    for args in (["--learning_rate", "1e-3", "--learning_rate=2e-3"], ["--use_cpu", "true", "--use-cpu", "false"]):
        _fails(["train", str(recipe), *args], capsys, "is given twice on the command line", "give each key once")
    assert not (tmp_path / "out").exists()


def test_eval_strategy_no_with_the_default_early_stopping_trains(tmp_path, tokenizer_dir, review_csv, capsys):
    # early_stopping_patience (default 3) needs evaluations: with eval_strategy no it crashed (AssertionError, exit 1)
    recipe = _quick(tmp_path, tokenizer_dir, review_csv)
    assert hfsent_main(["train", str(recipe)]) == 0, capsys.readouterr().err[-2000:]
    assert (tmp_path / "out" / "model.safetensors").is_file()


def test_text_column_equal_to_label_column(tmp_path, tokenizer_dir, review_csv, capsys):
    recipe = _quick(tmp_path, tokenizer_dir, review_csv, text_column="label")
    _fails(["train", str(recipe)], capsys, "text_column and label_column are both 'label'")


# CLASS config: a backbone config that lies about its size
CONFIG_LIES = {
    "no positions": ("max_position_embeddings=0", "max_position_embeddings is 0; expected an integer >= 1"),
    "heads do not divide": ("num_attention_heads=3", "hidden_size is 32; expected a multiple of num_attention_heads"),
    "negative width": ("hidden_size=-32", "hidden_size is -32"),
    "no layers": ("num_hidden_layers=0", "num_hidden_layers is 0"),
    "dropout 5": ("hidden_dropout_prob=5.0", "hidden_dropout_prob is 5.0; expected a probability in [0, 1]"),
}


@pytest.mark.parametrize("case", list(CONFIG_LIES))
def test_config_overrides_that_cannot_build_a_model(case, tmp_path, tokenizer_dir, review_csv, capsys):
    override, fragment = CONFIG_LIES[case]
    recipe = _quick(tmp_path, tokenizer_dir, review_csv, config_overrides=f"{TINY_OVERRIDES},{override}")
    _fails(["train", str(recipe)], capsys, "invalid model config (config_overrides", fragment)
    assert not (tmp_path / "out").exists()


def test_a_config_json_that_lies(tmp_path, tokenizer_dir, review_csv, capsys):
    lies = tmp_path / "lies"
    lies.mkdir()
    (lies / "config.json").write_text(json.dumps({"model_type": "bert", "hidden_size": 30, "num_attention_heads": 4}))
    recipe = _quick(tmp_path, tokenizer_dir, review_csv, config_name=str(lies), config_overrides=None)
    _fails(["train", str(recipe)], capsys, f"config_name {str(lies)!r}", "a multiple of num_attention_heads (4)")


def test_a_tokenizer_folder_without_a_vocabulary(tmp_path, tokenizer_dir, review_csv, capsys):
    empty = tmp_path / "tok"
    empty.mkdir()
    (empty / "tokenizer_config.json").write_text('{"tokenizer_class": "BertTokenizer"}')
    recipe = _quick(tmp_path, tokenizer_dir, review_csv, tokenizer_name=str(empty))
    _fails(["train", str(recipe)], capsys, repr(str(empty)), "has no vocabulary", "vocab.txt or tokenizer.json")


# CLASS data: text columns that hold no text, files that hold no rows
def _rows(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
    return path


DATA_FILES = {
    "numbers as text": (
        lambda p: p.with_suffix(".csv").write_text("label,review\n" + "".join(f"{i % 2},{i}\n" for i in range(40))),
        ".csv",
        "holds int64 values, not text",
    ),
    "lists and mappings as text": (
        lambda p: _rows(p, [{"label": i % 2, "review": ["好", {"x": i}]} for i in range(40)]),
        ".jsonl",
        "not text: text_column must name a column of strings",
    ),
    "header only": (lambda p: p.write_text("label,review\n"), ".csv", "holds no data rows (only a header"),
}


@pytest.mark.parametrize("case", list(DATA_FILES))
def test_data_that_holds_no_text(case, tmp_path, tokenizer_dir, capsys):
    write, suffix, fragment = DATA_FILES[case]
    data = tmp_path / f"data{suffix}"
    write(data)
    recipe = _quick(tmp_path, tokenizer_dir, data)
    _fails(["train", str(recipe)], capsys, str(data), fragment)
    assert not (tmp_path / "out").exists()


def test_bom_and_crlf_data_trains(tmp_path, tokenizer_dir, review_csv, capsys):
    # a spreadsheet's export: UTF-8 BOM before the header, CRLF line ends
    data = tmp_path / "excel.csv"
    data.write_bytes(b"\xef\xbb\xbf" + review_csv.read_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n"))
    recipe = _quick(tmp_path, tokenizer_dir, data, text_column="review", label_column="label")
    assert hfsent_main(["train", str(recipe)]) == 0, capsys.readouterr().err[-2000:]


# CLASS output folders: output_dir and the data overlap
def test_output_dir_equal_to_the_dataset_folder(tmp_path, tokenizer_dir, review_csv, capsys):
    data = _data_folder(tmp_path, review_csv)
    recipe = _quick(tmp_path, tokenizer_dir, data)
    _fails(["train", str(recipe), "--output_dir", str(data)], capsys, "is the data", repr(str(data)))


def test_a_dataset_file_inside_output_dir(tmp_path, tokenizer_dir, review_csv, capsys):
    out = tmp_path / "out"
    out.mkdir()
    shutil.copy(review_csv, out / "reviews.csv")
    recipe = _quick(tmp_path, tokenizer_dir, out / "reviews.csv")
    _fails(["train", str(recipe), "--output_dir", str(out)], capsys, "holds the data", "reviews.csv")


def test_pretraining_exclude_texts_inside_output_dir(tmp_path, tokenizer_dir, capsys):
    out = tmp_path / "out"
    out.mkdir()
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("今天天气很好。\n", encoding="utf-8")
    (out / "test.csv").write_text("review\n今天天气很好\n", encoding="utf-8")
    recipe = tiny_pretrain_recipe(tmp_path / "p.yaml", tokenizer_dir, corpus, out)
    args = ["--exclude_texts", str(out / "test.csv"), "--exclude_text_column", "review"]
    _fails(["pretrain", str(recipe), *args], capsys, "holds the data", "test.csv")


# CLASS resume
def test_resume_last_with_a_recipe_yaml_alias_bomb_in_the_folder(finetuned_dir, tmp_path, capsys):
    out = tmp_path / "out"
    shutil.copytree(finetuned_dir, out)
    for recipe in [out / "recipe.yaml", *out.glob("checkpoint-*/recipe.yaml")]:
        recipe.write_text(ALIAS_BOMB, encoding="utf-8")
    argv = ["train", str(finetuned_dir.parent / "recipe.yaml"), "--output_dir", str(out)]
    _fails([*argv, "--resume_from_checkpoint", "last"], capsys, "holds no hfsent run")  # read as no run, at once


# CLASS push
def test_push_of_a_folder_whose_config_json_is_not_json(hub, finetuned_dir, tmp_path, capsys):
    out = tmp_path / "out"
    shutil.copytree(finetuned_dir, out)
    (out / "config.json").write_text("{not json")
    _fails(["push", str(out), "user/broken"], capsys, "config.json", code=2)
    assert "user/broken" not in hub.repos


def test_push_with_an_alias_bomb_in_recipe_yaml(hub, finetuned_dir, tmp_path, capsys):
    out = tmp_path / "out"
    shutil.copytree(finetuned_dir, out)
    (out / "recipe.yaml").write_text(ALIAS_BOMB, encoding="utf-8")
    _fails(["push", str(out), "user/bomb"], capsys, "recipe.yaml", "not valid YAML at line", code=2)
    assert "user/bomb" not in hub.repos


def test_push_of_hard_linked_weights_is_refused(hub, finetuned_dir, tmp_path, capsys):
    out = tmp_path / "out"
    shutil.copytree(finetuned_dir, out)
    os.link(out / "model.safetensors", tmp_path / "elsewhere.safetensors")
    _fails(["push", str(out), "user/linked"], capsys, "no model weights (model.safetensors is a hard link", code=2)
    assert "user/linked" not in hub.repos


# CLASS serve: payloads an adversary sends
def _post(server, body: bytes) -> tuple[int, str]:
    with socket.create_connection(server.server_address[:2], timeout=30) as sock:
        sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
        response = http.client.HTTPResponse(sock, method="POST")
        response.begin()
        return response.status, json.loads(response.read())["error"]


SERVE_PAYLOADS = {
    "deeply nested parameter": (b'{"inputs": "x", "parameters": {"top_k": ' + b"[" * 900 + b"]" * 900 + b"}}", "top_k"),
    "huge unknown parameter name": (b'{"inputs": "x", "parameters": {"' + b"k" * 40_000 + b'": 1}}', "unknown"),
    "a 5,000-digit integer": (b'{"inputs": "x", "parameters": {"max_length": ' + b"9" * 5000 + b"}}", "malformed"),
    "NaN threshold": (b'{"inputs": "x", "parameters": {"threshold": NaN}}', "threshold"),
    "Infinity threshold": (b'{"inputs": "x", "parameters": {"threshold": Infinity}}', "threshold"),
}


@pytest.mark.parametrize("case", list(SERVE_PAYLOADS))
def test_serve_payload_gets_a_short_400(case, server):
    body, fragment = SERVE_PAYLOADS[case]
    status, error = _post(server, body)
    assert status == 400 and fragment in error
    assert len(error) < 300  # the client's value is not echoed back whole
