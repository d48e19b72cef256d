"""Publishing: push an hfsent output directory to the Hugging Face Hub in one commit.

`push_to_hub` uploads, in ONE commit, what makes the model usable and trustworthy: weights, config (with
``auto_map``), model code, tokenizer, the model card (re-rendered with the repo id), ``handler.py`` (Inference
Endpoints), results and plots; intermediate checkpoints (with their optimizer states) only when asked.
`plan_push` computes the same file list and card without contacting anything (``hfsent push --dry-run``).
Transient failures (network errors, 5xx, 429) are retried with exponential backoff; Hub refusals become a
`HubError` that says what to do. The commit is atomic: a failed push leaves the repo as it was.
"""

from .errors import HubError, resolve_token
from .push import (
    PushPlan,
    PushResult,
    PushSettings,
    copy_endpoint_handler,
    plan_push,
    push_to_hub,
    take_push_settings,
)

__all__ = [
    "HubError",
    "PushPlan",
    "PushResult",
    "PushSettings",
    "copy_endpoint_handler",
    "plan_push",
    "push_to_hub",
    "resolve_token",
    "take_push_settings",
]
