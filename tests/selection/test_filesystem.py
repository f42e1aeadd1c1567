"""Atomic writes through pyarrow.fs."""

from __future__ import annotations

from selection.filesystem import move


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
