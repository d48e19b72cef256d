"""``import hfsent`` is cheap, and its registration with transformers/peft holds in every import order."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor

import pytest

from hfsent.cli import COMMANDS

from ..fixtures.helpers import ROOT

# What `import hfsent` and `hfsent [command] --help` must not import: the heavy libraries only some commands need.
HEAVY = (
    "torch",
    "transformers",
    "transformers.trainer",
    "peft",
    "accelerate",
    "onnxruntime",
    "onnx",
    "datasets",
    "huggingface_hub",
)


def _python(code: str) -> dict:
    """Run ``code`` in a fresh interpreter on this checkout; return the JSON it prints last."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=300,
        stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize(
    "statement",
    [
        "import hfsent",
        "from hfsent.cli import main; main(['--help'])",
        "from hfsent.cli import main; main(['--version'])",
        # every command's --help (argparse exits through SystemExit; train's and pretrain's: see hfsent.recipe_help)
        *(f"from hfsent.cli import main; main([{command!r}, '--help'])" for command in sorted(COMMANDS)),
    ],
)
def test_import_hfsent_and_help_import_no_heavy_library(statement):
    loaded = _python(
        f"""
        import contextlib, io, json, sys
        with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):
            {statement}
        print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))
        """
    )
    assert loaded == []


# Each order of imports a user may write; every one must end with hfsent registered everywhere.
ORDERS = {
    "hfsent_first": "import hfsent\nfrom transformers import AutoConfig, AutoModel\nimport peft",
    # transformers imports its Auto module from inside modeling_bert's own import
    "model_class_first": "import hfsent\nhfsent.HfSentModel",
    "transformers_first": "from transformers import AutoModel, BertModel\nimport peft\nimport hfsent",
}


@pytest.fixture(scope="module")
def registrations():
    """Each of `ORDERS` run in its own fresh interpreter, side by side: order -> the future of its result."""
    with ThreadPoolExecutor(len(ORDERS)) as pool:
        yield {order: pool.submit(_registration, order) for order in sorted(ORDERS)}


def _registration(order: str) -> dict:
    return _python(
        ORDERS[order]
        + textwrap.dedent(
            """
            import json, sys
            import hfsent
            from transformers import AutoConfig, AutoModel, AutoModelForSequenceClassification
            config = AutoConfig.for_model("hfsent", num_hidden_layers=1, hidden_size=16, num_attention_heads=2,
                                          intermediate_size=32, vocab_size=50)
            auto_classes = (AutoModel, AutoModelForSequenceClassification)
            out = {
                "config": type(config).__name__,
                **{auto.__name__: type(auto.from_config(config)).__name__ for auto in auto_classes},
                "pending": hfsent.registration.pending(),
            }
            if "peft" in sys.modules:
                from peft.utils import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING as targets
                out["lora_targets"] = targets.get("hfsent")
            print(json.dumps(out))
            """
        )
    )


@pytest.mark.parametrize("order", sorted(ORDERS))
def test_registration_holds_in_every_import_order(order, registrations):
    result = registrations[order].result()
    assert result["config"] == "HfSentConfig"
    assert result["AutoModel"] == result["AutoModelForSequenceClassification"] == "HfSentModel"
    if "peft" in ORDERS[order]:
        # BERT's first (what a BERT-backed model adapts), then the other backbone families' own module names
        assert result["lora_targets"][:2] == ["query", "value"]
        assert {"c_attn", "q_proj", "v_proj", "query_proj", "value_proj"} <= set(result["lora_targets"])
        assert result["pending"] == []
    else:
        assert result["pending"] in ([], ["peft.utils.constants"])  # peft's waits for peft's import
