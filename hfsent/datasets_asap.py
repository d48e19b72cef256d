"""ASAP (aspect-category sentiment of Dianping restaurant reviews, NAACL 2021) in hfsent's two aspect formats.

ASAP's CSVs (``train``, ``dev``, ``test``; the public sample's files end in ``_sample.csv``) hold ``reviewbody``,
``star`` and one column per aspect category (`ASAP_ASPECTS`): 1 positive, 0 neutral, -1 negative, -2 not mentioned.
`convert_asap` writes them as JSON Lines, one file per split (``train.jsonl``, ``validation.jsonl``,
``test.jsonl``), in one of two layouts:

- ``mode="labels"`` (a multi-label model): per review ``review``, ``star`` and ``aspects``, the list of
  ``<aspect>:<polarity>`` labels it carries (polarity ``pos``, ``neu`` or ``neg``), plus one 0/1 column per such
  label found in the train split. A recipe names ``label_column: aspects`` (labels inferred from train).
- ``mode="pairs"`` (a binary pair model): one row per (review, mentioned aspect) with ``aspect`` (its Chinese
  name, the first text of the pair), ``review`` (the second), ``aspect_id`` and ``label`` (1 positive,
  0 negative). Neutral mentions are left out (a neg/pos model has no neutral class; `convert_asap` counts them),
  and so are aspects a review does not mention.

Use: ``hfsent convert-asap IN_DIR OUT_DIR --mode labels|pairs``.
"""

from __future__ import annotations

import csv
import json
import math
import os
from pathlib import Path
from typing import Any

from .datasource import allow_long_csv_fields

# ASAP's 18 aspect categories (column -> the category's Chinese name, as in the ASAP paper)
ASAP_ASPECTS: dict[str, str] = {
    "location_traffic": "交通是否便利",
    "location_distance_from_business_district": "距离商圈远近",
    "location_easy_to_find": "是否容易寻找",
    "service_wait_time": "排队等候时间",
    "service_waiters_attitude": "服务人员态度",
    "service_parking_convenience": "是否容易停车",
    "service_serving_speed": "点菜上菜速度",
    "price_level": "价格水平",
    "price_cost_effective": "性价比",
    "price_discount": "折扣力度",
    "environment_decoration": "装修情况",
    "environment_noise": "嘈杂情况",
    "environment_space": "就餐空间",
    "environment_cleaness": "卫生情况",
    "dish_portion": "分量",
    "dish_taste": "口感",
    "dish_look": "外观",
    "dish_recommendation": "推荐程度",
}
POLARITIES = {1: "pos", 0: "neu", -1: "neg"}  # -2: not mentioned
SPLIT_FILES = {"train": "train", "validation": "dev", "test": "test"}  # our split -> ASAP's file stem
MODES = ("labels", "pairs")


class AsapFormatError(ValueError):
    """An input that is not in ASAP's format; the message names the file, row, column and value."""


def find_split_file(in_dir: str | os.PathLike, split: str) -> Path | None:
    """ASAP's CSV of ``split`` in ``in_dir`` (``dev.csv`` or ``dev_sample.csv`` for validation, ...), or None."""
    stem = SPLIT_FILES[split]
    for name in (f"{stem}.csv", f"{stem}_sample.csv"):
        if (Path(in_dir) / name).is_file():
            return Path(in_dir) / name
    return None


def read_asap_csv(path: str | os.PathLike) -> list[dict[str, Any]]:
    """The reviews of one ASAP CSV: ``review`` (text), ``star`` and ``aspects`` ({aspect column: -2..1}).

    Raises `AsapFormatError` naming the file (and line, column and value) for a file that is not ASAP's: not UTF-8,
    not CSV, a missing column, a value outside ASAP's, or no review at all."""
    allow_long_csv_fields()
    with open(path, encoding="utf-8-sig", newline="") as f:
        reader = csv.DictReader(f)
        try:
            return _asap_rows(path, reader)
        except UnicodeDecodeError as err:
            raise AsapFormatError(
                f"{path}: not UTF-8 text (byte {err.start} of a chunk near line {reader.line_num + 1}); ASAP's CSVs "
                "are UTF-8: save the file as UTF-8"
            ) from None
        except csv.Error as err:
            raise AsapFormatError(f"{path}, near line {reader.line_num + 1}: not valid CSV ({err})") from None


def _asap_rows(path: str | os.PathLike, reader: csv.DictReader) -> list[dict[str, Any]]:
    """The reviews `read_asap_csv` reads from ``reader`` (over ``path``)."""
    missing = [c for c in ("reviewbody", *ASAP_ASPECTS) if c not in (reader.fieldnames or [])]
    if missing:
        raise AsapFormatError(f"{path}: not an ASAP file, no column {missing[0]!r}")
    rows = []
    for line, row in enumerate(reader, start=2):
        aspects = {}
        for column in ASAP_ASPECTS:
            try:
                value = int(float(row[column]))
            except (TypeError, ValueError):
                value = None
            if value not in (*POLARITIES, -2):
                raise AsapFormatError(
                    f"{path}, line {line}: column {column!r} holds {row[column]!r}; ASAP's values are "
                    "1 (positive), 0 (neutral), -1 (negative) and -2 (not mentioned)"
                )
            aspects[column] = value
        rows.append({"review": row["reviewbody"], "star": _star(path, line, row.get("star")), "aspects": aspects})
    if not rows:
        raise AsapFormatError(f"{path}: holds no review (only a header)")
    return rows


def _star(path: str | os.PathLike, line: int, value: str | None) -> float | None:
    """The ``star`` cell as a number (None when empty); `AsapFormatError` naming it when it is not a finite one."""
    if not value or not value.strip():
        return None
    try:
        star = float(value)
    except ValueError:
        star = math.nan
    if not math.isfinite(star):
        raise AsapFormatError(f"{path}, line {line}: column 'star' holds {value!r}; expected a number or nothing")
    return star


def review_labels(aspects: dict[str, int]) -> list[str]:
    """The ``<aspect>:<polarity>`` labels of one review (mentioned aspects only), in `ASAP_ASPECTS` order."""
    return [f"{a}:{POLARITIES[v]}" for a, v in aspects.items() if v in POLARITIES]


def label_rows(reviews: list[dict[str, Any]], label_names: list[str]) -> list[dict[str, Any]]:
    """Multi-label rows: ``review``, ``star``, ``aspects`` (list of labels) and one 0/1 column per label name."""
    rows = []
    for review in reviews:
        labels = review_labels(review["aspects"])
        row = {"review": review["review"], "star": review["star"], "aspects": labels}
        row.update({name: int(name in labels) for name in label_names})
        rows.append(row)
    return rows


def pair_rows(reviews: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], int]:
    """Pair rows for every positive or negative aspect mention, and the number of neutral mentions left out."""
    rows, neutral = [], 0
    for review in reviews:
        for aspect, value in review["aspects"].items():
            if value == 0:
                neutral += 1
            elif value in (1, -1):
                rows.append(
                    {
                        "aspect": ASAP_ASPECTS[aspect],
                        "review": review["review"],
                        "aspect_id": aspect,
                        "label": int(value == 1),
                    }
                )
    return rows, neutral


def convert_asap(in_dir: str | os.PathLike, out_dir: str | os.PathLike, mode: str = "labels") -> dict[str, Any]:
    """Convert ASAP's CSVs in ``in_dir`` into ``out_dir/{train,validation,test}.jsonl`` (see the module docstring).

    Returns a summary: rows written per split, the label names (``labels``) or the neutral mentions left out per
    split (``pairs``). Raises `AsapFormatError` for an input that is not ASAP's, FileNotFoundError without a train
    file, NotADirectoryError for an ``out_dir`` that is a file, ValueError for an unknown ``mode``.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    files = {split: find_split_file(in_dir, split) for split in SPLIT_FILES}
    if files["train"] is None:
        raise FileNotFoundError(f"{in_dir}: no train.csv or train_sample.csv (ASAP's train split)")
    reviews = {split: read_asap_csv(path) for split, path in files.items() if path is not None}
    summary: dict[str, Any] = {"mode": mode, "rows": {}}
    outputs: dict[str, list[dict[str, Any]]] = {}
    if mode == "labels":
        found = {label for review in reviews["train"] for label in review_labels(review["aspects"])}
        order = [f"{a}:{p}" for a in ASAP_ASPECTS for p in POLARITIES.values()]
        summary["labels"] = [name for name in order if name in found]
        outputs = {split: label_rows(rows, summary["labels"]) for split, rows in reviews.items()}
    else:
        summary["neutral_left_out"] = {}
        for split, rows in reviews.items():
            outputs[split], summary["neutral_left_out"][split] = pair_rows(rows)
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"{out_dir}: is a file, not a folder; name a folder to write the splits into")
    out.mkdir(parents=True, exist_ok=True)
    for split, rows in outputs.items():
        target = out / f"{split}.jsonl"
        partial = target.with_suffix(".jsonl.partial")
        with open(partial, "w", encoding="utf-8") as f:
            for row in rows:
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
        partial.replace(target)
        summary["rows"][split] = len(rows)
    return summary


__all__ = ["ASAP_ASPECTS", "AsapFormatError", "convert_asap", "label_rows", "pair_rows", "read_asap_csv"]
