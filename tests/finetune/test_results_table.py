"""The test-metrics table `hfsent train` prints (`hfsent.finetune.format_results`)."""

from __future__ import annotations

from hfsent.finetune import format_results
from hfsent.finetune.run import display_width

METRICS = {"accuracy": 0.8, "f1": 0.75, "precision": 0.7, "recall": 0.8, "roc_auc": 0.9}


def binary_results(threshold: float) -> dict:
    results = {"threshold": threshold}
    for name, value in METRICS.items():
        results[f"test_{name}"] = value
        results[f"test_tuned_{name}"] = value + 0.01
    return results


def test_the_tuned_column_is_shown_only_for_a_tuned_threshold():
    assert format_results(binary_results(0.5)).splitlines()[0].split() == ["test", "metric", "@0.5"]
    table = format_results(binary_results(0.37))
    assert table.splitlines()[0].split() == ["test", "metric", "@0.5", "@0.370"]
    assert "accuracy       0.8000   0.8100" in table


def test_rows_named_in_chinese_line_up_in_a_terminal():
    results = binary_results(0.5)
    groups = ["交通是否便利", "价格水平", "菜品口感评价", "location"]
    results["pair_groups"] = groups
    for i, group in enumerate(groups):
        results[f"test_rows/{group}"] = 10 + i
        for m in ("accuracy", "f1", "roc_auc"):
            results[f"test_{m}/{group}"] = 0.5
    lines = format_results(results).splitlines()
    table = lines[lines.index("") + 1 :]
    assert [line.split()[0] for line in table[1:]] == groups
    # the "rows" column ends at the same terminal column on every line (a CJK character takes two)
    ends = {display_width(line[: line.index(str(10 + i)) + 2]) for i, line in enumerate(table[1:])}
    assert ends == {display_width(table[0][: table[0].index("rows") + 4])}


def test_multilabel_per_label_rows_line_up_too():
    labels = ["服务:pos", "服务:neg", "dish_taste:pos"]
    results = {"labels": labels, "threshold": [0.5] * 3, "test_f1_micro": 0.5, "test_accuracy": 0.4}
    for name in labels:
        for m in ("f1", "precision", "recall", "roc_auc"):
            results[f"test_{m}/{name}"] = 0.5
    lines = format_results(results).splitlines()
    assert lines[0].split() == ["test", "metric", "@0.5"]
    rows = lines[lines.index("") + 1 :]
    assert len({display_width(line) for line in rows}) == 1
