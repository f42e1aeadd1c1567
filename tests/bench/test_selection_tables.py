"""The selection benchmark's committed tables and drawn regimes: their owners
(bench/selection_bench/tables/scores.py, target_images.py, drawn.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from rules_fixtures import fixture_images, fixture_scores
from selection_bench.landscapes import DistributionError, draw_knobs, read_distribution, write_drawn
from selection_bench.tables import (
    TableError,
    image_counts,
    read_scores_table,
    read_target_images,
    subset_miou,
    write_scores_table,
    write_target_images,
)

from hiast.metrics import confusion_matrix, mean_iou

ROOT = Path(__file__).resolve().parents[2]


def test_scores_table_round_trips(tmp_path) -> None:
    table = fixture_scores()
    path = tmp_path / "selection_scores.parquet"
    write_scores_table(table, path)
    back = read_scores_table(path)
    cols = list(table.frame.columns)
    want = table.frame.sort_values(["regime", "seed", "sweep", "position"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(back.frame[cols], want[cols])
    assert back.validator_names == ["f_miou", "f_miou_trimmed", "bnm"]
    (g, *_) = list(back.groups("r1"))
    assert g.ids == ["alpha=0.1", "default", "broken:x"] and g.broken == {"broken:x"}
    assert list(g.validators.columns) == ["f_miou", "f_miou_trimmed", "bnm"]
    assert back.mean_truth("r1") == {"alpha=0.1": 57.0, "default": 59.0, "broken:x": 15.0}
    assert not list(tmp_path.glob("*.tmp*"))  # written through a temporary name, nothing left


def test_a_missing_column_is_named_with_the_file(tmp_path) -> None:
    path = tmp_path / "selection_scores.parquet"
    fixture_scores().frame.drop(columns=["target_val_miou"]).to_parquet(path)
    with pytest.raises(TableError, match=r"selection_scores.parquet: missing column\(s\) target_val_miou"):
        read_scores_table(path)
    frame = fixture_scores().frame
    pd.concat([frame, frame.iloc[:1]]).to_parquet(path)
    with pytest.raises(TableError, match="selection_scores.parquet: key regime/seed/sweep/candidate repeats"):
        read_scores_table(path)
    images = tmp_path / "selection_target_images.parquet"
    fixture_images().frame.drop(columns=["union"]).to_parquet(images)
    with pytest.raises(TableError, match=r"selection_target_images.parquet: missing column\(s\) union"):
        read_target_images(images)


def test_target_images_round_trip_and_add_up_to_the_dataset_miou(tmp_path) -> None:
    path = tmp_path / "selection_target_images.parquet"
    write_target_images(fixture_images(), path)
    counts = read_target_images(path).counts("r1", 1)
    images, inter, union = counts["alpha=0.1"]
    assert (
        images == ["im0", "im1", "im2"]
        and inter[:, 0].tolist() == [1, 1, 2]
        and union[:, 0].tolist() == [2] * 3
    )
    # Per-image counts summed give hiast's dataset-level mIoU (intersections and unions summed once).
    rng = np.random.default_rng(0)
    classes = [0, 2, 3]
    preds = [rng.integers(0, 4, (6, 7)) for _ in range(3)]
    labels = [rng.choice([0, 1, 2, 255], (6, 7)) for _ in range(3)]
    per = [image_counts(confusion_matrix(p, lab, 4), classes) for p, lab in zip(preds, labels, strict=True)]
    cm = sum(confusion_matrix(p, lab, 4) for p, lab in zip(preds, labels, strict=True))
    got = subset_miou(np.array([i for i, _ in per]), np.array([u for _, u in per]))
    assert got == pytest.approx(100 * mean_iou(cm, classes), abs=1e-12)


def test_drawn_regimes_are_deterministic_and_never_redrawn(tmp_path) -> None:
    dist = read_distribution(ROOT / "bench" / "drawn_regimes.yaml")
    assert draw_knobs(dist, 1) == draw_knobs(dist, 1) != draw_knobs(dist, 2)
    # The committed drawn regimes are exactly what the committed distribution gives.
    for path in write_drawn(ROOT / "bench" / "drawn_regimes.yaml", 2, tmp_path):
        assert path.read_text() == (ROOT / "bench" / "regimes" / path.name).read_text()
    (tmp_path / "drawn_1.yaml").write_text((tmp_path / "drawn_1.yaml").read_text().replace("shift", "shift "))
    with pytest.raises(DistributionError, match="drawn_1.yaml: exists and differs"):
        write_drawn(ROOT / "bench" / "drawn_regimes.yaml", 1, tmp_path)
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"seed": 1, "base": "x", "knobs": {"shift": {"normal": [0, 1]}}}))
    with pytest.raises(DistributionError, match=r"bad.yaml: knobs.shift: expected one of"):
        read_distribution(bad)
