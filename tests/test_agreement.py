"""Intercoder agreement: published worked examples, hand computations, and which units count as coded."""

import math

import numpy as np
import pandas as pd
import pytest

from pipeline.agreement import (
    AGREEMENT_COLUMNS,
    DISAGREEMENT_COLUMNS,
    PAIR_COLUMNS,
    POOLED,
    PROGRESS_COLUMNS,
    agreement,
    agreement_by_pair,
    binary_agreement,
    coding_progress,
    cohen_kappa,
    disagreements,
    krippendorff_alpha,
    progress_by_coder,
    suggestions_vs_coders,
    summary_lines,
)
from pipeline.codebook import Code, Codebook
from pipeline.readback import ENTRY_COLUMNS

nan = np.nan


def test_krippendorffs_own_example_nominal_four_coders_missing_data():
    # Krippendorff (2011), Computing Krippendorff's alpha-reliability, section C: alpha (nominal) = 0.743
    data = [[1, 2, 3, 3, 2, 1, 4, 1, 2, nan, nan, nan],
            [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, nan, 3],
            [nan, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, nan],
            [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, nan]]
    assert round(krippendorff_alpha(data, domain=(1, 2, 3, 4, 5)), 3) == 0.743


def test_krippendorffs_binary_example_two_coders():
    # Krippendorff (2011), section A: binary data, two observers, no missing data: alpha = 0.095
    data = [[0, 1, 0, 0, 0, 0, 0, 0, 1, 0],
            [1, 1, 1, 0, 0, 1, 0, 0, 0, 0]]
    f = binary_agreement(data)
    assert round(f["krippendorff_alpha"], 3) == 0.095
    assert f["percent_agreement"] == pytest.approx(60.0)
    # by hand: p_o = .6, p_e = .2 * .4 + .8 * .6 = .56, kappa = .04 / .44
    assert f["cohen_kappa"] == pytest.approx(0.04 / 0.44)
    assert f["positive_agreement"] == pytest.approx(2 * 1 / (2 * 1 + 4))


def test_a_two_by_two_table_by_hand():
    # 50 units: both yes 20, only A 5, only B 10, both no 15 (the classic Cohen's kappa example: kappa = 0.4)
    a = [1] * 20 + [1] * 5 + [0] * 10 + [0] * 15
    b = [1] * 20 + [0] * 5 + [1] * 10 + [0] * 15
    f = binary_agreement([a, b])
    assert f["units"] == 50 and f["coders"] == 2
    assert f["percent_agreement"] == pytest.approx(70.0)
    assert f["cohen_kappa"] == pytest.approx(0.4)
    assert f["positive_agreement"] == pytest.approx(40 / 55)
    # alpha = 1 - (n - 1) * disagreeing pairs / (2 n0 n1), n = 100 values, n1 = 55, n0 = 45
    assert f["krippendorff_alpha"] == pytest.approx(1 - 99 * 30 / (2 * 55 * 45))
    # AC1: pi = (20 * 1 + 15 * 1/2) / 50 = .55, p_e = 2 * .55 * .45 = .495
    assert f["gwet_ac1"] == pytest.approx((0.7 - 0.495) / (1 - 0.495))


def test_gwet_ac1_with_three_coders_and_missing_decisions_by_hand():
    """Gwet's formulas worked by hand (the irrCAC package, Gwet's own, gives the same to 1e-5 here and on random
    matrices; it is not a test dependency, for it pins NumPy below 2, which pyarrow no longer runs on).  And AC1
    stays high for a rare code the coders agree on, where kappa falls to nothing."""
    f = binary_agreement([[1, 1, 0, 0, nan],
                          [1, 0, 0, nan, 1],
                          [nan, 1, 0, 0, 1]])
    # p_a = (1 + 1/3 + 1 + 1 + 1) / 5 = 13/15; pi = (1 + 2/3 + 0 + 0 + 1) / 5 = 8/15; p_e = 2 (8/15)(7/15)
    assert f["gwet_ac1"] == pytest.approx(83 / 113)
    rare = [[1] + [0] * 99, [0] + [0] * 99]  # 100 units, one coder gave the code once
    f = binary_agreement(rare)
    assert f["gwet_ac1"] > 0.98 and f["cohen_kappa"] == pytest.approx(0.0)


def test_three_coders_with_missing_data_by_hand():
    f = binary_agreement([[1, 1, 0, 0, nan],
                          [1, 0, 0, nan, 1],
                          [nan, 1, 0, 0, 1]])
    assert f["units"] == 5 and f["coders"] == 3
    assert f["percent_agreement"] == pytest.approx(100 * (1 + 1 / 3 + 1 + 1 + 1) / 5)
    assert math.isnan(f["cohen_kappa"])  # not two coders
    assert f["positive_agreement"] == pytest.approx(6 / 8)
    assert f["krippendorff_alpha"] == pytest.approx(1 - 11 * 2 / (2 * 6 * 6))


def test_units_with_one_coder_do_not_count():
    f = binary_agreement([[1, 0, 1], [1, nan, nan]])
    assert f["units"] == 1


def test_undefined_figures_are_empty_not_errors():
    f = binary_agreement([[0, 0, 0], [0, 0, 0]])
    assert f["percent_agreement"] == 100
    assert all(math.isnan(f[k]) for k in ("cohen_kappa", "krippendorff_alpha", "positive_agreement"))
    assert math.isnan(cohen_kappa([[nan], [1]]))
    f = binary_agreement(np.zeros((2, 0)))
    assert f["units"] == 0 and math.isnan(f["percent_agreement"])


def test_cohen_kappa_is_scikit_learns():
    import warnings

    from sklearn.metrics import cohen_kappa_score

    rng = np.random.default_rng(7)
    for n, p in [(40, 0.5), (12, 0.1), (200, 0.95), (5, 0.5), (3, 0.0), (2, 1.0)]:
        for _ in range(20):
            a, b = (rng.random(n) < p).astype(int), (rng.random(n) < p).astype(int)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # scikit-learn warns where kappa is undefined
                theirs = cohen_kappa_score(a, b, labels=[0, 1])
            ours = cohen_kappa([a, b])
            assert (math.isnan(ours) and math.isnan(theirs)) or ours == pytest.approx(theirs), (a, b)
    a, b = rng.integers(0, 2, 30).astype(float), rng.integers(0, 2, 30).astype(float)
    a[:5], b[3:8] = np.nan, np.nan  # items one coder left out are not compared
    kept = ~np.isnan(a) & ~np.isnan(b)
    assert cohen_kappa([a, b]) == pytest.approx(cohen_kappa_score(a[kept].astype(int), b[kept].astype(int)))


# --- from the coders' entries -------------------------------------------------------------------------------

DENIAL, COMPLAINT, CLARIFY, HURT = ("rupture.withdrawal.denial", "rupture.confrontation.complaint",
                                    "resolution.clarify", "recall.rupture.hurt")
CODEBOOK = Codebook(codes=[Code(DENIAL, units=("turn",), roles=("client",)),
                           Code(COMPLAINT, units=("turn",), roles=("client",)),
                           Code(CLARIFY, units=("turn",), roles=("therapist",)),
                           Code(HURT, units=("segment",))])
SCOPE = {**{t: ("turn", "client") for t in ("t1", "t2", "t4", "t5", "t6")}, "t3": ("turn", "therapist"),
         "s1": ("segment", "client"), "s2": ("segment", "client")}  # r1 is gone: its codes are in Removed units


def entry(coder, unit, codes=(), memo="", sheet=None, extra=""):
    unit_type = "segment" if unit.startswith("s") else "turn"
    return {"coder": coder, "transcript_id": "x", "unit_type": unit_type, "unit_id": unit,
            "codes": ";".join(codes), "memo": memo, "workbook": f"data/coded/{coder}/x.xlsx",
            "sheet": sheet or ("Segments" if unit_type == "segment" else "Turns"), "row": 2, "removed_on": "",
            "extra": extra, "retired": ""}


ENTRIES = pd.DataFrame([
    entry("alice", "t1", [DENIAL]), entry("bob", "t1", [DENIAL]),
    entry("alice", "t2", [DENIAL, COMPLAINT]), entry("bob", "t2", [COMPLAINT]),
    entry("alice", "t3", [CLARIFY]), entry("bob", "t3", memo="nothing"),          # a memo: coded, no code
    entry("alice", "t4", [COMPLAINT]),                                              # one coder only
    entry("alice", "t5", memo="read"), entry("bob", "t5", [DENIAL]),
    entry("alice", "s1", [HURT]), entry("bob", "s1", [HURT]),
    entry("alice", "s2", memo="hm"), entry("bob", "s2", [HURT]),
    entry("alice", "r1", [DENIAL], sheet="Removed units"), entry("bob", "r1", [DENIAL], sheet="Removed units"),
    entry("alice", "t6", extra='{"my notes": "x"}'), entry("bob", "t6", [DENIAL]),  # own column only: not coded
], columns=ENTRY_COLUMNS)


def test_agreement_per_code_and_pooled_by_hand():
    table = agreement(ENTRIES, CODEBOOK, SCOPE)
    assert list(table.columns) == AGREEMENT_COLUMNS
    rows = table.set_index("code_id")
    assert list(rows.index) == [DENIAL, COMPLAINT, CLARIFY, HURT, POOLED]
    # denial, over the client turns t1 t2 t5: alice 1 1 0, bob 1 0 1
    d = rows.loc[DENIAL]
    assert (d.units, d.coders) == (3, 2)
    assert d.percent_agreement == pytest.approx(100 / 3)
    assert d.cohen_kappa == pytest.approx((1 / 3 - 5 / 9) / (1 - 5 / 9))
    assert d.krippendorff_alpha == pytest.approx(1 - 5 * 4 / (2 * 4 * 2))
    assert d.positive_agreement == pytest.approx(0.5)
    c = rows.loc[COMPLAINT]
    assert (c.units, c.percent_agreement, c.cohen_kappa, c.krippendorff_alpha, c.positive_agreement) == (
        3, 100, 1, 1, 1)
    k = rows.loc[CLARIFY]  # the therapist turn t3 only: alice 1, bob 0
    assert (k.units, k.percent_agreement, k.cohen_kappa, k.krippendorff_alpha, k.positive_agreement) == (
        1, 0, 0, 0, 0)
    h = rows.loc[HURT]  # s1 s2: alice 1 0, bob 1 1
    assert (h.units, h.percent_agreement, h.cohen_kappa, h.krippendorff_alpha) == (2, 50, 0, 0)
    assert h.positive_agreement == pytest.approx(2 / 3)
    # pooled over the 9 unit x code decisions: alice 110 010 1 10, bob 101 010 0 11
    p = rows.loc[POOLED]
    assert (p.units, p.coders) == (6, 2)
    assert p.percent_agreement == pytest.approx(500 / 9)
    assert p.cohen_kappa == pytest.approx(0.1)
    assert p.krippendorff_alpha == pytest.approx(1 - 17 * 8 / (2 * 10 * 8))
    assert p.positive_agreement == pytest.approx(0.6)


def test_a_unit_that_is_gone_does_not_count_and_one_that_came_back_does():
    gone = pd.DataFrame([entry("alice", "t1", [DENIAL]), entry("bob", "t1", [DENIAL])], columns=ENTRY_COLUMNS)
    assert agreement(gone, CODEBOOK, {"t2": ("turn", "client")}).empty
    back = ENTRIES[ENTRIES["unit_id"] == "r1"]
    table = agreement(back, CODEBOOK, {"r1": ("turn", "client")}).set_index("code_id")
    assert table.loc[DENIAL, "units"] == 1 and table.loc[DENIAL, "percent_agreement"] == 100


def test_a_code_given_outside_its_scope_still_counts_there():
    extra = pd.DataFrame([entry("alice", "t3", [DENIAL]), entry("bob", "t3", [CLARIFY])], columns=ENTRY_COLUMNS)
    table = agreement(extra, CODEBOOK, SCOPE).set_index("code_id")
    assert table.loc[DENIAL, "units"] == 1  # a therapist turn, but a coder gave it the client code


def test_without_scope_every_jointly_coded_unit_of_the_type_counts():
    table = agreement(ENTRIES, CODEBOOK).set_index("code_id")
    assert table.loc[DENIAL, "units"] == 4  # t1 t2 t3 t5: roles unknown
    assert table.loc[HURT, "units"] == 2


def test_more_than_two_coders_have_no_kappa_but_alpha():
    more = pd.concat([ENTRIES, pd.DataFrame([entry("carol", "t1", [DENIAL]), entry("carol", "t2", [DENIAL])],
                                            columns=ENTRY_COLUMNS)])
    rows = agreement(more, CODEBOOK, SCOPE).set_index("code_id")
    assert rows.loc[DENIAL, "coders"] == 3
    assert math.isnan(rows.loc[DENIAL, "cohen_kappa"])
    m = [[1, 1, 0], [1, 0, 1], [1, 1, nan]]
    assert rows.loc[DENIAL, "krippendorff_alpha"] == pytest.approx(krippendorff_alpha(m))
    assert rows.loc[POOLED, "coders"] == 3


def test_no_jointly_coded_units_gives_an_empty_table():
    one = ENTRIES[ENTRIES["coder"] == "alice"]
    table = agreement(one, CODEBOOK, SCOPE)
    assert table.empty and list(table.columns) == AGREEMENT_COLUMNS
    assert "no unit was coded by two or more coders" in summary_lines(table)[0]


def test_suggestions_against_each_coder():
    auto = pd.DataFrame({"unit_type": ["turn", "turn", "turn", "turn", "turn", "segment"],
                         "unit_id": ["t1", "t1", "t2", "t3", "t4", "s2"],
                         "code_id": [DENIAL, DENIAL, DENIAL, CLARIFY, COMPLAINT, HURT],
                         "coder": "auto"})
    coder_rows = pd.DataFrame({"unit_type": ["turn"], "unit_id": ["t1"], "code_id": [COMPLAINT],
                               "coder": ["alice"]})  # coders' own rows in codes.parquet are not suggestions
    table = suggestions_vs_coders(ENTRIES, pd.concat([auto, coder_rows]), CODEBOOK, SCOPE)
    alice = table[table["coder"] == "alice"].set_index("code_id")
    assert list(alice.loc[DENIAL, ["units", "suggested", "coded", "both", "precision", "recall"]]) == [
        4, 2, 2, 2, 1, 1]
    assert list(alice.loc[COMPLAINT, ["units", "suggested", "coded", "both", "precision", "recall"]]) == [
        4, 1, 2, 1, 1, 0.5]
    assert list(alice.loc[HURT, ["units", "suggested", "coded", "both", "precision", "recall"]]) == [
        2, 1, 1, 0, 0, 0]
    pooled = alice.loc[POOLED]
    assert (pooled.units, pooled.suggested, pooled.coded, pooled.both) == (7, 5, 6, 4)
    assert pooled.precision == pytest.approx(0.8) and pooled.recall == pytest.approx(4 / 6)
    bob = table[table["coder"] == "bob"].set_index("code_id")
    assert bob.loc[POOLED, "units"] == 7  # t1 t2 t3 t5 s1 s2 t6: all of them count for bob alone


def test_the_report_writes_both_agreement_sheets_even_before_anyone_has_coded(study):
    import openpyxl

    book = openpyxl.load_workbook(study / "reports" / "tables.xlsx", read_only=True)
    try:
        assert {"Agreement", "Suggestions vs coders"} <= set(book.sheetnames)  # empty, but there
        assert [c.value for c in next(book["Suggestions vs coders"].iter_rows())][:2] == ["coder", "code_id"]
    finally:
        book.close()


def test_the_disagreements_are_each_code_some_coders_of_a_unit_gave_and_others_did_not():
    texts = {"t2": "I mean, sure.", "s2": "I felt dismissed."}
    table = disagreements(ENTRIES, CODEBOOK, SCOPE, texts)
    assert list(table.columns) == DISAGREEMENT_COLUMNS
    # in the study's order (t2 t5, then the therapist turn t3, then s2); t1 and s1 agree; t4 and t6 have one coder;
    # r1 is gone; a memo makes a unit coded, so the code the other gave it is a disagreement
    assert [tuple(r) for r in table[["unit_id", "code_id", "given_by", "not_given_by", "consensus"]].itertuples(
        index=False)] == [("t2", DENIAL, "alice", "bob", ""), ("t5", DENIAL, "bob", "alice", ""),
                          ("t3", CLARIFY, "alice", "bob", ""), ("s2", HURT, "bob", "alice", "")]
    assert table["text"].tolist() == ["I mean, sure.", "", "", "I felt dismissed."]
    assert table["unit_type"].tolist() == ["turn", "turn", "turn", "segment"]


def test_the_consensus_coder_is_not_a_coder_who_disagrees_and_its_decisions_are_shown():
    agreed = pd.DataFrame([entry("consensus", "t2", [COMPLAINT]), entry("consensus", "t5", [DENIAL]),
                           entry("consensus", "t4", [DENIAL])], columns=ENTRY_COLUMNS)
    table = disagreements(pd.concat([ENTRIES, agreed], ignore_index=True), CODEBOOK, SCOPE).set_index("unit_id")
    assert list(table.index) == ["t2", "t5", "t3", "s2"]  # t4: alice and the consensus are not two coders
    assert table["consensus"].tolist() == ["not given", "given", "", ""]
    three = pd.concat([ENTRIES, pd.DataFrame([entry("carol", "t1", [COMPLAINT])], columns=ENTRY_COLUMNS)])
    t1 = disagreements(three, CODEBOOK, SCOPE).set_index("unit_id").loc[["t1"]]
    assert [tuple(r) for r in t1[["code_id", "given_by", "not_given_by"]].itertuples(index=False)] == [
        (DENIAL, "alice, bob", "carol"), (COMPLAINT, "carol", "alice, bob")]


def test_coding_progress_counts_each_coders_coded_units_per_transcript():
    transcript_of = {**{u: "x" for u in ("t1", "t2", "t3", "t4", "t5", "t6", "s1", "s2")}, "y1": "y", "y2": "y"}
    table = coding_progress(ENTRIES, transcript_of, ["alice", "bob", "carol"])
    assert list(table.columns) == PROGRESS_COLUMNS
    rows = {(r.coder, r.transcript_id): (r.units, r.coded, r.percent_coded) for r in table.itertuples(index=False)}
    # alice: t1 t2 t3 t4 t5 s1 s2 (t6 has only her own column; r1 is gone); bob: t1 t2 t3 t5 s1 s2 t6
    assert rows == {("alice", "x"): (8, 7, 87.5), ("alice", "y"): (2, 0, 0), ("bob", "x"): (8, 7, 87.5),
                    ("bob", "y"): (2, 0, 0), ("carol", "x"): (8, 0, 0), ("carol", "y"): (2, 0, 0)}
    by_coder = progress_by_coder(table).set_index("coder")
    assert by_coder.loc["alice"].tolist() == [2, 1, 10, 7] and by_coder.loc["carol", "begun"] == 0


def test_agreement_by_pair_pools_each_pair_of_coders_over_the_units_both_coded():
    more = pd.concat([ENTRIES, pd.DataFrame([entry("carol", "t1", [DENIAL]), entry("carol", "t2", [DENIAL]),
                                             entry("consensus", "t1", [COMPLAINT])], columns=ENTRY_COLUMNS)])
    pairs = agreement_by_pair(more, CODEBOOK, SCOPE)
    assert list(pairs.columns) == PAIR_COLUMNS
    assert [(r.coder_1, r.coder_2) for r in pairs.itertuples()] == [("alice", "bob"), ("alice", "carol"),
                                                                      ("bob", "carol")]  # not the consensus
    rows = pairs.set_index(["coder_1", "coder_2"])
    both = agreement(ENTRIES, CODEBOOK, SCOPE).set_index("code_id").loc[POOLED]
    assert rows.loc[("alice", "bob"), "units"] == both.units == 6
    assert rows.loc[("alice", "bob"), "cohen_kappa"] == pytest.approx(both.cohen_kappa)
    # alice and carol both coded t1 and t2: denial 1 1 / 1 1, complaint 0 1 / 0 0
    assert rows.loc[("alice", "carol"), "units"] == 2
    assert rows.loc[("alice", "carol"), "percent_agreement"] == pytest.approx(75)
    assert agreement_by_pair(ENTRIES[ENTRIES["coder"] == "alice"], CODEBOOK, SCOPE).empty
