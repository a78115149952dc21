"""The convergence study's rule and checks on constructed curves, and the variants it trains."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from adtr import catalog, convergence, experiments, study, train


def _curves(values: dict[tuple[str, str], list[float]], step: int = 10) -> pd.DataFrame:
    """(variant, category) -> pixel AUROC at epochs 0, step, 2 step, ..."""
    rows = [{"variant": v, "category": c, "seed": 0, "epoch": step * i, "pixel_auroc": x,
             "image_auroc": x, "error_normal": 1.0, "train_loss": 1.0, "lr": 1e-3}
            for (v, c), curve in values.items() for i, x in enumerate(curve)]
    return pd.DataFrame(rows)


def study_results(tables: dict, **parts: dict[tuple[str, str], list[float]]):
    """A convergence results stand-in for the report: ``tables`` by name, and the runs of
    each part ("long", "book") with their records, from (variant, category) -> pixel AUROC
    at epochs 0, 10, 20, ... (as the notebook names them: "<part>/<variant>")."""
    from types import SimpleNamespace

    rows, records = [], []
    for part, values in parts.items():
        for (variant, category), curve in values.items():
            rows.append({"variant": f"{part}/{variant}", "category": category, "seed": 0})
            records.append(SimpleNamespace(loss_history=None, lr_history=None, probes=[
                {"epoch": 10 * i, "pixel_auroc": x, "image_auroc": x, "error_normal": 1.0}
                for i, x in enumerate(curve)]))
    return SimpleNamespace(table=tables.get, record=SimpleNamespace(runs=records),
                           runs=pd.DataFrame(rows, columns=["variant", "category", "seed"]))


def test_a_curve_is_flat_from_where_it_never_rises_more_than_the_tolerance() -> None:
    epochs = [0, 10, 20, 30, 40]
    assert convergence.flattened_at(epochs, [0.5, 0.9, 0.95, 0.9505, 0.951], 0.002) == 20
    assert convergence.flattened_at(epochs, [0.5, 0.9, 0.95, 0.94, 0.96], 0.002) == 40
    assert convergence.flattened_at(epochs, [0.9, 0.8, 0.85, 0.85, 0.85], 0.002) == 0  # falls
    with pytest.raises(ValueError):
        convergence.flattened_at([], [], 0.002)


def test_the_schedule_puts_its_cut_at_or_after_the_slowest_plateau() -> None:
    assert convergence.schedule_for(0, 10) == 10
    assert convergence.schedule_for(80, 10) == 100  # cut at 80
    assert convergence.schedule_for(81, 10) == 110  # cut at 88
    assert train.lr_cut_epoch(convergence.schedule_for(157, 10)) >= 157


def test_the_rule_takes_the_slowest_variant_over_the_category_means() -> None:
    # long runs of 100 epochs (cut at 80): the CNN is flat from epoch 20, ADTR from 60 on
    # average (coins alone would say 40), and what comes after the cut is not read
    fast = [0.5, 0.9, 0.95, 0.95, 0.95, 0.95, 0.95, 0.95, 0.95, 0.99, 0.99]
    slow = [0.5, 0.7, 0.8, 0.85, 0.9, 0.92, 0.95, 0.951, 0.951, 0.99, 0.99]
    even = [0.5, 0.7, 0.8, 0.85, 0.95, 0.95, 0.95, 0.95, 0.95, 0.99, 0.99]
    curves = _curves({("cnn", "grass"): fast, ("cnn", "coins"): fast,
                      ("adtr", "grass"): slow, ("adtr", "coins"): even})
    rule = convergence.schedule_rule(curves, long_epochs=100, step=10)
    assert rule["plateau_epoch"] == {"cnn": 20, "adtr": 60}
    assert rule["slowest"] == "adtr" and rule["epochs"] == 80 and rule["lr_cut_epoch"] == 64
    assert rule["long_lr_cut_epoch"] == 80 and not rule["enough"]  # 100 < 2 x 80
    assert convergence.schedule_rule(curves, long_epochs=160, step=10)["long_lr_cut_epoch"] == 128


def test_the_books_runs_are_checked_against_their_cut_and_the_long_best() -> None:
    book = _curves({("adtr", "grass"): [0.5, 0.8, 0.9, 0.9, 0.9, 0.91],  # cut at 40
                    ("adtr", "gravel"): [0.5, 0.8, 0.85, 0.88, 0.9, 0.95],
                    ("cnn", "grass"): [0.5, 0.95, 0.95, 0.95, 0.95, 0.95]})
    flat = convergence.flattened(book).set_index(["variant", "category"])
    assert flat.loc[("adtr", "grass"), "flattened"]  # flat from 20, before the cut at 40
    assert flat.loc[("adtr", "grass"), "flattened_at"] == 20
    assert not flat.loc[("adtr", "gravel"), "flattened"]  # still rising at the cut
    rising = _curves({("adtr", "a"): [0.5, 0.6, 0.7, 0.8, 0.9]})  # 40 epochs: cut at 32
    assert not convergence.flattened(rising).loc[0, "flattened"]  # its last probe, 30, alone
    long = _curves({("adtr", "grass"): [0.5, 0.9, 0.93, 0.92], ("cnn", "grass"): [0.5, 0.951]})
    long["image_auroc"] -= 0.05  # image AUROC 5 points below the pixel AUROC in the long runs
    against = convergence.against_long(book, long).set_index("variant")
    assert against.loc["adtr", "gap_points"] == pytest.approx(2.0)  # 93 at best against 91
    assert not against.loc["adtr", "within"] and against.loc["adtr", "long_best_epoch"] == 20
    assert against.loc["cnn", "within"]  # 95.1 against 95.0: within 0.2 points
    assert against.loc["cnn", "book_epochs"] == 50
    # the long run ends at 92, one point below its best probe: the book's 91 is 1.0 below
    assert against.loc["adtr", "end_gap_points"] == pytest.approx(1.0)
    # image AUROC: the long run ends at 87 against the book's 91 on grass
    assert against.loc["adtr", "image_end_gap_points"] == pytest.approx(-4.0)
    assert against.loc["cnn", "long_end_image_auroc"] == pytest.approx(0.901)


def test_the_rule_is_read_again_at_other_tolerances() -> None:
    # ADTR rises 0.25 points after epoch 30 (0.15 of them after 40) and is flat from 50: a
    # tolerance of 0.2 points waits for epoch 40, one of 0.3 points takes epoch 30; the CNN
    # is flat from 20
    adtr = [0.5, 0.8, 0.9, 0.95, 0.9515, 0.9525, 0.9525, 0.9525, 0.9525, 0.96, 0.96]
    cnn = [0.5, 0.9, 0.95, 0.95, 0.95, 0.95, 0.95, 0.95, 0.95, 0.96, 0.96]
    curves = _curves({("adtr", "grass"): adtr, ("cnn", "grass"): cnn})
    table = convergence.rule_by_tolerance(curves, long_epochs=100, step=10,
                                          tolerances=(0.002, 0.003)).set_index("tolerance")
    assert table.loc[0.002, "plateau_epoch"] == 40 and table.loc[0.002, "epochs"] == 50
    assert table.loc[0.003, "plateau_epoch"] == 30 and table.loc[0.003, "epochs"] == 40
    assert list(table["slowest"]) == ["adtr", "adtr"]
    assert convergence.rule_by_tolerance(curves, 100, 10).shape[0] == len(
        convergence.TOLERANCES)


def test_the_study_trains_each_distinct_variant_once(tiny_root: Path) -> None:
    setup = experiments.setup("smoke", data_root=str(tiny_root), seeds=[0])
    found = convergence.variants(setup)
    assert list(found) == ["cnn", "no_attention", "no_query", "adtr", "pixels", "last_layer"]
    assert found["adtr"] == {} and found["last_layer"] == {"stages": (3,)}
    # the smoke profile standardises already: the other-scale pixels are the same run
    assert "pixels_standardised" not in found
    cpu = experiments.setup("cpu", data_root=str(tiny_root), seeds=[0])
    assert convergence.variants(cpu)["pixels_standardised"] == {
        "variant": "pixels", "backbone": "pixels", "standardize": True}
    assert convergence.labels()["adtr"] == "ADTR"
    # the study's categories this set has; the seed check's: grass alone
    assert convergence.categories(setup) == ["brick", "grass"]
    assert convergence.categories(setup, catalog.CONVERGENCE.seed_categories) == ["grass"]
    # none of them: the set's first texture and first object
    other = experiments.Setup(None, ["wood", "bottle", "tile"], [0], Path("."), Path("."))
    assert convergence.categories(other) == ["wood", "bottle"]
    six = experiments.Setup(None, ["brick", "coins", "grass", "gravel", "horse", "logo"],
                            [0], Path("."), Path("."))
    assert convergence.categories(six) == six.categories  # the long runs: all six
    assert convergence.categories(six, catalog.CONVERGENCE.seed_categories) == [
        "grass", "coins", "horse"]
    assert catalog.get("convergence").kind == "study"
    assert all(e.kind in catalog.KINDS for e in catalog.EXPERIMENTS.values())


def test_table_4c_holds_the_width_share_and_4b_compares_like_with_like(tiny_root: Path) -> None:
    setup = experiments.setup("cpu", data_root=str(tiny_root), seeds=[0])
    backbones = experiments.variants(setup, catalog.get("backbone"))
    assert backbones["efficientnet_lite0"] == {"backbone": "efficientnet_lite0"}
    # Lite2: 208 channels against Lite0's 192, so d = 184 * 208 / 192 = 199.3 -> 200
    assert backbones["efficientnet_lite2"] == {"backbone": "efficientnet_lite2",
                                               "hidden_dim": 200, "feedforward_dim": 800}
    target = catalog.get("target")
    assert "standardize" not in target.variant_overrides()["pixels"]  # features are raw too
    assert [v.name for v in target.compared] == ["pixels", "features"]
    claim = catalog.get("backbone").claim
    assert claim.substitutes == (("efficientnet_lite2", "efficientnet_lite0"),)


def test_the_sensitivity_study_adds_an_object_and_drops_the_longer_schedule() -> None:
    setup = experiments.Setup(None, ["brick", "coins", "grass", "gravel", "horse", "logo"],
                              [0], Path("."), Path("."))
    assert study.sensitivity_categories(setup) == ["brick", "coins", "horse"]
    assert [s.name for s in catalog.SENSITIVITY_SETTINGS] == ["base", "standardised"]


def test_the_page_says_whether_the_book_trains_as_long_as_the_rule_asks() -> None:
    from types import SimpleNamespace

    from adtr.report import convergence as page

    found = {"plateau_epoch": {"adtr": 150, "cnn": 60}, "slowest": "adtr", "epochs": 190,
             "lr_cut_epoch": 152, "long_epochs": 480, "long_lr_cut_epoch": 384,
             "tolerance": 0.002, "step": 10, "enough": True}
    exp = SimpleNamespace(table=lambda name: {"rule": found, "labels": {"adtr": "ADTR"}}.get(name))
    text = page.schedule_statement(exp, 190)
    assert text.startswith("**The rule picks 190 epochs** (learning rate cut at epoch 152)")
    assert "the slowest variant, ADTR," in text and "from epoch 150 on" in text
    assert "trains every variant for these 190 epochs" in text
    assert "longer than the rule asks" in page.schedule_statement(exp, 240)
    assert "not the rule's 190" in page.schedule_statement(exp, 120)
    assert "would need" not in text
    short = SimpleNamespace(table=lambda name: {"rule": {**found, "enough": False}}.get(name))
    assert "they would need 380 epochs" in page.schedule_statement(short, 190)


def test_the_claims_on_the_long_runs_are_read_pair_by_pair_with_their_signs() -> None:
    from types import SimpleNamespace

    from adtr import stats
    from adtr.report import convergence as page

    def row(a: str, b: str, category: str, difference: float, claim_of: str,
            claim: bool = True) -> dict:
        verdict = stats.BETTER if difference > 0.5 else stats.NOT_SEPARATED
        return {"a": a, "b": b, "claim": claim, "metric": "pixel_auroc", "category": category,
                "difference": difference, "low": difference - 0.5, "high": difference + 0.5,
                "verdict": verdict, "seeds": 1, "claim_of": claim_of}

    rows = [row("adtr", "cnn", "all", -0.2, "attention_query"),
            row("adtr", "cnn", "grass", -0.4, "attention_query"),
            row("adtr", "cnn", "coins", 0.1, "attention_query"),
            row("multi_scale", "last_layer", "all", 5.0, "scales"),
            row("multi_scale", "last_layer", "grass", 4.0, "scales"),
            row("multi_scale", "last_layer", "coins", 6.0, "scales")]
    exp = SimpleNamespace(table={"long_intervals": rows}.get)
    table = page.long_verdicts(exp)
    assert list(table["Claim"]) == ["Table 4a", "Table 4d"]
    assert list(table["Pair a − b"]) == ["Attn + Query (ADTR) − CNN", "Multi-scale − Last layer"]
    assert list(table["Sign holds in"]) == ["1 of 2 categories", "2 of 2 categories"]
    assert list(table["Verdict"]) == ["not separated", "agrees"]
    assert "Book's runs (points)" not in table.columns  # results without the book's rows
    # the book's runs of the same categories: 4a separated there, 4d not run
    book = [row("adtr", "cnn", "all", 1.0, "attention_query"),
            row("adtr", "cnn", "grass", 1.2, "attention_query")]
    both = page.long_verdicts(SimpleNamespace(
        table={"long_intervals": rows, "book_intervals": book}.get))
    assert list(both["Book's runs (points)"]) == ["+1.00 [+0.50, +1.50]", "—"]
    assert list(both["Verdict there"]) == ["agrees", "—"]


def test_the_first_screen_says_what_twice_the_training_changes() -> None:
    from types import SimpleNamespace

    from adtr import stats
    from adtr.report import convergence as page

    def row(a: str, b: str, difference: float, claim_of: str, claim: bool = True) -> dict:
        verdict = stats.BETTER if difference > 0.5 else stats.NOT_SEPARATED
        return {"a": a, "b": b, "claim": claim, "metric": "pixel_auroc", "category": "all",
                "difference": difference, "low": difference - 0.5, "high": difference + 0.5,
                "verdict": verdict, "seeds": 1, "claim_of": claim_of}

    long = [row("adtr", "cnn", 0.2, "attention_query"),
            row("adtr", "pca", 3.0, "attention_query", claim=False),
            row("multi_scale", "last_layer", 5.0, "scales")]
    book = [row("adtr", "cnn", 1.0, "attention_query"),
            row("adtr", "pca", 0.0, "attention_query", claim=False),
            row("multi_scale", "last_layer", 4.0, "scales")]
    curves = {("adtr", c): [0.9] for c in ("grass", "coins", "horse")}

    def exp(book_rows: list[dict]) -> SimpleNamespace:
        return study_results({"long_intervals": long, "book_intervals": book_rows,
                              "rule": {"long_epochs": 480}}, long=curves)

    # the reference row (ADTR - PCA) changes too, but it is not a claim pair
    assert page.verdict_changes(exp(book)) == (
        2, ["Table 4a Attn + Query (ADTR) − CNN: agrees → not separated"])
    assert page.longer_training(exp(book), 480, 240) == (
        "On grass, coins and horse, runs of 480 epochs change the verdict of the book's "
        "240-epoch runs for 1 of 2 claim pairs: Table 4a Attn + Query (ADTR) − CNN: agrees → "
        "not separated.")
    same = [long[0], book[1], long[2]]
    assert page.longer_training(exp(same), 480, 240).endswith(
        "give the verdict of the book's 240-epoch runs for both claim pairs.")
    assert page.longer_training(exp([]), 480, 240) == ""
    one = page.longer_training(exp([long[0]]), 480, 240)
    assert one.endswith("give the verdict of the book's 240-epoch runs for its one claim pair.")
    assert page.claims_statement(exp(book), 240).startswith(
        "**Training longer changes verdicts here.** On grass, coins and horse, runs of 480 "
        "epochs change")
    assert page.claims_statement(exp(same), 240).startswith(
        "**Training longer changes no verdict here.**")
    assert page.claims_statement(exp([]), 240) == ""
    # long runs on every category of the book's runs
    everywhere = study_results({"long_intervals": long, "book_intervals": same,
                                "rule": {"long_epochs": 480}}, long=curves, book=curves)
    assert page.longer_training(everywhere, 480, 240).startswith(
        "On all 3 categories, runs of 480 epochs give")


def test_the_page_says_how_the_schedule_hangs_on_the_tolerance() -> None:
    from types import SimpleNamespace

    from adtr.report import convergence as page

    found = {"tolerance": 0.002}
    rows = [{"tolerance": 0.001, "slowest": "adtr", "plateau_epoch": 310, "epochs": 390,
             "enough": False},
            {"tolerance": 0.002, "slowest": "cnn", "plateau_epoch": 250, "epochs": 320,
             "enough": False}]
    tables = {"rule": found, "rule_by_tolerance": rows, "labels": {"adtr": "ADTR"},
              "against_long": [{"book_epochs": 240}]}
    text = page.tolerance_statement(SimpleNamespace(table=tables.get))
    assert text.startswith("**The rule at other tolerances.** 0.1 points: 390 epochs (ADTR "
                           "flat from epoch 310); 0.2 points: 320 epochs (cnn flat from "
                           "epoch 250).")
    assert text.endswith("from 320 to 390 epochs over these tolerances. None asks for as few "
                         "as the book's 240.")
    short = {**tables, "against_long": [{"book_epochs": 320}]}
    assert page.tolerance_statement(SimpleNamespace(table=short.get)).endswith(
        "At the loosest, the book's 320 epochs would do.")
    same = {**tables, "rule_by_tolerance": [rows[0], {**rows[1], "epochs": 390}]}
    assert page.tolerance_statement(SimpleNamespace(table=same.get)).endswith(
        "every one asks for 390 epochs. None asks for as few as the book's 240.")
    assert page.tolerance_statement(SimpleNamespace(table=lambda name: None)) == ""


def test_the_page_sets_the_probes_jitter_beside_the_tolerance() -> None:
    from types import SimpleNamespace

    from adtr.report import convergence as page

    # long runs of 100 epochs, cut at 80: the later half of the base-lr phase is 40 < e <= 80
    calm = [0.5, 0.9, 0.95, 0.96, 0.96, 0.96, 0.96, 0.96, 0.96, 0.96, 0.96]
    noisy = [0.5, 0.9, 0.95, 0.96, 0.96, 0.96, 0.962, 0.958, 0.962, 0.96, 0.96]
    found = {"long_epochs": 100, "long_lr_cut_epoch": 80, "tolerance": 0.002}

    def page_of(curve: list[float]) -> SimpleNamespace:
        return study_results({"rule": found}, long={("adtr", "grass"): curve,
                                                    ("adtr", "coins"): curve})

    jitter = page.probe_jitter(page_of(noisy))
    # steps 50 -> 60 -> 70 -> 80: |0.962-0.96|, |0.958-0.962|, |0.962-0.958| -> 0.2, 0.4, 0.4
    assert jitter["mean_step"].iloc[0] == pytest.approx(1 / 3)
    assert jitter["largest_step"].iloc[0] == pytest.approx(0.4)
    assert "of the same order as that jitter" in page.jitter_statement(page_of(noisy))
    assert "well above that jitter" in page.jitter_statement(page_of(calm))
    # calm on average (steps 0, 0, 0.21), but one step above the tolerance
    spiky = [0.5, 0.9, 0.95, 0.96, 0.96, 0.96, 0.96, 0.96, 0.9621, 0.9621, 0.9621]
    assert page.jitter_statement(page_of(spiky)).endswith(
        "The 0.2-point tolerance is well above the typical step but not above the largest: "
        "one such jump can set a curve's flat-from epoch later than its plateau.")
    assert page.jitter_statement(study_results({})) == ""


def test_a_table_4_page_reads_its_claim_on_the_long_runs() -> None:
    from types import SimpleNamespace

    from adtr import stats
    from adtr.report import convergence as page

    def row(a: str, b: str, difference: float, claim_of: str, claim: bool = True,
            category: str = "all") -> dict:
        verdict = (stats.BETTER if difference > 0.5 else stats.WORSE if difference < -0.5
                   else stats.NOT_SEPARATED)
        return {"a": a, "b": b, "claim": claim, "metric": "pixel_auroc", "category": category,
                "difference": difference, "low": difference - 0.5, "high": difference + 0.5,
                "verdict": verdict, "seeds": 1, "claim_of": claim_of}

    long = [row("adtr", "cnn", 0.2, "attention_query"),
            row("adtr", "no_query", 2.0, "attention_query"),
            row("adtr", "pca", 3.0, "attention_query", claim=False),
            row("multi_scale", "last_layer", 5.0, "scales")]
    # the convergence notebook's book runs of the long runs' categories
    book = [row("adtr", "cnn", 1.0, "attention_query"),
            row("adtr", "no_query", 1.5, "attention_query"),
            row("multi_scale", "last_layer", 4.0, "scales")]
    six = ["brick", "coins", "grass", "gravel", "horse", "logo"]

    def study(categories: list[str], enough: bool = False) -> SimpleNamespace:
        return study_results({"long_intervals": long, "book_intervals": book,
                              "rule": {"long_epochs": 480, "epochs": 440, "enough": enough}},
                             long={("adtr", c): [0.9] for c in categories})

    def table_page(name: str, intervals: list[dict]) -> SimpleNamespace:
        return SimpleNamespace(name=name, table={"intervals": intervals}.get,
                               record=SimpleNamespace(categories=six, config={"epochs": 240}))

    # the page's own verdicts, not the study's copy of them: ADTR - CNN does not agree here
    fourth_a = table_page("attention_query", [row("adtr", "cnn", -1.0, "attention_query"),
                                              row("adtr", "no_query", 1.5, "attention_query")])
    assert page.at_plateau(study(six), fourth_a) == (
        "**At 480 epochs.** Runs of 480 epochs, against this page's 240, on all 6 categories "
        "({doc}`convergence <convergence>`; the rule asks for 440, which these runs are too "
        "short to confirm), give: Attn + Query (ADTR) − CNN +0.20 [-0.30, +0.70] points, not "
        "separated (here: does not agree); Attn + Query (ADTR) − w/o Query +2.00 "
        "[+1.50, +2.50] points, agrees (the same here).")
    # long runs on some categories: beside the book's runs of those, never "here"
    fourth_d = table_page("scales", [row("multi_scale", "last_layer", 4.0, "scales")])
    assert page.at_plateau(study(["coins", "grass"], enough=True), fourth_d) == (
        "**At 480 epochs.** Runs of 480 epochs, against this page's 240, on coins and grass "
        "({doc}`convergence <convergence>`; the rule asks for 440), give: Multi-scale − "
        "Last layer +5.00 [+4.50, +5.50] points, agrees (the book's runs of those "
        "categories: agrees).")
    one = page.at_plateau(study(["coins"]), fourth_d)
    assert "on coins (" in one and "all 1" not in one
    assert page.at_plateau(study(six), table_page("target", [])) == ""  # not decided there
    assert page.at_plateau(None, fourth_a) == "" and page.at_plateau(study(six), None) == ""


def test_the_seed_table_never_prints_a_negative_zero() -> None:
    from types import SimpleNamespace

    from adtr.report import convergence as page
    rows = [{"category": "coins", "seeds": 3, "adtr_mean": 96.381, "adtr_sd": 0.08,
             "cnn_mean": 96.383, "cnn_sd": 0.21, "difference_mean": -0.002,
             "difference_sd": 0.13, "interval_half_width": 0.41}]
    exp = SimpleNamespace(table={"seed_check": rows, "labels": {"adtr": "ADTR", "cnn": "CNN"}}.get)
    table = page.seed_table(exp)
    assert table.loc[0, "ADTR − CNN"] == "+0.00 ± 0.13"
    assert table.loc[0, "CNN"] == "96.38 ± 0.21"


def test_a_separated_pair_closer_to_0_than_the_seed_sd_is_flagged() -> None:
    from types import SimpleNamespace

    from adtr import stats
    from adtr.report import convergence as page

    def row(a: str, b: str, low: float, high: float) -> dict:
        verdict = stats.BETTER if low > 0 else stats.WORSE if high < 0 else stats.NOT_SEPARATED
        return {"a": a, "b": b, "claim": True, "metric": "pixel_auroc", "category": "all",
                "difference": (low + high) / 2, "low": low, "high": high, "verdict": verdict,
                "seeds": 1, "claim_of": "attention_query"}

    seeds = [{"category": c, "seeds": 3, "adtr_mean": 97.0, "adtr_sd": 0.1, "cnn_mean": 97.0,
              "cnn_sd": 0.1, "difference_mean": 0.0, "difference_sd": sd,
              "interval_half_width": 0.4} for c, sd in (("coins", 0.13), ("horse", 0.16))]
    study = SimpleNamespace(table={"seed_check": seeds}.get)

    def table_page(*rows: dict) -> SimpleNamespace:
        return SimpleNamespace(name="attention_query", table={"intervals": list(rows)}.get,
                               record=SimpleNamespace(categories=["coins"], config={}))

    # SD of the mean over 1 category: sqrt((0.13² + 0.16²) / 2) = 0.146; ADTR - CNN ends 0.05
    # from 0 (< 2 SD): flagged; w/o Query is not a pair the seed check trains
    near = table_page(row("adtr", "cnn", -0.56, -0.05), row("adtr", "no_query", 0.01, 0.9))
    assert page.near_the_edge(study, near) == (
        "**Near the edge.** Attn + Query (ADTR) − CNN (does not agree) ends 0.05 points from 0, "
        "within two seed SDs of 0 (the SD of its mean over 1 category is about 0.15 points, "
        "estimated from the per-category SDs of the {doc}`seed check <convergence>`): with "
        "another seed its interval could contain 0, and the pair would read not separated.")
    assert page.near_the_edge(study, table_page(row("adtr", "cnn", -0.56, -0.3))) == ""
    assert page.near_the_edge(study, table_page(row("adtr", "cnn", -0.56, 0.1))) == ""
    # over 16 categories the mean's seed SD is a quarter: 0.05 from 0 is beyond two of them
    far = table_page(row("adtr", "cnn", -0.56, -0.08))
    far.record.categories = [f"c{i}" for i in range(16)]
    assert page.near_the_edge(study, far) == ""
    assert page.near_the_edge(None, near) == ""


def test_curves_set_each_probe_beside_the_loss_and_rate_of_its_epoch() -> None:
    from types import SimpleNamespace

    from adtr import curves
    runs = pd.DataFrame([{"variant": "adtr", "category": "grass", "seed": 0}])
    record = SimpleNamespace(loss_history=[3.0, 2.0, 1.0], lr_history=[1e-3, 1e-3, 1e-4],
                             probes=[{"epoch": 0, "pixel_auroc": 0.5},
                                     {"epoch": 3, "pixel_auroc": 0.9, "image_auroc": 0.8}])
    table = curves.curves(runs, [record])
    assert list(table["epoch"]) == [0, 3]
    assert pd.isna(table.loc[0, "train_loss"]) and pd.isna(table.loc[0, "lr"])  # before
    assert table.loc[1, "train_loss"] == 1.0 and table.loc[1, "lr"] == 1e-4  # epoch 3's
    assert pd.isna(table.loc[0, "image_auroc"])  # not probed
    means = curves.category_means(pd.concat([table, table.assign(category="coins",
                                                                 pixel_auroc=0.7)]))
    assert list(means["pixel_auroc"]) == [0.6, pytest.approx(0.8)]


def test_a_steadily_rising_curve_moves_the_rule_with_the_long_runs() -> None:
    # long runs of 400 epochs (cut at 320). "rising" gains 0.3 points per doubling of the
    # epochs: flat (0.2 points) from 2 ** (-2/3) = 63 % of the window each length reads,
    # the first probe at or after 0.63 x 80, 160 and 320; "flat" is flat from epoch 50
    import math

    epochs = range(0, 410, 10)
    rising = [0.5] + [0.9 + 0.003 * math.log2(e / 10) for e in epochs if e]
    flat = [min(0.95, 0.5 + 0.01 * e) for e in epochs]
    curves = _curves({("rising", "grass"): rising, ("flat", "grass"): flat})
    table = convergence.rule_by_window(curves, 400, 10, shares=(0.25, 0.5, 1.0))
    read = table.pivot_table(index="variant", columns="long_epochs", values="plateau_epoch")
    assert list(read.loc["rising"]) == [60, 110, 210]
    assert list(read.loc["flat"]) == [50, 50, 50]
    assert list(table.drop_duplicates("long_epochs")["epochs"]) == [80, 140, 270]
    gains = convergence.doubling_gain(curves, 400).set_index("variant")
    assert gains.loc["rising", "gain_points"] == pytest.approx(0.3)
    assert gains.loc["flat", "gain_points"] == pytest.approx(0.0)
    assert list(gains["rising"]) == [True, False]  # 0.3 points against the 0.2 tolerance
    assert not convergence.doubling_gain(curves, 400, tolerance=0.003).loc[0, "rising"]
    # the category mean's gain, and the category that gains most: 0.4 and 0.0 average 0.2
    two = _curves({("adtr", "grass"): [0.9] * 41,
                   ("adtr", "coins"): [0.5] + [0.9 + 0.004 * math.log2(e / 10)
                                               for e in epochs if e]})
    gain = convergence.doubling_gain(two, 400).iloc[0]
    assert gain["gain_points"] == pytest.approx(0.2)
    assert (gain["top_category"], gain["top_gain_points"]) == ("coins", pytest.approx(0.4))
    assert (gains.loc["rising", "from_epoch"], gains.loc["rising", "to_epoch"]) == (170, 320)
    # a length with one probe before its cut has no curve to read
    assert convergence.rule_by_window(curves, 400, 10, shares=(0.01,)).empty
    # the rule over the variants gaining no more than the tolerance per doubling
    rule = convergence.schedule_rule(curves, 400, 10)
    assert rule["plateau_epoch"] == {"rising": 210, "flat": 50} and rule["epochs"] == 270
    assert convergence.steady_schedule(rule, gains.reset_index()) == 70  # cut at 56
    assert convergence.steady_schedule(rule, gains.reset_index().iloc[:1]) is None


def test_the_page_says_which_variant_keeps_the_rule_from_settling() -> None:
    from adtr.report import convergence as page

    found = {"tolerance": 0.002, "plateau_epoch": {"adtr": 200, "pixels_std": 340},
             "slowest": "pixels_std", "epochs": 430, "lr_cut_epoch": 344, "long_epochs": 740,
             "long_lr_cut_epoch": 592, "step": 10, "enough": False}
    windows = [{"long_epochs": n, "variant": v, "plateau_epoch": e, "epochs": s,
                "enough": False}
               for n, s, row in ((370, 290, {"adtr": 190, "pixels_std": 180}),
                                 (740, 430, {"adtr": 200, "pixels_std": 340}))
               for v, e in row.items()]
    gains = [{"variant": "adtr", "gain_points": 0.03, "rising": False, "top_category": "coins",
              "top_gain_points": 0.45},
             {"variant": "pixels_std", "gain_points": 0.21, "rising": True,
              "top_category": "grass", "top_gain_points": 0.94}]
    tables = {"rule": found, "rule_by_window": windows, "doubling_gain": gains,
              "steady_schedule": convergence.steady_schedule(found, pd.DataFrame(gains)),
              "labels": {"adtr": "ADTR", "pixels_std": "Pixels std"}}
    exp = study_results(tables)
    assert [r["variant"] for r in page.rising(exp)] == ["pixels_std"]
    text = page.window_statement(exp)
    assert "runs of 370 and 740 epochs would have read" in text
    assert "at the share 2^(−0.2/g) of the window it reads" in text
    assert "ADTR gains at most 0.03 points per doubling late in the base phase." in text
    assert ("**Pixels std (0.21 points per doubling, most on grass: 0.94; flat from epochs "
            "180 and 340 in those runs) is still rising faster than that.**") in text
    assert "runs of 860 epochs would ask for more" in text
    assert text.endswith("the other variants alone would ask for 250, which these runs "
                         "confirm.")
    # a schedule the other variants ask for that these runs cannot confirm either
    late = {**tables, "steady_schedule": 380}
    assert study_results(late).table("steady_schedule") == 380
    assert page.window_statement(study_results(late)).endswith(
        "the other variants alone would ask for 380.")
    table = page.window_table(exp)
    assert list(table.columns) == ["Flat from epoch", "Runs of 370", "Runs of 740",
                                   "Gain per doubling (points)", "Its category gaining most"]
    assert table.iloc[1].tolist() == ["Pixels std", 180, 340, "0.21", "grass 0.94"]
    assert table.iloc[-1].tolist() == ["the rule's schedule", 290, 430, "", ""]
    calm = {**tables, "doubling_gain": [gains[0], {**gains[1], "rising": False}],
            "steady_schedule": []}  # the results loader's answer for a missing table
    assert "still rising" not in page.window_statement(study_results(calm))
    assert page.window_statement(study_results({})) == ""
    first = page.schedule_statement(exp, 430)
    assert ("they would need 860 epochs. Longer runs may not settle it, as one variant still "
            "gains more than the tolerance per doubling of the epochs: Pixels std") in first
    assert "may not settle" not in page.schedule_statement(study_results(calm), 430)


def test_the_page_says_how_far_image_auroc_moves_after_the_books_schedule() -> None:
    from adtr.report import convergence as page

    rows = [{"variant": "adtr", "book_epochs": 430, "image_end_gap_points": -0.35},
            {"variant": "pixels", "book_epochs": 430, "image_end_gap_points": 1.01},
            {"variant": "cnn", "book_epochs": 430, "image_end_gap_points": 0.4}]
    tables = {"rule": {"tolerance": 0.002, "long_epochs": 100, "long_lr_cut_epoch": 80},
              "against_long": rows, "labels": {"adtr": "ADTR", "pixels": "Pixels"}}
    steady = [0.9 + 0.001 * (i % 2) for i in range(11)]  # steps of 0.1 points
    jumpy = [0.9 + 0.005 * (i % 2) for i in range(11)]  # steps of 0.5 points
    exp = study_results(tables, long={("adtr", "a"): steady, ("pixels", "a"): steady,
                                      ("cnn", "a"): jumpy})
    text = page.image_statement(exp)
    assert text.startswith(
        "**Image AUROC is not what the rule reads.** From the book's runs (430 epochs) to the "
        "long runs' end (100), the category mean of each variant's image AUROC moves by: "
        "Pixels +1.01; cnn +0.40; ADTR -0.35 points. Those of Pixels and ADTR move by more "
        "than the 0.2-point tolerance and more than their image AUROC's largest step")
    calm = {**tables, "against_long": [rows[2]]}  # 0.4 points, within its 0.5-point steps
    assert page.image_statement(study_results(calm, long={("cnn", "a"): jumpy})).endswith(
        "cnn +0.40 points.")
    old = {**tables, "against_long": [{"variant": "adtr", "book_epochs": 240}]}
    assert page.image_statement(study_results(old)) == ""  # written before image AUROC was kept
