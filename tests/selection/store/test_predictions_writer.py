"""Writing predictions: round trips, compression, atomic commit, checks on write."""

from __future__ import annotations

import os

import numpy as np
import pyarrow.parquet as pq
import pytest
from store_files import IDS, C, maps_for, write

from selection import PredictionStoreError
from selection.store.predictions_format import PREDICTIONS_SCHEMA
from selection.store.predictions_reader import read_predictions
from selection.store.predictions_writer import PredictionWriter


def test_round_trip_local_path_and_file_uri(tmp_path):
    shapes = [(5, 8), (3, 4), (7, 2), (1, 1)]  # images of different sizes are fine within a file
    maps = maps_for(0, shapes=shapes)
    path = tmp_path / "sub" / "cand.parquet"
    write(path, "alpha=0.3", maps)
    for uri in (str(path), f"file://{path}", os.path.relpath(path)):
        got = list(read_predictions(uri, IDS, candidate_id="alpha=0.3", num_classes=C))
        assert [i for i, _ in got] == IDS
        for m, (_, g) in zip(maps, got, strict=True):
            assert g.dtype == np.uint8 and np.array_equal(m, g)
    pf = pq.ParquetFile(path)
    assert pf.num_row_groups == len(IDS)  # one row group per image: streamed image by image
    meta = pf.schema_arrow.metadata[b"hiast_select.predictions"]
    assert b'"candidate_id": "alpha=0.3"' in meta and b'"num_classes": 6' in meta
    assert [f.name for f in pf.schema_arrow] == PREDICTIONS_SCHEMA.names
    assert os.listdir(path.parent) == ["cand.parquet"]  # no temporary left behind


def test_label_maps_compress(tmp_path):
    big = np.zeros((256, 512), np.uint8)
    big[:, 200:] = 3
    big[100:150, 50:60] = 7
    write(tmp_path / "z.parquet", "z", [big] * 4, num_classes=19)
    assert os.path.getsize(tmp_path / "z.parquet") < 4 * big.size / 50


def test_incomplete_write_commits_nothing(tmp_path):
    uri = tmp_path / "x.parquet"
    maps = maps_for(2)
    with pytest.raises(PredictionStoreError, match=r"candidate 'x': only 2 of 4 .*next expected 'b07'"):
        with PredictionWriter(uri, "x", C, IDS) as w:
            w.write(IDS[0], maps[0])
            w.write(IDS[1], maps[1])
    assert os.listdir(tmp_path) == []


def test_error_inside_the_block_commits_nothing(tmp_path):
    with pytest.raises(RuntimeError):
        with PredictionWriter(tmp_path / "x.parquet", "x", C, IDS) as w:
            w.write(IDS[0], maps_for(3)[0])
            raise RuntimeError("model crashed")
    assert os.listdir(tmp_path) == []


def test_existing_file_is_replaced_only_on_success(tmp_path):
    uri = tmp_path / "c.parquet"
    old = maps_for(4)
    write(uri, "c", old)
    with pytest.raises(PredictionStoreError):
        with PredictionWriter(uri, "c", C, IDS) as w:
            w.write(IDS[0], maps_for(5)[0])
    assert np.array_equal(next(read_predictions(uri))[1], old[0])  # the old file is intact
    new = maps_for(6)
    write(uri, "c", new)
    assert np.array_equal(next(read_predictions(uri))[1], new[0])


def test_writer_checks_order_shape_and_labels(tmp_path):
    with PredictionWriter(tmp_path / "w.parquet", "w", C, IDS) as w:
        with pytest.raises(PredictionStoreError, match="image 0 of the subset is 'a01', got 'a02'"):
            w.write("a02", np.zeros((2, 2), np.uint8))
        with pytest.raises(
            PredictionStoreError, match=r"candidate 'w', image 'a01': label map must be \(H, W\)"
        ):
            w.write("a01", np.zeros((1, 2, 2), np.uint8))
        bad = np.zeros((2, 2), np.uint8)
        bad[1, 1] = 6
        with pytest.raises(PredictionStoreError, match="candidate 'w', image 'a01': label 6 is neither"):
            w.write("a01", bad)
        w.abort()
    assert os.listdir(tmp_path) == []
