"""Publishing: `hfsent push` / `hfsent.push_to_hub` against the local Hub fixture, with the real client."""

from __future__ import annotations

import json
import logging
import shutil

import pytest
from huggingface_hub import ModelCard

import hfsent
from hfsent.cli import main as hfsent_main

from ..finetune.test_finetune import EXPECTED_FILES
from ..fixtures.helpers import REVIEWS, run_cli, run_without_hfsent, tiny_pretrain_recipe, tiny_recipe
from ..model.test_remote_code import LOAD_WITHOUT_HFSENT

PUBLISHED = EXPECTED_FILES | {"README.md", "handler.py", ".gitattributes"}  # .gitattributes: the Hub's own
LFS_ROUTES = {"lfs-batch", "lfs-upload", "lfs-verify"}


def _new_commits(hub, repo_id: str) -> list:
    return hub.repo(repo_id).commits[1:]  # the first is the Hub's initial commit


def test_pushed_model_loads_without_hfsent_with_the_same_probabilities(hub, finetuned_dir, tmp_path):
    result = hfsent.push_to_hub(finetuned_dir, "user/hfsent", commit_message="First version")

    [commit] = _new_commits(hub, "user/hfsent")  # ONE commit with everything
    assert commit.title == "First version" and result.commit_oid == commit.oid
    assert set(commit.paths) == PUBLISHED
    assert commit.lfs_paths == ["model.safetensors"]
    config = json.loads(commit.files["config.json"])
    assert config["auto_map"]["AutoModel"] == "modeling_hfsent.HfSentModel"
    card = commit.files["README.md"].decode()
    assert 'model="user/hfsent"' in card and "your-username" not in card  # rendered with the repo id

    texts = [*REVIEWS[:3], *REVIEWS[-3:]]
    expected = [r["positive_probability"] for r in hfsent.predict(texts, str(finetuned_dir))]
    out = run_without_hfsent(  # by repo id, with an empty cache
        LOAD_WITHOUT_HFSENT, "user/hfsent", json.dumps(texts), env={"HF_HOME": str(tmp_path / "empty")}
    )
    assert out["model_class"].startswith("transformers_modules.")
    assert out["auto_model_probs"] == pytest.approx(expected, abs=1e-5)
    pipeline_pos = [next(d["score"] for d in row if d["label"] == "pos") for row in out["pipeline"]]
    assert pipeline_pos == pytest.approx(expected, abs=1e-5)


def test_dry_run_prints_files_and_card_and_contacts_nothing(hub, finetuned_dir, capsys, monkeypatch):
    monkeypatch.delenv("HF_TOKEN")  # not even a token is needed
    assert hfsent_main(["push", str(finetuned_dir), "user/dry", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert hub.requests == []
    listed = {line.split()[0] for line in out.split("left out")[0].splitlines() if line.startswith("  ")}
    assert listed == PUBLISHED - {".gitattributes"}
    left_out = out.split("left out (not uploaded):\n")[1].split("----- ")[0]
    assert "checkpoint: --include-checkpoints uploads it" in left_out and "model_card_data.json" in left_out
    assert "optimizer.pt" not in out
    assert 'pipeline("text-classification", model="user/dry", trust_remote_code=True)' in out
    assert "model-index:" in out


def test_checkpoints_only_when_asked_and_branches_and_prs(hub, finetuned_dir, capsys):
    assert hfsent_main(["push", str(finetuned_dir), "user/full", "--include-checkpoints", "--revision", "dev"]) == 0
    repo = hub.repo("user/full")
    assert len(repo.history("dev")) == 2 and len(repo.commits) == 1  # main untouched: the branch was created
    files = repo.commit("dev").paths
    checkpoint = sorted(p.name for p in finetuned_dir.glob("checkpoint-*"))[0]
    assert f"{checkpoint}/optimizer.pt" in files and f"{checkpoint}/model.safetensors" in files

    assert hfsent_main(["push", str(finetuned_dir), "user/full", "--create-pr", "--commit-message", "Retrain"]) == 0
    assert "Pull request: " in capsys.readouterr().out
    assert list(repo.pull_requests) == [1] and len(repo.commits) == 1
    assert not any(p.startswith("checkpoint-") for p in repo.commit("refs/pr/1").paths)


def test_an_edited_card_is_published_as_is(hub, finetuned_dir, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(finetuned_dir, out)
    edited = (out / "README.md").read_text(encoding="utf-8") + "\n## Notes\n\nHand-written.\n"
    (out / "README.md").write_text(edited, encoding="utf-8")
    hfsent.push_to_hub(out, "user/edited")
    assert hub.repo("user/edited").files["README.md"].decode() == edited


# ------------------------------------------------------------------------------------------- failures


def test_no_token_says_how_to_log_in(hub, finetuned_dir, capsys, monkeypatch):
    monkeypatch.delenv("HF_TOKEN")
    assert hfsent_main(["push", str(finetuned_dir), "user/x"]) == 1
    err = capsys.readouterr().err
    assert "hf auth login" in err and "HF_TOKEN" in err and "Traceback" not in err
    assert hub.requests == []


@pytest.mark.parametrize("case", ["401", "403", "404", "409"])
def test_hub_refusals_are_clear_errors(case, hub, finetuned_dir, capsys):
    args = ["push", str(finetuned_dir), "user/refused"]
    expected = {
        "401": ["401", "hf auth login", "HF_TOKEN"],
        "403": ["403", "other/theirs", "write access", "--create-pr"],
        "404": ["404", "refs/pr/7", "not found"],
        "409": ["409", "conflict", "push again"],
    }[case]
    if case == "401":
        args += ["--token", "hf_not_a_valid_token"]
    elif case == "403":
        hub.add_repo("other/theirs")
        args[2] = "other/theirs"
    elif case == "404":
        hub.add_repo("user/refused")
        args += ["--revision", "refs/pr/7"]
    else:
        hub.fail_next("commit", status=409)
    assert hfsent_main(args) == 1
    err = capsys.readouterr().err
    [line] = [line for line in err.splitlines() if line.startswith("hfsent push: error: ")]
    for fragment in expected:
        assert fragment in line
    assert "hf_not_a_valid_token" not in err
    assert all(len(repo.commits) == 1 for repo in hub.repos.values())  # nothing committed anywhere


def test_interrupted_push_leaves_no_partial_commit_and_a_retry_succeeds(hub, finetuned_dir):
    failing = hub.fail_next("commit", times=3, disconnect=True)
    with pytest.raises(hfsent.HubError, match="after 3 attempts"):
        hfsent.push_to_hub(finetuned_dir, "user/flaky", max_retries=2, retry_delay=0)
    assert failing.remaining == 0
    repo = hub.repo("user/flaky")
    assert [c.title for c in repo.commits] == ["initial commit"] and repo.files.keys() == {".gitattributes"}

    hfsent.push_to_hub(finetuned_dir, "user/flaky", retry_delay=0)  # the next push succeeds, in one commit
    [commit] = _new_commits(hub, "user/flaky")
    assert set(commit.paths) == PUBLISHED


def test_transient_errors_are_retried_with_backoff_within_one_push(hub, finetuned_dir, caplog):
    hub.fail_next("commit", times=2, status=503)
    hfsent.push_to_hub(finetuned_dir, "user/retried", retry_delay=0.01)
    assert [r.status for r in hub.requests_for("commit")] == [503, 503, 200]
    assert len(_new_commits(hub, "user/retried")) == 1
    assert "retrying in 0.0 s (attempt 2 of 5)" in caplog.text and "retrying in 0.0 s (attempt 3 of 5)" in caplog.text


def test_a_lost_answer_does_not_commit_twice(hub, finetuned_dir, capsys):
    hub.fail_next("commit", status=502, after=True)  # the Hub commits, but its answer is lost
    result = hfsent.push_to_hub(finetuned_dir, "user/lost", retry_delay=0)
    [commit] = _new_commits(hub, "user/lost")
    assert result.commit_oid == commit.oid
    assert [r.status for r in hub.requests_for("commit")] == [502]  # the retry found nothing left to commit
    assert result.created

    assert hfsent_main(["push", str(finetuned_dir), "user/lost"]) == 0  # again: nothing new, no empty commit
    assert "Nothing to push: user/lost@main already holds these files" in capsys.readouterr().out
    assert len(_new_commits(hub, "user/lost")) == 1


# ------------------------------------------------------------------------------------ recipes, secrets


def test_recipe_push_to_hub_publishes_once_with_the_card_and_never_leaks_the_token(
    hub, tmp_path, tokenizer_dir, review_csv, monkeypatch, capsys, caplog
):
    canary = "hf_canary" + "Q7xZ" * 8
    hub.add_token(canary, "user")
    monkeypatch.setenv("HF_TOKEN", canary)
    recipe = tiny_recipe(
        tmp_path, tokenizer_dir, review_csv, num_train_epochs=1, max_train_samples=24, push_to_hub=True
    )
    env = {**hub.env, "HF_TOKEN": canary, "HF_HOME": str(tmp_path / "hf_home")}
    proc = run_cli("train", str(recipe), "--hub_model_id", "user/canary", "--hub_token", canary, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    with caplog.at_level(logging.DEBUG):
        assert hfsent_main(["push", str(tmp_path / "out"), "user/canary-cli", "--private"]) == 0
    pushed = capsys.readouterr()

    # the recipe's push went through hfsent: one commit, hfsent's card, no checkpoints
    [commit] = _new_commits(hub, "user/canary")
    assert set(commit.paths) == PUBLISHED
    assert "hfsent" in ModelCard(commit.files["README.md"].decode()).data.tags
    assert hub.repo("user/canary-cli").private
    assert f"Pushed {len(PUBLISHED) - 1} files to user/canary-cli in one commit" in pushed.out

    # the token is nowhere: logs (debug level included), output files (checkpoints included), uploads
    for stream in (proc.stdout, proc.stderr, pushed.out, pushed.err, caplog.text):
        assert canary not in stream
    leaking = [p for p in (tmp_path / "out").rglob("*") if p.is_file() and canary.encode() in p.read_bytes()]
    assert leaking == []
    assert hub.find_uploaded(canary) == []
    assert any(r.headers.get("authorization") == f"Bearer {canary}" for r in hub.requests)  # it was used
    # training and its cards needed no network: the Hub saw the two pushes only
    assert {r.route for r in hub.requests} <= {
        "create-repo",
        "repo-info",
        "validate-yaml",
        "preupload",
        "commit",
        *LFS_ROUTES,
    }


def test_recipe_push_to_hub_without_a_token_fails_before_training(
    hub, tmp_path, tokenizer_dir, review_csv, capsys, monkeypatch
):
    monkeypatch.delenv("HF_TOKEN")
    recipe = tiny_recipe(tmp_path, tokenizer_dir, review_csv, push_to_hub=True)
    assert hfsent_main(["train", str(recipe)]) == 1
    assert "hf auth login" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_pushing_something_that_is_not_a_model_is_refused(hub, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert hfsent_main(["push", str(tmp_path / "empty"), "user/x", "--dry-run"]) == 2  # bad input
    assert "no config.json" in capsys.readouterr().err


def test_a_file_holding_the_token_is_never_uploaded(hub, finetuned_dir, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(finetuned_dir, out)
    notes = json.loads((out / "all_results.json").read_text())
    notes["oops"] = hub.token
    (out / "all_results.json").write_text(json.dumps(notes))
    with pytest.raises(hfsent.HubError, match=r"all_results\.json contains your Hub token"):
        hfsent.push_to_hub(out, "user/oops")
    assert hub.requests == []


def test_pushed_pretraining_output_has_a_card_naming_the_repo(hub, tokenizer_dir, tmp_path, capsys):
    """`hfsent push` of an `hfsent pretrain` output re-renders the encoder card with the repo id, as it does the
    sentiment card (the card rendered at training time says `your-username/<folder>`)."""
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(REVIEWS * 4) + "\n", encoding="utf-8")
    out = tmp_path / "mlm"
    recipe = tiny_pretrain_recipe(tmp_path / "pretrain.yaml", tokenizer_dir, corpus, out)
    assert hfsent_main(["pretrain", str(recipe)]) == 0
    assert "your-username/mlm" in (out / "README.md").read_text(encoding="utf-8")  # before it has a repo

    assert hfsent_main(["push", str(out), "user/zh-enc"]) == 0, capsys.readouterr().err
    [commit] = _new_commits(hub, "user/zh-enc")
    card = commit.files["README.md"].decode()
    assert 'pipeline("fill-mask", model="user/zh-enc")' in card
    assert "your-username" not in card
    assert ModelCard(card).data.to_dict()["pipeline_tag"] == "fill-mask"
    assert "README.md" in commit.paths and "model.safetensors" in commit.paths
