#!/usr/bin/env python3
"""Check that saved hfsent checkpoints load as remote code on several transformers versions, hfsent not installed.

Supported range: transformers 4.51.3 (pinned by huggingface-inference-toolkit, the Inference Endpoints runtime)
through the newest 4.x (4.57.6) and the 5.x hfsent is developed on (the one installed here: 5.24.0), with torch
2.13.0 (CPU); these three are what this checks. On each, a checkpoint loads through ``AutoConfig``, ``AutoModel``,
``AutoModelForSequenceClassification``, ``AutoTokenizer`` (all ``trust_remote_code=True``), the stock
``pipeline("text-classification")`` (a short and a long text, ``truncation=True``, ``top_k=None``) and its
``handler.py`` loaded as the Inference Toolkit loads a custom handler, and each answers the probabilities hfsent
computes here within ``TOLERANCE`` (and the tokenizer the same token ids).

Run it with the project's environment (hfsent importable): it saves a tiny checkpoint (``HfSentModel`` with the
bert-base-chinese tokenizer from ``$HFSENT_SHARED``, or the tests' stand-in) and computes hfsent's answers; then,
for each version, it creates (or reuses) a virtual environment under ``--venvs`` (default ``$HFSENT_MATRIX_DIR``
or ``.cache/remote-code-matrix``) with ``transformers==<version>`` and the tokenizers, huggingface_hub and
safetensors pip resolves (no hfsent); the CPU ``torch==2.13.0`` is installed first, once, into a folder there
that every environment imports through a ``.pth`` file (transformers does not depend on torch). Wheels are
downloaded into ``wheels/`` there and installed from it (kept: a second environment needs no network). It runs
``.ci/remote_code_check.py`` in each environment, offline (``HF_HUB_OFFLINE=1``), on each checkpoint. It
prints a table version x check -> ok/FAIL, each failure's reason below it, and exits 1 on any failure. Only
PyPI is reached, and only while creating an environment.

Usage: ``python .ci/remote_code_matrix.py [--venvs DIR] [--versions 4.51.3,...] [CHECKPOINT ...]`` (``make
remote-code-matrix``): extra hfsent checkpoint folders are checked besides the tiny one. Time on the 2-core
development machine (shared, load average 7-9): 8 min 45 s from an empty ``--venvs`` folder (3 min 20 s of CPU),
1 min 20 s with the environments in place (36 s of CPU), so it is not a step of ``.ci/run``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHECKER = Path(__file__).resolve().with_name("remote_code_check.py")
# 4.51.3: pinned by huggingface-inference-toolkit's setup.py; 4.57.6: the newest 4.x on PyPI. The 5.x is the one
# installed next to hfsent (added in `default_versions`).
OLD_VERSIONS = ("4.51.3", "4.57.6")
TORCH = "torch==2.13.0"
TOLERANCE = 1e-5
CHECKS = ("config", "AutoModel", "AutoModelForSequenceClassification", "AutoTokenizer", "pipeline", "handler")
SHORT_TEXT = "物流很快，包装完好，质量不错，推荐购买"
# longer than any checkpoint's max_length (the tiny one's 128 tokens): truncation must apply
LONG_TEXT = "屏幕有坏点，客服态度恶劣，退货麻烦，" * 40
READY = ".hfsent-matrix-ready"


def default_versions() -> list[str]:
    """The 4.x versions above and the transformers installed here."""
    import transformers

    return [*OLD_VERSIONS, transformers.__version__]


def save_tiny_checkpoint(directory: Path, texts: list[str]) -> Path:
    """A tiny hfsent checkpoint as a fine-tuning run saves one (model, fitted tokenizer, ``handler.py``), its head
    set so that ``texts[0]`` is positive and ``texts[1]`` negative, where probabilities are most sensitive."""
    import torch
    from transformers.utils import logging

    logging.disable_progress_bar()
    sys.path.insert(0, str(ROOT))
    import hfsent
    from hfsent.hub.push import copy_endpoint_handler
    from hfsent.tokenizer import fit_tokenizer_to_model
    from tests.fixtures.helpers import review_tokenizer, tiny_config

    torch.manual_seed(0)
    tokenizer = review_tokenizer()
    model = hfsent.HfSentModel(tiny_config(len(tokenizer))).eval()
    fit_tokenizer_to_model(tokenizer, model.config)
    with torch.no_grad():
        batch = tokenizer(texts[:2], truncation=True, padding=True, return_tensors="pt")
        features = model.bert(**batch).last_hidden_state[:, 0]
        direction = features[0] - features[1]  # z = w.x + b: z0 - z1 = 4, z0 + z1 = 0 (P(pos) 0.88 and 0.12)
        model.classifier.weight.copy_(4 * direction / direction.dot(direction))
        model.classifier.bias.fill_(-float(model.classifier.weight[0] @ (features[0] + features[1])) / 2)
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    copy_endpoint_handler(directory)
    return directory


def reference(checkpoint: Path, texts: list[str]) -> dict:
    """What hfsent answers here: per text ``{label: probability}``, the decided labels, the token ids."""
    import hfsent
    from hfsent.inference import load_model_and_tokenizer

    predictions = hfsent.predict(texts, str(checkpoint))
    model, tokenizer = load_model_and_tokenizer(str(checkpoint))
    neg, pos = model.config.id2label[0], model.config.id2label[1]
    return {
        "scores": [{neg: 1.0 - p["positive_probability"], pos: p["positive_probability"]} for p in predictions],
        "labels": [p["label"] for p in predictions],
        "threshold": model.config.threshold,
        "id2label": {str(k): v for k, v in model.config.id2label.items()},
        "input_ids": tokenizer(texts, truncation=True)["input_ids"],
    }


def compare(check: str, got: dict, expected: dict) -> str | None:
    """Why ``got`` (one check's output) differs from hfsent's ``expected`` answer, or None when it agrees."""
    if "error" in got:
        return f"{got['error']} ({got['where']})"
    if check != "AutoTokenizer" and "class" in got and not got["class"].startswith("transformers_modules."):
        return f"loaded {got['class']}, not the checkpoint's own code"
    if check == "config":
        return None if got["id2label"] == expected["id2label"] else f"id2label {got['id2label']}"
    if check == "AutoTokenizer":
        return None if got["input_ids"] == expected["input_ids"] else "token ids differ from hfsent's"
    for i, (scores, want) in enumerate(zip(got["scores"], expected["scores"], strict=True)):
        if set(scores) != set(want):
            return f"text {i}: labels {sorted(scores)}, expected {sorted(want)}"
        worst = max(abs(scores[label] - want[label]) for label in want)
        if worst > TOLERANCE:
            return f"text {i}: probabilities differ from hfsent's by {worst:.2e} (tolerance {TOLERANCE})"
    if check == "handler":  # the label decided at the threshold (unless a text sits on it)
        pos = expected["id2label"]["1"]
        for i, (label, want) in enumerate(zip(got["labels"], expected["labels"], strict=True)):
            if label != want and abs(expected["scores"][i][pos] - expected["threshold"]) > TOLERANCE:
                return f"text {i}: label {label!r}, hfsent says {want!r}"
    return None


def pip_from_wheels(python: Path | str, wheels: Path, requirement: str, *options: str) -> None:
    """Download ``requirement`` and its dependencies into ``wheels`` (kept: the next environment installs without the
    network), then install them from there with ``python``'s pip; a CUDA build of torch is refused first."""
    subprocess.run([str(python), "-m", "pip", "download", "-q", "-d", str(wheels), requirement], check=True)
    cuda = sorted(p.name for p in wheels.glob("nvidia_*"))
    if cuda:
        raise SystemExit(
            f"pip resolved a CUDA build of torch (it brings {cuda[0]}, ...): make the CPU wheel of {TORCH} "
            f"available to pip (e.g. --find-links) and remove {wheels}"
        )
    install = [str(python), "-m", "pip", "install", "-q", "--no-index", "--find-links", str(wheels), *options]
    subprocess.run([*install, requirement], check=True)


def ensure_torch(venvs: Path) -> Path:
    """A folder holding the CPU ``torch==2.13.0`` and its dependencies (``pip install --target``), installed once:
    every version's environment imports it through a ``.pth`` file (transformers does not depend on torch)."""
    target = venvs / TORCH.replace("==", "-")
    ready = target / READY
    if not ready.is_file():
        print(f"installing {TORCH} into {target} ...", flush=True)
        pip_from_wheels(sys.executable, venvs / "wheels", TORCH, "--upgrade", "--target", str(target))
        ready.write_text(TORCH)
    return target


def ensure_venv(venvs: Path, version: str) -> Path:
    """The Python of a virtual environment with ``transformers==version`` and the shared CPU torch (created once,
    reused); hfsent is not installed there."""
    venv = venvs / f"transformers-{version}"
    python = venv / "bin" / "python"
    torch_dir = ensure_torch(venvs)
    spec = f"transformers=={version} + {torch_dir.name}"
    ready = venv / READY
    if ready.is_file() and ready.read_text() == spec and python.is_file():
        return python
    started = time.monotonic()
    print(f"creating {venv} ({spec}) ...", flush=True)
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
    site = subprocess.run(
        [str(python), "-I", "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    Path(site, "hfsent-matrix-torch.pth").write_text(f"{torch_dir.resolve()}\n")
    pip_from_wheels(python, venvs / "wheels", f"transformers=={version}")
    probe = "import importlib.util, torch; print(torch.version.cuda, importlib.util.find_spec('hfsent') is not None)"
    out = subprocess.run([str(python), "-I", "-c", probe], check=True, capture_output=True, text=True).stdout
    if out.split() != ["None", "False"]:
        raise SystemExit(f"{venv}: expected a CPU torch and no hfsent; torch.version.cuda, hfsent importable: {out}")
    ready.write_text(spec)
    print(f"  ready in {time.monotonic() - started:.0f} s", flush=True)
    return python


def run_checks(python: Path, checkpoint: Path, texts_file: Path, home: Path) -> dict:
    """Run `remote_code_check.py` with ``python`` (isolated: no PYTHONPATH, not from the repository), offline."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env.update(HF_HUB_OFFLINE="1", HF_HOME=str(home), TOKENIZERS_PARALLELISM="false", TRANSFORMERS_VERBOSITY="error")
    proc = subprocess.run(
        [str(python), "-I", str(CHECKER), str(checkpoint), str(texts_file)],
        capture_output=True,
        text=True,
        env=env,
        cwd=home,
        timeout=600,
    )
    if proc.returncode != 0:
        reason = (proc.stderr.strip().splitlines() or [f"exit {proc.returncode}"])[-1]
        return {check: {"error": reason, "where": CHECKER.name} for check in CHECKS}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def print_table(rows: list[tuple[str, str, dict[str, str | None]]]) -> None:
    """One line per (version, checkpoint), one column per check (ok/FAIL); then each failure's reason."""
    header = ["transformers", "checkpoint", *CHECKS]
    lines = [
        [version, name, *("ok" if result[c] is None else "FAIL" for c in CHECKS)] for version, name, result in rows
    ]
    widths = [max(len(str(line[i])) for line in [header, *lines]) for i in range(len(header))]
    for line in [header, *lines]:
        print("  ".join(str(cell).ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip())
    for version, name, result in rows:
        for check in CHECKS:
            if result[check] is not None:
                print(f"FAIL {version} {name} {check}: {result[check]}")


def main(argv: list[str] | None = None) -> int:
    """Build the tiny checkpoint, compute hfsent's answers, run the checks on every version; 1 on any failure."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoints", nargs="*", type=Path, help="more hfsent checkpoint folders to check")
    parser.add_argument(
        "--venvs",
        type=Path,
        default=Path(os.environ.get("HFSENT_MATRIX_DIR", ROOT / ".cache" / "remote-code-matrix")),
        help="folder of the virtual environments and pip's cache (reused when present)",
    )
    parser.add_argument("--versions", help="comma-separated transformers versions (default: 4.51.3, 4.57.6, installed)")
    args = parser.parse_args(argv)
    missing = [str(p) for p in args.checkpoints if not (p / "config.json").is_file()]
    if missing:
        parser.error(f"not a checkpoint folder (no config.json): {', '.join(missing)}")
    versions = args.versions.split(",") if args.versions else default_versions()
    started = time.monotonic()
    args.venvs.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="remote-code-matrix-") as tmp:
        work = Path(tmp)
        texts = [SHORT_TEXT, LONG_TEXT]
        checkpoints = {"tiny": save_tiny_checkpoint(work / "tiny", texts)}
        checkpoints.update({p.resolve().name: p.resolve() for p in args.checkpoints})
        texts_file = work / "texts.json"
        texts_file.write_text(json.dumps(texts, ensure_ascii=False), encoding="utf-8")
        expected = {name: reference(path, texts) for name, path in checkpoints.items()}
        rows = []
        for version in versions:
            python = ensure_venv(args.venvs, version)
            for name, path in checkpoints.items():
                home = work / f"hf-home-{version}-{name}"
                home.mkdir()
                got = run_checks(python, path, texts_file, home)
                if got.get("transformers", version) != version:
                    raise SystemExit(f"{python} runs transformers {got['transformers']}, not {version}")
                rows.append((version, name, {check: compare(check, got[check], expected[name]) for check in CHECKS}))
    print_table(rows)
    print(f"{len(rows)} version/checkpoint pairs in {time.monotonic() - started:.0f} s")
    return 1 if any(reason is not None for _, _, result in rows for reason in result.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
