"""The fake Hub (tests/fixtures/hub_server.py) works with the real huggingface_hub client and transformers, no mocks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import httpx2
import pytest
from huggingface_hub import (
    HfApi,
    create_repo,
    hf_hub_download,
    list_repo_refs,
    model_info,
    snapshot_download,
    upload_folder,
)
from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError

from ..fixtures.hub_server import HubServer

CANARY = "CANARY-7f3a9c"


def _write_folder(root: Path, *, weights_seed: int = 0) -> dict[str, bytes]:
    """A folder with a README (YAML card), a JSON, a nested text file and a >1 MB ``.safetensors``-like blob."""
    files = {
        "README.md": f"---\nlicense: apache-2.0\n---\n# Tiny\nsecret marker: {CANARY}\n".encode(),
        "config.json": json.dumps({"hidden_size": 32, "labels": ["neg", "pos"]}).encode(),
        "docs/notes.txt": b"plain text\n",
        "weights.safetensors": os.urandom(16) + bytes([weights_seed]) * (1_200_000 + weights_seed),
    }
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    return files


def test_upload_folder_one_commit_then_snapshot_download(hub: HubServer, tmp_path: Path) -> None:
    local = _write_folder(tmp_path / "folder")

    url = create_repo("user/roundtrip")  # module-level function: its HfApi was built at import time
    assert url == f"{hub.url}/user/roundtrip"
    assert url.repo_id == "user/roundtrip"
    assert [c.title for c in hub.repo("user/roundtrip").commits] == ["initial commit"]

    info = upload_folder(repo_id="user/roundtrip", folder_path=tmp_path / "folder", commit_message="add files")

    repo = hub.repo("user/roundtrip")
    assert [c.title for c in repo.commits] == ["initial commit", "add files"]  # exactly one new commit
    assert repo.head() == info.oid
    assert {k: v for k, v in repo.files.items() if k != ".gitattributes"} == local
    assert repo.commit().lfs_paths == ["weights.safetensors"]  # went through the LFS batch/PUT/verify routes
    assert [r.route for r in hub.requests if r.route and r.route.startswith("lfs")] == [
        "lfs-batch",
        "lfs-upload",
        "lfs-verify",
    ]
    commit_body = hub.requests_for("commit")[0].body.decode()
    assert '"key": "lfsFile"' in commit_body and '"key": "file"' in commit_body

    api = HfApi()
    meta = api.model_info("user/roundtrip", files_metadata=True)
    assert meta.sha == info.oid
    assert meta.private is False
    siblings = {s.rfilename: s for s in meta.siblings or []}
    assert set(siblings) == {".gitattributes", *local}
    assert siblings["weights.safetensors"].size == len(local["weights.safetensors"])
    assert siblings["weights.safetensors"].lfs is not None
    assert siblings["config.json"].lfs is None
    tree = {f.path for f in api.list_repo_tree("user/roundtrip", recursive=True)}
    assert tree == {".gitattributes", "docs", *local}

    cache = tmp_path / "empty_cache"
    snapshot = Path(snapshot_download("user/roundtrip", cache_dir=cache))
    assert snapshot.name == info.oid
    for name, content in local.items():
        assert (snapshot / name).read_bytes() == content
    single = hf_hub_download("user/roundtrip", "config.json", revision=info.oid, cache_dir=tmp_path / "c2")
    assert Path(single).read_bytes() == local["config.json"]

    # Request log: the token travels in headers only; inline files are searchable once base64-decoded.
    assert all(r.headers.get("authorization") == f"Bearer {hub.token}" for r in hub.requests if r.route != "lfs-upload")
    assert hub.find_uploaded(hub.token) == []
    assert CANARY.encode() not in hub.requests_for("commit")[0].body  # base64 inside the NDJSON...
    assert any("/commit/main" in hit for hit in hub.find_uploaded(CANARY))  # ...but found once decoded
    assert not hub.unhandled and not hub.errors


CHILD_LOAD = """
import sys
from safetensors.torch import save_file
from transformers import AutoModel

model = AutoModel.from_pretrained("user/tiny")
save_file({k: v.contiguous() for k, v in model.state_dict().items()}, sys.argv[1])
"""


def test_transformers_from_pretrained_in_subprocess(hub: HubServer, tmp_path: Path) -> None:
    import torch
    from safetensors.torch import load_file
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=100, hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=37
    )
    model = BertModel(config)
    model.save_pretrained(tmp_path / "tiny")
    HfApi().create_repo("user/tiny")
    HfApi().upload_folder(repo_id="user/tiny", folder_path=tmp_path / "tiny")
    assert "model.safetensors" in hub.repo("user/tiny").commit().lfs_paths

    # Only environment variables configure the child: HF_ENDPOINT etc. from the fixture, and an empty HF_HOME.
    child_home = tmp_path / "child_hf_home"
    out = tmp_path / "loaded.safetensors"
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(CHILD_LOAD), str(out)],
        env={**os.environ, "HF_HOME": str(child_home)},
        cwd=tmp_path / "tiny",  # no local "user/tiny" folder there
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]

    loaded, expected = load_file(out), model.state_dict()
    assert loaded.keys() == expected.keys()
    assert all(torch.equal(loaded[k], expected[k]) for k in expected)
    assert list((child_home / "hub").glob("models--user--tiny/snapshots/*/model.safetensors"))
    downloads = {r.url_path.rsplit("/", 1)[-1] for r in hub.requests_for("resolve") if r.method == "GET"}
    assert {"config.json", "model.safetensors"} <= downloads
    assert not hub.unhandled and not hub.errors


def test_auth_and_error_statuses(hub: HubServer) -> None:
    api = HfApi()
    assert api.whoami()["name"] == "user"

    with pytest.raises(HfHubHTTPError) as bad_token:
        HfApi(token="hf_not_a_token").whoami()
    assert bad_token.value.response.status_code == 401

    create_repo("user/exists")
    with pytest.raises(HfHubHTTPError) as bad_token:
        HfApi(token="hf_not_a_token").model_info("user/exists")
    assert bad_token.value.response.status_code == 401

    with pytest.raises(RepositoryNotFoundError):
        model_info("user/missing")
    with pytest.raises(RepositoryNotFoundError):
        hf_hub_download("user/missing", "config.json")

    with pytest.raises(HfHubHTTPError) as conflict:
        create_repo("user/exists")
    assert conflict.value.response.status_code == 409
    assert create_repo("user/exists", exist_ok=True).repo_id == "user/exists"

    with pytest.raises(HfHubHTTPError) as forbidden:
        create_repo("someone-else/new")
    assert forbidden.value.response.status_code == 403

    hub.add_repo("other/public", {"config.json": "{}"})
    assert HfApi().model_info("other/public").sha == hub.repo("other/public").head()  # reading is fine
    with pytest.raises(HfHubHTTPError) as forbidden:
        api.upload_file(path_or_fileobj=b"x", path_in_repo="x.txt", repo_id="other/public")
    assert forbidden.value.response.status_code == 403
    assert len(hub.repo("other/public").commits) == 2

    hub.add_repo("other/private", {"config.json": "{}"}, private=True)
    with pytest.raises(RepositoryNotFoundError):
        api.model_info("other/private")


@pytest.mark.parametrize("fault", [{"status": 500}, {"status": 503}, {"disconnect": True}], ids=str)
def test_failed_commit_changes_nothing_and_retry_succeeds(hub: HubServer, tmp_path: Path, fault: dict) -> None:
    local = _write_folder(tmp_path / "folder")
    create_repo("user/atomic")
    repo = hub.repo("user/atomic")
    head_before, files_before = repo.head(), repo.files

    injected = hub.fail_next("commit", **fault)
    with pytest.raises((HfHubHTTPError, httpx2.HTTPError)) as err:
        upload_folder(repo_id="user/atomic", folder_path=tmp_path / "folder")
    if "status" in fault:
        assert isinstance(err.value, HfHubHTTPError)
        assert err.value.response.status_code == fault["status"]
    assert injected.remaining == 0 and len(injected.hits) == 1
    assert repo.head() == head_before and repo.files == files_before and len(repo.all_commits) == 1

    info = upload_folder(repo_id="user/atomic", folder_path=tmp_path / "folder")
    assert [c.oid for c in repo.commits][1:] == [info.oid]
    assert {k: v for k, v in repo.files.items() if k != ".gitattributes"} == local
    assert len(hub.requests_for("lfs-upload")) == 1  # the LFS object survived the failed commit: not re-sent
    assert [r.status for r in hub.requests_for("commit")] == [None if "disconnect" in fault else fault["status"], 200]


def test_fault_after_processing_keeps_the_commit(hub: HubServer) -> None:
    create_repo("user/lost-answer")
    hub.fail_next("commit", status=502, after=True)
    with pytest.raises(HfHubHTTPError):
        HfApi().upload_file(path_or_fileobj=b"hello", path_in_repo="a.txt", repo_id="user/lost-answer")
    assert hub.repo("user/lost-answer").files["a.txt"] == b"hello"  # applied, only the answer was lost


def test_preupload_5xx_is_retried_by_the_client(hub: HubServer) -> None:
    create_repo("user/retry")
    hub.fail_next("preupload", status=503, headers={"Retry-After": "0"})
    HfApi().upload_file(path_or_fileobj=b"hello", path_in_repo="a.txt", repo_id="user/retry")
    assert [r.status for r in hub.requests_for("preupload")] == [503, 200]
    assert hub.repo("user/retry").files["a.txt"] == b"hello"


def test_create_pr_creates_a_pr_ref_and_leaves_main_alone(hub: HubServer, tmp_path: Path) -> None:
    _write_folder(tmp_path / "v1")
    local_v2 = _write_folder(tmp_path / "v2", weights_seed=7)
    create_repo("user/prs")
    main_info = upload_folder(repo_id="user/prs", folder_path=tmp_path / "v1")
    repo = hub.repo("user/prs")
    main_files = repo.files

    pr = upload_folder(repo_id="user/prs", folder_path=tmp_path / "v2", create_pr=True, commit_message="v2")
    assert pr.pr_num == 1 and pr.pr_revision == "refs/pr/1"
    assert pr.pr_url is not None and pr.pr_url.endswith("/user/prs/discussions/1")
    assert repo.head("main") == main_info.oid and repo.files == main_files
    assert repo.pull_requests == {1: pr.oid}
    assert repo.history("refs/pr/1")[-2].oid == main_info.oid  # the PR branches off main
    assert repo.files_at("refs/pr/1")["weights.safetensors"] == local_v2["weights.safetensors"]

    refs = list_repo_refs("user/prs", include_pull_requests=True)
    assert [(b.name, b.target_commit) for b in refs.branches] == [("main", main_info.oid)]
    assert [(p.ref, p.target_commit) for p in refs.pull_requests or []] == [("refs/pr/1", pr.oid)]
    pr_weights = hf_hub_download("user/prs", "weights.safetensors", revision="refs/pr/1")
    assert Path(pr_weights).read_bytes() == local_v2["weights.safetensors"]
    assert HfApi().upload_file(
        path_or_fileobj=b"x", path_in_repo="x.txt", repo_id="user/prs", create_pr=True
    ).pr_revision == ("refs/pr/2")
    assert repo.head("main") == main_info.oid
