"""The validator families: each picks by its members' mean rank, and only where all of them are."""

from __future__ import annotations

import pandas as pd

from selection.decision.families import FAMILIES, family_picks


def test_each_family_picks_by_its_members_mean_rank() -> None:
    table = pd.DataFrame(
        {
            # source-side: a ranks 1, 2, 2 (DEV: lower is better) -> mean 1.67; b 2, 1, 1 -> 1.33.
            "source_val_miou": [0.6, 0.5, 0.4],
            "atc": [0.5, 0.6, 0.1],
            "dev": [0.9, 0.8, 1.0],
            # information: c best on both.
            "im": [0.1, 0.2, 0.3],
            "bnm": [0.1, 0.2, 0.3],
            # consensus: a and b tie on the mean rank (1.5): the tie goes to the preferred one.
            "f_miou": [0.9, 0.8, 0.1],
            "ensv": [0.8, 0.9, 0.1],
        },
        index=["a", "b", "c"],
    )
    assert family_picks(table, prefer="b") == {"source-side": "b", "information": "c", "consensus": "b"}
    assert family_picks(table, prefer="a")["consensus"] == "a"


def test_a_family_missing_a_validator_does_not_pick() -> None:
    table = pd.DataFrame({"im": [0.1, 0.2], "bnm": [0.1, 0.2], "f_miou": [0.5, 0.4]}, index=["a", "b"])
    assert family_picks(table) == {"information": "b"}
    assert set(FAMILIES) == {"source-side", "information", "consensus"}
