"""Demo linked records: consented demo children get synthetic records of
several sources (attendance by month, allowances, assistance, lunch-fee
arrears, health checks), stored as an import batch like real ones."""

from __future__ import annotations

from datetime import date

from dateutil.relativedelta import relativedelta
from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from backoffice.linkage.catalogue import load as load_catalogue
from backoffice.linkage.models import ImportBatch, LinkedRecord

PURPOSE = "data_linkage"


def load(session: Session, ctx) -> None:
    from consent.gate import consented_child_ids

    consented = set(session.scalars(consented_child_ids(PURPOSE)))
    children = [c for c in ctx.children if c.id in consented]
    if not children:
        return
    rng = ctx.rng
    cat = load_catalogue()
    months = [date(2026, 4, 1) + relativedelta(months=i) for i in range(6)]
    rows: dict[str, list[tuple[date | None, dict]]] = {}
    per_child: list[tuple[int, str, date | None, dict]] = []
    for child in children:
        heavy = rng.random() < 0.12  # a few children whose records show a pattern
        for m in months:
            absent = rng.choice([0, 0, 0, 1, 2]) + (rng.randint(3, 8) if heavy and m.month >= 6 else 0)
            per_child.append((child.id, "attendance", m, {
                "month": m.isoformat(), "school_days": 20, "days_absent": absent, "days_late": rng.randint(0, 2),
                "days_left_early": rng.randint(0, 1), "nurse_visits": rng.randint(0, 4 if heavy else 1)}))
        checked = date(2026, 5, rng.randint(7, 28))
        per_child.append((child.id, "health", checked, {
            "checked_on": checked.isoformat(), "height_cm": round(rng.uniform(110, 160), 1),
            "weight_kg": round(rng.uniform(19, 50), 1), "untreated_caries": rng.choice([0, 0, 0, 1, 3]),
            "check_status": "未受診" if heavy and rng.random() < 0.5 else "受診"}))
        if rng.random() < 0.7:
            d = date(2025, 6, 1)
            per_child.append((child.id, "jidou_teate", d, {"payment_status": "支給中", "certified_on": d.isoformat()}))
        if heavy or rng.random() < 0.08:
            d = date(2026, 4, 1)
            per_child.append((child.id, "shugaku_enjo", d, {"assistance_class": rng.choice(["要保護", "準要保護"]),
                                                            "certified_on": d.isoformat()}))
        if heavy and rng.random() < 0.5:
            d = date(2026, 8, 31)
            per_child.append((child.id, "kyushoku", d, {"months_in_arrears": rng.randint(2, 5),
                                                        "amount_in_arrears": rng.randint(2, 5) * 4800,
                                                        "reference_date": d.isoformat()}))
        if heavy and rng.random() < 0.4:
            d = date(2025, 10, 1)
            per_child.append((child.id, "jidou_fuyou", d, {"payment_class": "全部支給", "certified_on": d.isoformat()}))
        if heavy and rng.random() < 0.2:
            d = date(2026, 1, 15)
            per_child.append((child.id, "seikatsu_hogo", d, {"started_on": d.isoformat()}))
    for cid, source, d, data in per_child:
        rows.setdefault(source, []).append((cid, d, data))
    for source, items in rows.items():
        spec = cat.source(source)
        batch = ImportBatch(source=source, filename=f"demo-{source}.csv", file_sha256=f"demo-{source}".ljust(64, "0"),
                            file_format="csv", encoding="utf-8", actor_kind="system",
                            counts={"rows_read": len(items), "linked": {"student_no": len(items)}, "review": 0,
                                    "dropped": {}, "format": "csv", "encoding": "utf-8"})
        session.add(batch)
        session.flush()
        session.execute(insert(LinkedRecord), [
            {"batch_id": batch.id, "source": source, "source_row": i + 1, "row_key": f"demo-{source}-{i}",
             "child_id": cid, "method": "student_no", "score": 1.0, "status": "linked", "record_date": d,
             "expires_on": (d or date(2026, 4, 1)) + relativedelta(months=spec.retention_months), "data": data}
            for i, (cid, d, data) in enumerate(items)
        ])
    session.flush()
    assert session.scalar(select(LinkedRecord.id).limit(1)) is not None
