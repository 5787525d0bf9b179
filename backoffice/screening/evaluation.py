"""Evaluation (判定結果の検証): how the rules and the model do, in aggregates only.

Per rule (and for flags raised by hand): children flagged, flags raised, decisions,
confirmed share (precision at review), confirmed children newly found (no
earlier flag of any other reason), override rate, median days from flag to
decision. Small cells (under :data:`MIN_CELL`) are suppressed for analysts
by :mod:`portal.suppression`, the one rule for every analyst output, who
see pseudonymised aggregates only; nothing here carries a child id.
"""

from __future__ import annotations

from statistics import median

from sqlalchemy import select
from sqlalchemy.orm import Session

from backoffice.screening import reads
from backoffice.screening.models import Flag, FlagSource, Outcome, Resolution
from portal import suppression as small

MIN_CELL = small.MIN_CELL


def rule_stats(session: Session, *, suppress: bool = False) -> list[dict]:
    rows = session.execute(
        select(Flag.child_id, Flag.source, Flag.rule_code, Flag.created_at, Flag.resolved_at, Flag.resolution, Flag.outcome)
        .where(reads.shown_clause())  # a rule flag of a child outside the consent gate is not counted
        .order_by(Flag.created_at, Flag.id)
    ).all()
    def key_of(r) -> str:
        return r.rule_code if r.source == FlagSource.rule else str(r.source)

    first_reason: dict[int, str] = {}  # the reason that flagged each child first
    for r in rows:
        first_reason.setdefault(r.child_id, key_of(r))
    by: dict[str, dict] = {}
    for r in rows:
        key = key_of(r)
        s = by.setdefault(key, {"rule": key, "source": str(r.source), "children": set(), "flags": 0, "decided": 0,
                                 "confirmed": 0, "not_needed": 0, "new": set(), "days": []})
        s["children"].add(r.child_id)
        s["flags"] += 1
        if r.resolution == Resolution.school_decided and r.outcome is not None:
            s["decided"] += 1
            s["days"].append((r.resolved_at - r.created_at).total_seconds() / 86400)
            if r.outcome == Outcome.confirmed:
                s["confirmed"] += 1
                if first_reason[r.child_id] == key:
                    s["new"].add(r.child_id)
            else:
                s["not_needed"] += 1
    out = []
    for key in sorted(by):
        s = by[key]
        decided = s["decided"]
        row = {
            "rule": key,
            "source": s["source"],
            "flagged": len(s["children"]),
            "flags": s["flags"],
            "decided": decided,
            "confirmed_share": round(s["confirmed"] / decided, 3) if decided else None,
            "newly_found": len(s["new"]),
            "override_rate": round(s["not_needed"] / decided, 3) if decided else None,
            "median_days_to_decision": round(median(s["days"]), 1) if s["days"] else None,
        }
        if suppress:
            row = _suppress_rule_row(row, s["confirmed"], s["not_needed"])
        out.append(row)
    return out


def _suppress_rule_row(row: dict, confirmed: int, not_needed: int) -> dict:
    """A rule's row as analysts see it (portal.suppression): a reason that flagged fewer
    than MIN_CELL children is hidden whole; otherwise every small count, every share
    that gives back a small count, and the median of fewer than MIN_CELL decisions."""
    if small.is_small(row["flagged"]):
        return {**row, **dict.fromkeys(_RULE_FIGURES), "suppressed": True}
    decided = row["decided"]
    shares_hidden = small.is_small(decided) or small.is_small(confirmed) or small.is_small(not_needed)
    return {
        **row,
        "flags": small.count(row["flags"]),
        "decided": small.count(decided),
        "newly_found": small.count(row["newly_found"]),
        "confirmed_share": None if shares_hidden else row["confirmed_share"],
        "override_rate": None if shares_hidden else row["override_rate"],
        "median_days_to_decision": None if small.is_small(decided) else row["median_days_to_decision"],
    }


_RULE_FIGURES = ("flagged", "flags", "decided", "confirmed_share", "newly_found", "override_rate",
                 "median_days_to_decision")


def suppress_card(card: dict | None) -> dict | None:
    """The model card as analysts see it (portal.suppression): small counts hidden, and so is
    every share, calibration bin and group that would give one back, with complementary
    suppression where the held-out total would reveal a hidden row."""
    import copy

    if not card:
        return card
    out = copy.deepcopy(card)
    data = out.get("data") or {}
    if data:
        # decisions = confirmed + not_needed = train + held_out: hide both sides of a small split.
        if small.is_small(data.get("confirmed")) or small.is_small(data.get("not_needed")):
            data["confirmed"] = data["not_needed"] = None
        if small.is_small(data.get("train")) or small.is_small(data.get("held_out")):
            data["train"] = data["held_out"] = None
        data["decisions"] = small.count(data.get("decisions"))
    held_out = (card.get("data") or {}).get("held_out")
    k = out.get("k")
    for name in ("precision_at_k", "precision_at_k_rules", "precision_at_k_school"):
        if name in out:
            out[name] = small.share(out[name], k)
    bins = small.partition(out.get("calibration", []), total_shown=held_out is not None)
    for b in bins:
        if not b.get("suppressed"):
            b["observed"] = small.share(b["observed"], b["n"])
    out["calibration"] = bins
    for dim in ("by_sex", "by_grade", "by_school"):
        groups = small.partition(out.get(dim, []), total_shown=held_out is not None)
        fair = (out.get("fairness") or {}).get(dim) or {}
        by_group = fair.get("by_group") or {}
        for g in groups:
            if g.get("suppressed"):
                by_group.pop(g["group"], None)
                continue
            n = g["n"]
            positives = round((g.get("confirmed") or 0) * n)
            g["confirmed"] = small.share(g.get("confirmed"), n)
            top = max(1, round(n * 0.2))
            if small.share(g.get("precision_at_k"), top) is None:
                g["precision_at_k"] = g["precision_at_k_low"] = g["precision_at_k_high"] = None
            fg = by_group.get(g["group"])
            if fg:
                at_top = round((fg.get("selection_rate") or 0) * n)
                fg["selection_rate"] = small.share(fg.get("selection_rate"), n)
                fg["recall"] = small.share(fg.get("recall"), positives)
                fg["precision"] = small.share(fg.get("precision"), at_top)
        if fair.get("difference"):  # the largest gap, over the groups still shown
            for m in list(fair["difference"]):
                vals = [fg[m] for fg in by_group.values() if fg.get(m) is not None]
                fair["difference"][m] = round(max(vals) - min(vals), 3) if len(vals) >= 2 else None
        out[dim] = groups
    return out


def report_rows(stats: list[dict], card: dict | None) -> tuple[list[str], list[list]]:
    """The exported report as one table: rule rows, then model-card metrics."""
    header = ["section", "name", "flagged", "flags", "decided", "confirmed_share", "newly_found", "override_rate",
              "median_days_to_decision", "value", "low", "high"]
    rows: list[list] = []
    for s in stats:
        rows.append(["rule", s["rule"], s["flagged"], s["flags"], s["decided"], s["confirmed_share"], s["newly_found"],
                     s["override_rate"], s["median_days_to_decision"], None, None, None])
    if card:
        for name in ("auc", "auc_rules", "auc_school", "precision_at_k", "precision_at_k_rules",
                     "precision_at_k_school", "brier"):
            low = card.get("auc_low") if name == "auc" else None
            high = card.get("auc_high") if name == "auc" else None
            rows.append(["model", name, None, None, None, None, None, None, None, card.get(name), low, high])
        for b in card.get("calibration", []):
            rows.append(["model_calibration", f"{b['from']:.1f}-{b['to']:.1f}", b["n"], None, None, b["observed"],
                         None, None, None, b["predicted"], None, None])
        for dim in ("by_sex", "by_grade", "by_school"):
            fair = (card.get("fairness") or {}).get(dim, {})
            for g in card.get(dim, []):
                rows.append([f"model_{dim}_auc", g["group"], g["n"], None, None, g["confirmed"], None, None, None,
                             g["auc"], g["auc_low"], g["auc_high"]])
                rows.append([f"model_{dim}_precision_at_k", g["group"], g["n"], None, None, g["confirmed"], None, None,
                             None, g.get("precision_at_k"), g.get("precision_at_k_low"), g.get("precision_at_k_high")])
                for metric, value in (fair.get("by_group") or {}).get(g["group"], {}).items():
                    rows.append([f"model_{dim}_{metric}_at_top_k", g["group"], g["n"], None, None, None, None, None,
                                 None, value, None, None])
            for metric, value in (fair.get("difference") or {}).items():
                rows.append([f"model_{dim}_{metric}_difference", "", None, None, None, None, None, None, None, value,
                             None, None])
    return header, rows
