"""Every validator from the one vote pass (run_selection) equals the pure functions; halves."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from evidence_files import SETTINGS
from selection_families import noisy, write_family
from validator_family import C, family

from selection import SelectionError, build_candidates, run_selection, vote_groups
from selection.decision.rules import parse_rule
from selection.fusion.majority import f_miou as fusion_f_miou
from selection.run import SelectionSpec
from selection.validators import (
    EVIDENCE_VALIDATORS,
    VALIDATORS,
    evidence_scores,
    f_miou_lno,
    leave_out,
    neighbours,
    seed_agreement,
)
from selection.validators.evidence import read_evidence


def test_the_vote_pass_computes_every_validator_as_the_pure_functions_do(tmp_path):
    cands, preds, evidence, ids, maps, maps2 = family(tmp_path, replicates=True)
    res = run_selection(
        cands, preds, SelectionSpec(ids, C, evidence_settings=SETTINGS), evidence_uris=evidence
    )
    for g, gids in vote_groups(cands).items():
        table = res.validators[g]
        assert list(table.index) == list(gids)
        assert list(table.columns) == list(VALIDATORS)  # all of them: labels, evidence, replicates
        stacks = [np.stack([maps[i][k] for i in gids]) for k in range(len(ids))]
        np.testing.assert_allclose(table["f_miou"], fusion_f_miou(stacks, C))
        exclude, mode = leave_out(gids, neighbours(cands, g))
        assert table.attrs["leave_out"] == mode == ("neighbours" if g == "alpha" else "one")
        np.testing.assert_allclose(table["f_miou_lno"], f_miou_lno(stacks, C, exclude))
        want = evidence_scores([read_evidence(evidence[i]) for i in gids])
        np.testing.assert_allclose(
            table[list(EVIDENCE_VALIDATORS)], want[list(EVIDENCE_VALIDATORS)], rtol=1e-9
        )
        seed = [
            seed_agreement([np.stack([maps[i][k], maps2[i][k]]) for k in range(len(ids))], C) for i in gids
        ]
        np.testing.assert_allclose(table["seed_agreement"], seed)
    # the results table has every validator: self ones once, group ones per group too
    t = res.table.set_index("candidate_id")
    for name in VALIDATORS:
        assert name in t.columns, name
    assert {"ensv__alpha", "ensv__gamma", "f_miou_lno__alpha"} <= set(t.columns)
    assert t.loc["default", "ensv"] == pytest.approx(
        (res.validators["alpha"].loc["default", "ensv"] + res.validators["gamma"].loc["default", "ensv"]) / 2
    )
    assert t.loc["alpha=0.1", "atc"] == res.validators["alpha"].loc["alpha=0.1", "atc"]


@pytest.mark.parametrize("num_chunks", [2, 4])
def test_chunked_equals_one_pass_with_evidence(tmp_path, num_chunks):
    cands, preds, evidence, ids, _ = family(tmp_path)
    one = run_selection(cands, preds, SelectionSpec(ids, C), evidence_uris=evidence)
    many = run_selection(cands, preds, SelectionSpec(ids, C, num_chunks=num_chunks), evidence_uris=evidence)
    for g in one.validators:
        pd.testing.assert_frame_equal(one.validators[g], many.validators[g], rtol=1e-9)
    assert one.choice == many.choice  # picks, half picks and confidence included


def test_a_rule_on_evidence_picks_and_every_pick_is_recorded(tmp_path):
    cands, preds, evidence, ids, _ = family(tmp_path)
    rule = {
        "two_stage": {"drop": "f_miou", "fraction": 0.4, "pick": {"rank_average": ["atc", "mean_entropy"]}}
    }
    res = run_selection(cands, preds, SelectionSpec(ids, C, rule=rule), evidence_uris=evidence)
    parsed = parse_rule(rule)
    # The fixture's source-val mIoU scalars run 0.0, 0.1, ...: the default's 0.0 is below half the
    # median, so the guard marks it broken, and no rule may pick it.
    broken = res.table.set_index("candidate_id")["broken"]
    assert broken.loc["default"] and not broken.drop("default").any()
    for g, table in res.validators.items():
        prefer = next(c.id for c in cands if c.is_default)
        eligible = table.drop(index="default")
        assert res.choice.as_dict()["per_sweep"][g]["candidate_id"] == parsed.pick(eligible, prefer)
        picks = res.choice.as_dict()["picks"][g]
        assert "default" not in picks.values()
        assert set(picks) == set(VALIDATORS) - {"seed_agreement"} | {"rule"}
        assert picks["f_miou"] == res.choice.as_dict()["per_sweep"][g]["untrimmed_pick"]
        sweep = res.sweeps[g]
        assert sweep.loc[sweep["picked"], "candidate_id"].tolist() == [picks["rule"]]
        assert (
            sweep.set_index("candidate_id")
            .loc[parsed.order(eligible, prefer), "rule__rank"]
            .dropna()
            .is_monotonic_increasing
        )
    assert res.choice.as_dict()["score_used"] == parsed.text


def test_candidates_without_evidence_score_nan_and_extra_scores_cannot_shadow_it(tmp_path):
    cands, preds, evidence, ids, _ = family(tmp_path)
    some = {k: v for k, v in evidence.items() if k != "alpha=0.9"}
    res = run_selection(cands, preds, SelectionSpec(ids, C, rule="atc"), evidence_uris=some)
    a = res.validators["alpha"]
    assert a.loc["alpha=0.9", list(EVIDENCE_VALIDATORS)].isna().all() and a.loc["alpha=0.1", "atc"] > 0
    assert res.choice.as_dict()["per_sweep"]["alpha"]["candidate_id"] != "alpha=0.9"
    with pytest.raises(SelectionError, match="'atc' is computed by the selection itself"):
        run_selection(
            cands,
            preds,
            SelectionSpec(ids, C),
            evidence_uris=evidence,
            extra_scores={"atc": {"default": 1.0}},
        )
    # without evidence, a registered validator computed elsewhere joins the table and rules may use it
    given = {c.id: float(k) for k, c in enumerate(cands)}
    res = run_selection(cands, preds, SelectionSpec(ids, C, rule="atc"), extra_scores={"atc": given})
    assert res.validators["alpha"]["atc"].to_dict() == {i: given[i] for i in vote_groups(cands)["alpha"]}
    assert (
        res.choice.as_dict()["per_sweep"]["alpha"]["candidate_id"] == "alpha=0.9"
    )  # the largest given value
    # no evidence: a rule needing it is refused before any file is read
    nowhere = {cid: str(tmp_path / "nowhere.parquet") for cid in preds}
    with pytest.raises(SelectionError, match="rule ensv uses ensv, which this selection cannot compute"):
        run_selection(cands, nowhere, SelectionSpec(ids, C, rule="ensv"))
    with pytest.raises(SelectionError, match="uses seed_agreement, which this selection cannot compute"):
        run_selection(
            cands, nowhere, SelectionSpec(ids, C, rule={"rank_average": ["f_miou", "seed_agreement"]})
        )


def test_noise_between_halves_lowers_the_confidence(tmp_path):
    # candidate A is right on the even images and B on the odd ones; C and the default are poor
    rng = np.random.default_rng(3)
    cands = build_candidates({"alpha": 0.5}, {"alpha": [0.1, 0.5, 0.9]}, "sweep")
    ids = [f"img{i}" for i in range(6)]
    truth = [rng.integers(0, C, (8, 8)).astype(np.uint8) for _ in ids]
    good = {"alpha=0.1": 0, "alpha=0.9": 1}
    maps = {
        c.id: [noisy(t, rng, 0.05 if good.get(c.id) == k % 2 else 0.5, C) for k, t in enumerate(truth)]
        for c in cands
    }
    res = run_selection(
        cands, write_family(tmp_path, cands, maps, ids, C), SelectionSpec(ids, C, trim_outliers=False)
    )
    g = res.choice.as_dict()["confidence"]["groups"]["alpha"]
    assert g["half_picks"] == ["alpha=0.1", "alpha=0.9"]
    assert g["level"] == "low" and any(r.startswith("within noise") for r in g["reasons"])
    # the same candidate best on every image: the halves agree with the whole
    steady = {c.id: [noisy(t, rng, 0.05 if c.id == "alpha=0.1" else 0.4, C) for t in truth] for c in cands}
    res = run_selection(
        cands,
        write_family(tmp_path, cands, steady, ids, C, tag="s-"),
        SelectionSpec(ids, C, trim_outliers=False),
    )
    g = res.choice.as_dict()["confidence"]["groups"]["alpha"]
    assert g["half_picks"] == ["alpha=0.1", "alpha=0.1"] and not any("noise" in r for r in g["reasons"])
