"""The seed-repro recipe selects exactly the reference tutorial's rows (needs ../shared's review CSV)."""

from __future__ import annotations

import pytest

from hfsent.finetune import DataArguments, HfSentTrainingArguments, ModelArguments
from hfsent.finetune.data import load_raw_dataset, prepare_splits
from hfsent.recipe import RecipeParser

from ..fixtures.helpers import ROOT, SHARED

REVIEWS_CSV = SHARED / "data" / "online_shopping_10_cats.csv"
pytestmark = pytest.mark.skipif(
    not REVIEWS_CSV.is_file(), reason="needs $HFSENT_SHARED/data/online_shopping_10_cats.csv"
)


def _tutorial_split():
    """The tutorial's data, computed independently: first 10,000 usable rows, sklearn 80/20, seed 10."""
    import pandas as pd
    from sklearn.model_selection import train_test_split

    frame = pd.read_csv(REVIEWS_CSV)
    frame = frame[frame["review"].notna() & (frame["review"].astype(str).str.strip() != "")]
    frame = frame[frame["label"].isin([0, 1])].head(10_000)
    train, test = train_test_split(frame, test_size=0.2, stratify=frame["label"], random_state=10)
    return train, test


def test_seed_repro_recipe_has_the_tutorials_rows_and_sizes(tmp_path):
    parser = RecipeParser((ModelArguments, DataArguments, HfSentTrainingArguments))
    _, data_args, _ = parser.parse_recipe(
        [
            str(ROOT / "recipes" / "finetune" / "seed-repro.yaml"),
            "--dataset_name",
            str(REVIEWS_CSV),
            "--output_dir",
            str(tmp_path),
        ]
    )
    splits = prepare_splits(load_raw_dataset(data_args), data_args)
    tutorial_train, tutorial_test = _tutorial_split()

    train_rows = list(splits["train"]["review"]) + list(splits["validation"]["review"])
    assert (len(train_rows), len(splits["test"])) == (8_000, 2_000)
    assert sorted(train_rows) == sorted(tutorial_train["review"].tolist())
    assert list(splits["test"]["review"]) == tutorial_test["review"].tolist()  # same rows, same order
    assert sorted(splits["test"]["labels"]) == sorted(tutorial_test["label"].tolist())

    share = {name: sum(ds["labels"]) / len(ds) for name, ds in splits.items()}
    overall = (sum(tutorial_train["label"]) + sum(tutorial_test["label"])) / 10_000
    for name, positive_share in share.items():
        assert positive_share == pytest.approx(overall, abs=0.005), name
    assert {*splits["train"]["cat"], *splits["test"]["cat"]} == {"平板", "书籍"}
