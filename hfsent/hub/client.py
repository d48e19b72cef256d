"""The huggingface_hub client as a push uses it: its messages printed once (`hub_client_logging`), and Xet
storage only where the endpoint serves it (`xet_only_if_served`)."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from typing import Any

logger = logging.getLogger("hfsent")


@contextlib.contextmanager
def hub_client_logging() -> Iterator[None]:
    """Print huggingface_hub's messages once: it has its own stderr handler, so keep them from the root's too."""
    hub_logger = logging.getLogger("huggingface_hub")
    propagate = hub_logger.propagate
    hub_logger.propagate = propagate and not hub_logger.handlers
    try:
        yield
    finally:
        hub_logger.propagate = propagate


@contextlib.contextmanager
def xet_only_if_served(api: Any, repo_id: str, revision: str | None, create_pr: bool) -> Iterator[None]:
    """Upload through Xet only where the endpoint serves Xet write tokens; else through plain HTTP (LFS).

    With ``hf_xet`` installed, huggingface_hub uploads through Xet with no fallback, and an endpoint without Xet
    (a self-hosted or mirror Hub) makes ``hf_xet`` retry for about 40 s before failing with a misleading
    connection error. One request to the token route tells, before anything is uploaded.
    """
    from huggingface_hub import constants
    from huggingface_hub.utils import build_hf_headers, get_session
    from huggingface_hub.utils._runtime import is_xet_available

    if not is_xet_available() or _serves_xet(api, repo_id, revision, create_pr, get_session(), build_hf_headers):
        yield
        return
    disabled = constants.HF_HUB_DISABLE_XET
    constants.HF_HUB_DISABLE_XET = True
    try:
        yield
    finally:
        constants.HF_HUB_DISABLE_XET = disabled


def _serves_xet(
    api: Any, repo_id: str, revision: str | None, create_pr: bool, session: Any, headers: Callable[..., Any]
) -> bool:
    from huggingface_hub.utils._xet import XetTokenType, xet_connection_info_refresh_url

    url = xet_connection_info_refresh_url(
        token_type=XetTokenType.WRITE,
        repo_id=repo_id,
        repo_type="model",
        revision=None if create_pr else revision,  # as huggingface_hub asks for it
        endpoint=api.endpoint,
    )
    try:
        response = session.get(url + ("?create_pr=1" if create_pr else ""), headers=headers(token=api.token))
    except Exception as err:  # the upload itself will tell about a network failure
        status = f"{type(err).__name__}"
    else:
        if response.status_code == 200:
            return True
        status = f"HTTP {response.status_code}"
    logger.info("%s serves no Xet storage (%s on %s): uploading over plain HTTP (LFS)", api.endpoint, status, url)
    return False


__all__ = ["hub_client_logging", "xet_only_if_served"]
