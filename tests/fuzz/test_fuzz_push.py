"""Bad inputs and faults thrown at `hfsent push` (in-process, against the local Hub): each ends as one clear error
line naming the culprit with the right exit code, no traceback, and the repo on the Hub unchanged."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from hfsent.cli import main as hfsent_main

REPO = "user/fuzz"
EARLIER = {"README.md": "the earlier version\n", "config.json": '{"model_type": "hfsent"}'}
SECRET = "fuzz-secret-" + "k7" * 12


@dataclass
class Setup:
    """What a case gets: the Hub, a writable copy of a finished output, a scratch folder."""

    hub: object
    out: Path
    tmp: Path
    monkeypatch: pytest.MonkeyPatch


@dataclass(frozen=True)
class Case:
    prepare: Callable[[Setup], list[str]]  # returns the arguments after "push"
    code: int
    fragments: tuple[str, ...]  # all in the one error line (the culprit and what to do)


def _plain(s: Setup) -> list[str]:
    return [str(s.out), REPO]


def _missing_folder(s: Setup) -> list[str]:
    return [str(s.tmp / "no-such-run"), REPO]


def _a_file(s: Setup) -> list[str]:
    return [str(s.out / "config.json"), REPO]


def _not_hfsent_output(s: Setup) -> list[str]:
    (s.tmp / "notes").mkdir()
    (s.tmp / "notes" / "todo.txt").write_text("buy milk\n")
    return [str(s.tmp / "notes"), REPO]


def _no_weights(s: Setup) -> list[str]:
    (s.out / "model.safetensors").unlink()
    return _plain(s)


def _weights_only_a_symlink(s: Setup) -> list[str]:
    (s.out / "model.safetensors").rename(s.tmp / "elsewhere.safetensors")
    (s.out / "model.safetensors").symlink_to(s.tmp / "elsewhere.safetensors")
    return _plain(s)


def _bad_repo_id(s: Setup) -> list[str]:
    return [str(s.out), "user/bad repo!"]


def _three_part_repo_id(s: Setup) -> list[str]:
    return [str(s.out), "a/b/c"]


def _no_token(s: Setup) -> list[str]:
    s.monkeypatch.delenv("HF_TOKEN")
    return _plain(s)


def _invalid_token(s: Setup) -> list[str]:
    return [*_plain(s), "--token", "hf_not_a_valid_token"]


def _other_namespace(s: Setup) -> list[str]:
    s.hub.add_repo("other/theirs", EARLIER)
    return [str(s.out), "other/theirs"]


def _missing_pr(s: Setup) -> list[str]:
    return [*_plain(s), "--revision", "refs/pr/7"]


def _conflict(s: Setup) -> list[str]:
    s.hub.fail_next("commit", status=409)
    return _plain(s)


def _token_in_a_file(s: Setup) -> list[str]:
    results = json.loads((s.out / "all_results.json").read_text())
    (s.out / "all_results.json").write_text(json.dumps({**results, "note": s.hub.token}))
    return _plain(s)


def _token_in_a_checkpoint(s: Setup) -> list[str]:
    checkpoint = sorted(s.out.glob("checkpoint-*"))[0]
    (checkpoint / "trainer_state.json").write_text(json.dumps({"token": s.hub.token}))
    return [*_plain(s), "--include-checkpoints"]


def _broken_recipe(s: Setup) -> list[str]:
    (s.out / "recipe.yaml").write_text("learning_rate: [unclosed\n")
    return _plain(s)


def _failure_mid_upload(s: Setup) -> list[str]:
    s.hub.fail_next("lfs-upload", status=403)
    return _plain(s)


def _lost_connection_mid_upload(s: Setup) -> list[str]:
    s.hub.fail_next("lfs-batch", status=400)
    return _plain(s)


def _offline(s: Setup) -> list[str]:
    import huggingface_hub.constants

    s.monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    return _plain(s)


CASES = {
    "missing folder": Case(_missing_folder, 2, ("no-such-run", "does not exist", "output directory")),
    "a file, not a folder": Case(_a_file, 2, ("config.json", "not a folder")),
    "not an hfsent output": Case(_not_hfsent_output, 2, ("notes", "no config.json")),
    "no weights": Case(_no_weights, 2, ("no model weights", "model.safetensors")),
    "weights only a symlink": Case(_weights_only_a_symlink, 2, ("no model weights", "model.safetensors")),
    "bad repo id": Case(_bad_repo_id, 2, ("'user/bad repo!'", "not a valid Hub repo id", "namespace/name")),
    "three-part repo id": Case(_three_part_repo_id, 2, ("'a/b/c'", "not a valid Hub repo id")),
    "no token": Case(_no_token, 1, ("no Hugging Face token", "hf auth login", "HF_TOKEN")),
    "401 invalid token": Case(_invalid_token, 1, ("401", "hf auth login")),
    "403 other namespace": Case(_other_namespace, 1, ("403", "other/theirs", "--create-pr")),
    "404 missing pull request": Case(_missing_pr, 1, ("404", "refs/pr/7")),
    "409 conflict": Case(_conflict, 1, ("409", REPO, "push again with: hfsent push")),
    "token in a file": Case(_token_in_a_file, 2, ("all_results.json", "contains your Hub token")),
    "token in a checkpoint": Case(_token_in_a_checkpoint, 2, ("trainer_state.json", "contains your Hub token")),
    "broken recipe.yaml": Case(_broken_recipe, 2, ("recipe.yaml", "not valid YAML at line", "fix or remove")),
    "403 mid-upload": Case(_failure_mid_upload, 1, ("model.safetensors", "403", "unchanged", "push again with")),
    "400 on the LFS batch": Case(_lost_connection_mid_upload, 1, ("400", "unchanged")),
    "offline mode": Case(_offline, 1, ("HF_HUB_OFFLINE",)),
}


@pytest.mark.parametrize("name", list(CASES))
def test_bad_push(name, hub, finetuned_dir, tmp_path, monkeypatch, capfd):
    case = CASES[name]
    out = tmp_path / "out"
    shutil.copytree(finetuned_dir, out)
    hub.add_repo(REPO, EARLIER)
    args = case.prepare(Setup(hub, out, tmp_path, monkeypatch))
    before = {key: (view.commits, view.files) for key, view in hub.repos.items()}

    assert hfsent_main(["push", *args]) == case.code
    err = capfd.readouterr().err
    assert "Traceback" not in err and hub.token not in err
    [line] = [line for line in err.splitlines() if "error" in line.lower()]
    assert line.startswith("hfsent push: error: ")
    for fragment in case.fragments:
        assert fragment in line, line
    assert {key: (view.commits, view.files) for key, view in hub.repos.items()} == before


def test_symlinks_and_hidden_files_at_depth_stay_local(hub, finetuned_dir, tmp_path, capfd):
    out = tmp_path / "out"
    shutil.copytree(finetuned_dir, out)
    (tmp_path / "secret").write_text(SECRET)
    checkpoint = sorted(out.glob("checkpoint-*"))[0]
    (out / "special_tokens_map.json").symlink_to(tmp_path / "secret")
    (checkpoint / ".aws").mkdir()
    (checkpoint / ".aws" / "config.json").write_text(SECRET)
    assert hfsent_main(["push", str(out), REPO, "--include-checkpoints", "--dry-run"]) == 0
    left_out = capfd.readouterr().out.split("left out")[1].split("----- ")[0]
    listing = {line.split()[0]: line.split()[1] for line in left_out.splitlines() if line[:2] == "  "}
    assert listing["special_tokens_map.json"] == "symlink:" and listing[f"{checkpoint.name}/.aws/"] == "hidden"
    assert hfsent_main(["push", str(out), REPO, "--include-checkpoints"]) == 0
    assert hub.find_uploaded(SECRET) == []
