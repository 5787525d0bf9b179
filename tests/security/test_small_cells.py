"""No output an analyst can open shows a count under 5, or gives one back.

The analyst's ``evaluation.csv``, calibration table and model card showed
cells of 1 to 4 children. Every analyst output now goes through
:mod:`portal.suppression`. The test plants small cells everywhere the
screening figures come from (a rule that flagged two children, a rule whose
confirmed children are three, a calibration bin and a grade of three
decisions, three confirmed decisions in all) and opens every route the
analyst role can GET, checking:

- no table cell (HTML, Markdown, CSV) is a bare count of 1 to 4;
- no share in the CSV gives back a count of 1 to 4 with its denominator;
- rows that split a shown total are never hidden alone (complementary
  suppression), and the total minus the shown rows is never 1 to 4;
- the complement of a small count (397 = 400 - 3) appears nowhere.
"""

from __future__ import annotations

import copy
import csv
import io
import re
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser

from backoffice.screening import model as ml
from backoffice.screening.models import Flag, FlagSource, FlagStatus, Outcome, Resolution
from portal import suppression
from portal.auth.access import roles_for
from portal.auth.principal import SYSTEM
from tests.conftest import sign_in_as

T0 = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)
SMALL = re.compile(r"^[1-4]$")
COMPLEMENT = "397"  # decisions (400) minus the three confirmed


def _flag(session, child, code, *, outcome=None):
    f = Flag(child_id=child.id, source=FlagSource.rule, rule_code=code, reason_key=f"rule:{code}", reasons=[],
             status=FlagStatus.open, created_at=T0)
    if outcome is not None:
        f.status, f.resolution, f.outcome = FlagStatus.resolved, Resolution.school_decided, outcome
        f.resolved_at = T0 + timedelta(days=3)
    session.add(f)
    return f


def _small_world(session, make):
    _, klass = make.teacher_with_class(grade=5)
    children = [make.child(klass) for _ in range(10)]
    for i, child in enumerate(children[:8]):  # "big": 8 children, 3 confirmed, 4 not needed, 1 open
        _flag(session, child, "big", outcome=(Outcome.confirmed if i < 3 else Outcome.not_needed) if i < 7 else None)
    for child in children[8:]:  # "tiny": 2 children
        _flag(session, child, "tiny", outcome=Outcome.confirmed)
    m = ml.train(session, SYSTEM, ml.synthetic_decisions(400, seed=3))
    card = copy.deepcopy(m.card)
    card["data"].update(decisions=400, confirmed=3, not_needed=397)
    card["calibration"][0]["n"] = 3
    card["by_grade"][0]["n"] = 3
    m.card = card
    session.flush()
    return m


class _Cells(HTMLParser):
    def __init__(self):
        super().__init__()
        self.cells, self._in = [], 0
        self._buf = []

    def handle_starttag(self, tag, attrs):
        if tag == "td":
            self._in, self._buf = 1, []

    def handle_endtag(self, tag):
        if tag == "td" and self._in:
            self.cells.append("".join(self._buf).strip())
            self._in = 0

    def handle_data(self, data):
        if self._in:
            self._buf.append(data)


def _html_cells(text: str) -> list[str]:
    p = _Cells()
    p.feed(text)
    return p.cells


def _markdown_cells(text: str) -> list[str]:
    return [c.strip() for line in text.splitlines() if line.startswith("|") for c in line.strip("|").split("|")]


def _num(cell: str):
    try:
        return float(cell)
    except ValueError:
        return None


COUNT_COLUMNS = ("flagged", "flags", "decided", "newly_found")
#: (share column, denominator column) for each CSV section
SHARES = {"rule": [("confirmed_share", "decided"), ("override_rate", "decided")]}
PARTITIONS = ("model_calibration", "model_by_sex_auc", "model_by_grade_auc", "model_by_school_auc")


def _csv_failures(text: str, held_out: int) -> list[str]:
    rows = list(csv.DictReader(io.StringIO(text.lstrip("\ufeff"), newline="")))
    out = []
    for r in rows:
        for col in COUNT_COLUMNS:
            if SMALL.match(r.get(col) or ""):
                out.append(f"{r['section']} {r['name']}: {col} = {r[col]}")
        for share, den in SHARES.get(r["section"], []) + (
                [("confirmed_share", "flagged")] if r["section"] in PARTITIONS else []):
            s, d = _num(r.get(share) or ""), _num(r.get(den) or "")
            if s is not None and d is not None and (suppression.is_small(s * d) or suppression.is_small(d - s * d)):
                out.append(f"{r['section']} {r['name']}: {share} {s} of {d} gives back a small count")
    for section in PARTITIONS:
        part = [r for r in rows if r["section"] == section]
        hidden = [r for r in part if not r["flagged"]]
        if len(hidden) == 1:
            out.append(f"{section}: one row hidden alone, the total gives it back")
        shown = sum(int(float(r["flagged"])) for r in part if r["flagged"])
        if hidden and suppression.is_small(held_out - shown):
            out.append(f"{section}: the total minus the shown rows is {held_out - shown}")
    return out


def test_no_analyst_output_shows_or_gives_back_a_count_under_5(app, session, make):
    m = _small_world(session, make)
    analyst = make.staff("analyst")
    session.commit()
    held_out = m.card["data"]["held_out"]
    c = app.test_client()
    sign_in_as(c, analyst)

    failures, outputs = [], {}
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        if "GET" not in rule.methods or "analyst" not in (roles_for(app.view_functions[rule.endpoint]) or ()):
            continue
        if rule.arguments - {"model_id"}:
            continue
        url = rule.build({"model_id": m.id} if rule.arguments else {}, append_unknown=False)[1]
        resp = c.get(url)
        text = resp.get_data(as_text=True) if resp.status_code == 200 else ""
        outputs[url] = text
        if resp.mimetype == "text/html":
            cells = _html_cells(text)
        elif resp.mimetype == "text/markdown":
            cells = _markdown_cells(text)
        elif resp.mimetype == "text/csv":
            cells = []
            failures += [f"{url}: {f}" for f in _csv_failures(text, held_out)]
        else:
            cells = []
        failures += [f"{url}: a table cell shows {cell}" for cell in cells if SMALL.match(cell)]
        if COMPLEMENT in text:
            failures.append(f"{url}: shows {COMPLEMENT}, which is 400 decisions minus 3 confirmed")
    assert not failures, "\n".join(failures)
    for path in ("/staff/screening/evaluation", "/staff/screening/evaluation.csv", f"/staff/screening/model/{m.id}/card.md"):
        assert outputs.get(path), f"{path} was not read"

    # The same outputs, for the data steward (who sees every figure), do show the planted cells:
    # the test is not passing because nothing small was there.
    steward = make.staff("data_steward")
    session.commit()
    sign_in_as(c, steward)
    text = c.get("/staff/screening/evaluation.csv").get_data(as_text=True)
    assert _csv_failures(text, held_out)
    assert COMPLEMENT in c.get(f"/staff/screening/model/{m.id}/card.md").get_data(as_text=True)


def test_partition_suppression_is_complementary():
    rows = [{"group": "a", "n": 3, "v": 1}, {"group": "b", "n": 40}, {"group": "c", "n": 9}, {"group": "d", "n": 50}]
    out = suppression.partition(rows)
    assert [r.get("suppressed", False) for r in out] == [True, False, True, False]
    assert out[0] == {"group": "a", "n": None, "v": None, "suppressed": True}
    # two small rows whose sum is still small: a third is hidden
    out = suppression.partition([{"group": "a", "n": 1}, {"group": "b", "n": 2}, {"group": "c", "n": 30},
                                 {"group": "d", "n": 6}])
    assert [r.get("suppressed", False) for r in out] == [True, True, False, True]
    assert suppression.share(0.5, 6) is None and suppression.share(0.5, 20) == 0.5 and suppression.count(0) == 0
