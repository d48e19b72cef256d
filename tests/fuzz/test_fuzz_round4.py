"""Fuzz, round 4: the surfaces added last (multi-label heads, text pairs, non-BERT backbones, causal-LM pretraining,
``hfsent convert-asap``), fed what a user gets wrong.

Every bad input must end as ONE line ``hfsent <command>: error: ...`` naming the file/column/key/value at fault and
what is accepted, exit code 2, no traceback and no output folder left behind; ``hfsent serve`` answers a 4xx.
Grouped by the class they probe (the ``CLASS`` comment before each group).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from transformers import GPT2Config

from hfsent.cli import main as hfsent_main

from ..fixtures.helpers import tiny_pretrain_recipe, tiny_recipe


def _fails(argv: list[str], capsys, *fragments: str, code: int = 2) -> str:
    """Run ``hfsent`` in process; assert exit ``code`` and one error line holding every fragment; return it."""
    try:
        got = hfsent_main(argv)
    except SystemExit as exit_info:  # argparse's error(): predict, export, convert-asap
        got = exit_info.code
    assert got == code
    err = capsys.readouterr().err
    assert "Traceback" not in err, err[-3000:]
    lines = [line for line in err.splitlines() if line.startswith(f"hfsent {argv[0]}: ")]
    assert len(lines) == 1, err[-3000:]
    line = lines[0]
    assert line.startswith(f"hfsent {argv[0]}: error: "), line
    for fragment in fragments:
        assert fragment in line, line
    return line


def _quick(tmp_path: Path, tokenizer_dir: Path, data: Path, **keys) -> Path:
    """A tiny recipe that would train one step: what each case breaks must fail before that."""
    keys = {"max_steps": 1, "save_strategy": "no", "eval_strategy": "no", **keys}
    return tiny_recipe(tmp_path, tokenizer_dir, data, **keys)


def _config_folder(path: Path, config: dict) -> Path:
    path.mkdir(parents=True)
    (path / "config.json").write_text(json.dumps(config), encoding="utf-8")
    return path


GPT2_TINY = {"model_type": "gpt2", "n_layer": 1, "n_head": 2, "n_embd": 16, "n_positions": 64}


# CLASS config: a non-BERT backbone's config that cannot build a model (GPT-2 names its sizes n_embd, n_head, ...)
BACKBONE_OVERRIDES = {
    "width not a multiple of the heads": ("n_embd=30,n_head=4", "n_embd is 30; expected a multiple of n_head (4)"),
    "no layers": ("n_layer=0", "n_layer is 0; expected an integer >= 1"),
    "dropout 5": ("resid_pdrop=5.0", "resid_pdrop is 5.0; expected a probability in [0, 1]"),
}


@pytest.mark.parametrize("case", list(BACKBONE_OVERRIDES))
@pytest.mark.parametrize("command", ["train", "pretrain"])
def test_decoder_config_overrides_that_cannot_build_a_model(command, case, tmp_path, tokenizer_dir, review_csv, capsys):
    override, fragment = BACKBONE_OVERRIDES[case]
    if command == "train":
        gpt2 = GPT2Config(**{k: v for k, v in GPT2_TINY.items() if k != "model_type"})
        gpt2.save_pretrained(tmp_path / "gpt2")
        recipe = _quick(
            tmp_path, tokenizer_dir, review_csv, config_name=str(tmp_path / "gpt2"), config_overrides=override
        )
    else:
        corpus = tmp_path / "corpus.txt"
        corpus.write_text("今天天气很好。\n物流很快，质量很好\n", encoding="utf-8")
        overrides = "n_layer=1,n_head=2,n_embd=16,n_positions=64," + override
        recipe = tiny_pretrain_recipe(
            tmp_path / "p.yaml", tokenizer_dir, corpus, tmp_path / "out", objective="causal_lm",
            config_overrides=overrides,
        )  # fmt: skip
    _fails([command, str(recipe)], capsys, "invalid model config (config_overrides", fragment)
    assert not (tmp_path / "out").exists()


BACKBONE_CONFIGS = {
    "a string": ("gpt2", ["backbone_config must be a config or a dict with a model_type", "got str 'gpt2'"]),
    "a list": ([1, 2], ["backbone_config must be a config or a dict", "got list"]),
    "a size of the wrong type": (
        {**GPT2_TINY, "n_layer": "two"},
        ["backbone_config of model_type 'gpt2' is invalid", "'n_layer' expected int, got str"],
    ),
    "a dropout of 3": (
        {**GPT2_TINY, "resid_pdrop": 3.0},
        ["its backbone_config): resid_pdrop is 3.0; expected a probability in [0, 1]"],
    ),
    "a misspelt size": (
        {**GPT2_TINY, "n_embed": 32},
        ["its backbone_config): 'n_embed' is no gpt2 setting (it would be ignored); did you mean 'n_embd'?"],
    ),
    "heads that do not divide": (
        {**GPT2_TINY, "n_embd": 30, "n_head": 4},
        ["its backbone_config): n_embd is 30; expected a multiple of n_head (4)"],
    ),
}


@pytest.mark.parametrize("case", list(BACKBONE_CONFIGS))
def test_an_hfsent_config_whose_backbone_config_is_bad(case, tmp_path, tokenizer_dir, review_csv, capsys):
    backbone, fragments = BACKBONE_CONFIGS[case]
    folder = _config_folder(tmp_path / "cfg", {"model_type": "hfsent", "backbone_config": backbone})
    recipe = _quick(tmp_path, tokenizer_dir, review_csv, config_name=str(folder), config_overrides=None)
    _fails(["train", str(recipe)], capsys, f"config_name {str(folder)!r}", *fragments)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"n_layer": "two"}, "'n_layer' expected int, got str"),
        ({"n_layers": 1}, "'n_layers' is no gpt2 setting (it would be ignored); did you mean 'n_layer'?"),
    ],
    ids=["a size of the wrong type", "a misspelt size"],
)
def test_a_gpt2_config_json_that_cannot_build_the_model_it_names(
    change, fragment, tmp_path, tokenizer_dir, review_csv, capsys
):
    folder = _config_folder(tmp_path / "cfg", {**GPT2_TINY, **change})
    recipe = _quick(tmp_path, tokenizer_dir, review_csv, config_name=str(folder), config_overrides=None)
    _fails(["train", str(recipe)], capsys, f"config_name {str(folder)!r}", fragment)
    assert not (tmp_path / "out").exists()


# CLASS config: a pooling the backbone of model_name_or_path cannot take (was: an AttributeError mid-training for
# 'pooler', and a GPT-2 classifier reading its first token, which sees only itself, for 'cls')
POOLINGS = {
    "pooler on GPT-2": (GPT2_TINY, "pooler", "pooling 'pooler' reads the first token, which a gpt2 decoder"),
    "cls on GPT-2": (GPT2_TINY, "cls", "use 'last' (the default for decoders)"),
    "pooler on RoBERTa": (
        {"model_type": "roberta", "num_hidden_layers": 1, "hidden_size": 16, "num_attention_heads": 2},
        "pooler",
        "a roberta backbone takes 'cls'",
    ),
}


@pytest.mark.parametrize("case", list(POOLINGS))
def test_a_pooling_the_checkpoints_backbone_cannot_take(case, tmp_path, tokenizer_dir, review_csv, capsys):
    config, pooling, fragment = POOLINGS[case]
    checkpoint = _config_folder(tmp_path / "ckpt", config)  # refused on its config, before weights are looked for
    recipe = _quick(
        tmp_path, tokenizer_dir, review_csv, model_name_or_path=str(checkpoint), config_overrides=None, pooling=pooling
    )
    _fails(["train", str(recipe)], capsys, "invalid value for 'pooling'", fragment)
    assert not (tmp_path / "out").exists()


# CLASS config: LoRA targets the backbone does not have (was peft's NoMatchingPeftModuleError, exit 1)
LORA_TARGETS = {
    "BERT's names on GPT-2": ("gpt2", ["query", "value"], "'query' names no layer of the gpt2 backbone", "c_attn"),
    "GPT-2's names on BERT": ("bert", ["c_attn"], "'c_attn' names no layer of the bert backbone", "query"),
    "one of two unknown": ("bert", ["query", "q_proj"], "'q_proj' names no layer of the bert backbone", "value"),
}


@pytest.mark.parametrize("case", list(LORA_TARGETS))
def test_lora_targets_that_name_no_layer(case, tmp_path, tokenizer_dir, review_csv, capsys):
    backbone, targets, fragment, listed = LORA_TARGETS[case]
    keys = {"use_lora": True, "lora_target_modules": targets, "max_train_samples": 8}
    if backbone == "gpt2":
        keys.update(config_name=str(_config_folder(tmp_path / "gpt2", GPT2_TINY)), config_overrides=None)
    recipe = _quick(tmp_path, tokenizer_dir, review_csv, **keys)
    line = _fails(["train", str(recipe)], capsys, "invalid value for 'lora_target_modules'", fragment)
    assert listed in line.split("its layers: ")[1]
    assert not (tmp_path / "out").exists()


# CLASS text pairs: a pair model over a backbone whose tokenizer gives no token_type_ids (GPT-2's, RoBERTa's) was a
# KeyError in `hfsent predict`, `hfsent export` and hfsent.predict (the handler answered)
def _gpt2_tokenizer():
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import GPT2TokenizerFast

    from ..fixtures.helpers import REVIEWS

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    alphabet = pre_tokenizers.ByteLevel.alphabet()
    bpe.train_from_iterator(
        REVIEWS, trainers.BpeTrainer(vocab_size=300, special_tokens=["<eos>"], initial_alphabet=alphabet)
    )
    tokenizer = GPT2TokenizerFast(tokenizer_object=bpe, eos_token="<eos>", bos_token="<eos>", unk_token="<eos>")
    tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def test_a_gpt2_text_pair_model_predicts_and_exports(tmp_path, capsys):
    import torch
    from transformers import AutoConfig

    import hfsent

    tokenizer = _gpt2_tokenizer()
    assert "token_type_ids" not in tokenizer("服务", "很好")
    backbone = AutoConfig.for_model("gpt2", **{k: v for k, v in GPT2_TINY.items() if k != "model_type"})
    backbone.vocab_size = len(tokenizer)
    config = hfsent.HfSentConfig(backbone_config=backbone, text_pairs=True, pad_token_id=tokenizer.pad_token_id)
    torch.manual_seed(0)
    model = hfsent.HfSentModel(config)
    with torch.no_grad():
        model.classifier.weight.normal_(0.0, 2.0)
    model.save_pretrained(tmp_path / "model")
    tokenizer.save_pretrained(tmp_path / "model")
    rows = tmp_path / "rows.csv"
    rows.write_text("aspect,review\n服务,服务很好\n物流,物流太慢了\n", encoding="utf-8")
    pairs = ["--text-column", "aspect", "--text-pair-column", "review"]
    assert (
        hfsent_main(["predict", str(tmp_path / "model"), "-i", str(rows), "-o", str(tmp_path / "a.csv"), *pairs]) == 0
    )
    assert (
        hfsent_main(["export", str(tmp_path / "model"), str(tmp_path / "onnx"), "--onnx", "--parity-samples", "8"]) == 0
    )
    onnx = ["predict", str(tmp_path / "onnx"), "--backend", "onnx", "-i", str(rows), "-o", str(tmp_path / "b.csv")]
    assert hfsent_main([*onnx, *pairs]) == 0, capsys.readouterr().err[-2000:]
    expected = hfsent.predict(["服务", "物流"], str(tmp_path / "model"), text_pairs=["服务很好", "物流太慢了"])
    for out in ("a.csv", "b.csv"):
        lines = (tmp_path / out).read_text(encoding="utf-8").splitlines()[1:]
        got = [float(line.split(",")[4]) for line in lines]
        assert got == pytest.approx([r["positive_probability"] for r in expected], abs=1e-4)


# CLASS text pairs in a recipe: the side `truncation` names is too short to cut (was tokenizers' "Truncation error",
# exit 1); only_second without a text pair
def _pairs_csv(path: Path, review_csv: Path, first_repeats: int = 1) -> Path:
    import csv

    with review_csv.open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["label", "aspect", "review"])
        for i, row in enumerate(rows):
            writer.writerow([row["label"], ("服务" if i % 2 else "质量") * first_repeats, row["review"]])
    return path


@pytest.mark.parametrize(
    ("first_repeats", "truncation"),
    [(40, None), (40, "only_second"), (1, "only_first")],
    ids=["first text longer than max_length", "the same, only_second named", "only_first on a 2-character aspect"],
)
def test_text_pairs_whose_named_side_is_too_short_to_cut_train(
    first_repeats, truncation, tmp_path, tokenizer_dir, review_csv, capsys
):
    data = _pairs_csv(tmp_path / "pairs.csv", review_csv, first_repeats)
    keys = {"text_column": "aspect", "text_pair_column": "review", "max_length": 16, "max_train_samples": 16}
    if truncation:
        keys["truncation"] = truncation
    recipe = _quick(tmp_path, tokenizer_dir, data, **keys)
    assert hfsent_main(["train", str(recipe)]) == 0, capsys.readouterr().err[-2000:]
    assert (tmp_path / "out" / "model.safetensors").is_file()


def test_a_text_pair_column_that_is_a_label_column(tmp_path, tokenizer_dir, review_csv, capsys):
    # labels written as text ("0"/"1" in JSON Lines) were read as the second text of each pair
    rows = _label_rows(tmp_path / "rows.jsonl", review_csv, lambda i: {"food": str(i % 2), "service": str(i // 2 % 2)})
    recipe = _quick(tmp_path, tokenizer_dir, rows, label_column=["food", "service"], text_pair_column="service")
    _fails(["train", str(recipe)], capsys, "text_pair_column and label_column are both 'service'")
    assert not (tmp_path / "out").exists()


def test_truncation_only_second_without_a_text_pair(tmp_path, tokenizer_dir, review_csv, capsys):
    recipe = _quick(tmp_path, tokenizer_dir, review_csv, truncation="only_second")
    _fails(["train", str(recipe)], capsys, "invalid value for 'truncation'", "no text_pair_column")
    assert not (tmp_path / "out").exists()


# CLASS labels: every row's label invalid (was "no usable rows ... outside {0, 1}" whatever the labels should be), a
# label name holding "|" (hfsent predict joins labels with it: ambiguous),
# a multi-label recipe with one label (was a shape error mid-training, exit 1)
def _label_rows(path: Path, review_csv: Path, cells) -> Path:
    import csv

    with review_csv.open(encoding="utf-8") as f:
        texts = [row["review"] for row in csv.DictReader(f)]
    rows = [{"review": text, **cells(i)} for i, text in enumerate(texts)]
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
    return path


LABEL_CASES = {
    "names joined by | in a binary column": (
        lambda i: {"label": "food|service" if i % 2 else "food"},
        {},
        ["label 'food' in column 'label', row 0", "is not 0 or 1", "set label_list"],
    ),
    "label_list over a 0/1 column": (
        lambda i: {"label": i % 2},
        {"label_list": ["food", "service"]},
        [
            "label 0 in column 'label', row 0",
            "is not one of the labels ['food', 'service'] (a cell holds a list of them",
        ],
    ),
    "yes/no in label columns": (
        lambda i: {"food": "yes" if i % 2 else "no", "service": i % 2},
        {"label_column": ["food", "service"]},
        ["label 'no' in column 'food', row 0", "is not 0 or 1", "such rows); every row's is invalid"],
    ),
    "label_list of one name": (
        lambda i: {"label": ["food"] if i % 2 else []},
        {"label_list": ["food"]},
        ["invalid value for 'label_list': ['food']; expected at least two label names"],
    ),
    "a label name holding |": (
        lambda i: {"label": ["food|drink", "service"] if i % 2 else ["service"]},
        {},
        ["label name 'food|drink' (column 'label'", "holds '|', which joins the labels of a row"],
    ),
    "a label column named with |": (
        lambda i: {"a|b": i % 2, "c": i // 2 % 2},
        {"label_column": ["a|b", "c"]},
        ["label name 'a|b' (label_column) holds '|'"],
    ),
    "lists holding one name": (
        lambda i: {"label": ["food"] if i % 2 else []},
        {},
        ["column 'label'", "names one label ('food') in its train split", "at least two"],
    ),
}


@pytest.mark.parametrize("case", list(LABEL_CASES))
def test_labels_that_cannot_make_a_model(case, tmp_path, tokenizer_dir, review_csv, capsys):
    cells, keys, fragments = LABEL_CASES[case]
    data = _label_rows(tmp_path / "labels.jsonl", review_csv, cells)
    recipe = _quick(tmp_path, tokenizer_dir, data, **keys)
    _fails(["train", str(recipe)], capsys, *fragments)
    assert not (tmp_path / "out").exists()


# CLASS text pairs at inference: --text-pair-column naming the text column paired each text with itself, silently
@pytest.fixture(scope="module")
def pair_model(tmp_path_factory, zh_tokenizer) -> Path:
    import torch

    import hfsent

    from ..fixtures.helpers import tiny_config

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("round4-pair") / "model"
    hfsent.HfSentModel(tiny_config(len(zh_tokenizer), text_pairs=True)).save_pretrained(path)
    zh_tokenizer.save_pretrained(path)
    return path


@pytest.mark.parametrize(
    ("command", "args"),
    [
        ("predict", ["--text-column", "review", "--text-pair-column", "review"]),
        ("predict", ["--text-pair-column", "review"]),  # the text column found by default
        ("export", ["--onnx", "--text-column", "review", "--text-pair-column", "review"]),
    ],
    ids=["predict, both named", "predict, the default text column", "export parity file"],
)
def test_a_text_pair_column_that_is_the_text_column(command, args, pair_model, tmp_path, capsys):
    rows = tmp_path / "rows.csv"
    rows.write_text("review,aspect\n服务很好,服务\n", encoding="utf-8")
    if command == "predict":
        argv = ["predict", str(pair_model), "-i", str(rows), "-o", str(tmp_path / "out.csv"), *args]
    else:
        argv = ["export", str(pair_model), str(tmp_path / "out"), "--parity-file", str(rows), *args]
    _fails(argv, capsys, "text pair column 'review' is the text column", "other columns: 'aspect'")
    assert not (tmp_path / "out.csv").exists() and not (tmp_path / "out").exists()


# CLASS convert-asap: CSVs that are not ASAP's (were a ValueError, UnicodeDecodeError or csv.Error, exit 1; a header
# without rows wrote an empty train split)
def _asap_csv(rows: list[dict[str, str]]) -> str:
    from hfsent.datasets_asap import ASAP_ASPECTS

    header = ["id", "reviewbody", "star", *ASAP_ASPECTS]
    lines = [",".join(header)]
    for i, row in enumerate(rows):
        cells = {"id": str(i), "reviewbody": "菜很好吃", "star": "4.0", **dict.fromkeys(ASAP_ASPECTS, "-2"), **row}
        lines.append(",".join(cells[c] for c in header))
    return "\n".join(lines) + "\n"


ASAP_FILES = {
    "a star that is no number": (
        {"train.csv": _asap_csv([{"star": "five"}])},
        ["train.csv, line 2", "'star' holds 'five'"],
    ),
    "a NaN star": ({"train.csv": _asap_csv([{"star": "nan"}])}, ["train.csv, line 2", "'star' holds 'nan'"]),
    "a bad star in dev.csv": (
        {"train.csv": _asap_csv([{}]), "dev.csv": _asap_csv([{}, {"star": "x"}])},
        ["dev.csv, line 3", "'star' holds 'x'"],
    ),
    "GBK bytes": ({"train.csv": _asap_csv([{"reviewbody": "菜很好吃"}]).encode("gbk")}, ["train.csv: not UTF-8 text"]),
    "a header only": ({"train.csv": _asap_csv([])}, ["train.csv: holds no review (only a header)"]),
}


@pytest.mark.parametrize("mode", ["labels", "pairs"])
@pytest.mark.parametrize("case", list(ASAP_FILES))
def test_convert_asap_of_a_file_that_is_not_asaps(case, mode, tmp_path, capsys):
    files, fragments = ASAP_FILES[case]
    source = tmp_path / "asap"
    source.mkdir()
    for name, content in files.items():
        (source / name).write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    _fails(["convert-asap", str(source), str(tmp_path / "out"), "--mode", mode], capsys, *fragments)
    assert not (tmp_path / "out").exists()


def test_convert_asap_of_a_review_longer_than_csvs_field_limit(tmp_path, capsys):
    # Python's csv module refuses a field over 131072 characters unless told otherwise, as hfsent predict does
    source = tmp_path / "asap"
    source.mkdir()
    long_review = "好" * 140_000
    (source / "train.csv").write_text(_asap_csv([{"reviewbody": long_review, "dish_taste": "1"}]), encoding="utf-8")
    assert hfsent_main(["convert-asap", str(source), str(tmp_path / "out"), "--mode", "pairs"]) == 0
    row = json.loads((tmp_path / "out" / "train.jsonl").read_text(encoding="utf-8"))
    assert row["review"] == long_review and row["label"] == 1


def test_convert_asap_into_a_file(tmp_path, capsys):
    source = tmp_path / "asap"
    source.mkdir()
    (source / "train.csv").write_text(_asap_csv([{"service_waiters_attitude": "1"}]), encoding="utf-8")
    (tmp_path / "out").write_text("x")
    _fails(["convert-asap", str(source), str(tmp_path / "out")], capsys, "out: is a file, not a folder")
    assert (tmp_path / "out").read_text() == "x"
    assert hfsent_main(["convert-asap", str(source), str(tmp_path / "folder"), "--mode", "pairs"]) == 0
    rows = [json.loads(line) for line in (tmp_path / "folder" / "train.jsonl").read_text(encoding="utf-8").splitlines()]
    assert rows == [
        {"aspect": "服务人员态度", "review": "菜很好吃", "aspect_id": "service_waiters_attitude", "label": 1}
    ]


# CLASS serve: pair payloads whose error named the wrong thing (a mixed list called its pair "item 0 is dict", a
# pair's bad "text" was called the "inputs")
PAIR_PAYLOADS = {
    "a list mixing pairs and strings": (
        {"inputs": [{"text": "服务", "text_pair": "很好"}, "好"]},
        '"inputs" mixes text pairs and other items (item 0 is an object, item 1 is str)',
    ),
    "a list mixing strings and pairs": (
        {"inputs": ["好", {"text": "服务", "text_pair": "很好"}]},
        '"inputs" mixes text pairs and other items (item 1 is an object, item 0 is str)',
    ),
    "a pair whose text is a list": (
        {"inputs": {"text": ["服务", "价格"], "text_pair": "很好"}},
        '"inputs" has a "text" that is not text (list)',
    ),
    "a batched pair whose text is null": (
        {"inputs": [{"text": "服务", "text_pair": "很好"}, {"text": None, "text_pair": "很好"}]},
        'item 1 of "inputs" has a "text" that is missing text',
    ),
}


@pytest.mark.parametrize("case", list(PAIR_PAYLOADS))
def test_serve_names_what_is_wrong_with_a_pair_payload(case, pair_model):
    import threading

    from hfsent.endpoint_handler import EndpointHandler
    from hfsent.inference import load_backend
    from hfsent.inference.server import InferenceServer

    from ..inference.test_serve import request

    payload, message = PAIR_PAYLOADS[case]
    with pytest.raises(ValueError) as err:
        EndpointHandler(str(pair_model))(payload)
    assert message in str(err.value)
    server = InferenceServer(("127.0.0.1", 0), load_backend(str(pair_model), "torch", threads=1))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        status, answer = request(server.url, "POST", body=payload)
    finally:
        server.shutdown()
        server.server_close()
    assert (status, answer) == (400, {"error": str(err.value)})


# CLASS continuing an hfsent model: a single-text recipe from a text-pair model saved a model of single texts that
# asked for pairs (text_pairs: true kept from the checkpoint), silently
@pytest.mark.parametrize(
    "recipe_pairs", [False, True], ids=["single texts from a pair model", "pairs from a single-text model"]
)
def test_continuing_an_hfsent_model_of_the_other_input_kind(
    recipe_pairs, pair_model, tiny_checkpoint, tmp_path, tokenizer_dir, review_csv, capsys
):
    start = tiny_checkpoint if recipe_pairs else pair_model
    keys = {"model_name_or_path": str(start), "config_overrides": None}
    data = review_csv
    if recipe_pairs:
        data = _pairs_csv(tmp_path / "pairs.csv", review_csv)
        keys.update(text_column="aspect", text_pair_column="review")
    recipe = _quick(tmp_path, tokenizer_dir, data, **keys)
    mine, theirs = ("text pairs", "single texts") if recipe_pairs else ("single texts", "text pairs")
    _fails(["train", str(recipe)], capsys, f"is an hfsent model of {theirs}", f"the recipe classifies {mine}")
    assert not (tmp_path / "out").exists()


# CLASS causal-LM pretraining: a corpus shorter than one block said only "no training sequence left"
def test_causal_lm_corpus_shorter_than_one_block(tmp_path, tokenizer_dir, capsys):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("好\n", encoding="utf-8")
    recipe = tiny_pretrain_recipe(
        tmp_path / "p.yaml", tokenizer_dir, corpus, tmp_path / "out", objective="causal_lm",
        config_overrides="n_layer=1,n_head=2,n_embd=16,n_positions=64",
    )  # fmt: skip
    line = _fails(
        ["pretrain", str(recipe)], capsys, "holds fewer tokens than one block of max_length 32", "lower max_length"
    )
    assert repr(str(corpus)) in line
    assert not (tmp_path / "out").exists()


# CLASS a checkpoint whose tokenizer is larger than its model's vocabulary (a tokenizer saved beside another model):
# was an IndexError deep in torch (predict, export: exit 1, export leaving model.onnx behind; serve: HTTP 500)
@pytest.fixture(scope="module")
def mismatched_model(tmp_path_factory, zh_tokenizer) -> Path:
    import hfsent

    from ..fixtures.helpers import tiny_config

    path = tmp_path_factory.mktemp("round4-vocab") / "model"
    hfsent.HfSentModel(tiny_config(100)).save_pretrained(path)
    zh_tokenizer.save_pretrained(path)
    return path


@pytest.mark.parametrize("command", ["predict", "export", "serve"])
def test_a_tokenizer_larger_than_the_models_vocabulary(command, mismatched_model, zh_tokenizer, tmp_path, capsys):
    rows = tmp_path / "rows.csv"
    rows.write_text("review\n很好\n", encoding="utf-8")
    argv = {
        "predict": ["predict", str(mismatched_model), "-i", str(rows), "-o", str(tmp_path / "out.csv")],
        "export": ["export", str(mismatched_model), str(tmp_path / "out"), "--onnx"],
        "serve": ["serve", str(mismatched_model), "--port", "0"],
    }[command]
    fragment = f"has {len(zh_tokenizer)} tokens but the model's vocab_size is 100"
    _fails(argv, capsys, f"cannot load model {str(mismatched_model)!r}", fragment, "save the tokenizer the model was")
    assert not (tmp_path / "out.csv").exists() and not (tmp_path / "out").exists()


# CLASS a checkpoint that is no hfsent classifier at inference: causal-LM pretraining's GPT-2 output, a BERT encoder
# (was "AttributeError: 'GPT2Config' object has no attribute 'is_binary'", exit 1, after a random head was built)
@pytest.mark.parametrize("model_type", ["gpt2", "bert", "t5"])
@pytest.mark.parametrize("command", ["predict", "serve"])
def test_inference_on_a_checkpoint_that_is_no_hfsent_classifier(command, model_type, tmp_path, capsys):
    configs = {
        "gpt2": GPT2_TINY,
        "bert": {"model_type": "bert", "num_hidden_layers": 1, "hidden_size": 16, "num_attention_heads": 2},
        "t5": {"model_type": "t5", "d_model": 16, "num_layers": 1, "num_heads": 2},
    }
    checkpoint = _config_folder(tmp_path / "lm", configs[model_type])  # refused on its config, weights never read
    rows = tmp_path / "rows.csv"
    rows.write_text("review\n很好\n", encoding="utf-8")
    argv = {
        "predict": ["predict", str(checkpoint), "-i", str(rows), "-o", str(tmp_path / "out.csv")],
        "serve": ["serve", str(checkpoint), "--port", "0"],
    }[command]
    _fails(argv, capsys, f"is a '{model_type}' checkpoint, not an hfsent classifier", "fine-tune it first")
    assert not (tmp_path / "out.csv").exists()


def test_text_pairs_through_a_tokenizer_that_marks_no_boundary_get_its_end_of_text_between(
    tmp_path, review_csv, caplog
):
    """GPT-2's tokenizer joins a text and its pair back to back: a pair model's saved tokenizer puts its end-of-text
    token between them, so the stock pipeline, hfsent.predict and a reload read the boundary the model learned."""
    from transformers import AutoTokenizer, pipeline

    import hfsent
    from hfsent.tokenizer import mark_text_pairs

    tokenizer = _gpt2_tokenizer()
    tokenizer.save_pretrained(tmp_path / "tok")
    data = _pairs_csv(tmp_path / "pairs.csv", review_csv)
    keys = {"text_column": "aspect", "text_pair_column": "review", "max_train_samples": 8}
    keys.update(config_name=str(_config_folder(tmp_path / "gpt2", GPT2_TINY)), config_overrides=None)
    recipe = _quick(tmp_path, tmp_path / "tok", data, **keys)
    with caplog.at_level("INFO", logger="hfsent"):
        assert hfsent_main(["train", str(recipe)]) == 0
    assert "the tokenizer now puts '<eos>' between a text and its pair" in caplog.text

    saved = AutoTokenizer.from_pretrained(tmp_path / "out")
    aspect, review = tokenizer("服务")["input_ids"], tokenizer("物流很快")["input_ids"]
    assert saved("服务", "物流很快")["input_ids"] == [*aspect, saved.eos_token_id, *review]
    assert saved("服务")["input_ids"] == aspect  # single texts encode as before
    scores = pipeline("text-classification", model=str(tmp_path / "out"))(
        {"text": "服务", "text_pair": "物流很快"}, top_k=None
    )
    [result] = hfsent.predict(["服务"], str(tmp_path / "out"), text_pairs=["物流很快"])
    pos = next(d["score"] for d in scores if d["label"] == "pos")
    assert result["positive_probability"] == pytest.approx(pos, abs=1e-5)

    # no separator or end-of-text token to put there: the tokenizer is left as it is (and the run warns)
    plain = _gpt2_tokenizer()
    plain.eos_token = plain.bos_token = plain.unk_token = plain.pad_token = None
    assert mark_text_pairs(plain) is None
    assert plain("服务", "物流很快")["input_ids"] == aspect + review
