"""Atomic writes through pyarrow.fs; JSON records read with errors that name them."""

from __future__ import annotations

import pytest

from selection.errors import SelectionError
from selection.filesystem import move, read_json_document


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


def test_read_json_document_names_what_it_reads(tmp_path) -> None:
    good = tmp_path / "good.json"
    good.write_text('{"a": 1}')
    assert read_json_document(good, "the record", SelectionError) == {"a": 1}
    with pytest.raises(SelectionError, match="the record not found"):
        read_json_document(tmp_path / "missing.json", "the record", SelectionError)
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(KeyError, match="the record is unreadable"):
        read_json_document(tmp_path / "bad.json", "the record", KeyError)
    (tmp_path / "list.json").write_text("[1]")
    with pytest.raises(SelectionError, match="the record: expected a JSON object, got list"):
        read_json_document(tmp_path / "list.json", "the record", SelectionError)
