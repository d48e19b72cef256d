"""Load one saved hfsent checkpoint the ways a user without hfsent does; print what each way answered as JSON.

Run by `.ci/remote_code_matrix.py` inside a throwaway virtual environment (torch + one transformers version, hfsent
NOT installed): it imports only the standard library, torch and transformers, and never the repository.
Usage: ``python -I remote_code_check.py CHECKPOINT TEXTS_JSON`` (TEXTS_JSON: a file holding a list of texts).
Prints one JSON object: ``transformers`` (the version), and per check (``config``, ``AutoModel``,
``AutoModelForSequenceClassification``, ``AutoTokenizer``, ``pipeline``, ``handler``) either ``{"error": ...}``
or what it produced (``scores``: per text ``{label: probability}``; ``input_ids`` for the tokenizer). The
comparison with hfsent's own predictions is made by the caller.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import threading
import traceback
from pathlib import Path


def label_scores(logits, config) -> list[dict[str, float]]:
    """Per text ``{label: probability}`` from a classifier's logits, by the stock pipeline's rule (sigmoid for
    ``multi_label_classification`` or a single logit, softmax otherwise)."""
    import torch

    logits = logits.double()
    if config.problem_type == "multi_label_classification" or logits.shape[-1] == 1:
        probabilities = torch.sigmoid(logits)
    else:
        probabilities = torch.softmax(logits, dim=-1)
    return [{config.id2label[i]: float(p) for i, p in enumerate(row)} for row in probabilities.tolist()]


def pipeline_scores(answers: list) -> list[dict[str, float]]:
    """Per text ``{label: score}`` from a ``top_k=None`` text-classification answer (a list per text)."""
    return [{item["label"]: float(item["score"]) for item in answer} for answer in answers]


def check_config(path: str, texts: list[str]) -> dict:
    """``AutoConfig`` builds the checkpoint's own (remote) config class."""
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(path, trust_remote_code=True)
    cls = type(config)
    return {"class": f"{cls.__module__}.{cls.__name__}", "id2label": {str(k): v for k, v in config.id2label.items()}}


def check_tokenizer(path: str, texts: list[str]) -> dict:
    """``AutoTokenizer`` loads the checkpoint's tokenizer; the ids of the texts truncated to its length."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=True)
    return {
        "class": type(tokenizer).__name__,
        "model_max_length": tokenizer.model_max_length,
        "input_ids": tokenizer(texts, truncation=True)["input_ids"],
    }


def check_auto_class(auto_class_name: str):
    """A check that loads the model through ``transformers.<auto_class_name>`` and classifies the texts."""

    def check(path: str, texts: list[str]) -> dict:
        import torch
        import transformers

        tokenizer = transformers.AutoTokenizer.from_pretrained(path, trust_remote_code=True)
        model = getattr(transformers, auto_class_name).from_pretrained(path, trust_remote_code=True).eval()
        with torch.no_grad():
            logits = model(**tokenizer(texts, truncation=True, padding=True, return_tensors="pt")).logits
        cls = type(model)
        return {"class": f"{cls.__module__}.{cls.__name__}", "scores": label_scores(logits, model.config)}

    check.__doc__ = f"``{auto_class_name}`` loads the remote model class; its logits as probabilities."
    return check


def check_pipeline(path: str, texts: list[str]) -> dict:
    """The stock ``pipeline("text-classification")`` with ``truncation=True`` and ``top_k=None``."""
    from transformers import pipeline

    classifier = pipeline("text-classification", model=path, trust_remote_code=True)
    return {"scores": pipeline_scores(classifier(texts, truncation=True, top_k=None))}


def check_handler(path: str, texts: list[str]) -> dict:
    """``handler.py`` as huggingface-inference-toolkit 0.5.6 loads a custom handler and answers a request.

    As its ``utils.check_and_register_custom_pipeline_from_directory``: the model folder goes first on
    ``sys.path``, ``handler.py`` is imported by ``importlib`` as module ``handler.EndpointHandler`` and
    ``EndpointHandler(model_dir)`` is built once; as its ``webservice_starlette.predict`` (through
    ``async_utils.async_handler_call``), the deserialized JSON body is passed to it in a worker thread.
    """
    module_name = "handler.EndpointHandler"
    spec = importlib.util.spec_from_file_location(module_name, Path(path) / "handler.py")
    sys.path.insert(0, path)
    handler_module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = handler_module
    spec.loader.exec_module(handler_module)
    handler = handler_module.EndpointHandler(path)
    body = json.loads(json.dumps({"inputs": texts, "parameters": {"top_k": None}}))  # as it came over HTTP
    answer: dict = {}

    def call() -> None:
        try:
            answer["value"] = handler(body)
        except Exception as err:  # re-raised in the calling thread
            answer["error"] = err

    worker = threading.Thread(target=call)
    worker.start()
    worker.join()
    if "error" in answer:
        raise answer["error"]
    return {"scores": pipeline_scores(answer["value"]), "labels": [ranked[0]["label"] for ranked in answer["value"]]}


CHECKS = {
    "config": check_config,
    "AutoModel": check_auto_class("AutoModel"),
    "AutoModelForSequenceClassification": check_auto_class("AutoModelForSequenceClassification"),
    "AutoTokenizer": check_tokenizer,
    "pipeline": check_pipeline,
    "handler": check_handler,
}


def main(argv: list[str]) -> int:
    """Run every check on the checkpoint ``argv[0]`` with the texts in the JSON file ``argv[1]``; print JSON."""
    path, texts = argv[0], json.loads(Path(argv[1]).read_text(encoding="utf-8"))
    if importlib.util.find_spec("hfsent") is not None:
        print("remote_code_check: hfsent is importable here; run it where hfsent is not installed", file=sys.stderr)
        return 1
    import transformers

    results: dict = {"transformers": transformers.__version__}
    for name, check in CHECKS.items():
        try:
            results[name] = check(path, texts)
        except Exception as err:
            frame = traceback.extract_tb(err.__traceback__)[-1]
            results[name] = {
                "error": f"{type(err).__name__}: {err}".splitlines()[0][:300],
                "where": f"{Path(frame.filename).name}:{frame.lineno}",
            }
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
