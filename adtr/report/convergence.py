"""The convergence page: the long runs' curves, the rule that picks the book's schedule, the
book's runs against it, and the seed check. Tables and sentences computed from the
convergence notebook's tables (``adtr.convergence``); called as ``report.convergence.X``."""

from __future__ import annotations

import math
from collections.abc import Iterable

import pandas as pd

from adtr import catalog, curves
from adtr.report.formatting import interval, listing, plural
from adtr.report.loading import Experiment
from adtr.report.verdicts import comparisons_from, comparisons_of

#: The seeds' SD of a pair's difference, as a share of its interval's half-width, up to
#: which the seeds are small beside the test-image noise.
SEED_SHARE = 0.5


def _labels(exp: Experiment) -> dict[str, str]:
    return exp.table("labels") or {}


def _name(exp: Experiment, variant: str) -> str:
    return _labels(exp).get(variant, variant)


def rule(exp: Experiment) -> dict:
    """The rule's outcome as the notebook wrote it (``convergence.schedule_rule``)."""
    return exp.table("rule") or {}


def schedule_statement(exp: Experiment, book_epochs: int) -> str:
    """What the rule picks, from which variant, and whether the book trains that long."""
    found = rule(exp)
    if not found:
        return "The convergence notebook wrote no rule."
    tolerance = 100 * found["tolerance"]
    slowest = _name(exp, found["slowest"])
    text = (f"**The rule picks {found['epochs']} epochs** (learning rate cut at epoch "
            f"{found['lr_cut_epoch']}). In the long runs ({found['long_epochs']} epochs, cut "
            f"at {found['long_lr_cut_epoch']}), the slowest variant, {slowest}, stops rising by "
            f"more than {tolerance:.1f} points (category mean, before the long runs' cut) from "
            f"epoch {found['plateau_epoch'][found['slowest']]} on. The schedule is the "
            f"shortest, in steps of {found['step']} epochs, whose learning-rate cut comes at "
            f"or after that epoch.")
    if not found["enough"]:
        text += (f" The long runs are shorter than twice that schedule, so they cannot show "
                 f"that it is long enough: they would need {2 * found['epochs']} epochs.")
        moving = [_name(exp, r["variant"]) for r in rising(exp)]
        if moving:
            which = "one variant still gains" if len(moving) == 1 else "some still gain"
            text += (f" Longer runs may not settle it, as {which} more than the tolerance per "
                     f"doubling of the epochs: {listing(moving)} (*Does the rule settle?* "
                     f"below).")
    if book_epochs == found["epochs"]:
        text += f" The book trains every variant for these {book_epochs} epochs."
    elif book_epochs > found["epochs"]:
        text += (f" The book trains every variant for {book_epochs} epochs, longer than "
                 f"the rule asks.")
    else:
        text += (f" **The book's runs train for {book_epochs} epochs, not the rule's "
                 f"{found['epochs']}:** the tables below show how far each variant is from "
                 f"its plateau there.")
    return text


def _part(exp: Experiment, part: str) -> tuple[pd.DataFrame, list]:
    """The study's runs of one ``part`` ("long", "book" or "seeds"; the notebook names them
    "<part>/<variant>") under their variant's name, with their records in the same order."""
    runs = exp.runs
    keep = [i for i, name in enumerate(runs.get("variant", [])) if name.startswith(f"{part}/")]
    chosen = runs.iloc[keep].reset_index(drop=True)
    chosen["variant"] = chosen["variant"].str.split("/", n=1).str[1]
    return chosen, [exp.record.runs[i] for i in keep]


def part_curves(exp: Experiment, part: str) -> pd.DataFrame:
    """The curves of the study's ``part`` (``adtr.curves.curves``), from its run records."""
    return curves.curves(*_part(exp, part))


def probe_jitter(exp: Experiment, metric: str = "pixel_auroc") -> pd.DataFrame:
    """Per variant: how far its category-mean ``metric`` moves from one probe to the next
    (points) in the later half of the long runs' base-lr phase, where the rule looks for the
    plateau: the mean and the largest step."""
    long, found = part_curves(exp, "long"), rule(exp)
    if long.empty or not found:
        return pd.DataFrame(columns=["variant", "mean_step", "largest_step"])
    cut = found["long_lr_cut_epoch"]
    means = curves.category_means(long)
    rows = []
    for variant, curve in means.groupby("variant", sort=False):
        late = curves.late_base_phase(curve, cut).sort_values("epoch")
        steps = 100 * late[metric].diff().abs().dropna()
        if not steps.empty:
            rows.append({"variant": variant, "mean_step": float(steps.mean()),
                         "largest_step": float(steps.max())})
    return pd.DataFrame(rows, columns=["variant", "mean_step", "largest_step"])


def jitter_statement(exp: Experiment) -> str:
    """How sharp the rule can be: the probes' own jitter at the plateau against its
    tolerance."""
    jitter, found = probe_jitter(exp), rule(exp)
    if jitter.empty:
        return ""
    tolerance, mean_step = 100 * found["tolerance"], jitter["mean_step"].mean()
    text = (f"**How sharp the rule is.** In the later half of the long runs before their cut, "
            f"a variant's category mean moves by {mean_step:.2f} points "
            f"from one probe to the next on average, and by up to "
            f"{jitter['largest_step'].max():.2f} points.")
    if mean_step >= tolerance / 2:
        return text + (f" The {tolerance:.1f}-point tolerance is of the same order as that "
                       f"jitter: the epoch from which a curve counts as flat is uncertain by "
                       f"several probes, and longer long runs may move it again.")
    if jitter["largest_step"].max() >= tolerance:
        return text + (f" The {tolerance:.1f}-point tolerance is well above the typical step "
                       f"but not above the largest: one such jump can set a curve's "
                       f"flat-from epoch later than its plateau.")
    return text + f" The {tolerance:.1f}-point tolerance is well above that jitter."


def plateau_table(exp: Experiment) -> pd.DataFrame:
    """Per variant: where its long-run curve flattens, its best there, and the book's run
    on the same categories against that best."""
    found, rows = rule(exp), []
    against = {r["variant"]: r for r in exp.table("against_long") or []}
    for variant, epoch in (found.get("plateau_epoch") or {}).items():
        row = {"Variant": _name(exp, variant), "Flat from epoch (long runs)": epoch}
        book = against.get(variant)
        if book is not None:
            row.update({
                "Best in the long runs (%)": f"{100 * book['long_best_pixel_auroc']:.2f} "
                                             f"(epoch {book['long_best_epoch']})",
                f"Book's run, epoch {book['book_epochs']} (%)":
                    f"{100 * book['book_pixel_auroc']:.2f}",
                "Below the best (points)": f"{book['gap_points']:.2f}",
                "Within the tolerance": "yes" if book["within"] else "**no**"})
            if "end_gap_points" in book:  # results written before the end was kept lack it
                row["Long runs' end − book's run (points)"] = f"{book['end_gap_points']:+.2f}"
            if "image_end_gap_points" in book:  # nor before the image AUROC was kept
                row["The same in image AUROC (points)"] = f"{book['image_end_gap_points']:+.2f}"
        rows.append(row)
    return pd.DataFrame(rows)


def image_statement(exp: Experiment) -> str:
    """How far each variant's image AUROC, which the rule does not read, moves from the
    book's runs to the long runs' end, and which move by more than both the tolerance and
    the largest step of their image AUROC between two probes (``probe_jitter``)."""
    rows = [r for r in exp.table("against_long") or [] if "image_end_gap_points" in r]
    found = rule(exp)
    if not rows or not found:
        return ""
    rows = sorted(rows, key=lambda r: -r["image_end_gap_points"])
    said = "; ".join(f"{_name(exp, r['variant'])} {r['image_end_gap_points']:+.2f}" for r in rows)
    tolerance = 100 * found["tolerance"]
    text = (f"**Image AUROC is not what the rule reads.** From the book's runs "
            f"({rows[0]['book_epochs']} epochs) to the long runs' end ({found['long_epochs']}), "
            f"the category mean of each variant's image AUROC moves by: {said} points.")
    jitter = probe_jitter(exp, "image_auroc").set_index("variant")["largest_step"].to_dict()
    moving = [_name(exp, r["variant"]) for r in rows
              if abs(r["image_end_gap_points"]) > max(tolerance, jitter.get(r["variant"], 0.0))]
    if moving:
        text += (f" Those of {listing(moving)} move by more than the {tolerance:.1f}-point "
                 f"tolerance and more than their image AUROC's largest step from one probe "
                 f"to the next late in the long runs' base phase: their image-level numbers "
                 f"are not at a plateau at the book's schedule.")
    return text


def tolerance_statement(exp: Experiment) -> str:
    """The rule read at other tolerances (``convergence.rule_by_tolerance``): the schedule
    each asks for, and whether any of them is as short as the book's."""
    rows, found = exp.table("rule_by_tolerance") or [], rule(exp)
    if not rows or not found:
        return ""
    book = next((r["book_epochs"] for r in exp.table("against_long") or []), None)
    said = "; ".join(f"{100 * r['tolerance']:.1f} points: {r['epochs']} epochs "
                     f"({_name(exp, r['slowest'])} flat from epoch {r['plateau_epoch']})"
                     for r in rows)
    low, high = min(r["epochs"] for r in rows), max(r["epochs"] for r in rows)
    text = (f"**The rule at other tolerances.** {said}. The study's own tolerance, "
            f"{100 * found['tolerance']:.1f} points, was set before the long runs and still "
            f"decides; the others show how much the schedule hangs on it")
    text += (f": not at all, every one asks for {low} epochs." if low == high else
             f": from {low} to {high} epochs over these tolerances.")
    if book is not None and low > book:
        text += f" None asks for as few as the book's {book}."
    elif book is not None:
        text += f" At the loosest, the book's {book} epochs would do."
    return text


def window_table(exp: Experiment) -> pd.DataFrame:
    """Per variant: the epoch from which it is flat as long runs of each length would read
    it (``convergence.rule_by_window``), the schedule each length's rule picks, and the
    variant's gain per doubling of the epochs late in the base phase, with the category
    that gains most (``convergence.doubling_gain``)."""
    windows = pd.DataFrame(exp.table("rule_by_window") or [])
    if windows.empty:
        return windows
    gains = {r["variant"]: r for r in exp.table("doubling_gain") or []}
    table = windows.pivot_table(index="variant", columns="long_epochs",
                                values="plateau_epoch", sort=False)
    table.columns = [f"Runs of {n}" for n in table.columns]
    table = table.astype(int).reset_index()
    table["Gain per doubling (points)"] = [
        f"{gains[v]['gain_points']:.2f}" if v in gains else "—" for v in table["variant"]]
    table["Its category gaining most"] = [
        f"{gains[v]['top_category']} {gains[v]['top_gain_points']:.2f}" if v in gains else "—"
        for v in table["variant"]]
    schedules = windows.drop_duplicates("long_epochs")
    table.loc[len(table)] = ["the rule's schedule", *schedules["epochs"], "", ""]
    table["variant"] = [_name(exp, v) for v in table["variant"]]
    return table.rename(columns={"variant": "Flat from epoch"})


def rising(exp: Experiment) -> list[dict]:
    """The ``doubling_gain`` rows of the variants that gain more than the tolerance per
    doubling of the epochs: at that pace runs twice the schedule never confirm it."""
    return [r for r in exp.table("doubling_gain") or [] if r["rising"]]


def window_statement(exp: Experiment) -> str:
    """Whether the rule settles as the long runs grow: which variants keep moving it and
    why, the schedule the others alone would ask for, and what the book does about it."""
    windows, found = exp.table("rule_by_window") or [], rule(exp)
    gains = exp.table("doubling_gain") or []
    if not windows or not gains or not found:
        return ""
    tolerance, lengths = 100 * found["tolerance"], sorted({r["long_epochs"] for r in windows})
    text = (f"**Does the rule settle?** Until its learning-rate cut a run trains at the base "
            f"rate on the same batches whatever its length, so these curves show what long "
            f"runs of {listing([str(n) for n in lengths])} epochs would have read: the table "
            f"below. On a curve that gains g points per doubling of the epochs, the rule "
            f"finds the flat-from epoch at the share 2^(−{tolerance:.1f}/g) of the window it "
            f"reads: it moves with the long runs, and it stays in their first half, where runs "
            f"twice the schedule confirm it, only while g is no more than the "
            f"{tolerance:.1f}-point tolerance.")
    moving = [r for r in gains if r["rising"]]
    steady = [r for r in gains if not r["rising"]]
    if steady:
        verb = "gains" if len(steady) == 1 else "gain"
        text += (f" {listing([_name(exp, r['variant']) for r in steady])} {verb} at most "
                 f"{max(r['gain_points'] for r in steady):.2f} points per doubling late in "
                 f"the base phase.")
    if not moving:
        return text
    said = [f"{_name(exp, r['variant'])} ({r['gain_points']:.2f} points per doubling, most "
            f"on {r['top_category']}: {r['top_gain_points']:.2f}; flat from epochs "
            f"{listing([str(w['plateau_epoch']) for w in windows if w['variant'] == r['variant']])}"
            f" in those runs)" for r in moving]
    verb = "is" if len(moving) == 1 else "are"
    text += (f" **{listing(said)} {verb} still rising faster than that.** At this pace "
             f"longer long runs would move the rule again rather than confirm it: runs of "
             f"{2 * found['epochs']} epochs would ask for more. The schedule is the "
             f"{found['epochs']} epochs these runs ask for, and what checks that length is the "
             f"book's runs against the long runs' best (the table above)")
    alone = exp.table("steady_schedule")  # convergence.steady_schedule
    if alone and alone < found["epochs"]:
        confirmed = ", which these runs confirm" if 2 * alone <= found["long_epochs"] else ""
        text += f"; the other variants alone would ask for {alone}{confirmed}"
    return text + "."


def flattened_table(exp: Experiment) -> pd.DataFrame:
    """Category x variant: whether the book's run had flattened before its lr cut (the
    epoch from which it rose no more than the tolerance)."""
    flat = pd.DataFrame(exp.table("flattened") or [])
    if flat.empty:
        return flat
    flat["cell"] = [f"yes ({a})" if f else f"no ({a})" for a, f in
                    zip(flat["flattened_at"], flat["flattened"], strict=True)]
    table = flat.pivot_table(index="category", columns="variant", values="cell",
                             aggfunc="first", sort=False)
    table.columns = [_name(exp, v) for v in table.columns]
    return table.reset_index().rename(columns={"category": "Category"})


def flattened_statement(exp: Experiment) -> str:
    flat = pd.DataFrame(exp.table("flattened") or [])
    if flat.empty:
        return ""
    done = flat.groupby("variant", sort=False)["flattened"].sum()
    said = ", ".join(f"{_name(exp, v)} {int(n)}" for v, n in done.items())
    total = flat["category"].nunique()
    return (f"Categories (of {total}) on which each variant's pixel AUROC had flattened "
            f"before the learning-rate cut of the book's runs: {said}.")


def _seed_pair(rows: list[dict]) -> list[str]:
    """The seed check's two variants (a, b), as its table's columns name them."""
    return [c[:-5] for c in rows[0] if c.endswith("_mean") and c != "difference_mean"][:2]


def seed_table(exp: Experiment) -> pd.DataFrame:
    """Per category of the seed check: each variant's mean and SD over seeds, the pair's
    difference and its SD, and the test-image interval's half-width, in points."""
    rows = pd.DataFrame(exp.table("seed_check") or [])
    if rows.empty:
        return rows
    a, b = _seed_pair(rows.to_dict(orient="records"))
    table = pd.DataFrame({"Category": rows["category"], "Seeds": rows["seeds"]})
    for v in (a, b):
        table[_name(exp, v)] = [f"{m:.2f} ± {s:.2f}" for m, s in
                                zip(rows[f"{v}_mean"], rows[f"{v}_sd"], strict=True)]
    table[f"{_name(exp, a)} − {_name(exp, b)}"] = [
        f"{round(m, 2) or 0.0:+.2f} ± {s:.2f}" for m, s in  # never '-0.00'
        zip(rows["difference_mean"], rows["difference_sd"], strict=True)]
    table["Interval half-width"] = [f"{w:.2f}" for w in rows["interval_half_width"]]
    return table


def seed_statement(exp: Experiment) -> str:
    rows = pd.DataFrame(exp.table("seed_check") or [])
    if rows.empty:
        return ""
    ratio = (rows["difference_sd"] / rows["interval_half_width"]).max()
    text = (f"Over {plural(int(rows['seeds'].max()), 'seed')}, the pair's difference moves "
            f"by a standard deviation of at most {rows['difference_sd'].max():.2f} points, "
            f"at most {ratio:.0%} of the half-width of its test-image interval.")
    if ratio <= SEED_SHARE:
        return text + " The intervals, not the seeds, set what a verdict can tell."
    return text + (" That is not small beside the interval: a one-seed verdict near the "
                   "edge of its interval could change with the seed.")


def _beside_book(exp: Experiment):
    """Each Table 4 claim's pairs on the long runs (``long_intervals``) with the same pair
    on the book's runs of those categories (``book_intervals``; None where it has none):
    (experiment, long runs' comparison, book's comparison)."""
    rows, book_rows = exp.table("long_intervals") or [], exp.table("book_intervals") or []
    for claim in dict.fromkeys(r["claim_of"] for r in rows):
        experiment = catalog.get(claim)
        book = {(c.a, c.b): c for c in comparisons_from(
            [r for r in book_rows if r["claim_of"] == claim])}
        for c in comparisons_from([r for r in rows if r["claim_of"] == claim]):
            yield experiment, c, book.get((c.a, c.b))


def long_verdicts(exp: Experiment) -> pd.DataFrame:
    """Each Table 4 claim's pairs decided on the long runs (their last epoch, the long runs'
    categories): a − b in points with its paired 95 % interval, the categories where its
    sign holds, and the verdict; beside them, the same pair on the book's runs of the same
    categories (where the results hold them), so that what twice the training changes
    shows."""
    with_book = bool(exp.table("book_intervals"))
    table = []
    for experiment, c, shorter in _beside_book(exp):
        row = {"Claim": experiment.short_title,
               "Pair a − b": f"{experiment.labels[c.a]} − {experiment.labels[c.b]}",
               "Long runs (points)": interval(c.difference, c.low, c.high),
               "Sign holds in": c.sign_holds,
               "Verdict": c.verdict if c.claim else "(a reference row)"}
        if with_book:
            row["Book's runs (points)"] = "—" if shorter is None else interval(
                shorter.difference, shorter.low, shorter.high)
            row["Verdict there"] = "—" if shorter is None else (
                shorter.verdict if shorter.claim else "(a reference row)")
        table.append(row)
    return pd.DataFrame(table)


def verdict_changes(exp: Experiment) -> tuple[int, list[str]]:
    """The claim pairs decided on both the long runs and the book's runs of the same
    categories: how many there are, and each whose verdict differs, as 'Table 4a ADTR −
    CNN: agrees → not separated' (book's → long runs')."""
    compared, changed = 0, []
    for experiment, c, shorter in _beside_book(exp):
        if not c.claim or shorter is None:
            continue
        compared += 1
        if shorter.verdict != c.verdict:
            changed.append(f"{experiment.short_title} {experiment.labels[c.a]} − "
                           f"{experiment.labels[c.b]}: {shorter.verdict} → {c.verdict}")
    return compared, changed


def long_categories(exp: Experiment) -> list[str]:
    """The long runs' categories, in the order they ran."""
    return list(dict.fromkeys(_part(exp, "long")[0]["category"]))


def _covering(categories: list[str], every: Iterable[str]) -> tuple[bool, str]:
    """Whether ``categories`` are every one of ``every`` (more than one), and how to name
    them: 'all 6 categories' if so, else their listing."""
    covered = len(categories) > 1 and set(categories) == set(every)
    return covered, f"all {len(categories)} categories" if covered else listing(categories)


def longer_training(exp: Experiment, long_epochs: int, book_epochs: int) -> str:
    """'On grass, coins and horse, runs of 480 epochs give the verdict of the book's
    240-epoch runs for all 5 claim pairs.' (or name those they change; 'On all 6 categories'
    where the long runs cover every category of the book's runs); '' where the study has no
    such pairs."""
    compared, changed = verdict_changes(exp)
    if not compared:
        return ""
    _, on = _covering(long_categories(exp),  # against the book's runs' categories
                      set(_part(exp, "book")[0]["category"]))
    where = f"On {on}, runs of {long_epochs} epochs"
    if not changed:
        pairs = {1: "its one claim pair", 2: "both claim pairs"}.get(
            compared, f"all {compared} claim pairs")
        return f"{where} give the verdict of the book's {book_epochs}-epoch runs for {pairs}."
    return (f"{where} change the verdict of the book's {book_epochs}-epoch runs for "
            f"{len(changed)} of {compared} claim pairs: {'; '.join(changed)}.")


def at_plateau(study: Experiment | None, page: Experiment | None) -> str:
    """A Table 4 page's line on its claim trained longer: each claim pair of the page's
    experiment on the convergence ``study``'s long runs (interval, verdict), beside the
    page's own verdict where the long runs cover the page's categories, else beside the
    book's runs of the long runs' categories; '' where the study did not decide the claim."""
    found = rule(study) if study is not None and page is not None else {}
    pairs = [(c, shorter) for experiment, c, shorter in (_beside_book(study) if found else ())
             if experiment.name == page.name and c.claim]
    if not pairs:
        return ""
    covered, on = _covering(long_categories(study), page.record.categories or [])
    own = {(c.a, c.b): c for c in comparisons_of(page, "pixel_auroc")} if covered else {}
    labels = catalog.get(page.name).labels
    said = []
    for c, shorter in pairs:
        beside = own.get((c.a, c.b))
        if beside is not None:
            here = (" (the same here)" if beside.verdict == c.verdict
                    else f" (here: {beside.verdict})")
        elif shorter is not None:
            here = f" (the book's runs of those categories: {shorter.verdict})"
        else:
            here = ""
        said.append(f"{labels[c.a]} − {labels[c.b]} {interval(c.difference, c.low, c.high)} "
                    f"points, {c.verdict}{here}")
    epochs = page.record.config.get("epochs")
    than = f", against this page's {epochs}" if epochs else ""
    rule_says = (f"; the rule asks for {found['epochs']}" +
                 ("" if found["enough"] else ", which these runs are too short to confirm"))
    return (f"**At {found['long_epochs']} epochs.** Runs of {found['long_epochs']} "
            f"epochs{than}, on {on} ({{doc}}`convergence <convergence>`{rule_says}), give: "
            f"{'; '.join(said)}.")


def near_the_edge(study: Experiment | None, page: Experiment | None) -> str:
    """A Table 4 page's caveat where seeds could change a verdict: each separated claim
    pair of the page (of the pairs the ``study``'s seed check trains) whose interval ends
    within two seed SDs of 0. The seed SD of the pair's category mean is estimated from the
    seed check's per-category SDs (their root mean square over the root of the page's
    number of categories: the categories' seed noise taken as independent); '' where there
    is none."""
    rows = (study.table("seed_check") or []) if study is not None and page is not None else []
    categories = len(page.record.categories or []) if page is not None else 0
    if not rows or not categories:
        return ""
    sd = math.sqrt(sum(r["difference_sd"] ** 2 for r in rows) / len(rows) / categories)
    labels, seeded = catalog.get(page.name).labels, _seed_pair(rows)
    said = []
    for c in comparisons_of(page, "pixel_auroc"):
        edge = min(abs(c.low), abs(c.high))
        if [c.a, c.b] == seeded and c.low * c.high > 0 and edge < 2 * sd:
            said.append(f"{labels[c.a]} − {labels[c.b]} ({c.verdict}) ends {edge:.2f} points "
                        f"from 0, within two seed SDs of 0 (the SD of its mean over "
                        f"{plural(categories, 'category', 'categories')} is about {sd:.2f} "
                        f"points, estimated from the "
                        f"per-category SDs of the {{doc}}`seed check <convergence>`)")
    if not said:
        return ""
    return (f"**Near the edge.** {'; '.join(said)}: with another seed its interval could "
            f"contain 0, and the pair would read not separated.")


def claims_statement(exp: Experiment, book_epochs: int) -> str:
    """The page's first finding: whether training twice as long changes a claim's verdict
    on the long runs' categories."""
    found = rule(exp)
    said = longer_training(exp, found["long_epochs"], book_epochs) if found else ""
    if not said:
        return ""
    _, changed = verdict_changes(exp)
    head = ("**Training longer changes no verdict here.**" if not changed else
            "**Training longer changes verdicts here.**")
    return f"{head} {said} The table under *The claims at the plateau* gives both."

