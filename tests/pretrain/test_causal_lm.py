"""Causal-LM pretraining of a decoder (``objective: causal_lm``) through the ``hfsent pretrain`` CLI."""

from __future__ import annotations

import json
import math
from concurrent.futures import ThreadPoolExecutor

import pytest
import torch
import yaml
from huggingface_hub import ModelCard
from transformers import (
    AutoConfig,
    AutoModelForCausalLM,
    AutoModelForSequenceClassification,
    AutoTokenizer,
    BertConfig,
    BertForMaskedLM,
    GPT2Config,
    TokenizersBackend,
    pipeline,
)

from hfsent.cli import main as hfsent_main
from hfsent.pretrain.causal import causal_lm_tokenizer
from hfsent.pretrain.packing import encode_corpus_batch, pack_blocks

from ..fixtures.helpers import END_OF_TEXT, REVIEWS, ROOT, byte_level_bpe, run_cli, tiny_backbone_sizes, tiny_recipe

NEWS = [
    "当希望工程救助的百万儿童成长起来，科教兴国蔚然成风时，今天有收藏价值的书你没买，明日就叫你悔不当初！",
    "藏书本来就是所有传统收藏门类中的第一大户，只是我们结束温饱的时间太短而已。",
    "因有关日寇在京掠夺文物详情，藏界较为重视，也是我们收藏北京史料中的要件之一。",
]
TINY_DECODERS = {
    model_type: AutoConfig.for_model(model_type, **tiny_backbone_sizes(layers=1, kv_heads=1))
    for model_type in ("gpt2", "qwen2", "llama")
}


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """One torch thread here and in subprocesses (tiny models on a shared machine). Restored afterwards."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("OMP_NUM_THREADS", "1")
        yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def news(tmp_path_factory):
    """A text file of 60 news-like documents (one a line)."""
    path = tmp_path_factory.mktemp("corpus") / "news.txt"
    path.write_text("\n".join(NEWS[i % 3] + REVIEWS[i % len(REVIEWS)] for i in range(60)) + "\n", encoding="utf-8")
    return path


def _recipe(path, config_dir, tokenizer_dir, news, output_dir, **keys) -> str:
    recipe = {
        "objective": "causal_lm",
        "config_name": str(config_dir),
        "tokenizer_name": str(tokenizer_dir),
        "dataset_name": [str(news)],
        "validation_split_percentage": 10,
        "max_length": 32,
        "output_dir": str(output_dir),
        "max_steps": 1,
        "per_device_train_batch_size": 4,
        "save_strategy": "no",
        "report_to": "none",
        "use_cpu": True,
        "disable_tqdm": True,
        "seed": 0,
        "evaluate_before_training": True,
        **keys,
    }
    path.write_text(yaml.safe_dump(recipe, allow_unicode=True), encoding="utf-8")
    return str(path)


@pytest.fixture(scope="module")
def byte_level_tokenizer_dir(tmp_path_factory):
    """A byte-level BPE tokenizer (Qwen's kind) trained on the test reviews: EOS, no pad token."""
    tokenizer = TokenizersBackend(tokenizer_object=byte_level_bpe(REVIEWS * 4 + NEWS), eos_token=END_OF_TEXT)
    out = tmp_path_factory.mktemp("byte-level")
    tokenizer.save_pretrained(out)
    return out


def _config_dir(tmp_path, model_type: str):
    out = tmp_path / f"{model_type}-config"
    TINY_DECODERS[model_type].save_pretrained(out)
    return out


RUNS = [("gpt2", "bert"), ("llama", "bert"), ("qwen2", "byte-level")]


@pytest.fixture(scope="module")
def one_step_runs(tmp_path_factory, tokenizer_dir, byte_level_tokenizer_dir, news):
    """Each of `RUNS`: ``hfsent pretrain`` in its own process, the three side by side (each uses one core): model
    type -> (recipe, output folder, the finished process)."""
    runs = {}
    for model_type, vocabulary in RUNS:
        root = tmp_path_factory.mktemp(model_type)
        tokenizer_source = tokenizer_dir if vocabulary == "bert" else byte_level_tokenizer_dir
        recipe = _recipe(root / "r.yaml", _config_dir(root, model_type), tokenizer_source, news, root / "out")
        runs[model_type] = (recipe, root / "out")
    recipes = [recipe for recipe, _ in runs.values()]
    with ThreadPoolExecutor(len(runs)) as pool:
        procs = list(pool.map(lambda r: run_cli("pretrain", r, "--mlm_probability", "0.3", cwd=ROOT), recipes))
    return {model_type: (*runs[model_type], proc) for model_type, proc in zip(runs, procs, strict=True)}


@pytest.mark.parametrize(("model_type", "vocabulary"), RUNS)
def test_one_step_causal_lm_run_gives_a_text_generation_checkpoint(
    model_type, vocabulary, tmp_path, one_step_runs, review_csv
):
    """gpt2 and llama with the zh-mini vocabulary (bert-base-chinese); qwen2 with a byte-level BPE one (transformers
    reloads a qwen2 folder's tokenizer as Qwen2Tokenizer whatever it is: see the error test below). The gpt2 output is
    then continued by ``hfsent pretrain`` and fine-tuned by ``hfsent train`` (the BCE head on its last token)."""
    recipe, out, proc = one_step_runs[model_type]
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "mlm_probability ignored" in proc.stderr  # masking keys: ignored with a warning
    assert "held-out: loss" in proc.stdout and "masked-token" not in proc.stdout

    results = json.loads((out / "all_results.json").read_text())
    for prefix in ("init_eval", "eval"):
        loss = results[f"{prefix}_loss"]
        assert math.isfinite(results[f"{prefix}_perplexity"]) and results[f"{prefix}_samples"] >= 1
        assert results[f"{prefix}_perplexity"] == pytest.approx(math.exp(loss), rel=1e-6)
    # an untrained model's loss is about ln(vocab); one step does not move it far
    tokenizer = AutoTokenizer.from_pretrained(out)
    assert abs(results["init_eval_loss"] - math.log(len(tokenizer))) < 1.5
    assert yaml.safe_load((out / "recipe.yaml").read_text())["objective"] == "causal_lm"

    model = AutoModelForCausalLM.from_pretrained(out)
    assert model.config.model_type == model_type
    assert model.config.eos_token_id == tokenizer.eos_token_id is not None
    assert model.config.pad_token_id == tokenizer.pad_token_id is not None
    # saved under a tokenizer class transformers 4 (Inference Endpoints' 4.51.3) loads too
    assert json.loads((out / "tokenizer_config.json").read_text())["tokenizer_class"] == "PreTrainedTokenizerFast"
    if vocabulary == "bert":  # [SEP] separates documents (EOS and BOS), [PAD] pads, nothing is added to a text
        assert tokenizer.eos_token == tokenizer.bos_token == "[SEP]" and tokenizer.pad_token == "[PAD]"
        assert tokenizer("物流很快")["input_ids"] == tokenizer.convert_tokens_to_ids(list("物流很快"))
    else:  # no pad token: its EOS pads (GPT-2's convention), with a warning
        assert tokenizer.pad_token == tokenizer.eos_token == END_OF_TEXT and "no pad token" in proc.stdout + proc.stderr

    generate = pipeline("text-generation", model=str(out))
    answer = generate("物流很快", max_new_tokens=5, do_sample=False)[0]["generated_text"]
    assert answer.startswith("物流很快") and len(answer) > len("物流很快")

    card = ModelCard.load(out / "README.md")
    assert card.data.pipeline_tag == "text-generation"
    assert "causal language modelling" in card.text and 'pipeline("text-generation"' in card.text

    if model_type == "gpt2":  # continue the *ForCausalLM checkpoint: its weights and tokenizer load
        continued = tmp_path / "continued"
        argv = [recipe, "--config_name", "", "--tokenizer_name", "", "--model_name_or_path", str(out)]
        assert hfsent_main(["pretrain", *argv, "--output_dir", str(continued)]) == 0
        again = json.loads((continued / "all_results.json").read_text())
        # the same held-out blocks, the same model: the loss it ended with is the one it starts from
        assert again["init_eval_loss"] == pytest.approx(results["eval_loss"], abs=1e-4)
        assert json.loads((continued / "config.json").read_text())["architectures"] == ["GPT2LMHeadModel"]

        # fine-tune the pretrained decoder with the BCE head (the reference's GPT: pretrain, then classify)
        train = tiny_recipe(
            tmp_path / "finetune",
            out,
            review_csv,
            model_name_or_path=str(out),
            config_overrides=None,
            tokenizer_name=None,
            num_train_epochs=1,
        )
        proc = run_cli("train", train, cwd=ROOT)
        assert proc.returncode == 0, proc.stderr[-4000:]
        assert "test metric" in proc.stdout and "roc_auc" in proc.stdout
        classifier = AutoModelForSequenceClassification.from_pretrained(tmp_path / "finetune" / "out")
        assert classifier.config.backbone_type == "gpt2" and classifier.config.pooling == "last"
        # the fine-tuned model started from the pretrained weights (the word embeddings move little in one epoch)
        pretrained = model.get_input_embeddings().weight
        assert (
            torch.nn.functional.cosine_similarity(classifier.get_input_embeddings().weight, pretrained, dim=-1).mean()
            > 0.9
        )
        scores = pipeline("text-classification", model=str(tmp_path / "finetune" / "out"))(REVIEWS[:2], top_k=None)
        assert all(sum(d["score"] for d in row) == pytest.approx(1.0, abs=1e-5) for row in scores)


def test_packing_puts_the_separator_between_documents_and_fills_every_block(tokenizer_dir):
    # doc1 [SEP] doc2 [SEP] doc3 [SEP]: 12 tokens, three full blocks of 4, no [CLS]
    blocks = pack_blocks([[1, 2, 3], [4, 5], [6, 7, 8, 9]], 4, None, 0, full_blocks_only=True)["input_ids"]
    assert blocks == [[1, 2, 3, 0], [4, 5, 0, 6], [7, 8, 9, 0]]
    # the stream's short tail is dropped (nothing is padded), a continued piece gets no separator
    blocks = pack_blocks([[1, 2], [3], [4, 5, 6]], 3, None, 0, continues=[True, False, False], full_blocks_only=True)
    assert blocks["input_ids"] == [[1, 2, 3], [0, 4, 5]]

    tokenizer = causal_lm_tokenizer(AutoTokenizer.from_pretrained(tokenizer_dir))
    texts = [NEWS[i % 3] for i in range(7)]
    packed = encode_corpus_batch({"text": texts}, tokenizer, max_length=16, causal=True)["input_ids"]
    assert packed and all(len(block) == 16 for block in packed)
    stream = [token for block in packed for token in block]
    documents = [tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts]
    expected = [token for ids in documents for token in (*ids, tokenizer.eos_token_id)]
    assert stream == expected[: len(stream)] and len(expected) - len(stream) < 16
    assert tokenizer.cls_token_id not in stream and tokenizer.pad_token_id not in stream


def _error(capsys, argv) -> str:
    assert hfsent_main(["pretrain", *argv]) == 2
    lines = capsys.readouterr().err.strip().split("\n")
    assert lines[-1].startswith("hfsent pretrain: error: ")
    return lines[-1]


def test_an_objective_the_model_does_not_fit_fails_with_one_line(tmp_path, tokenizer_dir, news, capsys):
    bert = tmp_path / "bert-config"
    BertConfig(num_hidden_layers=1, hidden_size=32, num_attention_heads=2, intermediate_size=64).save_pretrained(bert)
    gpt2 = _config_dir(tmp_path, "gpt2")
    out = tmp_path / "out"
    recipe = _recipe(tmp_path / "r.yaml", gpt2, tokenizer_dir, news, out)

    err = _error(capsys, [recipe, "--config_name", str(bert)])  # causal LM on an encoder
    assert "'config_name'" in err and "'bert'" in err and "objective 'causal_lm'" in err and "'gpt2'" in err
    err = _error(capsys, [recipe, "--objective", "mlm"])  # masked LM on a decoder
    assert "'gpt2'" in err and "expected model_type 'bert' for objective 'mlm'" in err
    checkpoint = tmp_path / "bert-mlm"
    BertForMaskedLM(BertConfig.from_pretrained(bert)).save_pretrained(checkpoint)  # continuing an encoder
    err = _error(capsys, [recipe, "--config_name", "", "--model_name_or_path", str(checkpoint)])
    assert "'model_name_or_path'" in err and "'bert'" in err and "causal_lm" in err
    err = _error(capsys, [recipe, "--whole_word_mask", "true"])  # refused: it would change the data
    assert "'whole_word_mask'" in err and "objective 'mlm' only" in err
    err = _error(capsys, [recipe, "--config_name", str(_config_dir(tmp_path, "qwen2"))])  # BERT vocabulary, qwen2
    assert "'tokenizer_name'" in err and "'qwen2'" in err and "Qwen2Tokenizer" in err
    err = _error(capsys, [recipe, "--objective", "gpt"])
    assert "'objective'" in err and "'causal_lm'" in err
    assert not out.exists()  # nothing was written


def test_zh_mini_gpt_recipe_is_the_size_of_zh_mini():
    recipes = ROOT / "recipes" / "pretrain"
    gpt = yaml.safe_load((recipes / "zh-mini-gpt.yaml").read_text(encoding="utf-8"))
    mini = yaml.safe_load((recipes / "zh-mini.yaml").read_text(encoding="utf-8"))
    assert gpt["objective"] == "causal_lm" and gpt["tokenizer_name"] == mini["tokenizer_name"]
    for key in ("dataset_name", "dataset_config_name", "dataset_split", "text_column", "max_length"):
        assert gpt[key] == mini[key], key
    decoder = GPT2Config(vocab_size=21128)
    decoder.update_from_string(gpt["config_overrides"])
    encoder = BertConfig(vocab_size=21128)
    encoder.update_from_string(mini["config_overrides"])
    assert (
        decoder.n_layer,
        decoder.n_embd,
        decoder.n_head,
        decoder.n_inner or 4 * decoder.n_embd,
        decoder.n_positions,
    ) == (
        encoder.num_hidden_layers,
        encoder.hidden_size,
        encoder.num_attention_heads,
        encoder.intermediate_size,
        mini["max_length"],
    )
    with torch.device("meta"):
        sizes = [AutoModelForCausalLM.from_config(decoder).num_parameters(), BertForMaskedLM(encoder).num_parameters()]
    assert abs(sizes[0] - sizes[1]) < 0.05 * sizes[1]  # measured: 8.6 M and 8.8 M parameters
