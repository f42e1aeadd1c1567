"""Reading predictions back: slices, missing/corrupt/foreign files, aligned streaming."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from store_files import IDS, C, maps_for, write

from selection import PredictionStoreError
from selection.store.predictions_format import PREDICTIONS_SCHEMA
from selection.store.predictions_reader import read_predictions, stream_stacks


def test_slices_read_only_their_images(tmp_path):
    maps = maps_for(1)
    write(tmp_path / "c.parquet", "c", maps)
    got = list(read_predictions(tmp_path / "c.parquet", start=1, stop=3))
    assert [i for i, _ in got] == IDS[1:3]
    assert np.array_equal(got[1][1], maps[2])


def test_missing_file_names_candidate_and_file(tmp_path):
    with pytest.raises(PredictionStoreError, match=r"candidate 'gamma=2'.*nope\.parquet not found"):
        list(read_predictions(tmp_path / "nope.parquet", candidate_id="gamma=2"))


def test_truncated_file_names_candidate_and_file(tmp_path):
    uri = tmp_path / "t.parquet"
    write(uri, "k=5", maps_for(7))
    data = uri.read_bytes()
    uri.write_bytes(data[: len(data) // 2])
    with pytest.raises(PredictionStoreError, match=r"candidate 'k=5'.*t\.parquet is corrupt"):
        list(read_predictions(uri, candidate_id="k=5"))


def test_corrupt_page_names_candidate_and_image(tmp_path):
    uri = tmp_path / "c.parquet"
    write(uri, "k=5", maps_for(8))
    col = pq.ParquetFile(uri).metadata.row_group(1).column(3)  # labels of the second image
    data = bytearray(uri.read_bytes())
    middle = col.data_page_offset + col.total_compressed_size - 4  # inside the page's data
    for k in range(middle - 2, middle + 2):
        data[k] ^= 0xFF
    uri.write_bytes(bytes(data))
    it = read_predictions(uri, candidate_id="k=5")
    assert next(it)[0] == "a01"  # the first image is intact and streams before the damage is met
    with pytest.raises(PredictionStoreError, match=r"candidate 'k=5', image 'a02': .*c\.parquet is corrupt"):
        next(it)


def test_corrupt_header_names_candidate_and_file(tmp_path):
    uri = tmp_path / "h.parquet"
    write(uri, "k=5", maps_for(8))
    data = bytearray(uri.read_bytes())
    for k in range(20, 40):  # the first column chunk's page header
        data[k] ^= 0xFF
    uri.write_bytes(bytes(data))
    with pytest.raises(PredictionStoreError, match=r"candidate 'k=5'.*h\.parquet is corrupt"):
        list(read_predictions(uri, candidate_id="k=5"))


def test_not_a_predictions_file(tmp_path):
    uri = tmp_path / "other.parquet"
    pq.write_table(pa.table({"x": [1, 2]}), uri)
    with pytest.raises(PredictionStoreError, match="not a predictions file"):
        list(read_predictions(uri, candidate_id="c"))


def test_file_of_another_candidate_is_refused(tmp_path):
    write(tmp_path / "a.parquet", "alpha=0.1", maps_for(9))
    with pytest.raises(PredictionStoreError, match="holds the predictions of candidate 'alpha=0.1'"):
        list(read_predictions(tmp_path / "a.parquet", candidate_id="alpha=0.9"))


def test_bad_label_on_read_names_candidate_and_image(tmp_path):
    # written around the writer's own check, as a foreign tool might
    uri = tmp_path / "bad.parquet"
    ids = ["i0", "i1"]
    import json

    from selection.store.subset import subset_hash

    meta = {
        "format": "hiast-select/predictions/v1",
        "candidate_id": "bad",
        "num_classes": 3,
        "ignore_index": 255,
        "num_images": 2,
        "subset_hash": subset_hash(ids),
    }
    table = pa.table(
        [
            pa.array(ids),
            pa.array([1, 1], pa.int32()),
            pa.array([2, 2], pa.int32()),
            pa.array([bytes([0, 1]), bytes([2, 9])], pa.binary()),
        ],
        schema=PREDICTIONS_SCHEMA.with_metadata({b"hiast_select.predictions": json.dumps(meta).encode()}),
    )
    pq.write_table(table, uri, row_group_size=1)
    it = read_predictions(uri, ids, candidate_id="bad")
    assert next(it)[0] == "i0"
    with pytest.raises(PredictionStoreError, match="candidate 'bad', image 'i1'.*label 9"):
        next(it)


def test_stream_stacks_aligns_candidates(tmp_path):
    maps = {c: maps_for(k) for k, c in enumerate("pqr")}
    uris = {}
    for c in "pqr":
        uris[c] = str(tmp_path / f"{c}.parquet")
        write(uris[c], c, maps[c])
    got = list(stream_stacks(uris, IDS, num_classes=C))
    assert [i for i, _ in got] == IDS
    for k, (_, stack) in enumerate(got):
        assert stack.shape == (3, 5, 8)
        for j, c in enumerate("pqr"):
            assert np.array_equal(stack[j], maps[c][k])
    chunk = list(stream_stacks(uris, IDS, start=2, stop=4))
    assert [i for i, _ in chunk] == IDS[2:]


def test_stream_stacks_different_image_sets(tmp_path):
    write(tmp_path / "p.parquet", "p", maps_for(0))
    other = ["a01", "a02", "zz9", "c11"]
    write(tmp_path / "q.parquet", "q", maps_for(1), ids=other)
    uris = {"p": tmp_path / "p.parquet", "q": tmp_path / "q.parquet"}
    with pytest.raises(PredictionStoreError, match=r"candidate 'q'.*image 'zz9' at position 2.*'b07'"):
        list(stream_stacks(uris, IDS))
    with pytest.raises(PredictionStoreError, match=r"candidate 'q'.*'zz9'"):
        list(stream_stacks(uris))  # no expected ids: the first file is the reference


def test_stream_stacks_different_order_and_length(tmp_path):
    write(tmp_path / "p.parquet", "p", maps_for(0))
    write(tmp_path / "q.parquet", "q", maps_for(1), ids=list(reversed(IDS)))
    write(tmp_path / "r.parquet", "r", maps_for(2)[:3], ids=IDS[:3])
    with pytest.raises(PredictionStoreError, match="candidate 'q'.*out of order"):
        list(stream_stacks({"p": tmp_path / "p.parquet", "q": tmp_path / "q.parquet"}, IDS))
    with pytest.raises(PredictionStoreError, match="candidate 'r'.*first missing image 'c11'"):
        list(stream_stacks({"p": tmp_path / "p.parquet", "r": tmp_path / "r.parquet"}, IDS))


def test_stream_stacks_different_shapes_and_classes(tmp_path):
    write(tmp_path / "p.parquet", "p", maps_for(0))
    shapes = [(5, 8), (5, 8), (4, 8), (5, 8)]
    write(tmp_path / "q.parquet", "q", maps_for(1, shapes=shapes))
    uris = {"p": tmp_path / "p.parquet", "q": tmp_path / "q.parquet"}
    it = stream_stacks(uris, IDS)
    next(it), next(it)
    with pytest.raises(PredictionStoreError, match="candidate 'q', image 'b07': map is 4x8, candidate 'p'"):
        next(it)
    write(tmp_path / "r.parquet", "r", maps_for(2), num_classes=C + 1)
    with pytest.raises(PredictionStoreError, match="different num_classes"):
        list(stream_stacks({"p": tmp_path / "p.parquet", "r": tmp_path / "r.parquet"}, IDS))
    with pytest.raises(PredictionStoreError, match="candidate 'r'.*num_classes=7, expected 6"):
        list(stream_stacks({"p": tmp_path / "p.parquet", "r": tmp_path / "r.parquet"}, IDS, num_classes=C))
