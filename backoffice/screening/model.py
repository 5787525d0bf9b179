"""The optional model: it orders the queue and shows main factors; it never decides.

Trained on teacher decisions (a flag's ``outcome``; or a decision table given
to :func:`train`), with scikit-learn: a regularised logistic regression on
standardised indicators, calibrated (Platt / sigmoid, cross-validated). The
parameters are kept as JSON (means, scales, coefficients, calibration), so
nothing is unpickled and scoring 20,000 children is one matrix product.

It may be switched on only when, on held-out decisions, it beats both the
rules alone (the rule-set urgency as a score) and a school-level baseline
(each school's confirmed rate); :func:`enable` refuses otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from flask_babel import lazy_gettext as _l
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from backoffice.screening import reads
from backoffice.screening.indicators import CODES
from backoffice.screening.models import Flag, FlagStatus, Outcome, ScreeningModel
from portal import once
from portal.audit import service as audit
from portal.auth.principal import Principal
from portal.orm import utcnow

MIN_DECISIONS = 60
MIN_PER_CLASS = 10
TOP_FACTORS = 3
ALGORITHM = "logistic_regression_l2+sigmoid"


@dataclass
class Decision:
    """One teacher decision: the indicators when flagged and what the school decided."""

    features: dict  # indicator code -> value
    confirmed: bool
    rule_score: float = 0.0  # what the rules alone said (urgency)
    school_id: int | None = None
    sex: str | None = None
    grade: int | None = None


def enabled_model(session: Session) -> ScreeningModel | None:
    return session.scalar(select(ScreeningModel).where(ScreeningModel.enabled.is_(True)).limit(1))


def latest_model(session: Session) -> ScreeningModel | None:
    return session.scalar(select(ScreeningModel).order_by(ScreeningModel.id.desc()).limit(1))


def _matrix(rows: list[dict], codes=CODES) -> np.ndarray:
    return np.array([[float(r.get(c) or 0) for c in codes] for r in rows], dtype=float).reshape(len(rows), len(codes))


def _probabilities(params: dict, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(calibrated probability, per-feature contribution to the log-odds)."""
    mean = np.array(params["mean"])
    scale = np.array(params["scale"])
    coef = np.array(params["coef"])
    Z = (X - mean) / scale
    contrib = Z * coef
    decision = contrib.sum(axis=1) + params["intercept"]
    a, b = params["calib_a"], params["calib_b"]
    prob = 1.0 / (1.0 + np.exp(a * decision + b))
    return prob, contrib


def score_table(params: dict, table) -> tuple[np.ndarray, list[list[dict]]]:
    """Probabilities and main factors for every row of an indicator table."""
    codes = params["codes"]
    X = table.matrix(codes)
    prob, contrib = _probabilities(params, X)
    factors: list[list[dict]] = []
    order = np.argsort(-contrib, axis=1)[:, :TOP_FACTORS]
    for i in range(len(prob)):
        factors.append(
            [
                {"indicator": codes[j], "weight": round(float(contrib[i, j]), 3)}
                for j in order[i]
                if contrib[i, j] > 0.05
            ]
        )
    return prob, factors


# -- the decision table -----------------------------------------------------------


def decisions_from_flags(session: Session) -> list[Decision]:
    """Teacher decisions recorded on flags (the casework outcome), with group columns."""
    from portal.auth.access import current_year_id_subquery
    from portal.people.models import Child, Enrolment, SchoolClass

    cls = (
        select(Enrolment.child_id, SchoolClass.school_id, SchoolClass.grade)
        .join(SchoolClass, SchoolClass.id == Enrolment.class_id)
        .where(Enrolment.school_year_id == current_year_id_subquery())
        .subquery()
    )
    q = (
        select(Flag.features, Flag.outcome, Flag.urgency, Flag.source, cls.c.school_id, cls.c.grade, Child.sex)
        .join(Child, Child.id == Flag.child_id)
        .outerjoin(cls, cls.c.child_id == Flag.child_id)
        .where(Flag.status == FlagStatus.resolved, Flag.outcome.is_not(None), reads.evidence_clause())
    )
    return [
        Decision(
            features=f or {}, confirmed=o == Outcome.confirmed, rule_score=float(u if s == "rule" else 0),
            school_id=sc, grade=g, sex=sex,
        )
        for f, o, u, s, sc, g, sex in session.execute(q)
    ]


def _auc(y: np.ndarray, s: np.ndarray) -> float | None:
    """ROC AUC as the Mann-Whitney statistic (ties count half): fast enough to bootstrap."""
    from scipy.stats import rankdata

    pos = int(y.sum())
    neg = len(y) - pos
    if pos == 0 or neg == 0:
        return None
    ranks = rankdata(s)
    return float((ranks[y == 1].sum() - pos * (pos + 1) / 2) / (pos * neg))


def _precision_at_k(y: np.ndarray, s: np.ndarray, k: int) -> float | None:
    if len(y) == 0:
        return None
    k = max(1, min(k, len(y)))
    order = np.argsort(-s, kind="stable")[:k]
    return float(y[order].mean())


def _bootstrap(y, s, fn, n=200, seed=0) -> tuple[float | None, float | None]:
    rng = np.random.default_rng(seed)
    vals = []
    for _ in range(n):
        idx = rng.integers(0, len(y), len(y))
        v = fn(y[idx], s[idx])
        if v is not None:
            vals.append(v)
    if len(vals) < n // 2:
        return None, None
    return float(np.percentile(vals, 2.5)), float(np.percentile(vals, 97.5))


def _calibration(y: np.ndarray, p: np.ndarray, bins: int = 5) -> list[dict]:
    edges = np.linspace(0, 1, bins + 1)
    out = []
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        m = (p >= lo) & ((p < hi) if hi < 1 else (p <= hi))
        if m.sum():
            out.append({"from": round(lo, 2), "to": round(hi, 2), "n": int(m.sum()),
                        "predicted": round(float(p[m].mean()), 3), "observed": round(float(y[m].mean()), 3)})
    return out


def _wilson(hits: int, n: int) -> tuple[float | None, float | None]:
    """95 % Wilson interval of a proportion (precision at k has few decisions per group)."""
    from scipy.stats import binomtest

    if n == 0:
        return None, None
    ci = binomtest(int(hits), int(n)).proportion_ci(confidence_level=0.95, method="wilson")
    return float(ci.low), float(ci.high)


def _groups(y, p, labels, k_share: float) -> list[dict]:
    """The card's metrics for each group: AUC and precision at k with 95 % intervals, calibration in the large."""
    rows = []
    for value in sorted({v for v in labels if v is not None}, key=lambda v: (len(str(v)), str(v))):
        m = np.array([v == value for v in labels])
        yy, pp = y[m], p[m]
        k = max(1, int(round(len(yy) * k_share)))
        auc = _auc(yy, pp)
        lo, hi = _bootstrap(yy, pp, _auc) if auc is not None else (None, None)
        top = np.argsort(-pp, kind="stable")[:k]
        p_lo, p_hi = _wilson(int(yy[top].sum()), len(top))
        rows.append({
            "group": str(value), "n": int(m.sum()), "confirmed": round(float(yy.mean()), 3),
            "predicted": round(float(pp.mean()), 3),
            "auc": _r(auc), "auc_low": _r(lo), "auc_high": _r(hi),
            "precision_at_k": _r(_precision_at_k(yy, pp, k)), "precision_at_k_low": _r(p_lo),
            "precision_at_k_high": _r(p_hi),
        })
    return rows


def _share(num: np.ndarray, den: np.ndarray) -> float:
    den_n = int(den.sum())
    return float((num & den).sum() / den_n) if den_n else float("nan")


def _recall(y_true, y_pred) -> float:
    """Of the confirmed children, the share the model put in the top k (NaN for a group with none)."""
    y_true, y_pred = np.asarray(y_true, dtype=bool), np.asarray(y_pred, dtype=bool)
    return _share(y_pred, y_true)


def _precision(y_true, y_pred) -> float:
    """Of the children in the top k, the share confirmed (NaN for a group with none at the top)."""
    y_true, y_pred = np.asarray(y_true, dtype=bool), np.asarray(y_pred, dtype=bool)
    return _share(y_true, y_pred)


def _fairness(y: np.ndarray, p: np.ndarray, labels: list, k: int) -> dict:
    """Group disparities at the queue's cut (the top ``k`` of all held-out children), with fairlearn.

    ``selection_rate``: the share of a group the model puts at the top;
    ``recall``: of a group's confirmed children, the share at the top;
    ``precision``: of a group's children at the top, the share confirmed.
    ``difference`` is the largest gap between two groups (0 = equal).
    """
    from fairlearn.metrics import MetricFrame, selection_rate

    keep = np.array([v is not None for v in labels], dtype=bool)
    if keep.sum() == 0:
        return {"by_group": {}, "difference": {}}
    cut = np.zeros(len(y), dtype=int)
    cut[np.argsort(-p, kind="stable")[:k]] = 1
    mf = MetricFrame(
        metrics={"selection_rate": selection_rate, "recall": _recall, "precision": _precision},
        y_true=y[keep], y_pred=cut[keep],
        sensitive_features=np.array([str(v) for v, kk in zip(labels, keep, strict=True) if kk]),
    )
    by = {
        str(g): {m: (None if np.isnan(v) else round(float(v), 3)) for m, v in row.items()}
        for g, row in mf.by_group.to_dict(orient="index").items()
    }
    diff = {}
    for m in ("selection_rate", "recall", "precision"):
        vals = [row[m] for row in by.values() if row[m] is not None]
        diff[m] = round(max(vals) - min(vals), 3) if len(vals) >= 2 else None
    return {"by_group": by, "difference": diff}


def _r(v, n=3):
    return None if v is None else round(float(v), n)


def train(
    session: Session,
    actor: Principal,
    decisions: list[Decision] | None = None,
    *,
    seed: int = 0,
) -> ScreeningModel:
    """Train, calibrate and evaluate on held-out decisions; store the model (switched off)."""
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    from backoffice.screening.service import ScreeningError

    if actor.role not in ("data_steward", "system"):
        raise ScreeningError(_l("Your role may not do this."))
    decisions = decisions_from_flags(session) if decisions is None else decisions
    y = np.array([d.confirmed for d in decisions], dtype=int)
    n_pos, n_neg = int(y.sum()), int(len(y) - y.sum())
    if len(y) < MIN_DECISIONS or min(n_pos, n_neg) < MIN_PER_CLASS:
        raise ScreeningError(
            _l(
                "Too few teacher decisions to train a model: %(n)s decisions (%(pos)s confirmed, %(neg)s not needed). "
                "At least %(min)s are needed, with at least %(per)s of each kind."
            ),
            n=len(y), pos=n_pos, neg=n_neg, min=MIN_DECISIONS, per=MIN_PER_CLASS,
        )
    codes = list(CODES)
    X = _matrix([d.features for d in decisions], codes)
    idx = np.arange(len(y))
    tr, te = train_test_split(idx, test_size=0.3, random_state=seed, stratify=y)
    scaler = StandardScaler().fit(X[tr])
    clf = CalibratedClassifierCV(
        LogisticRegression(C=1.0, max_iter=1000), method="sigmoid", cv=3, ensemble=False
    ).fit(scaler.transform(X[tr]), y[tr])
    inner = clf.calibrated_classifiers_[0]
    lr, cal = inner.estimator, inner.calibrators[0]
    params = {
        "codes": codes,
        "mean": scaler.mean_.tolist(),
        "scale": scaler.scale_.tolist(),
        "coef": lr.coef_[0].tolist(),
        "intercept": float(lr.intercept_[0]),
        "calib_a": float(cal.a_),
        "calib_b": float(cal.b_),
    }
    p_te, _ = _probabilities(params, X[te])
    y_te = y[te]
    # baselines on the same held-out decisions
    rule_te = np.array([decisions[i].rule_score for i in te])
    school_rate: dict = {}
    for i in tr:
        school_rate.setdefault(decisions[i].school_id, []).append(y[i])
    overall = float(y[tr].mean())
    school_te = np.array([float(np.mean(school_rate.get(decisions[i].school_id, [overall]))) for i in te])
    # schools appear in the card under pseudonyms only (S1, S2 … in id order): analysts read it
    school_alias = {sid: f"S{n}" for n, sid in enumerate(sorted({d.school_id for d in decisions if d.school_id is not None}), 1)}
    k_share = 0.2
    k = max(1, int(round(len(te) * k_share)))
    auc_model, auc_rules, auc_school = _auc(y_te, p_te), _auc(y_te, rule_te), _auc(y_te, school_te)
    beats = auc_model is not None and all(auc_model > (b if b is not None else 0.5) for b in (auc_rules, auc_school))
    lo, hi = _bootstrap(y_te, p_te, _auc)
    from sklearn.metrics import brier_score_loss

    card = {
        "data": {"decisions": len(y), "confirmed": n_pos, "not_needed": n_neg, "train": len(tr), "held_out": len(te),
                 "features": codes},
        "auc": _r(auc_model), "auc_low": _r(lo), "auc_high": _r(hi),
        "auc_rules": _r(auc_rules), "auc_school": _r(auc_school),
        "k": k, "precision_at_k": _r(_precision_at_k(y_te, p_te, k)),
        "precision_at_k_rules": _r(_precision_at_k(y_te, rule_te, k)),
        "precision_at_k_school": _r(_precision_at_k(y_te, school_te, k)),
        "brier": _r(brier_score_loss(y_te, p_te)),
        "calibration": _calibration(y_te, p_te),
        "by_sex": _groups(y_te, p_te, [decisions[i].sex for i in te], k_share),
        "by_grade": _groups(y_te, p_te, [decisions[i].grade for i in te], k_share),
        "by_school": _groups(y_te, p_te, [school_alias.get(decisions[i].school_id) for i in te], k_share),
        "fairness": {
            dim: _fairness(y_te, p_te, labels, k)
            for dim, labels in (
                ("by_sex", [decisions[i].sex for i in te]),
                ("by_grade", [decisions[i].grade for i in te]),
                ("by_school", [school_alias.get(decisions[i].school_id) for i in te]),
            )
        },
        "weights": sorted(
            ({"indicator": c, "weight": _r(w)} for c, w in zip(codes, params["coef"], strict=True)),
            key=lambda r: -abs(r["weight"]),
        ),
    }
    m = ScreeningModel(
        algorithm=ALGORITHM, trained_at=utcnow(), trained_by_staff_id=actor.id if actor.is_staff else None,
        n_decisions=len(y), params=params, card=card, beats_baselines=bool(beats), enabled=False,
    )
    session.add(m)
    session.flush()
    audit.record(session, actor, "screening.model_trained",
                 detail={"model": m.id, "decisions": len(y), "auc": card["auc"], "beats_baselines": bool(beats)})
    return m


def switch(session: Session, actor: Principal, model_id: int, on: bool) -> ScreeningModel:
    """Switch a model on (only if it beat both baselines) or off; at most one is on."""
    from backoffice.screening.service import ScreeningError

    if actor.role not in ("data_steward", "system"):
        raise ScreeningError(_l("Your role may not do this."))
    m = session.get(ScreeningModel, model_id)
    if m is None:
        raise ScreeningError(_l("This model does not exist."))
    if on and not m.beats_baselines:
        raise ScreeningError(
            _l("This model does not beat both the rules alone and the school-level baseline on held-out decisions, so it stays off.")
        )
    now = utcnow()
    who = actor.id if actor.is_staff else None
    # Others off, then this one claimed in its expected state: of two switches at once one wins,
    # and a unique index keeps a second model from being on whatever the timing. (On the index's
    # refusal the transaction is spoiled: the caller rolls back, as on any refusal.)
    try:
        if on:
            session.execute(update(ScreeningModel).where(ScreeningModel.enabled.is_(True), ScreeningModel.id != m.id)
                            .values(enabled=False).execution_options(synchronize_session=False))
        won = once.claim(session, ScreeningModel, m.id, ScreeningModel.enabled.is_(not on),
                         enabled=on, switched_at=now, switched_by_staff_id=who)
    except IntegrityError:
        won = False
    if not won:
        raise ScreeningError(_l("The model was switched by someone else a moment ago. Nothing was changed: "
                                "reload the page to see which model is on."))
    session.expire_all()  # the models switched off, as they are now
    if not on:
        session.execute(update(Flag).where(Flag.status == FlagStatus.open).values(model_score=None, model_factors=None))
    session.flush()
    audit.record(session, actor, "screening.model_switched", detail={"model": m.id, "on": on})
    return m


def synthetic_decisions(n: int, seed: int = 0, signal: float = 1.0) -> list[Decision]:
    """A synthetic decision table (tests, demo, benchmark): outcomes depend on the indicators."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        f = {
            "absence_rate_3m": float(rng.beta(1.2, 10)),
            "absence_days_3m": float(rng.poisson(3)),
            "late_days_3m": float(rng.poisson(2)),
            "nurse_visits_3m": float(rng.poisson(1.5)),
            "low_mood": bool(rng.random() < 0.2),
            "who5_low": bool(rng.random() < 0.15),
            "single_parent_allowance": bool(rng.random() < 0.2),
            "public_assistance": bool(rng.random() < 0.05),
            "school_cost_assistance": bool(rng.random() < 0.15),
            "lunch_arrears_months": float(rng.poisson(0.3)),
            "help_request": bool(rng.random() < 0.05),
        }
        f["absence_30_days"] = f["absence_days_3m"] >= 8
        logit = (
            -1.2 + signal * (6 * f["absence_rate_3m"] + 1.2 * f["low_mood"] + 0.8 * f["who5_low"]
                             + 1.5 * f["help_request"] + 0.4 * f["lunch_arrears_months"] + 0.3 * f["nurse_visits_3m"])
        )
        confirmed = bool(rng.random() < 1 / (1 + np.exp(-logit)))
        out.append(Decision(
            features=f, confirmed=confirmed, rule_score=float(1 + f["absence_30_days"] + f["help_request"]),
            school_id=int(rng.integers(1, 4)), sex=str(rng.choice(["M", "F"])), grade=int(rng.integers(1, 10)),
        ))
    return out
