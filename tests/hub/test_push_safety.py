"""`hfsent push` sends what a model repo needs and nothing else: no secrets, no local paths, clear failures."""

from __future__ import annotations

import json
import shutil
import stat
from pathlib import Path

import pytest
import yaml
from huggingface_hub import snapshot_download

from hfsent.cli import main as hfsent_main

from ..fixtures.helpers import files_without_the_default_mode, run_cli

SECRET = "s3cr3t-" + "Zq9" * 10


def _copy(finetuned_dir: Path, tmp_path: Path) -> Path:
    out = tmp_path / "out"
    shutil.copytree(finetuned_dir, out)
    return out


def _plant_secrets(out: Path, tmp_path: Path) -> dict[str, str]:
    """Secrets a careless folder may hold: links to files outside it, hidden files and folders at every depth."""
    outside = tmp_path / "outside"
    (outside / "dir").mkdir(parents=True)
    (outside / "credentials").write_text(f"token={SECRET}\n")
    (outside / "dir" / "config.json").write_text(f'{{"secret": "{SECRET}"}}')
    checkpoint = sorted(out.glob("checkpoint-*"))[0].name
    (out / "extra_results.json").symlink_to(outside / "credentials")  # an allowed name, outside the folder
    (out / f"{checkpoint}/scaler_results.json").symlink_to(outside / "credentials")
    (out / "checkpoint-999").symlink_to(outside / "dir", target_is_directory=True)
    (out / "tokenizer_link.json").symlink_to(out / "tokenizer.json")  # inside the folder: left out too
    (out / ".env").write_text(f"HF_TOKEN={SECRET}\n")
    (out / f"{checkpoint}/.env").write_text(f"HF_TOKEN={SECRET}\n")
    (out / f"{checkpoint}/.hidden").mkdir()
    (out / f"{checkpoint}/.hidden/config.json").write_text(f'{{"secret": "{SECRET}"}}')
    (out / "notes.txt").write_text("not a model file\n")
    return {
        "extra_results.json": "symlink",
        f"{checkpoint}/scaler_results.json": "symlink",
        "checkpoint-999/": "symlink",
        "tokenizer_link.json": "symlink",
        ".env": "hidden",
        f"{checkpoint}/.env": "hidden",
        f"{checkpoint}/.hidden/": "hidden",
        "notes.txt": "not a model file",
    }


def test_push_uploads_no_symlinked_secret_and_no_hidden_file_at_any_depth(hub, finetuned_dir, tmp_path):
    out = _copy(finetuned_dir, tmp_path)
    _plant_secrets(out, tmp_path)
    assert hfsent_main(["push", str(out), "user/safe", "--include-checkpoints"]) == 0
    assert hub.find_uploaded(SECRET) == []
    paths = hub.repo("user/safe").files
    assert not [p for p in paths if p != ".gitattributes" and any(part.startswith(".") for part in p.split("/"))]
    assert "extra_results.json" not in paths and "tokenizer_link.json" not in paths
    assert not [p for p in paths if p.startswith("checkpoint-999")]
    checkpoint = sorted(out.glob("checkpoint-*"))[0].name
    assert f"{checkpoint}/model.safetensors" in paths  # the real checkpoint files still go


def test_dry_run_lists_everything_left_out_and_why(hub, finetuned_dir, tmp_path, capsys):
    out = _copy(finetuned_dir, tmp_path)
    expected = _plant_secrets(out, tmp_path)
    assert hfsent_main(["push", str(out), "user/dry", "--dry-run", "--include-checkpoints"]) == 0
    listing = capsys.readouterr().out.split("----- ")[0]
    left_out = listing.split("left out")[1]
    for path, reason in expected.items():
        [line] = [line for line in left_out.splitlines() if line.split() and line.split()[0] == path]
        assert reason in line, line
    assert SECRET not in listing
    assert hub.requests == []


def test_checkpoints_go_without_training_args_bin_and_resume_from_the_download(hub, finetuned_dir, tmp_path, capsys):
    """``training_args.bin`` (a pickle of TrainingArguments: output_dir and other local paths) stays local, in
    checkpoints and at the top (where a pretraining run's output holds one); the Trainer never reads it, so a
    checkpoint downloaded from the repo still resumes."""
    out = _copy(finetuned_dir, tmp_path)
    checkpoint = sorted(p.name for p in out.glob("checkpoint-*"))[0]
    shutil.copy(out / checkpoint / "training_args.bin", out / "training_args.bin")
    assert hfsent_main(["push", str(out), "user/dry", "--dry-run", "--include-checkpoints"]) == 0
    left_out = capsys.readouterr().out.split("left out")[1].split("----- ")[0]
    for path in (f"{checkpoint}/training_args.bin", "training_args.bin"):
        [line] = [line for line in left_out.splitlines() if line.split()[:1] == [path]]
        assert "local paths" in line and "resuming does not read it" in line, line

    assert hfsent_main(["push", str(out), "user/resumable", "--include-checkpoints"]) == 0
    paths = hub.repo("user/resumable").files
    assert f"{checkpoint}/optimizer.pt" in paths
    assert [p for p in paths if p.endswith("training_args.bin")] == []
    assert hub.find_uploaded(str(finetuned_dir.parent)) == []  # no local path of the run left the machine
    assert hub.find_uploaded(str(out)) == []

    download = Path(snapshot_download("user/resumable", allow_patterns=[f"{checkpoint}/*"], cache_dir=tmp_path / "c"))
    resumed = tmp_path / "resumed"
    argv = ["--output_dir", str(resumed), "--resume_from_checkpoint", str(download / checkpoint)]
    assert hfsent_main(["train", str(finetuned_dir / "recipe.yaml"), *argv]) == 0

    def logged_after_the_checkpoint(run: Path) -> dict[int, float]:
        """The gradient norm logged at each step after the checkpoint (a loss averages steps from before it)."""
        history = json.loads((run / "trainer_state.json").read_text())["log_history"]
        return {e["step"]: e["grad_norm"] for e in history if "grad_norm" in e and e["step"] > int(checkpoint[11:])}

    continued = logged_after_the_checkpoint(resumed)  # the same steps, the same gradients: the run continued
    assert continued and continued == pytest.approx(logged_after_the_checkpoint(finetuned_dir), rel=1e-4)


def test_pushed_recipe_names_no_local_path_and_the_local_recipe_is_unchanged(hub, finetuned_dir, tmp_path):
    out = _copy(finetuned_dir, tmp_path)
    recipe = yaml.safe_load((out / "recipe.yaml").read_text())
    recipe["model_name_or_path"] = "google-bert/bert-base-chinese"  # a Hub id stays as it is
    (out / "recipe.yaml").write_text(yaml.safe_dump(recipe, sort_keys=True, allow_unicode=True))
    before = (out / "recipe.yaml").read_bytes()

    assert hfsent_main(["push", str(out), "user/private"]) == 0
    assert (out / "recipe.yaml").read_bytes() == before
    files = hub.repo("user/private").files
    pushed = yaml.safe_load(files["recipe.yaml"])
    assert pushed["model_name_or_path"] == "google-bert/bert-base-chinese"
    assert pushed["dataset_name"] == "<local>/" + Path(recipe["dataset_name"]).name  # as the card names it
    assert pushed["tokenizer_name"] == "<local>/" + Path(recipe["tokenizer_name"]).name
    assert pushed["output_dir"] == "<local>/out"
    assert {k: v for k, v in pushed.items() if not isinstance(v, str)} == {
        k: v for k, v in recipe.items() if not isinstance(v, str)
    }
    root = Path(recipe["output_dir"]).parents[1]  # every local path of the run lies below this folder
    assert hub.find_uploaded(str(root)) == []
    assert hub.find_uploaded(str(tmp_path)) == []


def test_every_file_of_a_run_gets_the_default_mode(finetuned_dir):
    assert (finetuned_dir / "model.safetensors").is_file()
    assert files_without_the_default_mode(finetuned_dir) == {}


def test_pretrained_encoders_get_the_default_mode_too(tmp_path):
    from transformers import BertConfig

    from hfsent.pretrain.modeling import MaskedOnlyBertForMaskedLM

    config = BertConfig(vocab_size=99, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32)
    MaskedOnlyBertForMaskedLM(config).save_pretrained(tmp_path / "mlm")
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in (tmp_path / "mlm").iterdir()}
    assert modes["model.safetensors"] == modes["config.json"], modes


def test_a_failure_mid_upload_is_one_line_saying_the_repo_is_unchanged_and_how_to_retry(
    hub, finetuned_dir, tmp_path, capfd
):
    hub.add_repo("user/mid")
    hub.fail_next("lfs-upload", status=403)
    assert hfsent_main(["push", str(finetuned_dir), "user/mid", "--token", hub.token]) == 1
    err = capfd.readouterr().err
    assert "Traceback" not in err and hub.token not in err
    [line] = [line for line in err.splitlines() if "error" in line.lower()]
    assert line.startswith("hfsent push: error: ")
    assert "model.safetensors" in line and "403" in line and "unchanged" in line
    assert line.endswith(f"push again with: hfsent push {finetuned_dir} user/mid")
    assert len(hub.repo("user/mid").commits) == 1


def test_retry_warnings_are_printed_once(hub, finetuned_dir, tmp_path):
    hub.fail_next("preupload", status=503)  # retried by huggingface_hub
    hub.fail_next("commit", status=503)  # retried by hfsent
    proc = run_cli("push", str(finetuned_dir), "user/retry", env={**hub.env, "HF_HOME": str(tmp_path / "hf")})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stderr.count("Retrying in") == 1, proc.stderr  # huggingface_hub's own message
    assert proc.stderr.count("retrying in") == 1, proc.stderr  # hfsent's


def test_push_to_an_endpoint_without_xet_uses_plain_uploads(hub, finetuned_dir, tmp_path, monkeypatch):
    import importlib.util

    assert importlib.util.find_spec("hf_xet") is not None  # as a real user has it
    monkeypatch.delenv("HF_HUB_DISABLE_XET")
    env = {**hub.env, "HF_HOME": str(tmp_path / "hf_home")}
    del env["HF_HUB_DISABLE_XET"]
    proc = run_cli("push", str(finetuned_dir), "user/noxet", env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "retrying" not in proc.stderr and "Traceback" not in proc.stderr
    assert "model.safetensors" in hub.repo("user/noxet").commit().lfs_paths
    assert len(hub.requests_for("xet-write-token")) <= 1  # asked once, then the plain LFS path
