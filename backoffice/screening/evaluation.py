"""Evaluation (判定結果の検証): how the rules and the model do, in aggregates only.

Per rule (and for flags raised by hand): children flagged, flags raised, decisions,
confirmed share (precision at review), confirmed children newly found (no
earlier flag of any other reason), override rate, median days from flag to
decision. Small cells (under :data:`MIN_CELL`) are suppressed for analysts,
who see pseudonymised aggregates only; nothing here carries a child id.
"""

from __future__ import annotations

from statistics import median

from sqlalchemy import select
from sqlalchemy.orm import Session

from backoffice.screening import reads
from backoffice.screening.models import Flag, FlagSource, Outcome, Resolution

MIN_CELL = 5


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
        if suppress and row["flagged"] < MIN_CELL:
            row.update({"flagged": None, "flags": None, "decided": None, "confirmed_share": None, "newly_found": None,
                        "override_rate": None, "median_days_to_decision": None, "suppressed": True})
        elif suppress and row["newly_found"] < MIN_CELL:
            row["newly_found"] = None
        out.append(row)
    return out


def suppress_card(card: dict | None) -> dict | None:
    """The model card as analysts see it: groups of fewer than :data:`MIN_CELL` decisions hidden."""
    import copy

    if not card:
        return card
    out = copy.deepcopy(card)
    for dim in ("by_sex", "by_grade", "by_school"):
        small = set()
        for g in out.get(dim, []):
            if g["n"] < MIN_CELL:
                small.add(g["group"])
                for k in list(g):
                    if k != "group":
                        g[k] = None
                g["suppressed"] = True
        fair = (out.get("fairness") or {}).get(dim)
        if fair:
            for name in small:
                fair.get("by_group", {}).pop(name, None)
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
