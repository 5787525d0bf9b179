"""Indicators: what screening knows about each child, each with a readable definition.

Every indicator is computed for *all* consented children at once, set-based
in SQL (one grouped query per source, never a query per child), through the
consent gate: administrative records need ``data_linkage``, check-in signals
need ``wellbeing_survey``. :func:`compute` returns a columnar
:class:`IndicatorTable` (numpy arrays), which the rules and the model read.

Types: ``bool`` (a fact that holds or not), ``count`` (a whole number of
days, visits, months…), ``rate`` (a share, 0–1, written as a percentage).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

import numpy as np
from flask_babel import lazy_gettext as _l
from sqlalchemy import Float, and_, case, cast, func, or_, select
from sqlalchemy.orm import Session

LINKAGE = "data_linkage"
SURVEYS = "wellbeing_survey"


@dataclass(frozen=True)
class Indicator:
    code: str
    type: str  # bool | count | rate
    purpose: str  # the consent purpose it needs
    group: str  # attendance | health | family | wellbeing
    label: object  # lazy string: a short name
    definition: object  # lazy string: what it is, for a teacher
    fact: object  # lazy string with {value}: the fact in plain words
    background: bool = False  # a family-circumstance factor (not an event)


INDICATORS: dict[str, Indicator] = {
    i.code: i
    for i in [
        Indicator(
            "absence_days_3m", "count", LINKAGE, "attendance",
            _l("Days absent (3 months)"),
            _l("Days absent in the last three months of attendance records."),
            _l("absent {value} days in the last 3 months"),
        ),
        Indicator(
            "absence_rate_3m", "rate", LINKAGE, "attendance",
            _l("Absence rate (3 months)"),
            _l("Days absent divided by school days in the last three months of attendance records."),
            _l("absent on {value} of school days in the last 3 months"),
        ),
        Indicator(
            "absence_days_year", "count", LINKAGE, "attendance",
            _l("Days absent this school year"),
            _l("Days absent since 1 April of this school year."),
            _l("absent {value} days this school year"),
        ),
        Indicator(
            "absence_30_days", "bool", LINKAGE, "attendance",
            _l("30 or more days absent this year"),
            _l("Absent 30 days or more this school year: the official threshold for long-term absence (不登校)."),
            _l("30 or more days absent this school year"),
        ),
        Indicator(
            "absence_rising", "bool", LINKAGE, "attendance",
            _l("Absence rising"),
            _l("The absence rate of the last three months is at least 5 points above the three months before."),
            _l("absence is rising compared with the three months before"),
        ),
        Indicator(
            "late_days_3m", "count", LINKAGE, "attendance",
            _l("Days late (3 months)"),
            _l("Days the child arrived late in the last three months."),
            _l("late {value} days in the last 3 months"),
        ),
        Indicator(
            "nurse_visits_3m", "count", LINKAGE, "attendance",
            _l("Nurse's office visits (3 months)"),
            _l("Visits to the nurse's office in the last three months."),
            _l("visited the nurse's office {value} times in the last 3 months"),
        ),
        Indicator(
            "health_check_missed", "bool", LINKAGE, "health",
            _l("Health check not taken"),
            _l("The latest school health check of the last 12 months was not taken."),
            _l("the school health check was not taken"),
        ),
        Indicator(
            "untreated_caries", "count", LINKAGE, "health",
            _l("Untreated caries"),
            _l("Teeth with untreated caries at the latest health check of the last 12 months."),
            _l("{value} teeth with untreated caries"),
        ),
        Indicator(
            "lunch_arrears_months", "count", LINKAGE, "family",
            _l("Lunch-fee arrears (months)"),
            _l("Months of school-lunch fees unpaid, from the latest record of the last 13 months."),
            _l("lunch fees unpaid for {value} months"),
            background=True,
        ),
        Indicator(
            "school_cost_assistance", "bool", LINKAGE, "family",
            _l("School-cost assistance"),
            _l("The family receives school-cost assistance (就学援助)."),
            _l("the family receives school-cost assistance"),
            background=True,
        ),
        Indicator(
            "public_assistance", "bool", LINKAGE, "family",
            _l("Public assistance"),
            _l("The household receives public assistance (生活保護) and it has not ended."),
            _l("the household receives public assistance"),
            background=True,
        ),
        Indicator(
            "single_parent_allowance", "bool", LINKAGE, "family",
            _l("Single-parent allowance"),
            _l("The family receives the single-parent allowance (児童扶養手当), fully or partly."),
            _l("the family receives the single-parent allowance"),
            background=True,
        ),
        Indicator(
            "low_mood", "bool", SURVEYS, "wellbeing",
            _l("Low mood on check-ins"),
            _l("Low mood on 3 of the last 5 check-ins, noticed in the last 30 days."),
            _l("low mood on 3 of the last 5 check-ins"),
        ),
        Indicator(
            "who5_low", "bool", SURVEYS, "wellbeing",
            _l("WHO-5 at or below 50"),
            _l("A WHO-5 wellbeing score of 50 or less in the last 60 days."),
            _l("a WHO-5 wellbeing score of 50 or less"),
        ),
        Indicator(
            "family_worries", "bool", SURVEYS, "wellbeing",
            _l("Family questionnaire worries"),
            _l("The family questionnaire of the last 90 days reports worries."),
            _l("the family questionnaire reports worries"),
        ),
        Indicator(
            "help_request", "bool", SURVEYS, "wellbeing",
            _l("Asked for help"),
            _l("The child asked to talk to someone on a check-in in the last 30 days."),
            _l("asked to talk to someone on a check-in"),
        ),
    ]
}

CODES: tuple[str, ...] = tuple(INDICATORS)
BACKGROUND: tuple[str, ...] = tuple(c for c, i in INDICATORS.items() if i.background)


def format_value(ind: Indicator, value) -> str:
    if ind.type == "rate":
        return f"{float(value) * 100:.0f}%"
    if ind.type == "count":
        return str(int(round(float(value))))
    return ""


@dataclass
class IndicatorTable:
    """Indicators of many children, column by column (``child_ids`` gives the rows)."""

    child_ids: np.ndarray
    columns: dict[str, np.ndarray] = field(default_factory=dict)
    # which children each purpose covers (a withdrawn purpose leaves its columns at 0)
    covered: dict[str, np.ndarray] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.child_ids)

    def row(self, i: int) -> dict[str, float]:
        return {c: _plain(self.columns[c][i], INDICATORS[c].type) for c in CODES}

    def index_of(self) -> dict[int, int]:
        return {int(c): i for i, c in enumerate(self.child_ids)}

    def matrix(self, codes=CODES) -> np.ndarray:
        return np.column_stack([self.columns[c].astype(float) for c in codes]) if len(self) else np.zeros((0, len(codes)))


def _plain(v, kind: str):
    if kind == "bool":
        return bool(v)
    if kind == "count":
        return int(v)
    return round(float(v), 4)


def _month_start(d: date, back: int) -> date:
    y, m = d.year, d.month - back
    while m <= 0:
        m += 12
        y -= 1
    return date(y, m, 1)


def school_year_start(d: date) -> date:
    return date(d.year if d.month >= 4 else d.year - 1, 4, 1)


def _utc(d: date) -> datetime:
    return datetime.combine(d, time(0), tzinfo=UTC)


def compute(session: Session, as_of: date | None = None, child_ids=None) -> IndicatorTable:
    """Every indicator for every consented child (or the consented ones among ``child_ids``).

    ``child_ids`` may be a list or a SELECT; the consent gate always applies.
    """
    from backoffice.linkage.models import LinkedRecord as R
    from consent.gate import consented_child_ids

    as_of = as_of or date.today()

    def gate(purpose: str):
        """The consent gate for a purpose, narrowed to ``child_ids`` when given."""
        if child_ids is None:
            return consented_child_ids(purpose)
        if isinstance(child_ids, list | tuple | set | frozenset):
            return consented_child_ids(purpose, only_child_ids=[int(c) for c in child_ids])
        q = consented_child_ids(purpose)
        return q.where(q.selected_columns[0].in_(child_ids))

    linked_ids = list(session.scalars(gate(LINKAGE)))
    survey_ids = list(session.scalars(gate(SURVEYS)))
    everyone = np.array(sorted(set(linked_ids) | set(survey_ids)), dtype=np.int64)
    table = IndicatorTable(child_ids=everyone)
    n = len(everyone)
    for code, ind in INDICATORS.items():
        table.columns[code] = np.zeros(n, dtype=bool if ind.type == "bool" else float)
    pos = {int(c): i for i, c in enumerate(everyone)}
    table.covered[LINKAGE] = np.isin(everyone, np.array(linked_ids, dtype=np.int64))
    table.covered[SURVEYS] = np.isin(everyone, np.array(survey_ids, dtype=np.int64))
    if n == 0:
        return table

    gate_l = gate(LINKAGE).subquery()
    in_linkage = R.child_id.in_(select(gate_l.c.child_id))
    linked = and_(R.status == "linked", in_linkage)

    def put(code, child_id, value):
        if value is not None:
            table.columns[code][pos[child_id]] = value

    # -- attendance: one grouped query -----------------------------------
    last3 = _month_start(as_of, 2)  # this month and the two before
    prev3 = _month_start(as_of, 5)
    year0 = school_year_start(as_of)
    d = R.data
    days = cast(d["school_days"].as_float(), Float)
    absent = cast(d["days_absent"].as_float(), Float)
    late = cast(func.coalesce(d["days_late"].as_float(), 0), Float)
    nurse = cast(func.coalesce(d["nurse_visits"].as_float(), 0), Float)
    in_last3 = and_(R.record_date >= last3, R.record_date <= as_of)
    in_prev3 = and_(R.record_date >= prev3, R.record_date < last3)
    in_year = and_(R.record_date >= year0, R.record_date <= as_of)
    q = (
        select(
            R.child_id,
            func.sum(case((in_last3, absent), else_=0)),
            func.sum(case((in_last3, days), else_=0)),
            func.sum(case((in_prev3, absent), else_=0)),
            func.sum(case((in_prev3, days), else_=0)),
            func.sum(case((in_year, absent), else_=0)),
            func.sum(case((in_last3, late), else_=0)),
            func.sum(case((in_last3, nurse), else_=0)),
        )
        .where(linked, R.source == "attendance", R.record_date >= min(prev3, year0), R.record_date <= as_of)
        .group_by(R.child_id)
    )
    for cid, a3, s3, ap, sp, ay, l3, n3 in session.execute(q):
        a3, s3, ap, sp, ay = (float(x or 0) for x in (a3, s3, ap, sp, ay))
        rate3 = a3 / s3 if s3 else 0.0
        ratep = ap / sp if sp else 0.0
        put("absence_days_3m", cid, a3)
        put("absence_rate_3m", cid, rate3)
        put("absence_days_year", cid, ay)
        put("absence_30_days", cid, ay >= 30)
        put("absence_rising", cid, bool(sp) and bool(s3) and rate3 - ratep >= 0.05)
        put("late_days_3m", cid, float(l3 or 0))
        put("nurse_visits_3m", cid, float(n3 or 0))

    # -- latest record per child of a source (health, lunch fees) ---------
    def latest(source: str, since: date):
        ranked = (
            select(
                R.child_id.label("child_id"),
                R.data.label("data"),
                func.row_number()
                .over(partition_by=R.child_id, order_by=(R.record_date.desc(), R.id.desc()))
                .label("rn"),
            )
            .where(linked, R.source == source, R.record_date >= since, R.record_date <= as_of)
            .subquery()
        )
        return ranked

    h = latest("health", as_of - timedelta(days=365))
    q = select(
        h.c.child_id,
        h.c.data["check_status"].as_string(),
        func.coalesce(h.c.data["untreated_caries"].as_float(), 0),
    ).where(h.c.rn == 1)
    for cid, status, caries in session.execute(q):
        put("health_check_missed", cid, status == "未受診")
        put("untreated_caries", cid, float(caries or 0))

    k = latest("kyushoku", as_of - timedelta(days=396))
    q = select(k.c.child_id, func.coalesce(k.c.data["months_in_arrears"].as_float(), 0)).where(k.c.rn == 1)
    for cid, months in session.execute(q):
        put("lunch_arrears_months", cid, float(months or 0))

    # -- assistance and allowances: one grouped query ---------------------
    ended = R.data["ended_on"].as_string()
    q = (
        select(
            R.child_id,
            func.max(case((R.source == "shugaku_enjo", 1), else_=0)),
            func.max(
                case(
                    (and_(R.source == "seikatsu_hogo", or_(ended.is_(None), ended == "", ended > as_of.isoformat())), 1),
                    else_=0,
                )
            ),
            func.max(
                case(
                    (and_(R.source == "jidou_fuyou", R.data["payment_class"].as_string().in_(["全部支給", "一部支給"])), 1),
                    else_=0,
                )
            ),
        )
        .where(linked, R.source.in_(["shugaku_enjo", "seikatsu_hogo", "jidou_fuyou"]), R.expires_on >= as_of)
        .group_by(R.child_id)
    )
    for cid, enjo, hogo, fuyou in session.execute(q):
        put("school_cost_assistance", cid, bool(enjo))
        put("public_assistance", cid, bool(hogo))
        put("single_parent_allowance", cid, bool(fuyou))

    # -- check-in signals (wellbeing_survey) ------------------------------
    from surveys.models import SignalKind
    from surveys.models import SurveySignal as S

    gate_s = gate(SURVEYS).subquery()
    end = _utc(as_of + timedelta(days=1))
    windows = {
        "low_mood": (SignalKind.low_mood_streak, 30),
        "who5_low": (SignalKind.who5_poor, 60),
        "family_worries": (SignalKind.family_worries, 90),
        "help_request": (SignalKind.help_request, 30),
    }
    cols = [
        func.max(case((and_(S.kind == kind, S.observed_at >= _utc(as_of - timedelta(days=days))), 1), else_=0))
        for kind, days in windows.values()
    ]
    q = (
        select(S.child_id, *cols)
        .where(
            S.child_id.in_(select(gate_s.c.child_id)),
            S.kind.in_([k for k, _ in windows.values()]),
            S.observed_at >= _utc(as_of - timedelta(days=90)),
            S.observed_at < end,
        )
        .group_by(S.child_id)
    )
    for cid, *vals in session.execute(q):
        for code, v in zip(windows, vals, strict=True):
            put(code, cid, bool(v))
    return table
