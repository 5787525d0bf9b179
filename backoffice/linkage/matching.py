"""Matching administrative records to children (名寄せ): plain Python, no database.

1. **Numbers.** A 児童生徒番号 or 宛名番号 that names a child links only when
   the record's name and birth date agree with that child (a stale or
   mistyped number falls through to step 2). A record that carries only
   the number (no name, no birth date: the optional columns of attendance)
   links by it unless its school or grade names another placement.
2. **Fellegi-Sunter.** Candidates come from blocking (same birth date, same
   folded kanji name, same reading), so the cost grows with the number of
   records, not records × children. Each candidate pair is compared on
   kanji name, reading, birth date, sex and address, each at a few levels;
   the weight is the sum of log2(m/u). ``u`` is estimated from random
   record-child pairs of the file itself, ``m`` from the pairs the numbers
   link (or by EM over the candidate pairs when the file has no numbers).
3. **Thresholds.** Above ``link`` a record links; between ``review`` and
   ``link``, or when two children score alike (twins), it goes to the review
   queue; below it is dropped. A candidate whose given name disagrees in
   every script never links (siblings, twins).

The index holds the whole roster (the children master) so that a record
about a child without consent is recognised as such and dropped, never
linked to a consented sibling; only consented children are ever linked.
"""

from __future__ import annotations

import math
import random
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache

from rapidfuzz.distance import Levenshtein

from . import normalize as n

FIELDS = ("kanji", "reading", "dob", "sex", "address")
LEVELS = {"kanji": 4, "reading": 4, "dob": 3, "sex": 2, "address": 3}
AGREEMENT_NAMES = {"kanji": {3: "exact", 2: "close", 1: "partial", 0: "differs"},
                   "reading": {3: "exact", 2: "close", 1: "partial", 0: "differs"},
                   "dob": {2: "exact", 1: "close", 0: "differs"},
                   "sex": {1: "exact", 0: "differs"},
                   "address": {2: "exact", 1: "close", 0: "differs"}}

# Starting points (and the fallback when a file gives too little to learn from).
DEFAULT_M = {
    "kanji": [0.01, 0.02, 0.07, 0.90], "reading": [0.01, 0.02, 0.07, 0.90],
    "dob": [0.01, 0.03, 0.96], "sex": [0.02, 0.98], "address": [0.05, 0.10, 0.85],
}
DEFAULT_U = {
    "kanji": [0.97, 0.025, 0.004, 0.001], "reading": [0.96, 0.03, 0.008, 0.002],
    "dob": [0.995, 0.004, 0.001], "sex": [0.5, 0.5], "address": [0.96, 0.03, 0.01],
}

LINK_PROBABILITY = 0.999
REVIEW_PROBABILITY = 0.5
AMBIGUITY_BITS = 8.0  # best must beat the runner-up by this much to link alone
MAX_BLOCK = 300
RIVAL_BITS = 4.0  # another child beating a number's child by this much makes the number suspect


@dataclass(slots=True)
class Person:
    """The comparable form of a child or of a record."""

    kanji: str = ""
    family_kanji: str = ""
    given_kanji: str = ""
    reading: str = ""
    reading_swapped: str = ""
    family_reading: str = ""
    given_reading: str = ""
    dob: date | None = None
    sex: str | None = None
    address: str = ""
    student_no: str = ""
    atena_no: str = ""
    school: str = ""  # school code, grade and class: where the child is enrolled this year
    grade: int | None = None
    klass: str = ""
    dob_key: str = ""  # YYYYMMDD, for blocking and the one-digit-off comparison

    def __post_init__(self) -> None:
        if self.dob and not self.dob_key:
            self.dob_key = f"{self.dob.year:04d}{self.dob.month:02d}{self.dob.day:02d}"


def person(*, name: str | None = "", kana: str | None = "", birth_date: date | None = None,
           sex: str | None = None, address: str | None = "", student_no: str | None = "",
           atena_no: str | None = "", school: str | None = "", grade: int | None = None,
           klass: str | None = "") -> Person:
    """Normalise the identifying fields (``sex`` already a code or raw text)."""
    kanji = n.name_kanji(name)
    family_k, given_k = n.split_name(name) if kanji else ("", "")
    swapped = ""
    family_r = given_r = ""
    # (n.name_reading, with the cached kana forms: names repeat a lot)
    raw_reading = kana if kana and n.nfkc(kana) else (name if name and _kana_or_latin(name) else "")
    reading = _kana_key(raw_reading) if raw_reading else ""
    if raw_reading:
        fr, gr = n.split_name(raw_reading)
        if gr:
            family_r, given_r = _kana_key(fr), _kana_key(gr)
            swapped = given_r + family_r
    return Person(
        kanji=kanji,
        family_kanji=n.fold_variants(family_k) if given_k else "",
        given_kanji=n.fold_variants(given_k) if given_k else "",
        reading=reading,
        reading_swapped=swapped,
        family_reading=family_r,
        given_reading=given_r,
        dob=birth_date,
        sex=sex if sex in ("M", "F") else n.sex_code(sex),
        address=n.address(address),
        student_no=n.id_number(student_no),
        atena_no=n.id_number(atena_no),
        school=n.id_number(school),
        grade=grade,
        klass=n.nfkc(klass),
    )


_kana_key = lru_cache(maxsize=100_000)(n.kana_key)
_kana_or_latin = lru_cache(maxsize=100_000)(n.is_kana_or_latin)


# -- comparison -----------------------------------------------------------------


def _sim(a: str, b: str) -> float:
    return Levenshtein.normalized_similarity(a, b)


def _level4(a: str, b: str, close: float, partial: float) -> int | None:
    if not a or not b:
        return None
    if a == b:
        return 3
    s = _sim(a, b)
    return 2 if s >= close else 1 if s >= partial else 0


def _dob_level(rec: Person, child: Person) -> int | None:
    a, b = rec.dob, child.dob
    if a is None or b is None:
        return None
    if a == b:
        return 2
    if Levenshtein.distance(rec.dob_key, child.dob_key) <= 1 or (a.year == b.year and a.month == b.day and a.day == b.month):
        return 1
    return 0


def compare(rec: Person, child: Person) -> dict[str, int | None]:
    reading = _level4(rec.reading, child.reading, 0.8, 0.6)
    if rec.reading_swapped and reading is not None and reading < 3:
        alt = _level4(rec.reading_swapped, child.reading, 0.8, 0.6)
        reading = max(reading, alt or 0)
    return {
        "kanji": _level4(rec.kanji, child.kanji, 0.74, 0.5),
        "reading": reading,
        "dob": _dob_level(rec, child),
        "sex": None if not rec.sex or not child.sex else int(rec.sex == child.sex),
        "address": None if not rec.address or not child.address else (
            2 if rec.address == child.address else 1 if _sim(rec.address, child.address) >= 0.8 else 0),
    }


def placement_agrees(rec: Person, child: Person) -> bool:
    """The record names the school and grade (and class, when it has one)
    where the child is enrolled this year: a stale number, which names
    another child, almost never does."""
    return bool(rec.school and rec.grade and rec.school == child.school and rec.grade == child.grade
                and (not rec.klass or not child.klass or rec.klass == child.klass))


def given_name_agrees(rec: Person, child: Person) -> bool:
    """False for a sibling or twin of the child, not the child: the given
    name agrees exactly in no script, and clearly differs in at least one
    (花子/ハナコ against 桃子/モモコ shares 子, but not the reading).

    Each script the record has (kanji, reading) gives a similarity of the
    given names, or of the whole names when the record has no separator and
    the family name cannot be cut off."""
    checks: list[tuple[float, float]] = []  # (similarity, least similarity that agrees)
    if rec.kanji and child.kanji and child.family_kanji:
        given = rec.given_kanji or (rec.kanji[len(child.family_kanji):] if rec.kanji.startswith(child.family_kanji) else "")
        checks.append((_sim(given, child.given_kanji), 0.5) if given else (_sim(rec.kanji, child.kanji), 0.6))
    if rec.reading and child.reading and child.family_reading:
        r = rec.reading
        given = rec.given_reading or (r[len(child.family_reading):] if r.startswith(child.family_reading) else "")
        alt = rec.family_reading if rec.reading_swapped else ""  # "Hanako Takahashi"
        if given:
            sim = _sim(given, child.given_reading)
            if alt:
                sim = max(sim, _sim(alt, child.given_reading))
            checks.append((sim, 0.5))
        else:
            checks.append((_sim(r, child.reading), 0.6))
    if not checks:
        return True
    if any(sim >= 1.0 for sim, _ in checks):
        return True
    return all(sim >= least for sim, least in checks)


# -- parameters -----------------------------------------------------------------


@dataclass
class Parameters:
    m: dict[str, list[float]] = field(default_factory=lambda: {k: list(v) for k, v in DEFAULT_M.items()})
    u: dict[str, list[float]] = field(default_factory=lambda: {k: list(v) for k, v in DEFAULT_U.items()})
    prior_log2: float = -14.0
    m_from: str = "default"  # id_pairs | em | default
    pairs_used: int = 0

    def weights(self) -> dict[str, list[float]]:
        return {f: [math.log2(self.m[f][lv] / self.u[f][lv]) for lv in range(LEVELS[f])] for f in FIELDS}

    def as_dict(self) -> dict:
        return {"m": self.m, "u": self.u, "prior_log2": self.prior_log2, "m_from": self.m_from,
                "pairs_used": self.pairs_used}


def _frequencies(levels: Iterable[dict[str, int | None]], prior: dict[str, list[float]], strength: float) -> dict[str, list[float]]:
    """Level frequencies, shrunk towards ``prior`` by ``strength`` pseudo-pairs
    (so a small file falls back on sensible values rather than noise)."""
    counts = {f: [strength * p for p in prior[f]] for f in FIELDS}
    for lv in levels:
        for f in FIELDS:
            v = lv[f]
            if v is not None:
                counts[f][v] += 1
    return {f: [c / sum(cs) for c in cs] for f, cs in counts.items()}


def estimate_u(records: Sequence[Person], children: Sequence[Person], *, samples: int = 20000, seed: int = 1) -> dict[str, list[float]]:
    """u: level frequencies among random record-child pairs (almost all non-matches)."""
    if not records or not children:
        return {k: list(v) for k, v in DEFAULT_U.items()}
    rng = random.Random(seed)
    samples = min(samples, len(records) * len(children))
    pairs = (compare(rng.choice(records), rng.choice(children)) for _ in range(samples))
    return _frequencies(pairs, DEFAULT_U, 500.0)


def estimate_m_em(pair_levels: list[dict[str, int | None]], u: dict[str, list[float]], *,
                  fields: Sequence[str] = FIELDS, start: dict[str, list[float]] | None = None,
                  match_share: float = 0.3, iterations: int = 15) -> dict[str, list[float]]:
    """m by expectation-maximisation over candidate pairs, with u held fixed.

    Only ``fields`` take part (and are re-estimated); the others keep their
    value from ``start``. ``match_share`` is the starting share of true
    matches among the pairs."""
    m = {k: list(v) for k, v in (start or DEFAULT_M).items()}
    lam = min(max(match_share, 1e-4), 0.99)
    for _ in range(iterations):
        num = {f: [0.1] * LEVELS[f] for f in fields}
        total_p = 0.0
        for lv in pair_levels:
            lm = lu = 0.0
            for f in fields:
                v = lv[f]
                if v is not None:
                    lm += math.log(m[f][v])
                    lu += math.log(u[f][v])
            a = lam * math.exp(lm)
            b = (1 - lam) * math.exp(lu)
            p = a / (a + b) if a + b > 0 else 0.0
            total_p += p
            for f in fields:
                v = lv[f]
                if v is not None:
                    num[f][v] += p
        for f in fields:
            m[f] = [c / sum(num[f]) for c in num[f]]
        lam = min(max(total_p / max(len(pair_levels), 1), 1e-4), 0.99)
    return m


# -- the index and the decision -------------------------------------------------


@dataclass(slots=True)
class Candidate:
    child_id: int
    weight: float
    probability: float
    levels: dict[str, int | None]
    consented: bool
    given_ok: bool
    placed: bool = False  # the record's school, grade and class are the child's

    def agreement(self) -> dict[str, str]:
        return {f: ("missing" if v is None else AGREEMENT_NAMES[f][v]) for f, v in self.levels.items()}


@dataclass(slots=True)
class Outcome:
    kind: str  # link | review | drop
    method: str | None = None  # student_no | atena_no | probabilistic
    child_id: int | None = None
    probability: float | None = None
    reason: str | None = None  # for drops: not_consented | no_match
    candidates: list[Candidate] = field(default_factory=list)
    stale_number: bool = False


class ChildIndex:
    """The roster in memory, with blocking indexes (a few MB for 20,000 children)."""

    def __init__(self, children: dict[int, Person], consented: set[int]):
        self.children = children
        self.consented = consented
        self.by_student_no: dict[str, int] = {}
        self.by_atena_no: dict[str, int] = {}
        self.blocks: dict[str, list[int]] = defaultdict(list)
        for cid, p in children.items():
            if p.student_no:
                self.by_student_no[p.student_no] = cid
            if p.atena_no:
                self.by_atena_no[p.atena_no] = cid
            for key in self._keys(p):
                self.blocks[key].append(cid)

    @staticmethod
    def _keys(p: Person) -> list[str]:
        keys = []
        if p.dob:
            keys.append("d" + p.dob_key)
        if p.kanji:
            keys.append("k" + p.kanji)
        if p.reading:
            keys.append("r" + p.reading)
            if p.dob:
                keys.append("ry" + p.reading[:2] + str(p.dob.year))
        return keys

    def block(self, rec: Person) -> set[int]:
        keys = self._keys(rec)
        if rec.reading_swapped:
            keys.append("r" + rec.reading_swapped)
        out: set[int] = set()
        for k in keys:
            ids = self.blocks.get(k)
            if ids and len(ids) <= MAX_BLOCK:
                out.update(ids)
        return out


class Matcher:
    def __init__(self, index: ChildIndex, params: Parameters, *, link_probability: float = LINK_PROBABILITY,
                 review_probability: float = REVIEW_PROBABILITY):
        self.index = index
        self.params = params
        self.w = params.weights()
        self.link_p = link_probability
        self.review_p = review_probability

    def score(self, rec: Person, child_id: int) -> Candidate:
        child = self.index.children[child_id]
        levels = compare(rec, child)
        w = 0.0
        for f in FIELDS:
            v = levels[f]
            if v is not None:
                w += self.w[f][v]
        logit = w + self.params.prior_log2
        p = 1.0 / (1.0 + 2.0 ** (-logit)) if logit > -60 else 0.0
        return Candidate(child_id, w, p, levels, child_id in self.index.consented, given_name_agrees(rec, child),
                         placement_agrees(rec, child))

    def id_verified(self, c: Candidate, rec: Person | None = None) -> bool:
        lv = c.levels
        if rec is not None and not rec.kanji and not rec.reading and rec.dob is None:
            # Only the number (attendance without the optional name): nothing
            # contradicts it, unless the record names another school or grade.
            return c.placed or (not rec.school and rec.grade is None)
        name_ok = (lv["kanji"] or 0) >= 2 or (lv["reading"] or 0) >= 2 or (lv["kanji"] is None and lv["reading"] is None)
        if lv["dob"] is None:
            if c.placed:
                # The number and this year's school, grade and class agree: a
                # typo in the name (富田晴 → 富二晴) does not undo that, a
                # different given name does (and a twin in the same class is
                # caught by _better_rival).
                partly = (lv["kanji"] or 0) >= 1 or (lv["reading"] or 0) >= 1
                return c.given_ok and (partly or (lv["kanji"] is None and lv["reading"] is None))
            return name_ok and c.given_ok and ((lv["kanji"] or 0) == 3 or (lv["reading"] or 0) == 3
                                                or c.probability >= self.review_p)
        if lv["dob"] == 2:
            return name_ok and c.given_ok
        if lv["dob"] == 1:
            return ((lv["kanji"] or 0) == 3 or (lv["reading"] or 0) == 3) and c.given_ok
        return False

    def _better_rival(self, rec: Person, c: Candidate) -> bool:
        """Another child fits the record clearly better than the child its
        number names (a twin's number typed on the other twin's row, where
        only the kanji, 花子/桃子, could tell them apart). Only asked when
        the name is not exact in any script, so it costs little."""
        if (c.levels["kanji"] or 0) == 3 or (c.levels["reading"] or 0) == 3:
            return False
        for cid in self.index.block(rec):
            if cid != c.child_id:
                other = self.score(rec, cid)
                if other.given_ok and other.weight > c.weight + RIVAL_BITS:
                    return True
        return False

    def match(self, rec: Person) -> Outcome:
        stale = False
        for method, number, table in (("student_no", rec.student_no, self.index.by_student_no),
                                      ("atena_no", rec.atena_no, self.index.by_atena_no)):
            if not number:
                continue
            cid = table.get(number)
            if cid is None:
                stale = True
                continue
            c = self.score(rec, cid)
            if self.id_verified(c, rec) and not self._better_rival(rec, c):
                if not c.consented:
                    return Outcome("drop", reason="not_consented")
                return Outcome("link", method, cid, c.probability, candidates=[c])
            stale = True
        cands = sorted((self.score(rec, cid) for cid in self.index.block(rec)), key=lambda c: -c.weight)
        if not cands or cands[0].probability < self.review_p or not cands[0].given_ok:
            return Outcome("drop", reason="no_match", stale_number=stale)
        best = cands[0]
        if not best.consented:
            return Outcome("drop", reason="not_consented", stale_number=stale)
        rivals = [c for c in cands[1:] if c.probability >= self.review_p and c.given_ok]
        ambiguous = bool(rivals) and best.weight - rivals[0].weight < AMBIGUITY_BITS
        if best.probability >= self.link_p and not ambiguous:
            return Outcome("link", "probabilistic", best.child_id, best.probability, candidates=[best], stale_number=stale)
        shown = [best] + [c for c in rivals if c.consented][:4]
        return Outcome("review", "probabilistic", best.child_id, best.probability, candidates=shown, stale_number=stale)


def fit(records: Sequence[Person], index: ChildIndex, *, min_id_pairs: int = 30) -> Parameters:
    """Estimate u from random pairs and m from number-linked pairs (else EM)."""
    children = list(index.children.values())
    params = Parameters()
    params.u = estimate_u(records, children)
    params.prior_log2 = -math.log2(max(len(children), 2))
    id_levels = []
    for rec in records:
        cid = index.by_student_no.get(rec.student_no) if rec.student_no else None
        if cid is None and rec.atena_no:
            cid = index.by_atena_no.get(rec.atena_no)
        if cid is not None:
            id_levels.append(compare(rec, index.children[cid]))
    if len(id_levels) >= min_id_pairs:
        params.m = _frequencies(id_levels, DEFAULT_M, 20.0)
        params.m_from = "id_pairs"
        params.pairs_used = len(id_levels)
        return params
    # No numbers: EM in two sessions, as Splink trains. Among pairs with the
    # same birth date, names tell matches apart (m of the name fields and
    # sex); among pairs with the same name, birth date and address do. One
    # session over all candidate pairs would take two namesakes for a match,
    # since kanji and reading agree together (they are not independent).
    same_dob, same_name = [], []
    for rec in records[:20000]:
        for key, out in (("d" + rec.dob_key if rec.dob else "", same_dob),
                         ("k" + rec.kanji if rec.kanji else "", same_name),
                         ("r" + rec.reading if rec.reading and not rec.kanji else "", same_name)):
            ids = index.blocks.get(key) if key else None
            if ids and len(ids) <= MAX_BLOCK:
                out.extend(compare(rec, index.children[cid]) for cid in ids)
    m = params.m
    fitted = False
    for pairs, fields in ((same_dob, ("kanji", "reading", "sex")), (same_name, ("dob", "address"))):
        if len(pairs) >= min_id_pairs:
            m = estimate_m_em(pairs, params.u, fields=fields, start=m,
                              match_share=min(0.5, len(records) / len(pairs)))
            fitted = True
    if fitted:
        params.m = m
        params.m_from = "em"
        params.pairs_used = len(same_dob) + len(same_name)
    return params
