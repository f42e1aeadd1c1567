"""The rendered dashboard (selection.report.render): a real selection's page, and the small hand-made
table of ``report_tables``; no browser needed."""

from __future__ import annotations

import html
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import report_tables as tiny
from report_fixtures import COLLAPSED_ID, FAILED_ERROR, FAILED_ID, Outputs, job_outputs

from selection.errors import SelectionError
from selection.report import CENTRE_BOUND_SENTENCE, render_dashboard, score_columns, write_dashboard


@pytest.fixture(scope="module")
def outputs(tmp_path_factory: pytest.TempPathFactory) -> Outputs:
    return job_outputs(tmp_path_factory.mktemp("report"))


def page_of(o: Outputs, **kw: Any) -> str:
    return render_dashboard(o.table, o.choice, o.config, class_names=o.class_names, sweeps=o.sweeps, **kw)


def section(page: str, heading: str) -> str:
    return page.split(heading, 1)[1].split("</section>")[0]


def card(page: str, param: str) -> str:
    return page.split(f'id="sweep-{param}"')[1].split('<div class="card sweep"')[0].split("</section>")[0]


def test_real_selection_output(outputs: Outputs) -> None:
    table, choice = outputs.table, outputs.choice
    # The scenario is what it claims to be, so the assertions below mean something.
    assert choice["centre_bound"] == ["alpha"]
    assert COLLAPSED_ID in choice["degenerate"]
    assert table.set_index("candidate_id").loc[FAILED_ID, "status"] == "failed"
    page = page_of(outputs)
    for cid in table["candidate_id"]:
        assert html.escape(cid) in page
    # The centre-bias banner sits in the alpha card only.
    assert CENTRE_BOUND_SENTENCE in card(page, "alpha")
    for p in ("gamma", "lambda_i", "k"):
        assert "centre-bound" not in card(page, p)
    # Every sweep marks its own pick, by candidate id, and rings exactly one point.
    for g, info in choice["per_sweep"].items():
        c = card(page, g)
        assert f'data-pick="{g}"' in c
        assert f"({html.escape(info['candidate_id'])}, f_miou " in c
        assert c.count('class="pick-ring"') == 1
        assert "true mIoU (audit)" in c
    # The failed candidate is listed with its error and plotted as a cross in its sweep.
    assert FAILED_ERROR in page
    assert 'class="failed-point"' in card(page, "k")
    # Degenerate candidate listed with where it was flagged; trimming rule shown.
    excluded = section(page, "<h2>Excluded candidates</h2>")
    assert f"<b>{COLLAPSED_ID}</b>: flagged in lambda_i" in excluded
    assert html.escape(choice["trim_rule"]) in excluded
    # Per-class IoU under class names, restricted to the config's eval classes.
    per_class = section(page, "Per-class IoU against the fusion")
    assert re.findall(r'<th class="vert">([^<]+)</th>', per_class) == [
        "road", "sidewalk", "building", "pole", "traffic sign", "vegetation", "sky", "person", "car"
    ]  # fmt: skip
    # Agreement: every candidate that voted (the failed one predicted nothing).
    agreement = section(page, "Agreement between candidates")
    assert agreement.count('<th class="cid">') == len(table) - 1
    scores = section(page, "Label-free scores side by side")
    for name in ("f_miou_trimmed", "f_miou_lno", "mean_confidence", "source_val_miou", "true_miou"):
        assert "<td title=" in scores and f">{name}" in scores
    for internal in ("replicates", "agreement__", "digest", "__rep", "direction unknown"):
        assert internal not in scores
    # Each score picks within each sweep: one column per sweep, and F-mIoU (the configured rule's
    # own score) agrees with the rule wherever its maximum is unique (2-candidate votes tie).
    picks = scores.split('<table class="data picks">')[1].split("</table>")[0]
    assert re.findall(r"<th>([^<]+)</th>", picks)[2:6] == ["alpha", "gamma", "lambda_i", "k"]
    trimmed_row = next(r for r in picks.split("<tr>") if re.match(r"<td[^>]*>f_miou<", r))
    cells = re.findall(r"<td( class=\"\w+\")?[^>]*>", trimmed_row)[2:6]
    assert cells and all(c in (' class="agree"', ' class="tie"') for c in cells)
    assert ' class="agree"' in cells


def test_offline_escaped_and_only_project_columns(outputs: Outputs) -> None:
    page = page_of(outputs)
    assert "PROVISIONAL" not in page
    # Offline: no scripts, no remote resources; user text escaped exactly once.
    assert "http://" not in page and "https://" not in page
    assert "<script" not in page and "<link" not in page and "@import" not in page
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; &#34;quotes&#34;" in page
    # Scores come from the one registry (selection.validators), in its order, and true mIoU as the audit.
    assert [c.name for c in score_columns(outputs.table)] == [
        "f_miou", "f_miou_trimmed", "f_miou_lno", "mean_confidence", "source_val_miou", "true_miou"
    ]  # fmt: skip
    # One replicate: the per-replicate columns add nothing and are not shown anywhere.
    assert "true_miou__rep0" not in page and "Per replicate" not in page
    # The candidates table shows the swept parameters, the job's statuses as written.
    head = section(page, "<h2>Candidates</h2>").split("</tr>")[0]
    assert re.findall(r"<th[^>]*>([^<]+)</th>", head)[2:6] == ["alpha", "gamma", "lambda_i", "k"]
    rows = section(page, "<h2>Candidates</h2>")
    assert rows.count('<td class="t">done</td>') == len(outputs.table) - 1
    assert rows.count('<td class="t">failed</td>') == 1


def test_a_registered_score_shows_up_and_extra_choice_keys_are_ignored(
    outputs: Outputs, monkeypatch: pytest.MonkeyPatch
) -> None:
    from selection.validators import VALIDATORS, ValidatorSpec

    # A validator registered in the one registry, and its column in the table: nothing else to do.
    spec = ValidatorSpec("my_score", False, frozenset({"target_probs"}), "self", "lower is better here", None)
    monkeypatch.setitem(VALIDATORS, "my_score", spec)
    table = outputs.table.assign(my_score=np.linspace(0.1, 0.9, len(outputs.table)))
    choice = {**outputs.choice, "schema_version": 3, "later_key": "low"}  # keys added later
    page = render_dashboard(table, choice, outputs.config)
    picks = section(page, "Label-free scores side by side")
    row = next(r for r in picks.split("<tr>") if ">my_score<" in r)
    assert "↓ lower" in row
    # Lower is better: within alpha the first voted candidate (lowest my_score) is its pick.
    alpha = outputs.table[[("alpha" in list(s)) for s in outputs.table["sweeps"]]]
    first = alpha[alpha["status"] == "done"].iloc[0]
    assert f'title="{first["candidate_id"]}"' in row


def test_rule_and_confidence_are_shown_first(outputs: Outputs) -> None:
    page = page_of(outputs)
    chosen = section(page, "<h2>Chosen setting</h2>")
    rule, conf = outputs.choice["rule"], outputs.choice["confidence"]
    assert f"Rule: <b>{rule['text']}</b> — {html.escape(rule['description'])}." in chosen
    # a group is low in this scenario, so the confidence is low and says why
    assert conf["level"] == "low" and 'class="banner confidence low"' in chosen
    assert "<b>Confidence: LOW</b>" in chosen
    for reason in conf["reasons"]:
        escaped = html.escape(reason).replace("&#x27;", "&#39;")  # as Jinja2 escapes it
        assert f"<li>{escaped}</li>" in chosen
    assert chosen.index("Confidence: LOW") < chosen.index("<table")  # above the parameters
    # each sweep card says its own
    for group, gc in conf["groups"].items():
        shown = card(page, group)
        assert f"Confidence: <b>{gc['level']}</b>" in shown
        assert all(html.escape(r).replace("&#x27;", "&#39;") in shown for r in gc["reasons"])
    high = {**conf, "level": "high", "reasons": []}
    page = render_dashboard(outputs.table, {**outputs.choice, "confidence": high}, outputs.config)
    assert 'class="banner confidence high"' in page and "<b>Confidence: HIGH</b>" in page


def test_rankings_per_sweep_beside_the_truth(outputs: Outputs) -> None:
    page = page_of(outputs)
    ranks = section(page, "<h2>Rankings per sweep</h2>")
    for g in outputs.choice["per_sweep"]:
        assert f'id="ranking-{g}"' in ranks
    alpha = ranks.split('id="ranking-alpha"')[1].split('<div class="card ranking"')[0]
    sweep = outputs.sweeps["alpha"]
    # rows in sweep order, the columns: rule, every validator, then the truth's rank and value
    assert re.findall(r'<td class="cid" title="([^"]+)"', alpha) == sweep["candidate_id"].tolist()
    head = re.findall(r'<th class="vert[^"]*"[^>]*>([^<]+)</th>', alpha)
    assert head == ["rule", "f_miou", "f_miou_trimmed", "f_miou_lno", "mean_confidence", "source_val_miou",
                    "true mIoU rank"]  # fmt: skip
    first = alpha.split("<tr")[2]  # the first candidate's row
    cells = re.findall(r"<td class=\"[^\"]*\"[^>]*>([^<]*)</td>", first)
    r0 = sweep.iloc[0]
    want = [r0["rule__rank"], r0["f_miou__rank"], r0["f_miou_trimmed__rank"], r0["f_miou_lno__rank"]]
    assert cells[1:5] == [str(int(v)) if v == v else "–" for v in want]
    assert f"{r0['true_miou']:.4f}" in first
    picked = sweep.loc[sweep["picked"], "candidate_id"].item()
    assert picked == outputs.choice["per_sweep"]["alpha"]["candidate_id"]
    picked_row = next(r for r in alpha.split("<tr") if f'title="{picked}"' in r)
    assert '<span class="tag pick">pick</span>' in picked_row and 'class="rule-col best"' in picked_row
    # without sweep tables (an older output folder) there is no such section
    assert "Rankings per sweep" not in render_dashboard(outputs.table, outputs.choice, outputs.config)


def test_a_rule_that_is_no_f_miou_still_charts_f_miou_and_rings_its_pick(tmp_path: Path) -> None:
    o = job_outputs(tmp_path, rule={"rank_average": ["mean_confidence", "f_miou_lno"]})
    page = page_of(o)
    assert "F-mIoU against the fused labels (f_miou)" in page
    for g, info in o.choice["per_sweep"].items():
        c = card(page, g)
        assert c.count('class="pick-ring"') == 1 and f"({html.escape(info['candidate_id'])})" in c
    assert "Rule: <b>rank_average(mean_confidence, f_miou_lno)</b>" in page


def test_replicates_get_their_own_section(tmp_path: Path) -> None:
    o = job_outputs(tmp_path, replicates=2)
    page = page_of(o)
    assert "seed_agreement" in section(page, "Label-free scores side by side")
    reps = section(page, "<h2>Per replicate</h2>")
    assert [m for m in re.findall(r'colspan="2">([^<]+)</th>', reps)] == [
        "true_miou", "source_val_miou", "f_miou"
    ]  # fmt: skip
    row = next(r for r in reps.split("<tr>") if '<td class="cid">alpha=0.1</td>' in r)
    expected = o.table.set_index("candidate_id").loc["alpha=0.1", "true_miou__rep1"]
    assert f"{expected:.4f}" in row
    assert "__rep" not in section(page, "Label-free scores side by side")


def test_provisional_banner_counts(outputs: Outputs) -> None:
    # Halfway through, as the job writes it: the unfinished candidates are "pending", no choice yet.
    part = outputs.table.copy()
    part.loc[4:, "status"] = "pending"
    part.loc[4:, ["f_miou", "true_miou"]] = np.nan
    page = render_dashboard(part, None, outputs.cfg, provisional=True, total_candidates=11)
    assert "PROVISIONAL — 4 of 11 candidates finished" in page
    assert "No choice yet" in page and "7 not finished yet" in page
    page = render_dashboard(part, None, outputs.config, provisional=True, total_candidates=20)
    assert "PROVISIONAL — 4 of 20 candidates finished" in page


def test_no_vote_shows_why(outputs: Outputs) -> None:
    # The job's choice when no vote was possible: empty parameters and the reason in the notes.
    choice = {"parameters": {}, "candidate_id": None, "f_miou": None, "notes": ["1 candidate(s) can vote"]}
    page = render_dashboard(outputs.table, choice, outputs.config)
    summary = page.split("<h2>Chosen setting</h2>")[1].split("</div>")[0]
    assert "<b>No choice.</b>" in summary and "1 candidate(s) can vote" in summary


def test_grid_mode(tmp_path: Path) -> None:
    o = job_outputs(tmp_path, grid={"alpha": [0.3, 0.7], "gamma": [2.0, 8.0]})
    assert o.choice["mode"] == "grid" and o.choice["candidate_id"] is not None
    page = page_of(o)
    # The grid's one pick, ringed in the alpha chart and in the gamma chart.
    assert page.count('class="pick-ring"') == 2
    assert card(page, "alpha").count('class="point ') == 4 == card(page, "gamma").count('class="point ')
    assert page.count('<span class="tag pick">chosen</span>') == 1
    assert "No pairwise agreement" not in page


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda t, c: (t.drop(columns="sweeps"), c), "missing column(s) sweeps"),
        (lambda t, c: (t.assign(status="running"), c), "status holds ['running']"),
        (lambda t, c: (t, {k: v for k, v in c.items() if k != "score_used"}), "missing key(s) score_used"),
        (lambda t, c: (pd.DataFrame(), c), "missing column(s) candidate_id, sweep, sweeps, f_miou"),
    ],
)
def test_inputs_the_project_does_not_write_are_refused(outputs: Outputs, change: Any, message: str) -> None:
    table, choice = change(outputs.table, outputs.choice)
    with pytest.raises(SelectionError, match=re.escape(message)):
        render_dashboard(table, choice, outputs.config)


def test_class_names_must_match(outputs: Outputs) -> None:
    with pytest.raises(SelectionError, match="class_names: 3 names given, the choice has num_classes 19"):
        render_dashboard(outputs.table, outputs.choice, outputs.config, class_names=["a", "b", "c"])
    # Without names the classes are numbered (still only the eval classes).
    page = render_dashboard(outputs.table, outputs.choice, outputs.config)
    per_class = section(page, "Per-class IoU against the fusion")
    assert re.findall(r'<th class="vert">([^<]+)</th>', per_class)[:3] == ["class 0", "class 1", "class 2"]
    assert "class 3" not in per_class  # pole is index 5; 3 and 4 are not evaluated


def test_hostile_config_text_is_escaped(outputs: Outputs) -> None:
    config = {**outputs.config, "experiment": "<img src=x onerror=alert(1)>"}
    page = render_dashboard(outputs.table, outputs.choice, config)
    assert "<img" not in page and "&lt;img src=x onerror=alert(1)&gt;" in page


def test_write_is_atomic_and_accepts_uris(outputs: Outputs, tmp_path: Path) -> None:
    target = tmp_path / "out" / "dashboard.html"
    write_dashboard(str(target), outputs.table, outputs.choice, outputs.config)
    first = target.read_text(encoding="utf-8")
    write_dashboard(target.as_uri(), outputs.table.iloc[:5], None, outputs.config, provisional=True)
    assert target.read_text(encoding="utf-8") != first
    assert [p.name for p in target.parent.iterdir()] == ["dashboard.html"]  # no temp left behind


def test_failed_write_keeps_previous_file(
    outputs: Outputs, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "dashboard.html"
    write_dashboard(str(target), outputs.table, outputs.choice, outputs.config)
    before = target.read_bytes()

    import selection.filesystem as shared_fs

    real = shared_fs.resolve

    class FailingMove:
        """The real local file system, except that the final rename fails (disk full, EIO…)."""

        def __init__(self, fs: Any) -> None:
            self._fs = fs

        def __getattr__(self, name: str) -> Any:
            return getattr(self._fs, name)

        def move(self, src: str, dst: str) -> None:
            raise OSError("disk full")

    def failing(uri: str) -> tuple[Any, str]:
        fs, path = real(uri)
        return FailingMove(fs), path

    monkeypatch.setattr(shared_fs, "resolve", failing)
    with pytest.raises(OSError, match="disk full"):
        write_dashboard(str(target), outputs.table.iloc[:2], None, outputs.config)
    assert target.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["dashboard.html"]


def test_broken_candidates_are_listed_with_their_reason_and_degenerate_is_a_diagnostic(
    outputs: Outputs,
) -> None:
    table = outputs.table.copy()
    why = "class 0 takes 95% of its pixels (group median 30%)"
    table.loc[table["candidate_id"] == "alpha=0.9", ["broken", "broken_reason"]] = [True, why]
    page = render_dashboard(table, {**outputs.choice, "broken": {"alpha=0.9": why}}, outputs.config)
    excluded = section(page, "Excluded candidates")
    assert "Broken (never picked by any rule)" in excluded and "alpha=0.9</b>: class 0 takes 95%" in excluded
    assert "Far from the vote (degenerate" in excluded and "A diagnostic, not a verdict" in excluded
    assert "1 broken (never picked)" in page
    assert "blind to that failure" not in page
    plain = render_dashboard(outputs.table, outputs.choice, outputs.config)
    assert "No broken candidate." in section(plain, "Excluded candidates")


def test_a_small_table_renders_every_section_offline() -> None:
    page = render_dashboard(tiny.table(), tiny.choice(), tiny.CONFIG, sweeps={"alpha": tiny.sweep_table()})
    assert page.startswith("<!DOCTYPE html>") and re.search(r"Generated \d{4}-\d\d-\d\d [0-9:]+ UTC", page)
    for heading in ("Chosen setting", "Rankings per sweep", "Agreement between candidates", "Per-class IoU"):
        assert heading in page
    for cid in tiny.IDS:
        assert html.escape(cid) in page
    assert tiny.FAILED_ERROR in page and "<script" not in page and "https://" not in page
    # parameter values as candidate ids write them, scores to 4 places, a missing one as a dash
    assert "<td>0.1</td>" in page and "<td>0.7500</td>" in page and "<td>–</td>" in page


def test_a_small_provisional_page_counts_the_total_given() -> None:
    page = render_dashboard(tiny.table(), None, None, provisional=True, total_candidates=8)
    assert "PROVISIONAL — 5 of 8 candidates finished" in page and "No choice yet" in page
