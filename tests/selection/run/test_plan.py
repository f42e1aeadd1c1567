"""Vote plans and their accumulators: chunks, merging read-only parts."""

from __future__ import annotations

import numpy as np
from selection_families import degenerate_pair_family

from selection.run.plan import accumulate, image_chunks, make_plan, merge_accumulators


def test_merge_leaves_read_only_parts_untouched(tmp_path):
    cands, uris, ids, *_ = degenerate_pair_family(tmp_path, n_images=6)
    plan = make_plan(cands, uris, ids, 5)
    parts = [accumulate(plan, a, b).whole for a, b in image_chunks(len(ids), 2)]
    before = [{g: acc.counts for g, acc in p.fusion.items()} for p in parts]

    def freeze(obj, depth=0):  # what ray.get returns: arrays over an immutable buffer
        for value in vars(obj).values():
            if isinstance(value, np.ndarray):
                value.setflags(write=False)
            elif hasattr(value, "__dict__") and depth < 3 and not isinstance(value, type(plan)):
                freeze(value, depth + 1)

    for p in parts:
        freeze(p)
        for acc in p.fusion.values():
            freeze(acc)
    total = merge_accumulators(parts)
    assert total is not parts[0] and total.images == len(ids)
    for g, acc in total.fusion.items():
        np.testing.assert_array_equal(acc.counts, before[0][g] + before[1][g])
    for p, counts in zip(parts, before, strict=True):
        for g, acc in p.fusion.items():
            np.testing.assert_array_equal(acc.counts, counts[g])
