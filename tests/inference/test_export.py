"""``hfsent export --onnx --quantize int8``, then ``predict`` and ``serve`` with ``--backend onnx``."""

from __future__ import annotations

import copy
import json
import re
import threading
from concurrent.futures import ThreadPoolExecutor

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from huggingface_hub import InferenceClient

import hfsent
from hfsent import cli
from hfsent.inference import load_backend
from hfsent.inference.server import InferenceServer

from ..fixtures.helpers import PROBABILITY_TOLERANCE, decisive, review_tokenizer, run_cli
from ..fixtures.inference_helpers import one_torch_thread, review_texts, save_trained_tiny_checkpoint

N_ROWS = 10_000
# How far int8 dynamic quantization may move P(pos) from torch's (measured on AVX2 without VNNI: up to 0.058 on
# 10,000 review texts; ONNX Runtime's int8 kernels differ by CPU)
INT8_TOLERANCE = 0.1
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


def test_export_writes_a_self_contained_folder_and_prints_parity(exported, model_dir):
    out, stdout = exported
    for name in ("model.onnx", "model_int8.onnx", "config.json", "tokenizer.json", "tokenizer_config.json"):
        assert (out / name).is_file(), name
    assert json.loads((out / "config.json").read_text())["model_type"] == "hfsent"
    assert "parity with torch on 300 texts (threshold 0.5):" in stdout
    reports = {m[0]: (float(m[1]), int(m[2]), int(m[3])) for m in PARITY.findall(stdout)}
    assert set(reports) == {"model.onnx", "model_int8.onnx"}, stdout
    fp32_diff, fp32_agree, total = reports["model.onnx"]
    int8_diff, int8_agree, int8_total = reports["model_int8.onnx"]
    assert total == int8_total == 300
    assert fp32_diff < PROBABILITY_TOLERANCE and int8_diff < INT8_TOLERANCE
    # A label may differ only for a text whose torch P(pos) lies within the reported difference of 0.5 (the
    # difference is printed to 3 digits, hence 1.01): all others must agree. How many texts lie that close depends
    # on the model, which is trained here, on this machine's kernels.
    with one_torch_thread():
        backend = load_backend(str(model_dir), "torch", threads=1)
        probs = [r["positive_probability"] for r in hfsent.predict(review_texts(300, seed=21), backend)]
    assert fp32_agree >= sum(decisive(probs, 0.5, 1.01 * fp32_diff))
    assert int8_agree >= sum(decisive(probs, 0.5, 1.01 * int8_diff)) >= 0.9 * total


def test_exported_graph_quantizes_with_every_supported_onnxruntime(exported):
    """onnxruntime < 1.32's quantize_dynamic transposes Gemm weights in place; a weight shape also recorded in
    value_info then contradicts it (``ShapeInferenceError: ... differ in dimension 0: (32) vs (1)``, issue 11
    item 7 with onnx 1.23.1 / onnxruntime 1.30). The export must not record initializer shapes twice."""
    import onnx

    graph = onnx.load(str(exported[0] / "model.onnx"), load_external_data=False).graph
    weights = {init.name for init in graph.initializer}
    assert weights and not [info.name for info in graph.value_info if info.name in weights]


@pytest.fixture
def cpu_model(model_dir):
    from hfsent.inference import load_model_and_tokenizer

    return load_model_and_tokenizer(str(model_dir))


def _export_and_compare(model, tokenizer, reference, out):
    """Export ``model`` (a model object) to ``out`` and compare its ONNX probabilities with ``reference``'s."""
    from hfsent.inference.export import export_onnx

    before = {name: (p.device, p.dtype) for name, p in model.state_dict().items()}
    with one_torch_thread():
        files = export_onnx(model, out, tokenizer=tokenizer)
    assert files == [out / "model.onnx"]
    assert {name: (p.device, p.dtype) for name, p in model.state_dict().items()} == before  # left where it was
    texts = review_texts(40, seed=5)
    got = [r["positive_probability"] for r in hfsent.predict(texts, load_backend(str(out), "onnx", threads=1))]
    want = [r["positive_probability"] for r in hfsent.predict(texts, reference, tokenizer)]
    assert got == pytest.approx(want, abs=1e-5)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (none on this machine)")
def test_export_of_a_model_on_the_gpu(cpu_model, tmp_path):
    """A model loaded on the GPU exports a CPU graph equal to torch's (issue 11 item 7)."""
    model, tokenizer = cpu_model
    _export_and_compare(copy.deepcopy(model).to("cuda"), tokenizer, model, tmp_path / "onnx")


def test_export_of_a_bfloat16_model_object_gives_an_fp32_graph(cpu_model, tmp_path):
    """A model object in another dtype (as on a GPU) exports from an fp32 CPU copy and stays as it was."""
    model, tokenizer = cpu_model
    bf16 = copy.deepcopy(model).to(torch.bfloat16)
    reference = copy.deepcopy(bf16).to(torch.float32)  # the same (rounded) weights in fp32
    _export_and_compare(bf16, tokenizer, reference, tmp_path / "onnx")


def test_export_of_a_model_without_weights_says_so(model_dir, tmp_path):
    from transformers import AutoConfig, AutoModelForSequenceClassification

    from hfsent.inference.export import export_onnx

    with torch.device("meta"):
        model = AutoModelForSequenceClassification.from_config(AutoConfig.from_pretrained(model_dir))
    with pytest.raises(ValueError, match=r"is on the meta device \(not loaded\)"):
        export_onnx(model, tmp_path / "onnx", tokenizer=review_tokenizer())
    assert not (tmp_path / "onnx").exists()


def test_predict_onnx_int8_on_10k_parquet_rows(exported, model_dir, tmp_path):
    out_dir, _ = exported
    texts = review_texts(N_ROWS, seed=22)
    texts[100], texts[200] = None, ""
    src, out = tmp_path / "reviews.parquet", tmp_path / "scored.jsonl"
    pq.write_table(pa.table({"rid": list(range(N_ROWS)), "text": texts}), src, row_group_size=3000)

    good = [i for i in range(N_ROWS) if i not in (100, 200)]
    with ThreadPoolExecutor(1) as pool:  # the command on one core, the reference on the other meanwhile
        # no --backend: an export folder (model.onnx, no torch weights) runs on ONNX Runtime (issue 11 item 11)
        command = pool.submit(run_cli, "predict", str(out_dir), "-i", str(src), "-o", str(out), "--threads", "1")
        with one_torch_thread():
            reference = hfsent.predict([texts[i] for i in good], load_backend(str(model_dir), "torch", threads=1))
        proc = command.result()
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [r["rid"] for r in rows] == list(range(N_ROWS))
    assert rows[100]["pred_error"] == "missing text" and rows[200]["pred_error"] == "empty text"
    assert "flagged 2 rows" in proc.stdout

    want = [r["positive_probability"] for r in reference]
    got = [rows[i]["pred_positive_probability"] for i in good]
    assert max(abs(g - w) for g, w in zip(got, want, strict=True)) < INT8_TOLERANCE
    same = [rows[i]["pred_label"] == r["label"] for i, r in zip(good, reference, strict=True)]
    # int8 moves P(pos) by up to a few hundredths: texts that close to 0.5 may change label (measured: 0.03 % to
    # 0.9 % of them, by machine and tokenizer); every text further away keeps it
    assert all(s for s, clear in zip(same, decisive(want, 0.5, INT8_TOLERANCE), strict=True) if clear)
    assert sum(same) / len(good) >= 0.98
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


def test_serve_detects_an_export_folder(exported, tmp_path):
    """``hfsent serve <export dir>`` without --backend serves it with ONNX Runtime (issue 11 item 11)."""
    from .test_serve import request, start_server, stop_server

    out_dir, _ = exported
    proc, url, lines = start_server(out_dir, log_path=tmp_path / "serve.log", banner="(onnx, threshold 0.5)")
    try:
        text = review_texts(1, seed=24)[0]
        expected = hfsent.predict([text], load_backend(str(out_dir), "onnx", threads=1))[0]
        status, answer = request(url, "POST", body={"inputs": text})
        assert status == 200 and answer[0]["label"] == expected["label"]
        assert request(url)[1]["backend"] == "onnx"
    finally:
        stop_server(proc, lines)


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
