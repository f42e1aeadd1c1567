"""Predictions store: round trips, atomic commit, corrupt/truncated/missing files, aligned streaming."""

from __future__ import annotations

import os

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from selection import PredictionStoreError, PredictionWriter, read_predictions, stream_stacks
from selection.filesystem import move
from selection.store import PREDICTIONS_SCHEMA

IDS = ["a01", "a02", "b07", "c11"]
C = 6


def maps_for(seed: int, ids=IDS, shapes=None):
    rng = np.random.default_rng(seed)
    out = []
    for k, _ in enumerate(ids):
        h, w = shapes[k] if shapes else (5, 8)
        m = rng.integers(0, C, (h, w)).astype(np.uint8)
        m[rng.random((h, w)) < 0.2] = 255
        out.append(m)
    return out


def write(uri, cid, maps, ids=IDS, num_classes=C):
    with PredictionWriter(uri, cid, num_classes, ids) as w:
        for i, m in zip(ids, maps, strict=True):
            w.write(i, m)


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


def test_slices_read_only_their_images(tmp_path):
    maps = maps_for(1)
    write(tmp_path / "c.parquet", "c", maps)
    got = list(read_predictions(tmp_path / "c.parquet", start=1, stop=3))
    assert [i for i, _ in got] == IDS[1:3]
    assert np.array_equal(got[1][1], maps[2])


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

    from selection.subset import subset_hash

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


def test_move_falls_back_to_copy_then_delete():
    calls = []

    class NoRename:
        def move(self, src, dst):
            raise NotImplementedError

        def copy_file(self, src, dst):
            calls.append(("copy", src, dst))

        def delete_file(self, path):
            calls.append(("delete", path))

    move(NoRename(), "b/.x.tmp", "b/x")
    assert calls == [("copy", "b/.x.tmp", "b/x"), ("delete", "b/.x.tmp")]
