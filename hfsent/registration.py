"""hfsent's registration with transformers' Auto classes and peft, made when those libraries load.

After ``import hfsent``, ``AutoConfig``/``AutoModel``/``AutoModelForSequenceClassification`` and
``pipeline(...)`` load ``model_type: hfsent`` checkpoints without ``trust_remote_code``, and peft's
defaults (``LoraConfig(task_type="SEQ_CLS")`` without ``target_modules``) apply to hfsent models as to
BERT. Yet ``import hfsent`` itself must stay cheap: no torch, transformers, peft or accelerate, so that
``hfsent --help`` starts at once.

`install` (run by ``hfsent/__init__.py``) therefore registers at once with whatever is already
imported, and for the rest puts a finder on ``sys.meta_path`` that runs each registration right after the
module holding the mapping has been imported (a post-import hook):

- ``transformers.models.auto.configuration_auto`` -> ``AutoConfig.register("hfsent", HfSentConfig)``
- ``transformers.models.auto.modeling_auto`` -> ``AutoModel``/``AutoModelForSequenceClassification.register``
- ``peft.utils.constants`` -> every ``TRANSFORMERS_MODELS_TO_*_MAPPING`` that knows ``bert`` gets the same
  entry for ``hfsent`` (LoRA targets ``query``/``value``, ...)

A registration that imports hfsent's model would import transformers modules, so it waits while any
transformers/hfsent/peft module is still being imported (``modeling_auto`` is first imported from inside
``modeling_bert``'s own import) and runs when that import has finished. Once nothing is left to register the
finder removes itself.
"""

from __future__ import annotations

import importlib.abc
import sys
import threading
import warnings
from collections.abc import Callable
from types import ModuleType

CONFIG_AUTO = "transformers.models.auto.configuration_auto"
MODEL_AUTO = "transformers.models.auto.modeling_auto"
PEFT_CONSTANTS = "peft.utils.constants"
# Top-level packages whose modules the finder watches: the registrations import from them.
WATCHED = ("transformers", "hfsent", "peft")


def register_config() -> None:
    """``AutoConfig`` knows ``model_type: hfsent``."""
    from transformers.models.auto.configuration_auto import AutoConfig

    from .configuration_hfsent import HfSentConfig

    AutoConfig.register(HfSentConfig.model_type, HfSentConfig, exist_ok=True)


def register_models() -> None:
    """``AutoModel`` and ``AutoModelForSequenceClassification`` build an `HfSentModel` for an `HfSentConfig`."""
    from transformers.models.auto.modeling_auto import AutoModel, AutoModelForSequenceClassification

    from .configuration_hfsent import HfSentConfig
    from .modeling_hfsent import HfSentModel

    AutoModel.register(HfSentConfig, HfSentModel, exist_ok=True)
    AutoModelForSequenceClassification.register(HfSentConfig, HfSentModel, exist_ok=True)


# LoRA targets of each backbone family equivalent to hfsent's default for BERT (its attention and dense layers)
LORA_TARGETS = {
    "bert": ["query", "key", "value", "dense"],
    "roberta": ["query", "key", "value", "dense"],
    "xlm-roberta": ["query", "key", "value", "dense"],
    "ernie": ["query", "key", "value", "dense"],
    "deberta-v2": ["query_proj", "key_proj", "value_proj", "dense"],
    "gpt2": ["c_attn", "c_proj"],
    "qwen2": ["q_proj", "k_proj", "v_proj", "o_proj"],
    "llama": ["q_proj", "k_proj", "v_proj", "o_proj"],
}


def register_peft() -> None:
    """peft's per-model-type defaults (LoRA/IA3/... target modules) for ``hfsent``: those of every backbone family
    hfsent runs over, BERT's first.

    peft knows a model by its top-level ``model_type`` (``hfsent`` for every backbone) and adapts the listed modules
    it finds, so the union names each family's own (``query``/``value`` for BERT, ``c_attn`` for GPT-2, ``q_proj``/
    ``v_proj`` for Qwen2, ...). peft's ``SEQ_CLS`` task already trains and saves the head (it is named
    ``classifier``).
    """
    import peft.utils.constants as constants

    for name, mapping in vars(constants).items():
        if name.startswith("TRANSFORMERS_MODELS_TO_") and isinstance(mapping, dict) and "bert" in mapping:
            merged = [m for family in LORA_TARGETS for m in mapping.get(family) or () if isinstance(m, str)]
            mapping.setdefault("hfsent", list(dict.fromkeys(merged)) or mapping["bert"])


# trigger module -> registration still to run
_pending: dict[str, Callable[[], None]] = {}
_lock = threading.Lock()  # guards _pending; never held while a registration runs (it imports modules)
_local = threading.local()  # .running: this thread is running registrations (their imports come back here)


def _loaded(name: str, just_loaded: str | None = None) -> bool:
    """Whether module ``name`` has been imported completely (``just_loaded`` has, though still flagged)."""
    module = sys.modules.get(name)
    if module is None:
        return False
    return name == just_loaded or not getattr(getattr(module, "__spec__", None), "_initializing", False)


def _mid_import(just_loaded: str | None = None) -> bool:
    """Whether some watched module (other than hfsent's own package) is still being imported."""
    for name, module in list(sys.modules.items()):
        if name == just_loaded or name == "hfsent" or name.partition(".")[0] not in WATCHED:
            continue
        if getattr(getattr(module, "__spec__", None), "_initializing", False):
            return True
    return False


def run_ready(just_loaded: str | None = None) -> None:
    """Run every pending registration whose trigger module is loaded, unless a watched import is under way."""
    if getattr(_local, "running", False) or not any(_loaded(t, just_loaded) for t in list(_pending)):
        return
    if _mid_import(just_loaded):
        return  # the import under way ends with another call here
    with _lock:
        ready = [(t, _pending.pop(t)) for t in list(_pending) if _loaded(t, just_loaded)]
        if not _pending:
            _remove_finder()
    _local.running = True
    try:
        for trigger, register in ready:
            try:
                register()
            except Exception as err:  # a broken registration must not break the user's import
                warnings.warn(f"hfsent could not register with {trigger}: {err!r}", stacklevel=2)
    finally:
        _local.running = False


class _RunAfterLoad:
    """Wraps a watched module's loader: executes the module, then runs the registrations now ready.

    Everything else is delegated to the wrapped loader, which the module gets back once executed.
    """

    def __init__(self, loader) -> None:
        self.loader = loader

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        self.loader.exec_module(module)
        # leave no trace: the module keeps its own loader
        module.__loader__ = self.loader
        if module.__spec__ is not None:
            module.__spec__.loader = self.loader
        run_ready(just_loaded=module.__name__)

    def __getattr__(self, name: str):
        return getattr(self.loader, name)


class _PostImportFinder(importlib.abc.MetaPathFinder):
    """Finds watched modules with the other finders and wraps their loaders in `_RunAfterLoad`."""

    def find_spec(self, fullname: str, path=None, target=None):
        if fullname.partition(".")[0] not in WATCHED:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                    spec.loader = _RunAfterLoad(spec.loader)
                return spec
        return None


_finder = _PostImportFinder()


def _remove_finder() -> None:
    if _finder in sys.meta_path:
        sys.meta_path.remove(_finder)


def install() -> None:
    """Register hfsent now where the libraries are imported, and as soon as they are where not (idempotent)."""
    with _lock:
        for trigger, register in ((CONFIG_AUTO, register_config), (MODEL_AUTO, register_models)):
            _pending.setdefault(trigger, register)
        if "peft" in sys.modules or _peft_installed():
            _pending.setdefault(PEFT_CONSTANTS, register_peft)
        if _pending and _finder not in sys.meta_path:
            sys.meta_path.insert(0, _finder)
    run_ready()


def _peft_installed() -> bool:
    """Whether peft can be imported, without importing it."""
    from importlib.util import find_spec

    return find_spec("peft") is not None


def pending() -> list[str]:
    """The modules whose import still triggers a registration (none once all three were imported)."""
    return sorted(_pending)


__all__ = ["install", "pending", "register_config", "register_models", "register_peft", "run_ready"]
