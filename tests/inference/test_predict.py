"""``hfsent predict``: files in, every row out in order with labels, bad rows flagged (through the CLI)."""

from __future__ import annotations

import csv
import json
import shutil
from concurrent.futures import ThreadPoolExecutor

import pytest
from transformers import pipeline

from hfsent import cli
from hfsent.inference.batching import length_sorted_batches

from ..fixtures.helpers import PROBABILITY_TOLERANCE, decisive, review_tokenizer, run_cli
from ..fixtures.inference_helpers import one_torch_thread, review_texts, save_trained_tiny_checkpoint

N_ROWS = 10_000
# Row index (0-based) -> the bad value written in the review column; None: the field is left out.
BAD_ROWS = {3: "", 4_999: "   ", 9_998: None}
TRICKY = '引号"和，逗号\n还有换行，质量很好'  # CSV quoting must survive the round trip


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return save_trained_tiny_checkpoint(tmp_path_factory.mktemp("predict") / "model", review_tokenizer())


def read_csv(path):
    with open(path, encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def read_jsonl(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_predict_10k_csv_keeps_order_flags_bad_rows_and_matches_pipeline(model_dir, tmp_path):
    texts = review_texts(N_ROWS, seed=7)
    texts[10] = TRICKY
    src, out = tmp_path / "reviews.csv", tmp_path / "scored.csv"
    with open(src, "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["id", "cat", "review"])
        for i, text in enumerate(texts):
            if i in BAD_ROWS:
                writer.writerow([i, "书籍"] if BAD_ROWS[i] is None else [i, "书籍", BAD_ROWS[i]])
            else:
                writer.writerow([i, "书籍", text])

    good = [i for i in range(N_ROWS) if i not in BAD_ROWS]
    with ThreadPoolExecutor(1) as pool:  # the command on one core, the pipeline on the other meanwhile
        command = pool.submit(
            run_cli, "predict", str(model_dir), "--input", str(src), "--output", str(out), "--threads", "1"
        )
        with one_torch_thread():
            clf = pipeline("text-classification", model=str(model_dir), batch_size=256)
            expected = clf([texts[i] for i in good], top_k=None)
        proc = command.result()
    assert proc.returncode == 0, proc.stderr
    assert f"wrote {N_ROWS} rows" in proc.stdout and "flagged 3 rows" in proc.stdout, proc.stdout

    rows = read_csv(out)
    assert len(rows) == N_ROWS
    assert [r["id"] for r in rows] == [str(i) for i in range(N_ROWS)]
    assert list(rows[0]) == [
        "id",
        "cat",
        "review",
        "pred_label",
        "pred_score",
        "pred_positive_probability",
        "pred_error",
    ]
    assert rows[10]["review"] == TRICKY and rows[10]["pred_label"] in ("neg", "pos")
    assert {i: rows[i]["pred_error"] for i in BAD_ROWS} == {
        3: "empty text",
        4_999: "empty text",
        9_998: "malformed row (2 fields, the header has 3)",
    }
    assert all(rows[i]["pred_label"] == "" and rows[i]["pred_score"] == "" for i in BAD_ROWS)

    assert all(rows[i]["pred_error"] == "" and rows[i]["review"] == texts[i] for i in good)
    # the pipeline pads other batches: P(pos) agrees to PROBABILITY_TOLERANCE, and so do the labels of all texts
    # further than that from the threshold (0.5, where the pipeline's argmax decides)
    want = [next(d["score"] for d in e if d["label"] == "pos") for e in expected]
    got = [float(rows[i]["pred_positive_probability"]) for i in good]
    assert got == pytest.approx(want, abs=PROBABILITY_TOLERANCE)
    same = [rows[i]["pred_label"] == e[0]["label"] for i, e in zip(good, expected, strict=True)]
    clear = decisive(want)
    assert all(s for s, c in zip(same, clear, strict=True) if c) and sum(clear) > 0.99 * len(good)
    assert all(float(rows[i]["pred_score"]) == max(p, 1 - p) for i, p in zip(good, got, strict=True))
    assert {rows[i]["pred_label"] for i in good} == {"neg", "pos"}  # the model is not constant


def test_predict_jsonl_flags_unusable_rows_and_applies_the_model_threshold(model_dir, tmp_path, capsys):
    tuned = tmp_path / "tuned"
    shutil.copytree(model_dir, tuned)
    config = json.loads((tuned / "config.json").read_text())
    config["threshold"] = 0.8
    (tuned / "config.json").write_text(json.dumps(config))

    texts = review_texts(40, seed=3)
    lines = [json.dumps({"text": t, "n": i, "tags": ["a", i]}, ensure_ascii=False) for i, t in enumerate(texts)]
    lines[5] = '{"text": "not closed'
    lines[6] = json.dumps({"text": 42, "n": 6})
    lines[7] = json.dumps({"text": None, "n": 7})
    lines[8] = json.dumps({"n": 8})
    lines[9] = json.dumps(["a", "list"])
    src, out = tmp_path / "in.jsonl", tmp_path / "out.csv"
    src.write_text("\n".join(lines) + "\n", encoding="utf-8")

    # In this process, through the `hfsent` console script's function: starting Python costs more than the run.
    assert cli.main(["predict", str(tuned), "--input", str(src), "--output", str(out)]) == 0
    stdout = capsys.readouterr().out
    rows = read_csv(out)
    assert len(rows) == 40
    errors = {i: rows[i]["pred_error"] for i in range(5, 10)}
    assert errors[5].startswith("invalid JSON")
    assert errors[6] == "not text (int)"
    assert errors[7] == errors[8] == "missing text"
    assert errors[9] == "not a JSON object (a list)"
    assert "flagged 5 rows" in stdout
    scored = [r for i, r in enumerate(rows) if i not in errors]
    assert [r["n"] for r in scored] == [str(i) for i in range(40) if i not in errors]
    assert json.loads(scored[0]["tags"]) == ["a", 0]
    for r in scored:  # config.threshold (0.8) decides, not 0.5
        assert r["pred_label"] == ("pos" if float(r["pred_positive_probability"]) >= 0.8 else "neg")
    assert any(0.5 <= float(r["pred_positive_probability"]) < 0.8 for r in scored)


def test_predict_plain_text_with_threshold_override(model_dir, tmp_path, capsys):
    texts = review_texts(30, seed=4)
    texts[2] = ""
    src, out = tmp_path / "reviews.txt", tmp_path / "out.jsonl"
    src.write_text("\n".join(texts) + "\n", encoding="utf-8")

    assert cli.main(["predict", str(model_dir), "-i", str(src), "-o", str(out), "--threshold", "0.3"]) == 0
    assert "wrote 30 rows" in capsys.readouterr().out
    rows = read_jsonl(out)
    assert [r["text"] for r in rows] == texts
    assert rows[2]["pred_error"] == "empty text" and rows[2]["pred_label"] is None
    for r in rows[:2] + rows[3:]:
        assert r["pred_error"] is None
        assert r["pred_label"] == ("pos" if r["pred_positive_probability"] >= 0.3 else "neg")
        assert r["pred_score"] == pytest.approx(
            r["pred_positive_probability"] if r["pred_label"] == "pos" else 1 - r["pred_positive_probability"]
        )
    assert any(0.3 <= r["pred_positive_probability"] < 0.5 for r in rows if r["pred_error"] is None)


def test_length_sorted_batches_respect_the_token_budget():
    lengths = [5, 100, 3, 50, 40]
    batches = list(length_sorted_batches(lengths, batch_size=3, max_tokens=100))
    assert batches == [[1], [3, 4], [0, 2]]  # longest first; a text over the budget runs alone
    assert all(len(b) * max(lengths[i] for i in b) <= 100 or len(b) == 1 for b in batches)


def test_a_few_dozen_texts_of_mixed_lengths_are_cut_into_batches_that_pad_little():
    # a server's model call: reviews of 3 to 300 tokens; filled in turn, batches of up to 16 pad them to ~1.5x
    lengths = [int(3 * 1.1**k) for k in range(49)][::-1] * 2
    batches = list(length_sorted_batches(lengths, batch_size=16, max_tokens=1024))
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    assert all(len(b) <= 16 and (len(b) * max(lengths[i] for i in b) <= 1024 or len(b) == 1) for b in batches)
    widths = [max(lengths[i] for i in b) for b in batches]
    assert widths == sorted(widths, reverse=True)  # longest first
    padded = sum(w * len(b) for w, b in zip(widths, batches, strict=True))
    assert padded / sum(lengths) < 1.15


@pytest.mark.parametrize(
    ("input_name", "output_name", "extra", "message"),
    [
        ("missing.csv", "out.csv", [], "input file not found: "),
        ("reviews.xlsx", "out.csv", [], "unsupported input format '.xlsx'"),
        ("reviews.csv", "out.parquet", [], "unsupported output format '.parquet'"),
        ("reviews.csv", "out.csv", ["--text-column", "body"], "text column 'body' not found"),
        ("cols.csv", "out.csv", [], "no text column in"),
    ],
)
def test_predict_usage_errors_name_the_problem(tmp_path, capsys, input_name, output_name, extra, message):
    (tmp_path / "reviews.csv").write_text("id,review\n1,好\n", encoding="utf-8")
    (tmp_path / "reviews.xlsx").write_bytes(b"PK")
    (tmp_path / "cols.csv").write_text("a,b\n1,2\n", encoding="utf-8")
    argv = ["predict", "unused-model", "-i", str(tmp_path / input_name), "-o", str(tmp_path / output_name), *extra]
    with pytest.raises(SystemExit) as exit_info:  # the `hfsent` console script is hfsent.cli:main
        cli.main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert f"hfsent predict: error: {message}" in err
    if "column" in message:
        assert "available columns: " in err
    if "format" in message:
        assert "accepted: .csv, .jsonl" in err
    assert not (tmp_path / output_name).exists()


def test_long_texts_tokenize_a_bounded_prefix_to_the_same_ids(zh_tokenizer):
    """Issue 12 (memory): a text is tokenized only as far as max_length needs, and the ids are those of the
    whole text truncated, also where the cut falls inside a word or after a long run of spaces or symbols."""
    from hfsent.endpoint_handler import encode_truncated

    latin = " ".join(["unbelievably", "x" * 150, "good"] * 800)  # words of many pieces, a >100-char [UNK] word
    texts = [
        "好" * 50_000,
        latin,
        " " * 60_000 + "质量很好" * 2000,  # no token in the first prefix: it must grow
        "，".join(review_texts(300, seed=3)),
        "short",
        "a" * 9000,  # one long word: one [UNK]
    ]
    for max_length in (16, 128):
        want = zh_tokenizer(texts, truncation=True, max_length=max_length)["input_ids"]
        assert encode_truncated(zh_tokenizer, texts, max_length) == want


def test_predict_on_one_5_million_character_line_stays_under_1_gb(model_dir, tmp_path):
    """Issue 12 acceptance 4: peak RSS of `hfsent predict` (a child process, measured by its parent's
    RUSAGE_CHILDREN) on a file holding one 5,000,000-character line; it was 3.9 GB."""
    import os
    import subprocess
    import sys

    from ..fixtures.helpers import ROOT

    line = "物流很快，质量很好，" * 500_000
    (tmp_path / "long.txt").write_text(line + "\n", encoding="utf-8")
    measure = (
        "import resource, subprocess, sys\n"
        "proc = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
        "print(proc.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, proc.stderr[-2000:])\n"
    )
    cmd = [sys.executable, "-c", measure, sys.executable, "-m", "hfsent", "predict", str(model_dir)]
    cmd += ["-i", str(tmp_path / "long.txt"), "-o", str(tmp_path / "out.jsonl"), "--threads", "1"]
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    code, peak_kib, stderr = out.stdout.split(" ", 2)
    assert code == "0", stderr + out.stderr
    assert int(peak_kib) < 1024 * 1024, f"peak RSS {int(peak_kib) / 1024:.0f} MiB"
    assert read_jsonl(tmp_path / "out.jsonl")[0]["pred_label"] in ("neg", "pos")


def test_torch_batches_on_several_cores_give_the_one_core_answers_in_order(model_dir):
    """``threads`` > 1 runs torch batches concurrently (one core each): same P(pos), same order, as one thread."""
    import hfsent
    from hfsent.inference.backends import load_backend

    texts = [*review_texts(300, seed=11), "好", "差" * 600]  # lengths from 1 character to past the model's limit
    with one_torch_thread():
        one = hfsent.predict(texts, load_backend(str(model_dir), "torch", threads=1))
        three = load_backend(str(model_dir), "torch", threads=3)
        assert three.workers == 3
        many = hfsent.predict(texts, three)
    assert len(many) == len(texts)
    assert [r["label"] for r in many] == [r["label"] for r in one]
    want = [r["positive_probability"] for r in one]
    assert [r["positive_probability"] for r in many] == pytest.approx(want, abs=1e-6)
