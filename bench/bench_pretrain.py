"""MLM pretraining throughput: hfsent's way against the tutorial's, side by side in one run.

- tutorial: stock `BertForMaskedLM` (LM head at every position), one corpus line per row, each
  padded to ``--max-length``, stock `DataCollatorForLanguageModeling`;
- hfsent: `MaskedOnlyBertForMaskedLM` (LM head only at masked positions), documents packed into
  full blocks of ``--max-length``, `MLMCollator`.

Same model config (recipes/pretrain/zh-mini.yaml's: BERT L4-H256 with the bert-base-chinese
vocabulary), same corpus sample (``$HFSENT_SHARED/corpus/msra_news_sentences.txt``), same batch
size, optimiser and number of steps. The methods take turns step by step, and throughput uses the
median step time, so that load from other users of the machine hits both alike. Throughput counts
real tokens ([CLS]/[SEP] included, padding not) per second of training step (collation, forward,
backward, optimiser step).

    python bench/bench_pretrain.py                      # both ways, 128 tokens
    python bench/bench_pretrain.py --max-length 64  # the tutorial's length
    python bench/bench_pretrain.py --ablation           # also each change alone
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from pathlib import Path

import torch
from common import BERT_BASE_CHINESE, SHARED, ZH_MINI_OVERRIDES, machine
from transformers import BertForMaskedLM, DataCollatorForLanguageModeling

from hfsent.arguments import build_config
from hfsent.pretrain import MaskedOnlyBertForMaskedLM, MLMCollator, pack_blocks, tokenize_documents
from hfsent.tokenizer import load_tokenizer

# name -> (packed blocks?, masked-only head?)
METHODS = {
    "tutorial": (False, False),
    "hfsent": (True, True),
    "packing only": (True, False),
    "masked-only head only": (False, True),
}


def load_rows(tokenizer, lines: list[str], packed: bool, max_len: int) -> list[dict[str, list[int]]]:
    """Training rows: packed blocks (hfsent) or one line per row padded to ``max_len`` (tutorial)."""
    if packed:
        encoded = tokenize_documents(lines, tokenizer)
        blocks = pack_blocks(encoded["input_ids"], max_len, tokenizer.cls_token_id, tokenizer.sep_token_id)
        return [{"input_ids": ids} for ids in blocks["input_ids"]]
    encoded = tokenizer(lines, padding="max_length", truncation=True, max_length=max_len)
    pairs = zip(encoded["input_ids"], encoded["attention_mask"], strict=True)
    return [{"input_ids": ids, "attention_mask": mask} for ids, mask in pairs]


def make_model(config, masked_only: bool, seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    model = (MaskedOnlyBertForMaskedLM if masked_only else BertForMaskedLM)(config)
    model.train()
    return model


class Runner:
    """One method's model, optimiser, data stream and accumulated timings."""

    def __init__(self, name: str, tokenizer, config, lines: list[str], args) -> None:
        packed, masked_only = METHODS[name]
        self.name = name
        self.rows = load_rows(tokenizer, lines, packed, args.max_length)
        random.Random(args.seed).shuffle(self.rows)
        self.model = make_model(config, masked_only, args.seed)
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=1e-4)
        if masked_only:
            self.collator = MLMCollator(tokenizer, seed=args.seed, return_masked_positions=True)  # as hfsent pretrain
        else:  # the tutorial's collator, as it uses it
            self.collator = DataCollatorForLanguageModeling(tokenizer, mlm_probability=0.15, seed=args.seed)
        self.batch_size = args.batch_size
        self.cursor = 0
        self.step_seconds: list[float] = []
        self.steps = self.sequences = self.tokens = self.slots = 0
        self.losses: list[float] = []

    def step(self, timed: bool) -> None:
        rows = [self.rows[(self.cursor + i) % len(self.rows)] for i in range(self.batch_size)]
        self.cursor += self.batch_size
        start = time.perf_counter()
        batch = self.collator(rows)
        loss = self.model(**batch).loss
        loss.backward()
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        elapsed = time.perf_counter() - start
        if timed:
            self.step_seconds.append(elapsed)
            self.steps += 1
            self.sequences += len(rows)
            self.tokens += int(batch["attention_mask"].sum())
            self.slots += batch["attention_mask"].numel()
            self.losses.append(loss.item())

    def result(self) -> dict:
        """Throughput from the median step time (robust to bursts of load from other users)."""
        median = statistics.median(self.step_seconds)
        total = sum(self.step_seconds)
        return {
            "method": self.name,
            "steps": self.steps,
            "median_ms_per_step": round(1000 * median, 1),
            "sequences_per_s": round(self.sequences / self.steps / median, 2),
            "real_tokens_per_s": round(self.tokens / self.steps / median, 1),
            "real_tokens_per_s_mean_time": round(self.tokens / total, 1),
            "padding_share": round(1 - self.tokens / self.slots, 3),
            "last_loss": round(self.losses[-1], 3),
            "step_ms": [round(1000 * t, 1) for t in self.step_seconds],
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--max-length", "--max-seq-length", dest="max_length", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--steps", type=int, default=12, help="timed steps per method, interleaved")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps per method first")
    parser.add_argument("--documents", type=int, default=6000, help="corpus lines used")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--ablation", action="store_true", help="also time each change alone")
    parser.add_argument("--json", type=Path, help="write the results here too")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    corpus = SHARED / "corpus" / "msra_news_sentences.txt"
    if not corpus.is_file() or not BERT_BASE_CHINESE.is_dir():
        sys.exit(f"needs {corpus} and {BERT_BASE_CHINESE} (set HFSENT_SHARED)")
    lines = [line for line in corpus.read_text(encoding="utf-8").splitlines() if line.strip()][: args.documents]
    tokenizer = load_tokenizer(str(BERT_BASE_CHINESE))
    config = build_config(config_name=str(BERT_BASE_CHINESE), config_overrides=ZH_MINI_OVERRIDES)
    config.vocab_size = len(tokenizer)

    names = list(METHODS) if args.ablation else ["tutorial", "hfsent"]
    runners = [Runner(name, tokenizer, config, lines, args) for name in names]
    for runner in runners:
        for _ in range(args.warmup):
            runner.step(timed=False)
    for step in range(args.steps):  # one step of each method in turn, order alternating
        for runner in runners if step % 2 == 0 else runners[::-1]:
            runner.step(timed=True)

    results = [r.result() for r in runners]
    base = results[0]["real_tokens_per_s"]
    print(machine())
    print(
        f"BERT L{config.num_hidden_layers}-H{config.hidden_size} (vocab {config.vocab_size}), "
        f"{args.max_length} tokens, batch {args.batch_size}, {len(lines)} msra lines, "
        f"{torch.get_num_threads()} threads, {args.steps} timed steps each (median step time)"
    )
    columns = ("ms/step", 9), ("seq/s", 8), ("real tok/s", 12), ("(mean time)", 13), ("padding", 9), ("speedup", 10)
    print(f"{'method':<24}" + "".join(f"{name:>{width}}" for name, width in columns))
    for r in results:
        ratio = r["real_tokens_per_s"] / base
        r["speedup_vs_tutorial"] = round(ratio, 2)
        print(
            f"{r['method']:<24}{r['median_ms_per_step']:>9}{r['sequences_per_s']:>8}{r['real_tokens_per_s']:>12}"
            f"{r['real_tokens_per_s_mean_time']:>13}{r['padding_share']:>9.1%}{ratio:>9.2f}x"
        )
    if args.json:
        args.json.write_text(json.dumps({"args": vars(args) | {"json": str(args.json)}, "results": results}, indent=2))


if __name__ == "__main__":
    main()
