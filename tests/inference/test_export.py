"""``hfsent export --onnx --quantize int8``, then ``predict`` and ``serve`` with ``--backend onnx``."""

from __future__ import annotations

import json
import re
import threading

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from huggingface_hub import InferenceClient

import hfsent
from hfsent import cli
from hfsent.inference import load_backend
from hfsent.inference.server import InferenceServer

from ..fixtures.helpers import review_tokenizer, run_cli
from ..fixtures.inference_helpers import one_torch_thread, review_texts, save_trained_tiny_checkpoint

N_ROWS = 10_000
PARITY = re.compile(r"(model(?:_int8)?\.onnx): max \|P\(pos\) - torch\| = (\S+), labels agree on (\d+)/(\d+) texts")


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return save_trained_tiny_checkpoint(tmp_path_factory.mktemp("export") / "model", review_tokenizer())


@pytest.fixture(scope="module")
def exported(model_dir, tmp_path_factory):
    """Export through the CLI, checking parity on review texts from a file; return (folder, stdout)."""
    tmp = tmp_path_factory.mktemp("onnx")
    parity_file = tmp / "parity.jsonl"
    parity_file.write_text("".join(json.dumps({"body": t}) + "\n" for t in review_texts(300, seed=21)))
    out = tmp / "onnx"
    proc = run_cli(
        "export", str(model_dir), str(out), "--onnx", "--quantize", "int8",
        "--parity-file", str(parity_file), "--text-column", "body", "--parity-samples", "300", "--threads", "1",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return out, proc.stdout


def test_export_writes_a_self_contained_folder_and_prints_parity(exported):
    out, stdout = exported
    for name in ("model.onnx", "model_int8.onnx", "config.json", "tokenizer.json", "tokenizer_config.json"):
        assert (out / name).is_file(), name
    assert json.loads((out / "config.json").read_text())["model_type"] == "hfsent"
    assert "parity with torch on 300 texts (threshold 0.5):" in stdout
    reports = {m[0]: (float(m[1]), int(m[2]), int(m[3])) for m in PARITY.findall(stdout)}
    assert set(reports) == {"model.onnx", "model_int8.onnx"}, stdout
    fp32_diff, fp32_agree, total = reports["model.onnx"]
    assert fp32_diff < 1e-5 and fp32_agree == total == 300
    int8_diff, int8_agree, _ = reports["model_int8.onnx"]
    assert int8_diff < 0.05 and int8_agree >= 297


def test_predict_onnx_int8_on_10k_parquet_rows(exported, model_dir, tmp_path):
    out_dir, _ = exported
    texts = review_texts(N_ROWS, seed=22)
    texts[100], texts[200] = None, ""
    src, out = tmp_path / "reviews.parquet", tmp_path / "scored.jsonl"
    pq.write_table(pa.table({"rid": list(range(N_ROWS)), "text": texts}), src, row_group_size=3000)

    proc = run_cli("predict", str(out_dir), "--backend", "onnx", "-i", str(src), "-o", str(out), "--threads", "1")
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [r["rid"] for r in rows] == list(range(N_ROWS))
    assert rows[100]["pred_error"] == "missing text" and rows[200]["pred_error"] == "empty text"
    assert "flagged 2 rows" in proc.stdout

    good = [i for i in range(N_ROWS) if i not in (100, 200)]
    with one_torch_thread():
        reference = hfsent.predict([texts[i] for i in good], load_backend(str(model_dir)))
    agree = sum(rows[i]["pred_label"] == r["label"] for i, r in zip(good, reference, strict=True))
    assert agree / len(good) >= 0.99
    assert {rows[i]["pred_label"] for i in good} == {"neg", "pos"}


def test_concurrent_onnx_workers_give_the_one_worker_probabilities_in_input_order(exported):
    out_dir, _ = exported
    texts = review_texts(700, seed=24)  # mixed lengths: batches finish out of order
    one = load_backend(str(out_dir), "onnx", threads=1)
    three = load_backend(str(out_dir), "onnx", threads=3)
    # the same batches (700 texts fill 3 workers with batches of 16) give bit-identical int8 results
    assert three.positive_probabilities(texts, batch_size=16) == one.positive_probabilities(texts, batch_size=16)
    # fewer texts than workers x batch size are cut into smaller batches: every text, in order. (fp32 here:
    # int8 quantizes activations per batch, so a different batching moves its probabilities slightly.)
    one, three = (load_backend(str(out_dir / "model.onnx"), "onnx", threads=n) for n in (1, 3))
    assert three.positive_probabilities(texts[:5]) == pytest.approx(one.positive_probabilities(texts[:5]), abs=1e-6)


def test_serve_onnx_backend_with_inference_client(exported, local_http_client):
    out_dir, _ = exported
    text = review_texts(1, seed=23)[0]
    backend = load_backend(str(out_dir), "onnx", threads=1)
    expected = hfsent.predict([text], backend)[0]
    # In this process (`hfsent serve` itself is tested in test_serve.py): starting Python costs more than the test.
    server = InferenceServer(("127.0.0.1", 0), backend)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        # huggingface_hub 2.4 returns the first element of the hosted-format answer: the decided label.
        answer = InferenceClient(model=server.url, timeout=30).text_classification(text)
    finally:
        server.shutdown()
        server.server_close()
    assert answer.label == expected["label"]
    assert answer.score == pytest.approx(expected["score"], abs=1e-5)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["export", "{model}", "{tmp}/out"], "choose an export format: --onnx"),
        (["export", "{tmp}/no-model", "{tmp}/out", "--onnx"], "model not found: "),
        (["export", "{model}", "{tmp}/out", "--onnx", "--quantize", "int4"], "argument --quantize: invalid choice"),
        (
            ["predict", "{tmp}", "--backend", "onnx", "-i", "{tmp}/in.txt", "-o", "{tmp}/o.csv"],
            "cannot load model '{tmp}' with the onnx backend: no ONNX model at",
        ),
    ],
)
def test_export_and_onnx_usage_errors(model_dir, tmp_path, capsys, argv, message):
    (tmp_path / "in.txt").write_text("好\n", encoding="utf-8")
    argv = [a.format(model=model_dir, tmp=tmp_path) for a in argv]
    message = message.format(tmp=tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        cli.main(argv)
    assert exit_info.value.code == 2
    assert f"hfsent {argv[0]}: error: {message}" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
