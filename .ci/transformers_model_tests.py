#!/usr/bin/env python3
"""Run transformers' own common model tests on `HfSentModel` and, side by side, `BertForSequenceClassification`.

transformers' ``ModelTesterMixin`` (with its SDPA/attention tests) and ``ConfigTester`` are taken from the PyPI
sdist of the installed transformers version (``pip download --no-deps --no-binary :all:``), extracted into a cache
folder; nothing of theirs is copied into this repository. The sdist ships ``tests/test_modeling_common.py`` and
``tests/test_configuration_common.py`` but not the modules they import for other model families
(``tests/exporters``, ``tests/generation``, ``tests/utils``): this script writes small stand-ins for those
(empty export/generation mixins: neither model generates, and both lose the export tests alike; a
``config_common_kwargs`` with a non-default value for each `PreTrainedConfig` field). ``parameterized``, which the
tests import, is installed into the cache folder when it is missing.

Both test classes share one model tester (a tiny BERT shaped as transformers' ``BertModelTester``: batch 13,
7 tokens, vocabulary 99, hidden 32, 2 layers, 4 heads) and one ``ConfigTester(hidden_size=37)``; hfsent's model
is listed among the sequence-classification models, as ``import hfsent`` registers it with
``AutoModelForSequenceClassification``, so the classification tests run on it too.

Outcome rule (exit 1 otherwise): no test fails for hfsent that passes for BERT, and none is skipped for hfsent
only. Usage: ``python .ci/transformers_model_tests.py [--cache-dir DIR] [-k EXPR]`` (``make transformers-tests``).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import subprocess
import sys
import tarfile
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WANTED = ("tests/test_modeling_common.py", "tests/test_configuration_common.py")

STANDINS = {
    "tests/__init__.py": "",
    "tests/exporters/__init__.py": "",
    "tests/exporters/test_export.py": "class ExportTesterMixin:\n    pass\n",
    "tests/generation/__init__.py": "",
    "tests/generation/test_utils.py": "class GenerationTesterMixin:\n    pass\n",
    "tests/utils/__init__.py": "",
    "tests/utils/test_configuration_utils.py": textwrap.dedent(
        """\
        # a non-default value for each field of PreTrainedConfig (ConfigTester.check_config_arguments_init)
        config_common_kwargs = {
            "return_dict": False,
            "output_hidden_states": True,
            "output_attentions": True,
            "dtype": "float16",
            "chunk_size_feed_forward": 5,
            "architectures": ["BertModel"],
            "id2label": {0: "label"},
            "label2id": {"label": "0"},
            "problem_type": "regression",
        }
        """
    ),
}

TEST_FILE = textwrap.dedent(
    '''\
    """hfsent's model and the stock BERT classifier through transformers' common model and config tests."""

    import unittest

    import hfsent  # registers the hfsent model type
    from hfsent import HfSentConfig, HfSentModel
    from transformers import BertConfig, BertForSequenceClassification
    from transformers.models.auto import modeling_auto
    from transformers.testing_utils import torch_device

    from .test_configuration_common import ConfigTester
    from .test_modeling_common import ModelTesterMixin, ids_tensor, random_attention_mask

    # `import hfsent` registers HfSentModel with AutoModelForSequenceClassification; the common tests look
    # classification models up by class name in this table
    modeling_auto.MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING_NAMES["hfsent"] = "HfSentModel"


    class TinyBertTester:
        """Configs and inputs of a tiny BERT, shaped as transformers' BertModelTester."""

        def __init__(self, parent, config_class, batch_size=13, seq_length=7, vocab_size=99, type_vocab_size=16):
            self.parent = parent
            self.config_class = config_class
            self.batch_size = batch_size
            self.seq_length = seq_length
            self.vocab_size = vocab_size
            self.type_vocab_size = type_vocab_size
            self.hidden_size = 32
            self.num_hidden_layers = 2
            self.num_attention_heads = 4
            self.is_training = True

        def get_config(self):
            return self.config_class(
                vocab_size=self.vocab_size,
                hidden_size=self.hidden_size,
                num_hidden_layers=self.num_hidden_layers,
                num_attention_heads=self.num_attention_heads,
                intermediate_size=37,
                hidden_act="gelu",
                hidden_dropout_prob=0.1,
                attention_probs_dropout_prob=0.1,
                max_position_embeddings=512,
                type_vocab_size=self.type_vocab_size,
                is_decoder=False,
                initializer_range=0.02,
            )

        def prepare_config_and_inputs_for_common(self):
            shape = [self.batch_size, self.seq_length]
            inputs = {
                "input_ids": ids_tensor(shape, self.vocab_size).to(torch_device),
                "token_type_ids": ids_tensor(shape, self.type_vocab_size).to(torch_device),
                "attention_mask": random_attention_mask(shape).to(torch_device),
            }
            return self.get_config(), inputs


    class _Common(ModelTesterMixin):
        config_class = None

        def setUp(self):
            self.model_tester = TinyBertTester(self, self.config_class)
            self.config_tester = ConfigTester(self, config_class=self.config_class, hidden_size=37)

        def test_config(self):
            self.config_tester.run_common_tests()


    class HfSentModelTest(_Common, unittest.TestCase):
        config_class = HfSentConfig
        all_model_classes = (HfSentModel,)


    class BertForSequenceClassificationTest(_Common, unittest.TestCase):
        config_class = BertConfig
        all_model_classes = (BertForSequenceClassification,)
    '''
)

HFSENT, BERT = "HfSentModelTest", "BertForSequenceClassificationTest"


def run(command: list[str], **kwargs) -> None:
    """Run ``command``; exit with its status when it fails."""
    result = subprocess.run(command, **kwargs)
    if result.returncode != 0:
        sys.exit(f"failed ({result.returncode}): {' '.join(command)}")


def prepare(cache: Path, version: str) -> Path:
    """The folder holding the extracted tests of transformers ``version`` plus the stand-ins and the test file."""
    folder = cache / f"transformers-{version}"
    if not all((folder / name).is_file() for name in WANTED):
        download = cache / "sdist"
        download.mkdir(parents=True, exist_ok=True)
        sdist = download / f"transformers-{version}.tar.gz"
        if not sdist.is_file():
            pip = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:", "-q"]
            run([*pip, "-d", str(download), f"transformers=={version}"])
        with tarfile.open(sdist) as archive:
            for name in WANTED:
                member = archive.getmember(f"transformers-{version}/{name}")
                target = folder / name
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(archive.extractfile(member).read())
    for name, text in {**STANDINS, "tests/test_hfsent_vs_bert.py": TEST_FILE}.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text, encoding="utf-8")
    site = cache / "site"
    if importlib.util.find_spec("parameterized") is None and not (site / "parameterized").is_dir():
        run([sys.executable, "-m", "pip", "install", "-q", "--target", str(site), "parameterized"])
    return folder


def outcomes(junit: Path) -> dict[str, dict[str, str]]:
    """``{test class: {test name: passed|failed|skipped}}`` from a junit XML report."""
    result: dict[str, dict[str, str]] = {}
    for case in ET.parse(junit).getroot().iter("testcase"):
        cls = case.get("classname", "").rsplit(".", 1)[-1]
        if case.find("skipped") is not None:
            outcome = "skipped"
        elif case.find("failure") is not None or case.find("error") is not None:
            outcome = "failed"
        else:
            outcome = "passed"
        result.setdefault(cls, {})[case.get("name", "")] = outcome
    return result


def main(argv: list[str] | None = None) -> int:
    """Prepare, run pytest, print the counts and the differences; 1 when hfsent does worse than BERT."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cache-dir", type=Path, default=ROOT / ".cache" / "transformers-tests")
    parser.add_argument("-k", dest="select", help="pytest -k expression (a subset of the tests)")
    args = parser.parse_args(argv)
    import transformers

    folder = prepare(args.cache_dir, transformers.__version__)
    junit = folder / "report.xml"
    env_path = [str(ROOT), str(args.cache_dir / "site")]
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={junit}"]
    command += ["--rootdir", str(folder), "tests/test_hfsent_vs_bert.py"]
    if args.select:
        command += ["-k", args.select]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([*env_path, os.environ.get("PYTHONPATH", "")])}
    subprocess.run(command, cwd=folder, env=env)
    results = outcomes(junit)
    hfsent, bert = results.get(HFSENT, {}), results.get(BERT, {})
    for name, tests in ((HFSENT, hfsent), (BERT, bert)):
        counts = {k: sum(v == k for v in tests.values()) for k in ("passed", "failed", "skipped")}
        print(f"{name}: {counts['passed']} passed, {counts['failed']} failed, {counts['skipped']} skipped")
    worse = [
        f"{test}: hfsent {hfsent.get(test, 'missing')}, BERT {outcome}"
        for test, outcome in sorted(bert.items())
        if (outcome == "passed" and hfsent.get(test) != "passed")
        or (outcome != "skipped" and hfsent.get(test) == "skipped")
    ]
    for line in worse:
        print("WORSE FOR HFSENT:", line)
    if not hfsent or not bert:
        print("no results for one of the classes")
        return 1
    return 1 if worse else 0


if __name__ == "__main__":
    sys.exit(main())
