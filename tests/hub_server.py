"""In-process, Hub-compatible HTTP server for tests.

`HubServer` speaks enough of the Hugging Face Hub HTTP API for the *real* ``huggingface_hub`` client (and
``transformers.from_pretrained``) to create repos, upload with regular and LFS files in one atomic commit, open
pull requests, list trees/refs/commits and download files. It runs on ``127.0.0.1`` in a daemon thread
(stdlib ``ThreadingHTTPServer``); content is stored content-addressed (sha256) in a temporary directory, and each
repo keeps a list of commits, each one a full snapshot ``{path: file}``.

Routes (``{t}`` is ``models``, ``datasets`` or ``spaces``; ``{p}`` is ``""``, ``datasets/`` or ``spaces/``):

=========================================================  ==================  ======================================
request                                                    route kind          notes
=========================================================  ==================  ======================================
``GET /api/whoami-v2``                                     ``whoami``
``POST /api/repos/create`` / ``DELETE /api/repos/delete``  ``create-repo`` /   a 409 body still carries ``url``
                                                           ``delete-repo``
``POST /api/validate-yaml``                                ``validate-yaml``   always valid
``GET /api/{t}/{repo}[/revision/{rev}]``                   ``repo-info``       ``?blobs=1`` adds sizes/LFS info
``GET /api/{t}/{repo}/tree/{rev}[/{path}]``                ``tree``            ``?recursive=1``, no pagination
``GET /api/{t}/{repo}/refs`` / ``.../commits/{rev}``       ``refs`` /          ``?include_prs=1``
                                                           ``commits``
``POST /api/{t}/{repo}/branch/{branch}``                   ``create-branch``
``GET /api/{t}/{repo}/xet-write-token/{rev}``              ``xet-token``       404: no Xet storage here
``POST /api/{t}/{repo}/preupload/{rev}``                   ``preupload``       LFS per ``.gitattributes``/size
``POST /api/{t}/{repo}/commit/{rev}``                      ``commit``          NDJSON, atomic, ``?create_pr=1``
``POST /{p}{repo}.git/info/lfs/objects/batch``             ``lfs-batch``       upload hrefs point back here
``PUT /__lfs/upload/...`` / ``POST /__lfs/verify/...``     ``lfs-upload`` /    signed URL, no auth header
                                                           ``lfs-verify``
``HEAD|GET /{p}{repo}/resolve/{rev}/{path}``               ``resolve``         ``X-Repo-Commit``, ``ETag``, Range
=========================================================  ==================  ======================================

Unknown routes answer ``501`` and are listed in `HubServer.unhandled`.

Auth: ``Authorization: Bearer <token>``. Unknown tokens get ``401`` on every route; writes need a write token
whose user owns the namespace (or is a member of the org), else ``403``; missing (or hidden private) repos get
``404`` + ``X-Error-Code: RepoNotFound``; missing revisions/files get ``RevisionNotFound``/``EntryNotFound``.
Opening a pull request (``create_pr=1``) only needs read access, as on the Hub.

Every request is recorded in `HubServer.requests` (`RecordedRequest`). `HubServer.fail_next` injects faults
(an HTTP status, or an abrupt disconnect) into the next N matching requests.
"""

from __future__ import annotations

import base64
import contextlib
import fnmatch
import hashlib
import hmac
import itertools
import json
import os
import re
import secrets
import socket
import tempfile
import threading
import traceback
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import MappingProxyType, TracebackType
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import parse_qs, quote, unquote, urlsplit

if TYPE_CHECKING:
    import pytest

DEFAULT_TOKEN = "hf_test_valid"
DEFAULT_USER = "user"
REPO_TYPES = ("model", "dataset", "space")
_URL_PREFIX = {"model": "", "dataset": "datasets/", "space": "spaces/"}
_API_SEGMENT = {"model": "models", "dataset": "datasets", "space": "spaces"}
_TYPE_FROM_SEGMENT = {v: k for k, v in _API_SEGMENT.items()}
_REPO_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}$")
_INVALID_TOKEN_MESSAGE = "Invalid credentials in Authorization header"

# The `.gitattributes` the Hub puts in the initial commit of a new model repo.
DEFAULT_GITATTRIBUTES = "".join(
    f"{pattern} filter=lfs diff=lfs merge=lfs -text\n"
    for pattern in (
        "*.7z", "*.arrow", "*.bin", "*.bz2", "*.ckpt", "*.ftz", "*.gz", "*.h5", "*.joblib", "*.lfs.*",
        "*.mlmodel", "*.model", "*.msgpack", "*.npy", "*.npz", "*.onnx", "*.ot", "*.parquet", "*.pb",
        "*.pickle", "*.pkl", "*.pt", "*.pth", "*.rar", "*.safetensors", "saved_model/**/*", "*.tar.*",
        "*.tar", "*.tflite", "*.tgz", "*.wasm", "*.xz", "*.zip", "*.zst", "*tfevents*",
    )
)  # fmt: skip


# --------------------------------------------------------------------------------------------------------------------
# Storage model
# --------------------------------------------------------------------------------------------------------------------


def git_blob_oid(content: bytes) -> str:
    """Return the git blob sha1 of ``content`` (what ``git hash-object`` prints)."""
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


def lfs_pointer(sha256: str, size: int) -> bytes:
    """Return the git-lfs pointer file for an object."""
    return f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {size}\n".encode()


class _ObjectStore:
    """Content-addressed (sha256) blob store in a directory."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    def _path(self, sha256: str) -> Path:
        return self.root / sha256[:2] / sha256[2:]

    def put(self, content: bytes) -> str:
        """Store ``content`` and return its sha256."""
        sha256 = hashlib.sha256(content).hexdigest()
        path = self._path(sha256)
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent)
            with os.fdopen(fd, "wb") as f:
                f.write(content)
            os.replace(tmp, path)
        return sha256

    def has(self, sha256: str) -> bool:
        """Whether the object is stored."""
        return self._path(sha256).exists()

    def get(self, sha256: str) -> bytes:
        """Return the content of a stored object."""
        return self._path(sha256).read_bytes()


@dataclass(frozen=True)
class StoredFile:
    """A file in a commit snapshot: where its bytes are and how git/LFS see it."""

    sha256: str
    size: int
    git_oid: str  # blob sha1 of the content, or of the LFS pointer for LFS files
    lfs: bool

    @property
    def pointer_size(self) -> int:
        """Size of the LFS pointer file (meaningful for LFS files only)."""
        return len(lfs_pointer(self.sha256, self.size))

    @property
    def etag(self) -> str:
        """ETag the Hub serves: git blob oid for regular files, sha256 for LFS files."""
        return self.sha256 if self.lfs else self.git_oid


@dataclass(frozen=True)
class Commit:
    """One commit: a full, immutable snapshot of the repo."""

    oid: str
    parent: str | None
    title: str
    message: str
    author: str
    date: datetime
    entries: Mapping[str, StoredFile]
    _store: _ObjectStore = field(repr=False, compare=False)

    @property
    def paths(self) -> list[str]:
        """Sorted paths in the snapshot."""
        return sorted(self.entries)

    @property
    def files(self) -> dict[str, bytes]:
        """The snapshot as ``{path: bytes}``."""
        return {path: self._store.get(entry.sha256) for path, entry in sorted(self.entries.items())}

    @property
    def lfs_paths(self) -> list[str]:
        """Sorted paths stored through LFS."""
        return sorted(path for path, entry in self.entries.items() if entry.lfs)


@dataclass
class _Repo:
    repo_type: str
    repo_id: str
    private: bool
    created_at: datetime
    commits: dict[str, Commit] = field(default_factory=dict)  # insertion ordered
    refs: dict[str, str] = field(default_factory=dict)  # "main", "refs/pr/1", ... -> commit oid
    lfs_oids: set[str] = field(default_factory=set)  # LFS objects uploaded (and verified) for this repo
    next_pr: int = 1

    @property
    def key(self) -> str:
        return _URL_PREFIX[self.repo_type] + self.repo_id

    def resolve(self, revision: str) -> str | None:
        """Return the commit oid a branch, PR ref or (possibly abbreviated) commit sha points to."""
        revision = revision.removeprefix("refs/heads/")
        if revision in self.refs:
            return self.refs[revision]
        if re.fullmatch(r"[0-9a-f]{7,40}", revision):
            matches = [oid for oid in self.commits if oid.startswith(revision)]
            if len(matches) == 1:
                return matches[0]
        return None

    def chain(self, oid: str) -> list[Commit]:
        """First-parent history ending at ``oid``, oldest first."""
        out: list[Commit] = []
        current: str | None = oid
        while current is not None:
            commit = self.commits[current]
            out.append(commit)
            current = commit.parent
        return out[::-1]


class RepoView:
    """Read-only view of a repo for assertions (``hub.repos["user/x"]``)."""

    def __init__(self, repo: _Repo, lock: threading.RLock) -> None:
        self._repo = repo
        self._lock = lock

    def __repr__(self) -> str:
        return f"RepoView({self._repo.key!r}, refs={self.refs})"

    @property
    def repo_id(self) -> str:
        """``namespace/name``."""
        return self._repo.repo_id

    @property
    def repo_type(self) -> str:
        """``model``, ``dataset`` or ``space``."""
        return self._repo.repo_type

    @property
    def private(self) -> bool:
        """Visibility."""
        return self._repo.private

    @property
    def refs(self) -> dict[str, str]:
        """All refs (branches and ``refs/pr/N``) -> commit oid."""
        with self._lock:
            return dict(self._repo.refs)

    @property
    def branches(self) -> dict[str, str]:
        """Branches -> commit oid."""
        return {name: oid for name, oid in self.refs.items() if not name.startswith("refs/")}

    @property
    def pull_requests(self) -> dict[int, str]:
        """PR number -> head commit oid."""
        return {int(name.rsplit("/", 1)[1]): oid for name, oid in self.refs.items() if name.startswith("refs/pr/")}

    @property
    def all_commits(self) -> list[Commit]:
        """Every commit of the repo (all refs), in creation order."""
        with self._lock:
            return list(self._repo.commits.values())

    @property
    def commits(self) -> list[Commit]:
        """History of ``main``, oldest first (the first is the Hub's initial commit)."""
        return self.history("main")

    @property
    def files(self) -> dict[str, bytes]:
        """Files at the head of ``main`` as ``{path: bytes}``."""
        return self.files_at("main")

    def history(self, revision: str) -> list[Commit]:
        """First-parent history of a revision, oldest first."""
        with self._lock:
            return self._repo.chain(self._resolve(revision))

    def head(self, revision: str = "main") -> str:
        """Commit oid a revision points to."""
        with self._lock:
            return self._resolve(revision)

    def commit(self, revision: str = "main") -> Commit:
        """The commit a revision points to."""
        with self._lock:
            return self._repo.commits[self._resolve(revision)]

    def files_at(self, revision: str) -> dict[str, bytes]:
        """Files at a revision as ``{path: bytes}``."""
        return self.commit(revision).files

    def _resolve(self, revision: str) -> str:
        oid = self._repo.resolve(revision)
        if oid is None:
            raise KeyError(f"{self._repo.key}: unknown revision {revision!r}")
        return oid


# --------------------------------------------------------------------------------------------------------------------
# Requests, faults, errors
# --------------------------------------------------------------------------------------------------------------------


@dataclass
class RecordedRequest:
    """One request as received. ``headers`` keys are lower-case; ``status`` is set once answered."""

    method: str
    path: str  # raw path, query string included
    headers: dict[str, str]
    body: bytes
    route: str | None = None
    status: int | None = None  # None: connection dropped (fault) or not answered yet
    fault: bool = False

    @property
    def url_path(self) -> str:
        """Path without the query string."""
        return urlsplit(self.path).path

    @property
    def query(self) -> dict[str, list[str]]:
        """Parsed query string."""
        return parse_qs(urlsplit(self.path).query)

    def json(self) -> Any:
        """Body parsed as JSON."""
        return json.loads(self.body)

    @property
    def uploaded_content(self) -> bytes:
        """Body plus, for NDJSON commits, the base64-decoded content of inline files.

        Regular files travel base64-encoded inside the commit payload, so a plain-text search of ``body`` would miss
        them: search this instead.
        """
        parts = [self.body]
        if self.route == "commit":
            for line in self.body.splitlines():
                try:
                    item = json.loads(line)
                    if item.get("key") == "file" and item["value"].get("encoding") == "base64":
                        parts.append(base64.b64decode(item["value"]["content"]))
                except (ValueError, KeyError, TypeError, AttributeError):
                    continue
        return b"\n".join(parts)


@dataclass
class Fault:
    """A pending injected fault (see `HubServer.fail_next`)."""

    match: str | Callable[[RecordedRequest], bool]
    times: int
    status: int
    disconnect: bool
    method: str | None
    after: bool
    headers: Mapping[str, str]
    hits: list[RecordedRequest] = field(default_factory=list)

    @property
    def remaining(self) -> int:
        """How many more matching requests will fail."""
        return self.times - len(self.hits)

    def matches(self, request: RecordedRequest) -> bool:
        """Whether this fault applies to ``request``."""
        if self.remaining <= 0 or (self.method is not None and self.method.upper() != request.method):
            return False
        if callable(self.match):
            return bool(self.match(request))
        return self.match == request.route or self.match in request.path


class HubError(Exception):
    """An error answer, shaped like the Hub's (``X-Error-Code``/``X-Error-Message`` headers, JSON ``error``)."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: str | None = None,
        headers: Mapping[str, str] | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = dict(headers or {})
        if code is not None:
            self.headers["X-Error-Code"] = code
        self.headers["X-Error-Message"] = message
        self.extra = dict(extra or {})


@dataclass
class _Response:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    content_length: int | None = None  # for HEAD answers that carry no body

    @classmethod
    def json(cls, payload: Any, status: int = 200, content_type: str = "application/json") -> _Response:
        return cls(status, json.dumps(payload).encode(), {"Content-Type": content_type})

    @classmethod
    def error(cls, err: HubError) -> _Response:
        resp = cls.json({"error": err.message, **err.extra}, status=err.status)
        resp.headers.update(err.headers)
        return resp


@dataclass(frozen=True)
class _TokenInfo:
    user: str
    write: bool
    orgs: frozenset[str]


@dataclass
class _Ctx:
    """What a route handler gets."""

    method: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    params: dict[str, str]  # raw (still URL-quoted) regex groups
    auth: _TokenInfo | None

    def flag(self, name: str) -> bool:
        value = self.query.get(name, [""])[-1].lower()
        return value not in ("", "0", "false")

    def json_body(self) -> Any:
        try:
            return json.loads(self.body or b"{}")
        except ValueError as e:
            raise HubError(400, f"Invalid JSON body: {e}") from e


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _iso(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def _repo_not_found() -> HubError:
    return HubError(404, "Repository not found", code="RepoNotFound")


def _repo_type_of(params: Mapping[str, str]) -> str:
    """Repo type from the ``type`` (``/api/{type}/...``) or ``prefix`` (``/{prefix}/ns/name/...``) URL group."""
    if "type" in params:
        return _TYPE_FROM_SEGMENT[params["type"]]
    return {"datasets": "dataset", "spaces": "space"}.get(params.get("prefix", ""), "model")


def _parse_gitattributes_lfs(content: str) -> list[str]:
    patterns = []
    for line in content.splitlines():
        tokens = line.split()
        if len(tokens) >= 2 and not tokens[0].startswith("#") and "filter=lfs" in tokens[1:]:
            patterns.append(tokens[0])
    return patterns


class _Route(Protocol):
    def __call__(self, ctx: _Ctx) -> _Response: ...


# --------------------------------------------------------------------------------------------------------------------
# The server
# --------------------------------------------------------------------------------------------------------------------

_T = r"(?P<type>models|datasets|spaces)"
_P = r"(?:(?P<prefix>datasets|spaces)/)?"
_R = r"(?P<ns>[^/]+)/(?P<name>[^/]+?)"


class HubServer:
    """A fake Hugging Face Hub on ``127.0.0.1`` (see module docstring).

    Use as a context manager, or call `start`/`stop`. Attributes and helpers for tests:

    - ``url``, ``token`` (valid write token of ``user``), ``user``, ``env`` (env vars for client processes);
    - ``repos`` (``{"user/x": RepoView}``, datasets/spaces keyed ``"datasets/user/x"``), ``repo(...)``;
    - ``requests`` (every `RecordedRequest`), ``unhandled``, ``find_uploaded(needle)``;
    - ``fail_next(...)``/``clear_faults()``; ``add_token(...)``, ``add_repo(...)``, ``commit_files(...)``;
    - ``lfs_threshold``: files at least this big go through LFS whatever ``.gitattributes`` says.
    """

    def __init__(self, root: Path | str, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self._store = _ObjectStore(self.root / "objects")
        self._lock = threading.RLock()
        self._repos: dict[str, _Repo] = {}
        self._tokens: dict[str, _TokenInfo] = {}
        self._faults: list[Fault] = []
        self._secret = secrets.token_bytes(16)
        self._counter = itertools.count()
        self.requests: list[RecordedRequest] = []
        self.errors: list[str] = []  # tracebacks of unexpected exceptions in route handlers
        self.token = DEFAULT_TOKEN
        self.user = DEFAULT_USER
        self.lfs_threshold = 10 * 1024 * 1024
        self.add_token(DEFAULT_TOKEN, DEFAULT_USER)
        self._httpd = _Server((host, port), _Handler)
        self._httpd.hub = self
        self._thread: threading.Thread | None = None
        self._routes: list[tuple[frozenset[str], re.Pattern[str], str, _Route]] = [
            (frozenset({"GET"}), re.compile(r"^/api/whoami-v2$"), "whoami", self._whoami),
            (frozenset({"POST"}), re.compile(r"^/api/repos/create$"), "create-repo", self._create_repo),
            (frozenset({"DELETE"}), re.compile(r"^/api/repos/delete$"), "delete-repo", self._delete_repo),
            (frozenset({"POST"}), re.compile(r"^/api/validate-yaml$"), "validate-yaml", self._validate_yaml),
            (frozenset({"POST"}), re.compile(rf"^/api/{_T}/{_R}/preupload/(?P<rev>.+)$"), "preupload", self._preupload),
            (frozenset({"POST"}), re.compile(rf"^/api/{_T}/{_R}/commit/(?P<rev>.+)$"), "commit", self._commit),
            (frozenset({"POST"}), re.compile(rf"^/api/{_T}/{_R}/branch/(?P<rev>.+)$"), "create-branch", self._branch),
            (frozenset({"GET"}), re.compile(rf"^/api/{_T}/{_R}/tree/(?P<rest>.+)$"), "tree", self._tree),
            (frozenset({"GET"}), re.compile(rf"^/api/{_T}/{_R}/refs$"), "refs", self._refs),
            (
                frozenset({"GET"}),
                re.compile(rf"^/api/{_T}/{_R}/xet-(?:read|write)-token/(?P<rev>.+)$"),
                "xet-token",
                self._xet_token,
            ),
            (frozenset({"GET"}), re.compile(rf"^/api/{_T}/{_R}/commits/(?P<rev>.+)$"), "commits", self._commits),
            (frozenset({"GET"}), re.compile(rf"^/api/{_T}/{_R}(?:/revision/(?P<rev>.+))?$"), "repo-info", self._info),
            (
                frozenset({"POST"}),
                re.compile(rf"^/{_P}{_R}\.git/info/lfs/objects/batch$"),
                "lfs-batch",
                self._lfs_batch,
            ),
            (
                frozenset({"PUT"}),
                re.compile(rf"^/__lfs/upload/{_T}/{_R}/(?P<oid>[0-9a-f]{{64}})$"),
                "lfs-upload",
                self._lfs_upload,
            ),
            (frozenset({"POST"}), re.compile(rf"^/__lfs/verify/{_T}/{_R}$"), "lfs-verify", self._lfs_verify),
            (frozenset({"GET", "HEAD"}), re.compile(rf"^/{_P}{_R}/resolve/(?P<rest>.+)$"), "resolve", self._resolve),
        ]

    # -- lifecycle ----------------------------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:53123`` (what ``HF_ENDPOINT`` must be set to)."""
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def env(self) -> dict[str, str]:
        """Environment variables pointing a (sub)process's ``huggingface_hub`` at this server (HF_HOME excluded)."""
        return {
            "HF_ENDPOINT": self.url,
            "HF_TOKEN": self.token,
            "HF_HUB_DISABLE_XET": "1",
            "HF_HUB_DISABLE_TELEMETRY": "1",
            "HF_HUB_DISABLE_UPDATE_CHECK": "1",
            "HF_HUB_DISABLE_PROGRESS_BARS": "1",
            # CI exports HF_HUB_OFFLINE=1; "0" (not unset) also beats `os.environ.get("HF_HUB_OFFLINE", "1")`.
            "HF_HUB_OFFLINE": "0",
            "TRANSFORMERS_OFFLINE": "0",
        }

    def start(self) -> HubServer:
        """Start serving in a daemon thread."""
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="hub-server", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and drop open (keep-alive) connections."""
        self._httpd.shutdown()
        self._httpd.server_close()
        self._httpd.drop_connections()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> HubServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- test-side API ------------------------------------------------------------------------------------------------

    @property
    def repos(self) -> Mapping[str, RepoView]:
        """Snapshot ``{key: RepoView}``; key is ``ns/name`` for models, ``datasets/ns/name`` for datasets."""
        with self._lock:
            return MappingProxyType({key: RepoView(repo, self._lock) for key, repo in self._repos.items()})

    def repo(self, repo_id: str, repo_type: str = "model") -> RepoView:
        """View of one repo (``KeyError`` if missing)."""
        with self._lock:
            return RepoView(self._repos[_URL_PREFIX[repo_type] + repo_id], self._lock)

    @property
    def unhandled(self) -> list[RecordedRequest]:
        """Requests that matched no route (answered 501)."""
        return [r for r in list(self.requests) if r.route is None]

    def requests_for(self, route: str) -> list[RecordedRequest]:
        """Recorded requests of one route kind (e.g. ``"commit"``), oldest first."""
        return [r for r in list(self.requests) if r.route == route]

    def clear_requests(self) -> None:
        """Forget recorded requests."""
        with self._lock:
            self.requests.clear()

    def find_uploaded(self, needle: str | bytes) -> list[str]:
        """Where ``needle`` appears in anything sent to or stored by the server, headers excluded.

        Searches request bodies (with base64 commit payloads decoded) and every file of every commit. Returns
        human-readable locations; an empty list means the needle never reached the server in a body or file.
        """
        raw = needle.encode() if isinstance(needle, str) else needle
        hits = [f"{r.method} {r.path}" for r in list(self.requests) if raw in r.uploaded_content]
        with self._lock:
            repos = list(self._repos.values())
        for repo in repos:
            for commit in list(repo.commits.values()):
                for path, entry in commit.entries.items():
                    if raw in self._store.get(entry.sha256):
                        hits.append(f"{repo.key}@{commit.oid[:8]}:{path}")
        return hits

    def fail_next(
        self,
        match: str | Callable[[RecordedRequest], bool],
        times: int = 1,
        status: int = 500,
        *,
        disconnect: bool = False,
        method: str | None = None,
        after: bool = False,
        headers: Mapping[str, str] | None = None,
    ) -> Fault:
        """Make the next ``times`` matching requests fail.

        Args:
            match: a route kind (``"commit"``, ``"preupload"``, ``"lfs-batch"``, ``"lfs-upload"``, ``"resolve"``,
                ``"repo-info"``, ...), a substring of the raw path+query, or a predicate on `RecordedRequest`.
            times: number of requests to fail.
            status: HTTP status to answer (body ``{"error": "Injected fault"}``).
            disconnect: close the connection without answering instead (client sees a protocol error).
            method: only match this HTTP method.
            after: process the request first (state changes are kept!), then fail the answer; simulates a lost
                response. Default: fail before any processing, so nothing changes.
            headers: extra headers on the failure answer (e.g. ``{"Retry-After": "0"}``).

        Note: ``huggingface_hub`` retries 5xx on preupload and LFS batch/upload/verify with back-off (sleeping
        1 s, 2 s, ... or ``Retry-After`` + 1 s), but not on ``commit``, ``create-repo`` or ``resolve``.
        """
        fault = Fault(match, times, status, disconnect, method, after, dict(headers or {}))
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        """Drop pending faults."""
        with self._lock:
            self._faults.clear()

    def add_token(self, token: str, user: str, *, write: bool = True, orgs: tuple[str, ...] = ()) -> None:
        """Register a token for ``user`` (read-only if not ``write``; member of ``orgs``)."""
        with self._lock:
            self._tokens[token] = _TokenInfo(user, write, frozenset(orgs))

    def add_repo(
        self,
        repo_id: str,
        files: Mapping[str, bytes | str] | None = None,
        *,
        repo_type: str = "model",
        private: bool = False,
    ) -> RepoView:
        """Create a repo server-side (initial commit with ``.gitattributes``), optionally with a second commit."""
        with self._lock:
            repo = self._new_repo(repo_type, repo_id, private, author=repo_id.split("/")[0])
            if files:
                self.commit_files(repo_id, files, repo_type=repo_type)
            return RepoView(repo, self._lock)

    def commit_files(
        self,
        repo_id: str,
        files: Mapping[str, bytes | str],
        *,
        delete: tuple[str, ...] = (),
        message: str = "Server-side commit",
        revision: str = "main",
        repo_type: str = "model",
    ) -> str:
        """Commit files server-side (no HTTP); returns the new commit oid."""
        with self._lock:
            repo = self._repos[_URL_PREFIX[repo_type] + repo_id]
            parent = repo.refs[revision]
            entries = dict(repo.commits[parent].entries)
            for path in delete:
                del entries[path]
            lfs_patterns = self._lfs_patterns(entries)
            for path, content in files.items():
                data = content.encode() if isinstance(content, str) else content
                entries[path] = self._stored(data, lfs=self._is_lfs(path, len(data), lfs_patterns))
            commit = self._make_commit(repo, parent, message, "", repo_id.split("/")[0], entries)
            repo.refs[revision] = commit.oid
            return commit.oid

    # -- internals: state -----------------------------------------------------------------------------------------

    def _new_repo(self, repo_type: str, repo_id: str, private: bool, author: str) -> _Repo:
        repo = _Repo(repo_type=repo_type, repo_id=repo_id, private=private, created_at=_now())
        gitattributes = DEFAULT_GITATTRIBUTES.encode()
        commit = self._make_commit(
            repo, None, "initial commit", "", author, {".gitattributes": self._stored(gitattributes, lfs=False)}
        )
        repo.refs["main"] = commit.oid
        self._repos[repo.key] = repo
        return repo

    def _stored(self, content: bytes, *, lfs: bool) -> StoredFile:
        sha256 = self._store.put(content)
        git_oid = git_blob_oid(lfs_pointer(sha256, len(content)) if lfs else content)
        return StoredFile(sha256=sha256, size=len(content), git_oid=git_oid, lfs=lfs)

    def _make_commit(
        self, repo: _Repo, parent: str | None, title: str, message: str, author: str, entries: dict[str, StoredFile]
    ) -> Commit:
        tree = "".join(f"{p}\0{e.git_oid}\n" for p, e in sorted(entries.items()))
        seed = f"{repo.key}\n{parent}\n{tree}\n{title}\n{message}\n{author}\n{next(self._counter)}"
        oid = hashlib.sha1(seed.encode()).hexdigest()
        commit = Commit(oid, parent, title, message, author, _now(), MappingProxyType(dict(entries)), self._store)
        repo.commits[oid] = commit
        return commit

    def _lfs_patterns(self, entries: Mapping[str, StoredFile]) -> list[str]:
        entry = entries.get(".gitattributes")
        return _parse_gitattributes_lfs(self._store.get(entry.sha256).decode(errors="replace")) if entry else []

    def _is_lfs(self, path: str, size: int, patterns: list[str]) -> bool:
        if size >= self.lfs_threshold:
            return True
        name = path.rsplit("/", 1)[-1]
        return any(fnmatch.fnmatchcase(path if "/" in p else name, p) for p in patterns)

    def _take_fault(self, request: RecordedRequest) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.matches(request):
                    fault.hits.append(request)
                    return fault
        return None

    # -- internals: auth and lookups --------------------------------------------------------------------------------

    def _authenticate(self, headers: Mapping[str, str]) -> _TokenInfo | None:
        value = headers.get("authorization")
        if not value:
            return None
        scheme, _, token = value.partition(" ")
        info = self._tokens.get(token.strip()) if scheme.lower() == "bearer" else None
        if info is None:
            raise HubError(401, _INVALID_TOKEN_MESSAGE)
        return info

    @staticmethod
    def _can_write(auth: _TokenInfo, namespace: str) -> bool:
        return auth.write and (namespace == auth.user or namespace in auth.orgs)

    def _get_repo(self, ctx: _Ctx, *, write: bool = False, need_auth: bool = False) -> _Repo:
        repo_type = _repo_type_of(ctx.params)
        ns, name = unquote(ctx.params["ns"]), unquote(ctx.params["name"])
        repo = self._repos.get(_URL_PREFIX[repo_type] + f"{ns}/{name}")
        readable = repo is not None and (
            not repo.private or (ctx.auth is not None and (ns == ctx.auth.user or ns in ctx.auth.orgs))
        )
        if repo is None or not readable:
            raise _repo_not_found()
        if (write or need_auth) and ctx.auth is None:
            raise HubError(401, "You must be authenticated to do this")
        if write and ctx.auth is not None and not self._can_write(ctx.auth, ns):
            raise HubError(403, f"You don't have the rights to write to {repo.key}")
        return repo

    @staticmethod
    def _revision_or_404(repo: _Repo, raw_rev: str) -> tuple[str, str]:
        revision = unquote(raw_rev)
        oid = repo.resolve(revision)
        if oid is None:
            raise HubError(404, f"Invalid rev id: {revision}", code="RevisionNotFound")
        return revision, oid

    @staticmethod
    def _split_rev_and_path(repo: _Repo, rest: str) -> tuple[str, str, str]:
        """Split ``{rev}/{path}`` where rev may be quoted (``refs%2Fpr%2F1``) or not (``refs/pr/1``)."""
        segments = rest.split("/")
        for k in range(1, len(segments) + 1):
            revision = unquote("/".join(segments[:k]))
            oid = repo.resolve(revision)
            if oid is not None:
                return revision, oid, unquote("/".join(segments[k:]))
        raise HubError(404, f"Invalid rev id: {unquote(segments[0])}", code="RevisionNotFound")

    def _repo_url(self, repo: _Repo) -> str:
        return f"{self.url}/{repo.key}"

    def _lfs_signature(self, repo: _Repo, oid: str) -> str:
        return hmac.new(self._secret, f"{repo.key}\n{oid}".encode(), hashlib.sha256).hexdigest()[:32]

    # -- routes ---------------------------------------------------------------------------------------------------

    def _whoami(self, ctx: _Ctx) -> _Response:
        if ctx.auth is None:
            raise HubError(401, _INVALID_TOKEN_MESSAGE)
        return _Response.json(
            {
                "type": "user",
                "id": hashlib.sha1(ctx.auth.user.encode()).hexdigest()[:24],
                "name": ctx.auth.user,
                "fullname": ctx.auth.user.title(),
                "email": f"{ctx.auth.user}@example.com",
                "emailVerified": True,
                "isPro": False,
                "orgs": [{"type": "org", "name": org} for org in sorted(ctx.auth.orgs)],
                "auth": {
                    "type": "access_token",
                    "accessToken": {"displayName": "hub-fixture", "role": "write" if ctx.auth.write else "read"},
                },
            }
        )

    def _create_repo(self, ctx: _Ctx) -> _Response:
        if ctx.auth is None:
            raise HubError(401, "You must be authenticated to create a repo")
        payload = ctx.json_body()
        name, org = payload.get("name"), payload.get("organization")
        repo_type = payload.get("type") or "model"
        if repo_type not in REPO_TYPES:
            raise HubError(400, f"Invalid repo type: {repo_type}")
        if not isinstance(name, str) or not _REPO_NAME_RE.match(name) or name.endswith(".git"):
            raise HubError(400, f"Invalid repo name: {name!r}")
        namespace = org or ctx.auth.user
        if not self._can_write(ctx.auth, namespace):
            raise HubError(403, f'You don\'t have the rights to create a {repo_type} under the namespace "{namespace}"')
        private = payload.get("visibility", "private" if payload.get("private") else "public") != "public"
        repo_id = f"{namespace}/{name}"
        key = _URL_PREFIX[repo_type] + repo_id
        with self._lock:
            if key in self._repos:
                raise HubError(409, f"You already created this {repo_type} repo", extra={"url": f"{self.url}/{key}"})
            repo = self._new_repo(repo_type, repo_id, private, author=ctx.auth.user)
        return _Response.json({"url": self._repo_url(repo), "name": repo_id, "id": repo.refs["main"][:24]})

    def _delete_repo(self, ctx: _Ctx) -> _Response:
        if ctx.auth is None:
            raise HubError(401, "You must be authenticated to delete a repo")
        payload = ctx.json_body()
        namespace = payload.get("organization") or ctx.auth.user
        key = _URL_PREFIX[payload.get("type") or "model"] + f"{namespace}/{payload.get('name')}"
        with self._lock:
            if key not in self._repos:
                raise _repo_not_found()
            if not self._can_write(ctx.auth, namespace):
                raise HubError(403, f"You don't have the rights to delete {key}")
            del self._repos[key]
        return _Response.json({})

    def _xet_token(self, ctx: _Ctx) -> _Response:
        """This server has no Xet storage, like a Hub-compatible endpoint without it: 404 after the usual checks."""
        self._get_repo(ctx)
        raise HubError(404, "Xet storage is not enabled on this endpoint")

    def _validate_yaml(self, ctx: _Ctx) -> _Response:
        return _Response.json({"errors": [], "warnings": []})

    def _info(self, ctx: _Ctx) -> _Response:
        repo = self._get_repo(ctx)
        _, oid = self._revision_or_404(repo, ctx.params.get("rev") or "main")
        commit = repo.commits[oid]
        blobs = ctx.flag("blobs")
        siblings = []
        for path, entry in sorted(commit.entries.items()):
            sibling: dict[str, Any] = {"rfilename": path}
            if blobs:
                sibling.update(size=entry.size, blobId=entry.git_oid)
                if entry.lfs:
                    sibling["lfs"] = {"size": entry.size, "sha256": entry.sha256, "pointerSize": entry.pointer_size}
            siblings.append(sibling)
        info: dict[str, Any] = {
            "_id": hashlib.sha1(repo.key.encode()).hexdigest()[:24],
            "id": repo.repo_id,
            "author": repo.repo_id.split("/")[0],
            "sha": oid,
            "lastModified": _iso(commit.date),
            "createdAt": _iso(repo.created_at),
            "private": repo.private,
            "gated": False,
            "disabled": False,
            "downloads": 0,
            "likes": 0,
            "tags": [],
            "siblings": siblings,
            "usedStorage": sum(e.size for e in commit.entries.values()),
        }
        if repo.repo_type == "model":
            info["modelId"] = repo.repo_id
        return _Response.json(info)

    def _tree(self, ctx: _Ctx) -> _Response:
        repo = self._get_repo(ctx)
        _, oid, prefix = self._split_rev_and_path(repo, ctx.params["rest"])
        prefix = prefix.strip("/")
        entries = repo.commits[oid].entries
        recursive = ctx.flag("recursive")
        base = f"{prefix}/" if prefix else ""
        files: list[dict[str, Any]] = []
        dirs: dict[str, list[str]] = {}
        for path, entry in sorted(entries.items()):
            if not path.startswith(base):
                continue
            rel_parts = path[len(base) :].split("/")
            for depth in range(1, len(rel_parts)):  # every ancestor dir below `prefix`
                dirs.setdefault(base + "/".join(rel_parts[:depth]), []).append(entry.git_oid)
            if recursive or len(rel_parts) == 1:
                item: dict[str, Any] = {"type": "file", "oid": entry.git_oid, "size": entry.size, "path": path}
                if entry.lfs:
                    item["lfs"] = {"oid": entry.sha256, "size": entry.size, "pointerSize": entry.pointer_size}
                files.append(item)
        if prefix and not files and not dirs:
            raise HubError(404, f"Entry not found: {prefix}", code="EntryNotFound", headers={"X-Repo-Commit": oid})
        folders = [
            {"type": "directory", "oid": hashlib.sha1("".join(oids).encode()).hexdigest(), "size": 0, "path": d}
            for d, oids in sorted(dirs.items())
            if recursive or "/" not in d[len(base) :]
        ]
        return _Response.json(folders + files)

    def _refs(self, ctx: _Ctx) -> _Response:
        repo = self._get_repo(ctx)
        branches = [
            {"name": n, "ref": f"refs/heads/{n}", "targetCommit": oid}
            for n, oid in repo.refs.items()
            if not n.startswith("refs/")
        ]
        out: dict[str, Any] = {"branches": branches, "converts": [], "tags": []}
        if ctx.flag("include_prs"):
            out["pullRequests"] = [
                {"name": n, "ref": n, "targetCommit": oid} for n, oid in repo.refs.items() if n.startswith("refs/pr/")
            ]
        return _Response.json(out)

    def _commits(self, ctx: _Ctx) -> _Response:
        repo = self._get_repo(ctx)
        _, oid = self._revision_or_404(repo, ctx.params["rev"])
        return _Response.json(
            [
                {
                    "id": c.oid,
                    "title": c.title,
                    "message": c.message,
                    "authors": [{"user": c.author}],
                    "date": _iso(c.date),
                }
                for c in reversed(repo.chain(oid))
            ]
        )

    def _branch(self, ctx: _Ctx) -> _Response:
        with self._lock:
            repo = self._get_repo(ctx, write=True)
            branch = unquote(ctx.params["rev"])
            if branch in repo.refs:
                raise HubError(409, f"Reference already exists: {branch}")
            start = ctx.json_body().get("startingPoint") or "main"
            _, oid = self._revision_or_404(repo, quote(start, safe=""))
            repo.refs[branch] = oid
        return _Response.json({})

    def _preupload(self, ctx: _Ctx) -> _Response:
        create_pr = ctx.flag("create_pr")
        repo = self._get_repo(ctx, write=not create_pr, need_auth=True)
        _, oid = self._revision_or_404(repo, ctx.params["rev"])
        entries = repo.commits[oid].entries
        patterns = self._lfs_patterns(entries)
        answer = []
        for item in ctx.json_body().get("files", []):
            path, size = item["path"], int(item["size"])
            existing = entries.get(path)
            answer.append(
                {
                    "path": path,
                    "uploadMode": "lfs" if self._is_lfs(path, size, patterns) else "regular",
                    "shouldIgnore": False,
                    "oid": None if existing is None else (existing.sha256 if existing.lfs else existing.git_oid),
                }
            )
        return _Response.json({"files": answer, "commitOid": oid})

    def _commit(self, ctx: _Ctx) -> _Response:
        create_pr = ctx.flag("create_pr")
        try:
            items = [json.loads(line) for line in ctx.body.splitlines() if line.strip()]
        except ValueError as e:
            raise HubError(400, f"Invalid NDJSON payload: {e}") from e
        if not items or items[0].get("key") != "header":
            raise HubError(400, "The first line of the payload must be the commit header")
        header = items[0].get("value") or {}
        title = header.get("summary")
        if not title:
            raise HubError(400, "Commit summary is required")
        with self._lock:  # validate and apply under the lock: all or nothing
            repo = self._get_repo(ctx, write=not create_pr, need_auth=True)
            revision = unquote(ctx.params["rev"])
            revision = revision.removeprefix("refs/heads/")
            if revision not in repo.refs:
                raise HubError(404, f"Invalid rev id: {revision}", code="RevisionNotFound")
            parent = repo.refs[revision]
            parent_commit = header.get("parentCommit")
            if parent_commit is not None:
                resolved = repo.resolve(parent_commit)
                if resolved is None:
                    raise HubError(404, f"Invalid parent commit: {parent_commit}", code="RevisionNotFound")
                if create_pr:
                    parent = resolved
                elif resolved != parent:
                    raise HubError(412, "A commit has happened since. Please refresh and try again.")
            entries = dict(repo.commits[parent].entries)
            for item in items[1:]:
                self._apply_operation(repo, entries, item)
            commit = self._make_commit(repo, parent, title, header.get("description") or "", ctx.auth.user, entries)  # type: ignore[union-attr]
            answer: dict[str, Any] = {
                "success": True,
                "commitOid": commit.oid,
                "commitUrl": f"{self._repo_url(repo)}/commit/{commit.oid}",
                "hookOutput": "",
            }
            if create_pr:
                number = repo.next_pr
                repo.next_pr += 1
                repo.refs[f"refs/pr/{number}"] = commit.oid
                answer["pullRequestUrl"] = f"{self._repo_url(repo)}/discussions/{number}"
            else:
                repo.refs[revision] = commit.oid
        return _Response.json(answer)

    def _apply_operation(self, repo: _Repo, entries: dict[str, StoredFile], item: Any) -> None:
        key, value = item.get("key"), item.get("value") or {}
        path = value.get("path")
        if not isinstance(path, str) or not path or path.startswith("/") or ".." in path.split("/"):
            raise HubError(400, f"Invalid path in {key} operation: {path!r}")
        if key == "file":
            content = value.get("content", "")
            try:
                data = (
                    base64.b64decode(content, validate=True) if value.get("encoding") == "base64" else content.encode()
                )
            except ValueError as e:
                raise HubError(400, f"Invalid base64 content for {path}") from e
            entries[path] = self._stored(data, lfs=False)
        elif key == "lfsFile":
            oid, size = value.get("oid"), value.get("size")
            if value.get("algo", "sha256") != "sha256" or oid not in repo.lfs_oids or not self._store.has(oid):
                raise HubError(
                    400, f"Your push was rejected because an LFS pointer pointed to a file that does not exist: {path}"
                )
            data_size = len(self._store.get(oid))
            if size is not None and int(size) != data_size:
                raise HubError(400, f"LFS object size mismatch for {path}")
            entries[path] = StoredFile(oid, data_size, git_oid_of_pointer(oid, data_size), lfs=True)
        elif key == "deletedFile":
            if path not in entries:
                raise HubError(404, f"A file with this name doesn't exist: {path}", code="EntryNotFound")
            del entries[path]
        elif key == "deletedFolder":
            prefix = path.rstrip("/") + "/"
            doomed = [p for p in entries if p.startswith(prefix)]
            if not doomed:
                raise HubError(404, f"A folder with this name doesn't exist: {path}", code="EntryNotFound")
            for p in doomed:
                del entries[p]
        else:
            raise HubError(400, f"Unknown commit operation: {key!r}")

    def _lfs_batch(self, ctx: _Ctx) -> _Response:
        payload = ctx.json_body()
        ref = (payload.get("ref") or {}).get("name")
        repo = self._get_repo(ctx, write=ref is not None, need_auth=True)
        if payload.get("operation") != "upload":
            raise HubError(400, "Only the 'upload' operation is supported by this fake hub")
        api = _API_SEGMENT[repo.repo_type]
        objects = []
        for obj in payload.get("objects", []):
            oid, size = obj.get("oid"), obj.get("size")
            if not isinstance(oid, str) or not re.fullmatch(r"[0-9a-f]{64}", oid) or not isinstance(size, int):
                objects.append({"oid": str(oid), "size": int(size or 0), "error": {"code": 422, "message": "Bad oid"}})
            elif oid in repo.lfs_oids and self._store.has(oid):
                objects.append({"oid": oid, "size": size})  # already there: no actions
            else:
                sig = self._lfs_signature(repo, oid)
                objects.append(
                    {
                        "oid": oid,
                        "size": size,
                        "authenticated": True,
                        "actions": {
                            "upload": {"href": f"{self.url}/__lfs/upload/{api}/{repo.repo_id}/{oid}?sig={sig}"},
                            "verify": {"href": f"{self.url}/__lfs/verify/{api}/{repo.repo_id}"},
                        },
                    }
                )
        return _Response.json({"transfer": "basic", "objects": objects}, content_type="application/vnd.git-lfs+json")

    def _lfs_upload(self, ctx: _Ctx) -> _Response:
        key = _URL_PREFIX[_repo_type_of(ctx.params)] + f"{unquote(ctx.params['ns'])}/{unquote(ctx.params['name'])}"
        repo = self._repos.get(key)
        oid = ctx.params["oid"]
        if repo is None or not hmac.compare_digest(ctx.query.get("sig", [""])[-1], self._lfs_signature(repo, oid)):
            raise HubError(403, "Invalid or expired upload signature")
        if hashlib.sha256(ctx.body).hexdigest() != oid:
            raise HubError(400, "Uploaded content does not match the announced sha256")
        self._store.put(ctx.body)
        with self._lock:
            repo.lfs_oids.add(oid)
        return _Response(200, b"", {"ETag": f'"{hashlib.md5(ctx.body).hexdigest()}"'})

    def _lfs_verify(self, ctx: _Ctx) -> _Response:
        repo = self._get_repo(ctx, need_auth=True)
        payload = ctx.json_body()
        oid, size = payload.get("oid"), payload.get("size")
        if oid not in repo.lfs_oids or not self._store.has(oid) or len(self._store.get(oid)) != size:
            raise HubError(404, f"LFS object {oid} not found")
        return _Response.json({"success": True})

    def _resolve(self, ctx: _Ctx) -> _Response:
        repo = self._get_repo(ctx)
        _, oid, path = self._split_rev_and_path(repo, ctx.params["rest"])
        entry = repo.commits[oid].entries.get(path)
        if entry is None:
            raise HubError(404, "Entry not found", code="EntryNotFound", headers={"X-Repo-Commit": oid})
        headers = {
            "Content-Type": "application/octet-stream",
            "Accept-Ranges": "bytes",
            "X-Repo-Commit": oid,
            "ETag": f'"{entry.etag}"',
        }
        if entry.lfs:
            headers.update({"X-Linked-Etag": f'"{entry.sha256}"', "X-Linked-Size": str(entry.size)})
        if ctx.method == "HEAD":
            return _Response(200, b"", headers, content_length=entry.size)
        data = self._store.get(entry.sha256)
        match = re.fullmatch(r"bytes=(\d+)-(\d*)", ctx.headers.get("range", "").strip())
        if match:
            start = int(match[1])
            end = min(int(match[2]) if match[2] else entry.size - 1, entry.size - 1)
            if start >= entry.size:
                raise HubError(
                    416, "Requested range not satisfiable", headers={"Content-Range": f"bytes */{entry.size}"}
                )
            headers["Content-Range"] = f"bytes {start}-{end}/{entry.size}"
            return _Response(206, data[start : end + 1], headers)
        return _Response(200, data, headers)

    # -- dispatch (called from handler threads) ---------------------------------------------------------------------

    def _dispatch(self, request: RecordedRequest) -> _Response | None:
        """Route a recorded request; returns None when the connection must be dropped."""
        url = urlsplit(request.path)
        route: tuple[re.Match[str], _Route] | None = None
        for methods, pattern, kind, func in self._routes:
            m = pattern.match(url.path)
            if m and request.method in methods:
                request.route, route = kind, (m, func)
                break
        fault = self._take_fault(request)
        if fault is not None:
            request.fault = True
            if not fault.after:
                return self._fault_response(fault)
        if route is None:
            response = _Response.error(HubError(501, f"hub_server: no route for {request.method} {url.path}"))
        else:
            m, func = route
            params = {k: v for k, v in m.groupdict().items() if v is not None}
            try:
                auth = None if request.route == "lfs-upload" else self._authenticate(request.headers)
                response = func(_Ctx(request.method, parse_qs(url.query), request.headers, request.body, params, auth))
            except HubError as err:
                response = _Response.error(err)
            except Exception:  # a bug in the fake hub: answer 500 and keep the traceback for the test to see
                self.errors.append(f"{request.method} {request.path}\n{traceback.format_exc()}")
                response = _Response.error(HubError(500, "hub_server internal error (see HubServer.errors)"))
        if fault is not None:
            return self._fault_response(fault)
        return response

    @staticmethod
    def _fault_response(fault: Fault) -> _Response | None:
        if fault.disconnect:
            return None
        response = _Response.error(HubError(fault.status, "Injected fault"))
        response.headers.update(fault.headers)
        return response


def git_oid_of_pointer(sha256: str, size: int) -> str:
    """Git blob oid of the LFS pointer of an object (what the Hub reports as an LFS file's ``oid``)."""
    return git_blob_oid(lfs_pointer(sha256, size))


# --------------------------------------------------------------------------------------------------------------------
# HTTP plumbing
# --------------------------------------------------------------------------------------------------------------------


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    hub: HubServer

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler]) -> None:
        super().__init__(address, handler)
        self._connections: set[socket.socket] = set()
        self._conn_lock = threading.Lock()

    def track(self, conn: socket.socket, add: bool) -> None:
        with self._conn_lock:
            (self._connections.add if add else self._connections.discard)(conn)

    def drop_connections(self) -> None:
        with self._conn_lock:
            conns = list(self._connections)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server
    timeout = 60

    def setup(self) -> None:
        super().setup()
        self.server.track(self.connection, True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.track(self.connection, False)

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the default stderr access log (everything is in `HubServer.requests`)."""

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline(65537).split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline(65537)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _handle(self) -> None:
        hub = self.server.hub
        request = RecordedRequest(
            method=self.command,
            path=self.path,
            headers={k.lower(): v for k, v in self.headers.items()},
            body=self._read_body(),
        )
        with hub._lock:
            hub.requests.append(request)
        response = hub._dispatch(request)
        if response is None:  # injected disconnect
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.send_response(response.status)
        for name, value in response.headers.items():
            self.send_header(name, value)
        length = response.content_length if response.content_length is not None else len(response.body)
        self.send_header("Content-Length", str(length))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)
        request.status = response.status

    do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = do_PATCH = _handle


# --------------------------------------------------------------------------------------------------------------------
# Pointing huggingface_hub at the server (used by the `hub` fixture in conftest.py)
# --------------------------------------------------------------------------------------------------------------------

# Env vars that would override or defeat the fixture's settings in client (sub)processes.
_ENV_TO_CLEAR = (
    "HF_HUB_CACHE",
    "HUGGINGFACE_HUB_CACHE",
    "HF_ASSETS_CACHE",
    "HUGGINGFACE_ASSETS_CACHE",
    "HF_XET_CACHE",
    "HF_TOKEN_PATH",
    "HUGGING_FACE_HUB_TOKEN",
    "HF_OIDC_RESOURCE",
    "HUGGINGFACE_CO_STAGING",
    "HF_HUB_ENABLE_HF_TRANSFER",
    "TRANSFORMERS_CACHE",
)


def configure_client(hub: HubServer, monkeypatch: pytest.MonkeyPatch, hf_home: Path) -> None:
    """Point ``huggingface_hub`` at ``hub``, in this process and in child processes.

    ``huggingface_hub.constants`` reads the environment once, at import, so setting ``HF_ENDPOINT`` after import
    has no effect in-process. This function therefore both sets the env vars (children inherit them) and patches
    every import-time copy: ``constants.ENDPOINT``/``HUGGINGFACE_CO_URL_TEMPLATE``/``HF_URL_HOSTS``, the cache and
    token paths, ``HF_HUB_DISABLE_XET`` (with ``hf_xet`` installed, uploads would otherwise go through Xet, which
    the fake hub does not speak), the endpoint bound into the module-level ``huggingface_hub.hf_api.api`` (behind
    ``huggingface_hub.create_repo``, ``upload_folder``, ...), and ``utils._http._HUB_ORIGINS``.
    """
    from huggingface_hub import constants, hf_api
    from huggingface_hub.utils import _http

    for name in _ENV_TO_CLEAR:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HF_HOME", str(hf_home))
    for name, value in hub.env.items():
        monkeypatch.setenv(name, value)

    paths = {
        "HF_HOME": hf_home,
        "default_cache_path": hf_home / "hub",
        "HUGGINGFACE_HUB_CACHE": hf_home / "hub",
        "HF_HUB_CACHE": hf_home / "hub",
        "default_assets_cache_path": hf_home / "assets",
        "HUGGINGFACE_ASSETS_CACHE": hf_home / "assets",
        "HF_ASSETS_CACHE": hf_home / "assets",
        "default_xet_cache_path": hf_home / "xet",
        "HF_XET_CACHE": hf_home / "xet",
        "HF_TOKEN_PATH": hf_home / "token",
        "HF_STORED_TOKENS_PATH": hf_home / "stored_tokens",
        "CHECK_FOR_UPDATE_DONE_PATH": hf_home / ".check_for_update_done",
        "CHECK_FOR_SKILL_UPDATE_DONE_PATH": hf_home / ".check_for_skill_update_done",
        "AGENT_HARNESSES_PATH": hf_home / ".agent_harnesses.json",
    }
    for name, path in paths.items():
        if hasattr(constants, name):
            monkeypatch.setattr(constants, name, str(path))
    monkeypatch.setattr(constants, "ENDPOINT", hub.url)
    monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", hub.url + "/{repo_id}/resolve/{revision}/{filename}")
    monkeypatch.setattr(constants, "HF_URL_HOSTS", constants.HF_URL_HOSTS | {urlsplit(hub.url).hostname})
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_XET", True)
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_TELEMETRY", True)
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_UPDATE_CHECK", True)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(hf_api.api, "endpoint", hub.url)
    monkeypatch.setattr(_http, "_HUB_ORIGINS", _http._HUB_ORIGINS | {_http._url_origin(hub.url)})


@contextlib.contextmanager
def running_hub(root: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[HubServer]:
    """Start a `HubServer` storing under ``root/storage``, configure the client (HF_HOME=``root/hf_home``), yield.

    The shared ``huggingface_hub`` HTTP client is closed on entry and exit so no pooled connection outlives the
    server.
    """
    from huggingface_hub.utils import _http

    hf_home = root / "hf_home"
    hf_home.mkdir(parents=True, exist_ok=True)
    with HubServer(root / "storage") as server:
        configure_client(server, monkeypatch, hf_home)
        _http.close_session()
        try:
            yield server
        finally:
            _http.close_session()
