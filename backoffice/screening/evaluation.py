"""Evaluation (判定結果の検証): how the rules and the model do, in aggregates only.

Per rule (and for flags raised by hand): children flagged, decisions,
confirmed share (precision at review), confirmed children newly found (no
earlier flag of any other reason), override rate, median days from flag to
decision. Small cells (under :data:`MIN_CELL`) are suppressed for analysts,
who see pseudonymised aggregates only; nothing here carries a child id.
"""

from __future__ import annotations

from statistics import median

from sqlalchemy import select
from sqlalchemy.orm import Session

from backoffice.screening.models import Flag, FlagSource, Outcome, Resolution

MIN_CELL = 5


def rule_stats(session: Session, *, suppress: bool = False) -> list[dict]:
    rows = session.execute(
        select(Flag.child_id, Flag.source, Flag.rule_code, Flag.created_at, Flag.resolved_at, Flag.resolution, Flag.outcome)
        .order_by(Flag.created_at, Flag.id)
    ).all()
    first_flag: dict[int, tuple] = {}
    for r in rows:
        first_flag.setdefault(r.child_id, (r.created_at, r.rule_code or r.source))
    by: dict[str, dict] = {}
    for r in rows:
        key = r.rule_code if r.source == FlagSource.rule else str(r.source)
        s = by.setdefault(key, {"rule": key, "source": str(r.source), "children": set(), "decided": 0,
                                 "confirmed": 0, "not_needed": 0, "new": set(), "days": []})
        s["children"].add(r.child_id)
        if r.resolution == Resolution.school_decided and r.outcome is not None:
            s["decided"] += 1
            s["days"].append((r.resolved_at - r.created_at).total_seconds() / 86400)
            if r.outcome == Outcome.confirmed:
                s["confirmed"] += 1
                if first_flag[r.child_id][1] == (r.rule_code or r.source):
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
            "decided": decided,
            "confirmed_share": round(s["confirmed"] / decided, 3) if decided else None,
            "newly_found": len(s["new"]),
            "override_rate": round(s["not_needed"] / decided, 3) if decided else None,
            "median_days_to_decision": round(median(s["days"]), 1) if s["days"] else None,
        }
        if suppress and row["flagged"] < MIN_CELL:
            row.update({"flagged": None, "decided": None, "confirmed_share": None, "newly_found": None,
                        "override_rate": None, "median_days_to_decision": None, "suppressed": True})
        elif suppress and row["newly_found"] < MIN_CELL:
            row["newly_found"] = None
        out.append(row)
    return out


def report_rows(stats: list[dict], card: dict | None) -> tuple[list[str], list[list]]:
    """The exported report as one table: rule rows, then model-card metrics."""
    header = ["section", "name", "flagged", "decided", "confirmed_share", "newly_found", "override_rate",
              "median_days_to_decision", "value", "low", "high"]
    rows: list[list] = []
    for s in stats:
        rows.append(["rule", s["rule"], s["flagged"], s["decided"], s["confirmed_share"], s["newly_found"],
                     s["override_rate"], s["median_days_to_decision"], None, None, None])
    if card:
        for name in ("auc", "auc_rules", "auc_school", "precision_at_k", "precision_at_k_rules",
                     "precision_at_k_school", "brier"):
            low = card.get("auc_low") if name == "auc" else None
            high = card.get("auc_high") if name == "auc" else None
            rows.append(["model", name, None, None, None, None, None, None, card.get(name), low, high])
        for dim in ("by_sex", "by_grade", "by_school"):
            for g in card.get(dim, []):
                rows.append([f"model_{dim}", g["group"], g["n"], None, g["confirmed"], None, None, None,
                             g["auc"], g["auc_low"], g["auc_high"]])
    return header, rows
