"""Fuzz ``hfsent predict`` and ``hfsent export`` (issue 12): bad files and options, in-process through
``hfsent.cli.main``.

Each case: exit 2, no traceback, the last stderr line is one ``hfsent <command>: error: ...`` naming the culprit,
no partial output left beside the output, and an output file written earlier is intact.
"""

from __future__ import annotations

import pytest

from hfsent import cli

from ..fixtures.helpers import review_tokenizer
from ..fixtures.inference_helpers import save_trained_tiny_checkpoint

EARLIER = "review,pred_label\n好,pos\n"  # an earlier run's output, which a failed run must leave as it was
GBK_HEADER = "评论,标签\n好,1\n".encode("gbk")


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return save_trained_tiny_checkpoint(tmp_path_factory.mktemp("fuzz-predict") / "model", review_tokenizer(), 5)


def write_inputs(tmp) -> None:
    (tmp / "ok.csv").write_text("id,review\n1,好\n2,坏\n", encoding="utf-8")
    (tmp / "gbk.csv").write_bytes(GBK_HEADER)
    (tmp / "gbk.jsonl").write_bytes('{"评论": "好"}\n'.encode("gbk"))
    (tmp / "gbk-late.csv").write_bytes(b"id,review\n" + b"1,ok\n" * 5000 + "2,坏\n".encode("gbk"))
    (tmp / "empty.csv").write_bytes(b"")
    (tmp / "dup.csv").write_text("review,review\n好,坏\n", encoding="utf-8")
    (tmp / "taken.csv").write_text("review,pred_label\n好,x\n", encoding="utf-8")
    (tmp / "dir.csv").mkdir()
    (tmp / "not-a-folder").write_text("x")


# (argv, culprit named in the error); {m}: the model, {t}: the case's folder, out.csv is the earlier output
CASES = {
    "missing input": (
        ["predict", "{m}", "-i", "{t}/nope.csv", "-o", "{t}/out.csv"],
        "input file not found: '{t}/nope.csv'",
    ),
    "non-UTF-8 CSV header": (
        ["predict", "{m}", "-i", "{t}/gbk.csv", "-o", "{t}/out.csv"],
        "'{t}/gbk.csv' is not UTF-8 text",
    ),
    "non-UTF-8 JSONL": (
        ["predict", "{m}", "-i", "{t}/gbk.jsonl", "-o", "{t}/out.csv"],
        "'{t}/gbk.jsonl' is not UTF-8 text",
    ),
    "non-UTF-8 row 5,001": (
        ["predict", "{m}", "-i", "{t}/gbk-late.csv", "-o", "{t}/out.csv", "--chunk-rows", "1000"],
        "'{t}/gbk-late.csv' is not UTF-8 text",
    ),
    "output is a folder": (
        ["predict", "{m}", "-i", "{t}/ok.csv", "-o", "{t}/dir.csv"],
        "the output '{t}/dir.csv' is a folder",
    ),
    "output format": (
        ["predict", "{m}", "-i", "{t}/ok.csv", "-o", "{t}/out.xlsx"],
        "unsupported output format '.xlsx'",
    ),
    "output overwrites input": (
        ["predict", "{m}", "-i", "{t}/out.csv", "-o", "{t}/out.csv"],
        "would overwrite the input",
    ),
    "output folder missing": (
        ["predict", "{m}", "-i", "{t}/ok.csv", "-o", "{t}/no/out.csv"],
        "output folder not found: '{t}/no'",
    ),
    "unknown column": (
        ["predict", "{m}", "-i", "{t}/ok.csv", "-o", "{t}/out.csv", "--text-column", "reviw"],
        "text column 'reviw' not found",
    ),
    "empty CSV": (["predict", "{m}", "-i", "{t}/empty.csv", "-o", "{t}/out.csv"], "'{t}/empty.csv' has no header row"),
    "duplicated columns": (
        ["predict", "{m}", "-i", "{t}/dup.csv", "-o", "{t}/out.csv"],
        "duplicated column names: 'review'",
    ),
    "prefix clash": (["predict", "{m}", "-i", "{t}/taken.csv", "-o", "{t}/out.csv"], "already has column 'pred_label'"),
    "chunk rows 0": (
        ["predict", "{m}", "-i", "{t}/ok.csv", "-o", "{t}/out.csv", "--chunk-rows", "0"],
        "argument --chunk-rows: expected an integer >= 1, got '0'",
    ),
    "threshold 1.5": (
        ["predict", "{m}", "-i", "{t}/ok.csv", "-o", "{t}/out.csv", "--threshold", "1.5"],
        "argument --threshold: threshold must be strictly between 0 and 1",
    ),
    "batch size 0": (
        ["predict", "{m}", "-i", "{t}/ok.csv", "-o", "{t}/out.csv", "--batch-size", "0"],
        "argument --batch-size: expected an integer >= 1, got '0'",
    ),
    "model missing": (
        ["predict", "{t}/no-model", "-i", "{t}/ok.csv", "-o", "{t}/out.csv"],
        "model not found: '{t}/no-model'",
    ),
    "model is a data folder": (["predict", "{t}", "-i", "{t}/ok.csv", "-o", "{t}/out.csv"], "cannot load model '{t}'"),
    "export without a format": (["export", "{m}", "{t}/onnx"], "choose an export format: --onnx"),
    "export OUT is a file": (
        ["export", "{m}", "{t}/not-a-folder", "--onnx"],
        "OUT exists and is not a folder: '{t}/not-a-folder'",
    ),
    "export --text-column alone": (
        ["export", "{m}", "{t}/onnx", "--onnx", "--text-column", "x"],
        "--text-column needs --parity-file",
    ),
    "export bad parity file": (
        ["export", "{m}", "{t}/onnx", "--onnx", "--parity-file", "{t}/gbk.csv"],
        "'{t}/gbk.csv' is not UTF-8 text",
    ),
    "export parity column missing": (
        ["export", "{m}", "{t}/onnx", "--onnx", "--parity-file", "{t}/ok.csv", "--text-column", "body"],
        "text column 'body' not found in '{t}/ok.csv'",
    ),
    "export quantize int4": (
        ["export", "{m}", "{t}/onnx", "--onnx", "--quantize", "int4"],
        "argument --quantize: invalid choice: 'int4'",
    ),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_bad_predict_or_export_input_is_one_line_error(model_dir, tmp_path, capfd, case):
    argv, culprit = case
    write_inputs(tmp_path)
    earlier = tmp_path / "out.csv"
    earlier.write_text(EARLIER, encoding="utf-8")
    before = sorted(p.name for p in tmp_path.iterdir())
    argv = [a.format(m=model_dir, t=tmp_path) for a in argv]
    with pytest.raises(SystemExit) as exit_info:
        cli.main(argv)
    assert exit_info.value.code == 2
    err = capfd.readouterr().err
    assert "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert last.startswith(f"hfsent {argv[0]}: error: "), err
    assert culprit.format(t=tmp_path) in last, err
    assert earlier.read_text(encoding="utf-8") == EARLIER  # intact
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no partial output, no export folder
