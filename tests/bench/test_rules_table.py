"""The selection benchmark's rules stage on a fixture table (bench/selection_bench/rules/: table,
limits, loro, calibration, guard_check, stage): every figure checked by hand, no checkpoint."""

from __future__ import annotations

import json

import numpy as np
import pytest
from rules_fixtures import COUNTS, IDS, fixture_images, fixture_scores
from selection_bench.rules import (
    ORACLE,
    agreement_picks,
    agreement_table,
    calibration_picks,
    calibration_table,
    family,
    feasible_rule,
    few_label_draws,
    few_label_label,
    guard_check,
    guard_markdown,
    loro_regret,
    rule_costs,
    rules_table,
    run_rules,
    summary_markdown,
)
from selection_bench.tables import (
    ScoresTable,
    read_scores_table,
    read_target_images,
    write_scores_table,
    write_target_images,
)


def test_regret_is_against_the_truth_averaged_over_seeds() -> None:
    t = rules_table(fixture_scores(), {"f_miou": "f_miou", "bnm": "bnm"}, few_label=())["r1"]
    # Mean truth in r1: alpha=0.1 57, default 59, broken 15; the best is the default (59).
    # f_miou picks default in seed 1 (regret 0) and alpha=0.1 in seed 2 (59 - 57 = 2): mean 1.
    assert t["f_miou"]["regret"] == pytest.approx(1.0) and t["f_miou"]["regret_max"] == pytest.approx(2.0)
    assert t["f_miou"]["top1"] == 0.5 and t["f_miou"]["centre"] == 0.5 and t["f_miou"]["broken"] == 0
    # bnm picks the broken candidate in seed 1 (59 - 15 = 44) and the default in seed 2 (0).
    assert t["bnm"]["regret"] == pytest.approx(22.0) and t["bnm"]["broken"] == 1
    # Seed 1's f_miou orders 0.3 / 0.5 / 0.1 like the mean truth 57 / 59 / 15: rho 1; seed 2's
    # 0.6 / 0.5 / 0.1 against 57 / 59 / 15: ranks (3, 2, 1) vs (2, 3, 1), rho 0.5. Mean 0.75.
    assert t["f_miou"]["spearman"] == pytest.approx(0.75)
    assert t["centre"]["regret"] == pytest.approx(0.0)
    assert t["random"]["regret"] == pytest.approx(59 - (57 + 59 + 15) / 3)
    assert t["random"]["broken"] == pytest.approx(2 / 3)


def test_per_seed_oracle_picks_by_the_seeds_own_truth_and_is_judged_on_the_mean() -> None:
    t = rules_table(fixture_scores(), {}, few_label=())
    # r1: seed 1's best is the default (60; regret 0), seed 2's alpha=0.1 (64; 59 - 57 = 2).
    assert t["r1"][ORACLE]["regret"] == pytest.approx(1.0) and t["r1"][ORACLE]["top1"] == 0.5
    # r2 (mean truth alpha=0.1 41, default 33): both seeds pick alpha=0.1, the best: regret 0.
    assert t["r2"][ORACLE]["regret"] == pytest.approx(0.0) and t["r2"][ORACLE]["top1"] == 1.0


def test_few_label_oracle_on_a_fixed_draw() -> None:
    images = ["im0", "im1", "im2"]
    draw1, draw2 = few_label_draws("r1", 1, images, 2, 1), few_label_draws("r1", 2, images, 2, 1)
    assert draw1 == few_label_draws("r1", 1, images, 2, 1)  # seeded: the same every time
    assert all(len(d) == 1 and len(d[0]) == 2 and set(d[0]) <= set(images) for d in (draw1, draw2))
    # By hand: a candidate's mIoU on two images is 100 * (I1 + I2) / (U1 + U2); pick the highest
    # (ties to the default, then the sweep order), regret against the mean truth (57 / 59 / 15).
    mean = {"alpha=0.1": 57.0, "default": 59.0, "broken:x": 15.0}
    regrets = []
    for seed, (draw,) in ((1, draw1), (2, draw2)):
        k = [int(im[2]) for im in draw]
        miou = {
            c: 100 * sum(COUNTS[seed][c][j][0] for j in k) / sum(COUNTS[seed][c][j][1] for j in k)
            for c in IDS
        }
        top = max(miou.values())
        pick = "default" if miou["default"] == top else next(c for c in IDS if miou[c] == top)
        regrets.append(59.0 - mean[pick])
    t = rules_table(fixture_scores(), {}, fixture_images(), few_label=(2,), draws=1)
    assert t["r1"][few_label_label(2)]["regret"] == pytest.approx(np.mean(regrets))
    assert t["r1"][few_label_label(2)]["picks"] == 2
    assert "unavailable" in t["r2"][few_label_label(2)]  # r2 has 1 image: said, not faked


def test_loro_chooses_on_the_other_regimes() -> None:
    table = {
        "a": {"m1": {"regret": 1.0}, "m2": {"regret": 3.0}},
        "b": {"m1": {"regret": 2.0}, "m2": {"regret": 0.5}},
        "c": {"m1": {"regret": 0.0}, "m2": {"regret": 0.2}},
    }
    res = loro_regret(table, ["m1", "m2"])
    # Held out a: on b+c m1 1.0, m2 0.35 -> m2, 3.0. Held out b: on a+c m1 0.5, m2 1.6 -> m1, 2.0.
    # Held out c: on a+b m1 1.5, m2 1.75 -> m1, 0.0. Mean (3 + 2 + 0) / 3.
    assert {h: v["chosen"] for h, v in res["per_regime"].items()} == {"a": "m2", "b": "m1", "c": "m1"}
    assert res["mean"] == pytest.approx(5 / 3)
    assert loro_regret({"a": table["a"]}, ["m1", "m2"]) is None


def test_calibration_table_reads_the_confidence_columns() -> None:
    picks = calibration_picks(fixture_scores())
    cal = calibration_table(picks)
    # Regrets: r1 s1 default 0; r1 s2 alpha=0.1 2; r2 s1 default (41 - 33) 8; r2 s2 alpha=0.1 0.
    assert cal["levels"]["high"]["mean"] == pytest.approx(0.0) and cal["levels"]["high"]["picks"] == 2
    assert cal["levels"]["low"]["mean"] == pytest.approx(5.0) and cal["levels"]["low"]["good"] == 0.0
    assert cal["reasons"]["families disagree"]["mean"] == pytest.approx(2.0)
    assert cal["reasons"]["within noise"]["mean"] == pytest.approx(8.0)


def test_the_guards_flags_are_never_picked_as_in_the_job() -> None:
    rules = {"bnm": "bnm"}
    # Unguarded, BNM picks broken:x in r1 seed 1 (0.9): regret 59 - 15 = 44.
    plain = rules_table(fixture_scores(), rules, None, few_label=())
    assert plain["r1"]["bnm"]["broken"] == 1
    # Flagged there, BNM picks among the rest: alpha=0.1 (0.2 > 0.1), regret 59 - 57 = 2.
    flags = {("r1", 1): {"broken:x": "one class takes 95% of the pixels"}}
    guarded = rules_table(fixture_scores(flags), rules, None, few_label=())
    assert guarded["r1"]["bnm"]["broken"] == 0
    # r1's picks: seed 1 regret 44 -> 2; seed 2 (BNM: default, 0) unchanged.
    assert plain["r1"]["bnm"]["regret"] == pytest.approx(22.0)
    assert guarded["r1"]["bnm"]["regret"] == pytest.approx(1.0)
    # A random pick does not take it either: expected broken picks 1/3 + 1/3 -> 0 + 1/3; expected
    # regret in seed 1, among alpha=0.1 and default: 59 - 58 = 1 (was 59 - 131/3); seed 2 unchanged.
    assert plain["r1"]["random"]["broken"] == pytest.approx(2 / 3)
    assert guarded["r1"]["random"]["broken"] == pytest.approx(1 / 3)
    assert guarded["r1"]["random"]["regret"] == pytest.approx((1 + (59 - 131 / 3)) / 2)
    # The table without the guard gives the unguarded figures back (the comparison with old tables).
    again = rules_table(fixture_scores(flags).without_guard(), rules, None, few_label=())
    assert again["r1"]["bnm"] == plain["r1"]["bnm"]


def test_the_summary_gives_the_drawn_regimes_their_own_mean() -> None:
    frame = fixture_scores().frame.replace({"regime": {"r2": "drawn_1"}})
    table = rules_table(ScoresTable(frame), {"f_miou": "f_miou"}, None, few_label=())
    md = summary_markdown(table, {"default": "f_miou"}, ["f_miou"])
    head, _, row = md.splitlines()
    assert head.split(" | ")[-6] == "mean regret, drawn regimes"
    assert row.split(" | ")[-6] == f"{table['drawn_1']['f_miou']['regret']:.2f}"
    plain = summary_markdown(
        rules_table(fixture_scores(), {"f_miou": "f_miou"}, None, few_label=()),
        {"default": "f_miou"},
        ["f_miou"],
    )
    assert "drawn" not in plain


def test_guard_check_counts_each_candidate_once_and_lists_every_good_one_flagged() -> None:
    flags = {("r1", 1): {"broken:x": "collapse"}, ("r2", 2): {"alpha=0.1": "classes vanish"}}
    check = guard_check(fixture_scores(flags))
    assert check["per_regime"]["r1"] == {"broken": 2, "broken_flagged": 1, "good": 4, "good_flagged": 0}
    assert check["per_regime"]["r2"] == {"broken": 2, "broken_flagged": 0, "good": 4, "good_flagged": 1}
    # r2's alpha=0.1: seed-mean truth 41, the sweep's best (itself) 41.
    assert check["good_flagged"] == [
        {
            "regime": "r2",
            "seed": 2,
            "candidate": "alpha=0.1",
            "reason": "classes vanish",
            "truth": 41.0,
            "best_in_sweeps": {"alpha": 41.0},
        }
    ]
    line = "r2 seed 2 alpha=0.1: classes vanish; truth 41.00; best in its sweeps: alpha 41.00"
    assert line in guard_markdown(check)


def test_agreement_calibration_counts_the_families_that_share_the_pick() -> None:
    fam = {"rank_average": ["f_miou", "bnm"]}
    picks = agreement_picks(fixture_scores(), "f_miou", [fam])
    # f_miou picks default, alpha=0.1, default, default. The rank average (ties to the default):
    # r1 s1 default (2, 2, 2), r1 s2 default (1.5 vs 2, 2.5), r2 s1 and s2 alpha=0.1 (1.5).
    # Regrets against the seed-mean truth (r1: 57 / 59, r2: 41 / 33): 0, 2, 8, 8.
    assert [(p["agreeing"], p["moved"], p["regret"]) for p in picks] == [
        (1, False, 0.0),
        (0, True, 2.0),
        (0, False, 8.0),
        (0, False, 8.0),
    ]
    assert [p["available"] for p in picks] == [1, 1, 1, 1]
    assert [p["families_disagree"] for p in picks] == [False, True, True, True]
    # A family whose validator the table lacks cannot pick: left out, and then nothing is flagged.
    lacking = agreement_picks(fixture_scores(), "f_miou", [{"rank_average": ["f_miou", "atc"]}])
    assert {(p["available"], p["families_disagree"]) for p in lacking} == {(0, False)}
    t = agreement_table(picks, 1)
    assert t["job_test"]["families disagree (low)"]["mean"] == pytest.approx(6.0)
    assert t["job_test"]["not flagged"]["picks"] == 1
    assert t["all"][0]["picks"] == 3 and t["all"][0]["mean"] == pytest.approx(6.0)
    assert t["all"][1]["mean"] == pytest.approx(0.0) and t["moved"][0]["mean"] == pytest.approx(2.0)
    assert t["moved"][1]["picks"] == 0


def test_rules_stage_runs_from_the_files_alone(tmp_path) -> None:
    write_scores_table(fixture_scores(), tmp_path / "selection_scores.parquet")
    write_target_images(fixture_images(), tmp_path / "selection_target_images.parquet")
    out = run_rules(
        read_scores_table(tmp_path / "selection_scores.parquet"),
        read_target_images(tmp_path / "selection_target_images.parquet"),
        tmp_path / "selection_rules",
        {"rank_average[f_miou,bnm]": {"rank_average": ["f_miou", "bnm"]}},
    )
    t = out["table"]
    assert t["r1"]["f_miou"]["regret"] == pytest.approx(1.0)
    assert t["r1"]["f_miou"]["loro_regret"] is None  # a published validator: no LORO figure
    # LORO of the two-stage rule, by hand. Its feasible family here: fractions 0.25 / 0.5 / 0.75 of
    # f_miou_trimmed -> bnm (the f_miou -> mixval and source_val_miou members lack their validators here).
    # r1 regret per fraction: seed 1 44 / 2 / 0, seed 2 0 / 0 / 2: means 22 / 1 / 1; r2: 0 / 0 / 8.
    # Held out r1: chosen on r2, 0.25 and 0.5 tie at 0, the family's order gives 0.25: regret 22.
    # Held out r2: chosen on r1, 0.5 and 0.75 tie at 1, 0.5 first: regret 0. LORO mean 11.
    two = "two_stage[f_miou_trimmed 0.5 -> bnm]"
    assert t["r1"][two]["regret"] == pytest.approx(1.0) and t["r2"][two]["regret"] == pytest.approx(0.0)
    loro = out["loro"][two]
    assert "0.25" in loro["per_regime"]["r1"]["chosen"] and loro["per_regime"]["r1"][
        "regret"
    ] == pytest.approx(22)
    assert loro["per_regime"]["r2"]["chosen"] == two and loro["per_regime"]["r2"]["regret"] == pytest.approx(
        0
    )
    assert loro["mean"] == pytest.approx(11.0) and t["r1"][two]["loro_regret"] == pytest.approx(22.0)
    assert "rank_average[f_miou,bnm]" in t["r1"]  # a rule given on the command line is evaluated
    md = (tmp_path / "selection_rules.md").read_text()
    assert ORACLE in md and "mean regret, LORO" in md and "Confidence calibration" in md
    assert "families agreeing" in md and "Default: the feasible rule" in md
    assert "n/a" in md  # r2's few-label rows
    assert json.loads((tmp_path / "selection_rules.json").read_text().replace("NaN", "null"))["scored"]


def test_costs_count_shared_passes_once() -> None:
    assert rule_costs("f_miou", 1) == (0, 0)
    assert rule_costs({"rank_average": ["atc", "source_val_miou"]}, 1) == (1, 0)
    assert rule_costs({"rank_average": ["mixval", "atc"]}, 1) == (2, 0)
    assert rule_costs("seed_agreement", 3) == (2, 2)


def test_feasible_rules_are_those_one_replicate_can_feed() -> None:
    assert feasible_rule("atc") and feasible_rule("source_val_miou") and feasible_rule("dev")
    assert not feasible_rule("seed_agreement")
    assert not feasible_rule({"rank_average": ["f_miou", "seed_agreement"]})
    agree = family("agree", feasible_rule)
    assert sorted(agree) == [f"agree[{n} of source,information,consensus]" for n in (2, 3)]
