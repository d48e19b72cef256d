"""MLM pretraining through its public entry points: the CLI / recipe script, the masked-only model."""

from __future__ import annotations

import csv
import json
import math
import sys

import pytest
import torch
import yaml
from huggingface_hub import ModelCard
from safetensors import safe_open
from transformers import (
    AutoModel,
    AutoModelForMaskedLM,
    BertConfig,
    BertForMaskedLM,
    TrainingArguments,
    pipeline,
)

import hfsent
from hfsent.cli import main as hfsent_main
from hfsent.errors import RecipeError
from hfsent.pretrain import (
    MaskedOnlyBertForMaskedLM,
    MLMCollator,
    PretrainDataArguments,
    PretrainModelArguments,
    load_corpus,
    tokenize_documents,
)
from hfsent.pretrain.packing import pack_blocks
from hfsent.recipe import RecipeParser

from ..fixtures.helpers import REVIEWS, ROOT, TINY_OVERRIDES, run_cli, tiny_recipe

NEWS = [
    "当希望工程救助的百万儿童成长起来，科教兴国蔚然成风时，今天有收藏价值的书你没买，明日就叫你悔不当初！",
    "藏书本来就是所有传统收藏门类中的第一大户，只是我们结束温饱的时间太短而已。",
    "因有关日寇在京掠夺文物详情，藏界较为重视，也是我们收藏北京史料中的要件之一。",
    "我们藏有一册一九四五年六月油印的《北京文物保存保管状态之调查报告》，调查范围包括故宫、历博、古研所、北大清华图书馆等。",
]


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """One torch thread here and in subprocesses: these tiny models gain nothing from more, and on a
    shared 2-core machine two contending threads made a 60-step run 20x slower. Restored afterwards."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("OMP_NUM_THREADS", "1")
        yield
    torch.set_num_threads(threads)


def _expected_drop(tokenizer) -> float:
    """How far 60 tiny steps take held-out loss below an untrained model's ~ln(vocab): far with
    bert-base-chinese's 21,128 tokens (measured ~4), less with the ~130-token stand-in (~0.5)."""
    return 2.0 if len(tokenizer) > 10_000 else 0.3


def _write_recipe(path, **keys) -> str:
    path.write_text(yaml.safe_dump(keys, allow_unicode=True), encoding="utf-8")
    return str(path)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, tokenizer_dir, review_csv):
    """Two sources: a text file of news-like lines (with blank lines) and the CSV of reviews."""
    root = tmp_path_factory.mktemp("corpus")
    lines = [NEWS[i % 4] + NEWS[(i * 3 + 1) % 4][: 10 + i % 17] for i in range(80)]
    (root / "news.txt").write_text("\n\n".join(lines) + "\n", encoding="utf-8")
    return {"news": root / "news.txt", "reviews": review_csv, "tokenizer": tokenizer_dir, "cache": root / "hf-cache"}


def _base_recipe(corpus, output_dir, **keys) -> dict:
    recipe = {
        "tokenizer_name": str(corpus["tokenizer"]),
        "config_overrides": TINY_OVERRIDES,
        "dataset_name": [str(corpus["news"]), str(corpus["reviews"])],
        "text_column": ["text", "review"],
        "validation_split_percentage": 10,
        "max_length": 32,
        "output_dir": str(output_dir),
        "cache_dir": str(corpus["cache"]),
        "max_steps": 60,
        "per_device_train_batch_size": 8,
        "learning_rate": "5e-3",
        "logging_steps": 10,
        "save_strategy": "no",
        "report_to": "none",
        "use_cpu": True,
        "disable_tqdm": True,
        "seed": 0,
        "evaluate_before_training": True,
    }
    recipe.update(keys)
    return recipe


@pytest.fixture(scope="module")
def pretrained(corpus, tmp_path_factory):
    """A tiny from-scratch run of ``python -m hfsent pretrain`` (packing, whole-word masking)."""
    root = tmp_path_factory.mktemp("run")
    recipe = _write_recipe(root / "recipe.yaml", **_base_recipe(corpus, root / "unused", whole_word_mask=True))
    out = root / "out"
    proc = run_cli("pretrain", recipe, "--output_dir", str(out))
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "held-out: loss" in proc.stdout
    return out


def test_from_scratch_run_lowers_held_out_loss(pretrained, zh_tokenizer):
    results = json.loads((pretrained / "all_results.json").read_text())
    assert results["init_eval_loss"] > math.log(len(zh_tokenizer)) - 0.5  # ~ln(vocab): an untrained model
    assert results["eval_loss"] < results["init_eval_loss"] - _expected_drop(zh_tokenizer)
    assert results["eval_perplexity"] == pytest.approx(math.exp(results["eval_loss"]))
    assert 0.0 <= results["eval_accuracy"] <= 1.0 and results["eval_masked_tokens"] > 20
    assert results["train_samples"] > 50 and results["train_tokens"] > 30 * results["train_samples"]
    state = json.loads((pretrained / "trainer_state.json").read_text())
    losses = [entry["loss"] for entry in state["log_history"] if "loss" in entry]
    assert losses[-1] < losses[0] - _expected_drop(zh_tokenizer)

    saved = yaml.safe_load((pretrained / "recipe.yaml").read_text())
    assert saved["whole_word_mask"] is True and saved["text_column"] == ["text", "review"]
    assert saved["output_dir"] == str(pretrained)  # the command line won over the YAML


def test_output_is_a_standard_bert_mlm_checkpoint(pretrained):
    config = json.loads((pretrained / "config.json").read_text())
    assert config["architectures"] == ["BertForMaskedLM"] and config["model_type"] == "bert"
    stock = pretrained.parent / "stock"
    BertForMaskedLM(BertConfig.from_pretrained(pretrained)).save_pretrained(stock)
    with safe_open(pretrained / "model.safetensors", "pt") as ours, safe_open(stock / "model.safetensors", "pt") as ref:
        assert set(ours.keys()) == set(ref.keys())
    tokenizer_config = json.loads((pretrained / "tokenizer_config.json").read_text())
    assert tokenizer_config["model_max_length"] == 32  # positions beyond were never trained

    card = ModelCard.load(pretrained / "README.md")  # the encoder's model card, rendered offline
    assert card.data.pipeline_tag == "fill-mask" and "eval_perplexity" not in card.data.to_dict()

    model = AutoModelForMaskedLM.from_pretrained(pretrained)
    assert type(model) is BertForMaskedLM
    fill = pipeline("fill-mask", model=str(pretrained), top_k=3)
    answers = fill("物流很快，[MASK]量很好")
    assert len(answers) == 3 and all(a["sequence"] and 0.0 <= a["score"] <= 1.0 for a in answers)


def test_output_fine_tunes_with_the_hfsent_recipe(pretrained, tmp_path, review_csv, capsys):
    recipe = tiny_recipe(
        tmp_path,
        pretrained,
        review_csv,
        model_name_or_path=str(pretrained),
        config_overrides=None,
        tokenizer_name=None,
        num_train_epochs=1,
    )
    # `hfsent train` in this process (the console script's function): a Python start-up costs more than the run
    assert hfsent_main(["train", str(recipe)]) == 0, capsys.readouterr().err[-4000:]
    out = tmp_path / "out"
    mlm = AutoModelForMaskedLM.from_pretrained(pretrained)
    classifier = AutoModel.from_pretrained(out)
    assert type(classifier) is hfsent.HfSentModel
    assert classifier.config.num_hidden_layers == mlm.config.num_hidden_layers
    assert "test_accuracy" in json.loads((out / "all_results.json").read_text())
    # what the recipe started from: the pretrained encoder, loaded tensor for tensor
    start = hfsent.HfSentModel.from_pretrained(pretrained)
    for name, tensor in mlm.bert.state_dict().items():
        assert torch.equal(start.bert.state_dict()[name], tensor), name


def test_continued_pretraining_line_by_line_starts_from_the_checkpoint(
    pretrained, corpus, tmp_path, capsys, zh_tokenizer
):
    out = tmp_path / "continued"
    recipe = _base_recipe(
        corpus,
        out,
        model_name_or_path=str(pretrained),
        tokenizer_name=None,
        config_overrides=None,
        line_by_line=True,
        max_steps=5,
        learning_rate="1e-4",
    )
    assert hfsent_main(["pretrain", _write_recipe(tmp_path / "continue.yaml", **recipe)]) == 0
    results = json.loads((out / "all_results.json").read_text())
    # far below an untrained model's ~ln(vocab): the pretrained weights were loaded
    assert results["init_eval_loss"] < math.log(len(zh_tokenizer)) - _expected_drop(zh_tokenizer)
    assert json.loads((out / "config.json").read_text())["architectures"] == ["BertForMaskedLM"]
    assert "model, tokenizer and results saved to" in capsys.readouterr().out


def test_corpus_holds_out_documents_of_each_source_and_interleaves(corpus, tmp_path):
    (tmp_path / "news.txt").write_text("".join(f"新闻{i}：{NEWS[i % 4]}\n\n" for i in range(40)), encoding="utf-8")
    with (tmp_path / "reviews.csv").open("w", encoding="utf-8", newline="") as f:
        csv.writer(f).writerows([["review", "label"]] + [[f"评论{i}：{REVIEWS[i % 12]}", i % 2] for i in range(40)])
    lines = [json.dumps({"body": f"第{i}句：{NEWS[i % 4]}"}, ensure_ascii=False) for i in range(20)]
    (tmp_path / "more.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    sources = [str(tmp_path / name) for name in ("news.txt", "reviews.csv", "more.jsonl")]
    args = PretrainDataArguments(
        dataset_name=sources,
        text_column=["text", "review", "body"],
        validation_split_percentage=25,
        source_mixing="interleave",
        source_probabilities=[0.2, 0.2, 0.6],
    )
    split = load_corpus(args, seed=0, cache_dir=str(corpus["cache"]))
    train, held_out = list(split["train"]["text"]), list(split["validation"]["text"])
    assert not set(train) & set(held_out)  # no held-out document is trained on
    assert len(held_out) == len(set(held_out)) == 10 + 10 + 5  # 25 % of each source's documents
    assert len(set(train)) == 30 + 30 + 15  # every training document is used...
    assert sum(t.startswith("第") for t in train) > len(train) / 2  # ...and the 0.6 source is drawn most

    with pytest.raises(RecipeError, match="source_probabilities"):
        PretrainDataArguments(dataset_name=sources, source_probabilities=[0.5, 0.5, 0.0])


TEST_REVIEWS = [
    "屏幕很清晰，电池也耐用，物流两天就到了，非常满意",
    "用了两天就坏了，客服也不理，差评差评差评",
    "很好",  # shorter than exclude_min_chars: only a document equal to it is dropped
]


def _corpus_with_test_texts(tmp_path):
    """Sources where the test reviews hide in every way: exact, re-spaced with a BOM, inside a news line."""
    news = [*NEWS, f"网友评论说：{TEST_REVIEWS[0]}。", "天气很好，适合出门"]
    (tmp_path / "news.txt").write_text("\n".join(news) + "\n", encoding="utf-8")
    reviews = [*REVIEWS, TEST_REVIEWS[0], "\ufeff" + TEST_REVIEWS[1].replace("，", " ，  "), TEST_REVIEWS[2]]
    with (tmp_path / "reviews.csv").open("w", encoding="utf-8", newline="") as f:
        csv.writer(f).writerows([["review", "label"]] + [[r, 1] for r in reviews])
    with (tmp_path / "test.csv").open("w", encoding="utf-8", newline="") as f:
        csv.writer(f).writerows([["review", "label"]] + [[r, 0] for r in TEST_REVIEWS])
    return [str(tmp_path / "news.txt"), str(tmp_path / "reviews.csv")], str(tmp_path / "test.csv")


def test_excluded_texts_never_reach_the_corpus(corpus, tmp_path):
    sources, test_csv = _corpus_with_test_texts(tmp_path)
    args = PretrainDataArguments(
        dataset_name=sources, text_column=["text", "review"], validation_split_percentage=20, exclude_texts=test_csv
    )
    stats = {}
    split = load_corpus(args, seed=0, cache_dir=str(corpus["cache"]), stats=stats)
    kept = ["".join(t.replace("\ufeff", "").split()) for part in split.values() for t in part["text"]]
    assert not any(review in t for review in TEST_REVIEWS[:2] for t in kept)
    assert "很好" not in kept and "天气很好，适合出门" in kept  # a short text only drops its exact equal
    assert stats == {"excluded_texts": 3, "excluded_documents_equal": 3, "excluded_documents_containing": 1}
    assert len(kept) == len(NEWS) + 1 + len(REVIEWS)


def test_pretrain_reports_what_exclude_texts_left_out(corpus, tmp_path, capsys):
    sources, test_csv = _corpus_with_test_texts(tmp_path)
    keys = _base_recipe(corpus, tmp_path / "out", dataset_name=sources, max_steps=2, evaluate_before_training=False)
    recipe = _write_recipe(tmp_path / "r.yaml", **keys)
    assert hfsent_main(["pretrain", recipe, "--exclude_texts", test_csv]) == 0
    results = json.loads((tmp_path / "out" / "all_results.json").read_text(encoding="utf-8"))
    assert results["excluded_documents_equal"] == 3 and results["excluded_documents_containing"] == 1

    err = _error(
        capsys,
        [recipe, "--exclude_texts", test_csv, "--exclude_text_column", "body", "--output_dir", str(tmp_path / "o2")],
    )
    assert f"dataset '{test_csv}' has no column 'body'; its columns are: review, label" in err


@pytest.mark.parametrize("recipe", sorted((ROOT / "recipes" / "pretrain").glob("*.yaml")), ids=lambda p: p.stem)
def test_shipped_recipes_parse(recipe):
    model_args, data_args, training_args = RecipeParser(
        (PretrainModelArguments, PretrainDataArguments, TrainingArguments)
    ).parse_recipe([str(recipe)])
    assert data_args.dataset_name and training_args.output_dir.startswith("outputs/")
    assert isinstance(training_args.learning_rate, float)
    assert model_args.model_name_or_path or (model_args.config_name and model_args.tokenizer_name)


def test_max_seq_length_is_still_accepted_with_a_deprecation_warning(tmp_path):
    recipe = tmp_path / "old.yaml"
    recipe.write_text(yaml.safe_dump({"tokenizer_name": "bert", "dataset_name": "corpus.txt", "max_seq_length": 64}))
    dataclass_types = (PretrainModelArguments, PretrainDataArguments, TrainingArguments)
    with pytest.warns(FutureWarning, match="'max_seq_length' .* use 'max_length'"):
        _, data_args, _ = RecipeParser(dataclass_types).parse_recipe([str(recipe)])
    assert data_args.max_length == 64
    with pytest.warns(FutureWarning, match="'max_seq_length' \\(in the command line\\)"):
        _, data_args, _ = RecipeParser(dataclass_types).parse_recipe(
            ["--tokenizer_name", "bert", "--dataset_name", "corpus.txt", "--max_seq_length", "32"]
        )
    assert data_args.max_length == 32


def test_help_lists_the_recipe_keys(capsys):
    with pytest.raises(SystemExit) as exit_info:
        hfsent_main(["pretrain", "--help"])
    assert exit_info.value.code == 0
    usage = capsys.readouterr().out
    assert usage.startswith("usage: hfsent pretrain [recipe.yaml] [--key value ...]")
    for key in ("--model_name_or_path", "--config_overrides", "--dataset_name", "--whole_word_mask", "--max_steps"):
        assert key in usage


def _error(capsys, argv) -> str:
    assert hfsent_main(["pretrain", *argv]) == 2
    last_line = capsys.readouterr().err.rstrip().split("\n")[-1]  # after any progress bars
    assert last_line.startswith("hfsent pretrain: error: ")
    return last_line


def test_clear_errors_before_any_work(corpus, tmp_path, capsys):
    out = tmp_path / "out"
    recipe = _write_recipe(tmp_path / "r.yaml", **_base_recipe(corpus, out))

    err = _error(capsys, [recipe, "--dataset_name", str(tmp_path / "missing.txt"), "--text_column", "text"])
    assert f"dataset file not found: '{tmp_path / 'missing.txt'}'" in err

    err = _error(capsys, [recipe, "--dataset_name", str(corpus["reviews"]), "--text_column", "text"])
    assert "has no column 'text'; its columns are: cat, label, review" in err

    blank = tmp_path / "blank.txt"
    blank.write_text("\n  \n\n", encoding="utf-8")
    err = _error(capsys, [recipe, "--dataset_name", str(corpus["news"]), str(blank), "--text_column", "text"])
    assert "empty corpus" in err and "blank.txt" in err

    err = _error(capsys, [recipe, "--config_overrides", "hidden_sise=8"])
    assert "hidden_sise" in err
    assert not out.exists()


def test_unknown_recipe_key_through_the_recipe_script(corpus, tmp_path, monkeypatch, capsys):
    import runpy

    recipe = _write_recipe(tmp_path / "typo.yaml", **_base_recipe(corpus, tmp_path / "out"), mlm_probabilty=0.2)
    # `python recipes/pretrain.py typo.yaml`, run as __main__ in this process (a Python start-up costs more)
    script = str(ROOT / "recipes" / "pretrain.py")
    monkeypatch.setattr(sys, "argv", [script, recipe])
    with pytest.raises(SystemExit) as exit_info:
        runpy.run_path(script, run_name="__main__")
    assert exit_info.value.code == 2
    stderr = capsys.readouterr().err
    assert "hfsent pretrain: error: unknown key 'mlm_probabilty'" in stderr
    assert "did you mean 'mlm_probability'" in stderr and "Traceback" not in stderr


def _tiny_mlm_batch(zh_tokenizer):
    encoded = tokenize_documents(REVIEWS * 3, zh_tokenizer)
    rows = pack_blocks(encoded["input_ids"], 24, zh_tokenizer.cls_token_id, zh_tokenizer.sep_token_id)["input_ids"]
    return MLMCollator(zh_tokenizer, seed=0)([{"input_ids": r} for r in rows])


def test_masked_only_loss_and_gradients_equal_the_full_head(zh_tokenizer):
    config = BertConfig(
        vocab_size=len(zh_tokenizer),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )
    torch.manual_seed(0)
    ours = MaskedOnlyBertForMaskedLM(config)
    stock = BertForMaskedLM(config)
    stock.load_state_dict(ours.state_dict())
    batch = _tiny_mlm_batch(zh_tokenizer)
    selected = batch["labels"] != -100
    assert 0 < selected.sum() < selected.numel() // 4

    out, ref = ours(**batch), stock(**batch)
    torch.testing.assert_close(out.loss, ref.loss, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(out.logits, ref.logits[selected], rtol=1e-5, atol=1e-5)
    out.loss.backward()
    ref.loss.backward()
    ref_grads = dict(stock.named_parameters())
    for name, param in ours.named_parameters():
        torch.testing.assert_close(param.grad, ref_grads[name].grad, rtol=1e-4, atol=1e-7, msg=name)

    # without labels it is the stock model (fill-mask needs every position)
    plain = {k: v for k, v in batch.items() if k != "labels"}
    torch.testing.assert_close(ours(**plain).logits, stock(**plain).logits)
    # a batch with nothing masked gives a zero loss that still backpropagates
    empty = ours(**{**batch, "labels": torch.full_like(batch["labels"], -100)})
    assert empty.loss.item() == 0.0 and empty.loss.requires_grad
