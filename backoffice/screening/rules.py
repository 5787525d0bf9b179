"""The rule language: one rule a line, over the indicators, with thresholds.

    # comments start with a hash
    absence_recent [2]: absence_rate_3m >= 10%
    long_absence [3]: absence_30_days
    background_and_mood: at least 2 of (single_parent_allowance, public_assistance,
        school_cost_assistance, lunch_arrears_months >= 2) and low_mood

A rule is ``code [urgency]: condition``: ``code`` is a name (lower-case
letters, digits, ``_``) that stays the same across versions (a flag is "the
same reason" when the code is the same); ``urgency`` is 1 (low), 2 (medium,
the default) or 3 (high). Conditions: an indicator that is a yes/no fact on
its own (``low_mood``); a number indicator compared with a threshold
(``>=``, ``>``, ``<=``, ``<``, ``=``; a rate in percent, ``10%``, a count as a
whole number); ``and``, ``or``, ``not``, brackets, and ``at least N of (…)``.
A line that starts with spaces continues the rule above.

:func:`parse` validates and returns the rules as JSON-able dicts; errors are
:class:`RuleError` with the line, in the user's language. :func:`evaluate`
runs a rule over an :class:`~backoffice.screening.indicators.IndicatorTable`
at once (numpy), and gives for each fired child the facts that held.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
from flask_babel import lazy_gettext as _l

from backoffice.screening.indicators import INDICATORS, LINKAGE, SURVEYS, IndicatorTable

OPS = (">=", "<=", "==", "=", ">", "<")
_TOKEN = re.compile(
    r"\s*(?:(?P<num>\d+(?:\.\d+)?%?)|(?P<op>>=|<=|==|=|>|<|≥|≤)|(?P<punct>[(),])|(?P<word>[A-Za-z_][A-Za-z0-9_]*)|(?P<bad>\S))"
)
_HEAD = re.compile(r"^\s*(?P<code>[a-z][a-z0-9_]{0,59})\s*(?:\[\s*(?P<urg>[^\]]*)\s*\])?\s*:(?P<body>.*)$", re.S)
KEYWORDS = {"and", "or", "not", "at", "least", "of"}


class RuleError(ValueError):
    def __init__(self, message, line: int | None = None, **params):
        self.message = message
        self.line = line
        self.params = params
        super().__init__(self.__str__())

    def __str__(self) -> str:
        text = str(self.message) % self.params
        if self.line is not None:
            return str(_l("Line %(line)s: %(error)s")) % {"line": self.line, "error": text}
        return text


@dataclass
class _Tok:
    kind: str
    text: str


def _tokens(body: str, line: int) -> list[_Tok]:
    out: list[_Tok] = []
    pos = 0
    body = body.rstrip()
    while pos < len(body):
        m = _TOKEN.match(body, pos)
        if m is None or m.end() == pos:
            break
        pos = m.end()
        kind = m.lastgroup
        text = m.group(kind)
        if kind == "bad":
            raise RuleError(_l("unexpected character “%(char)s”."), line, char=text)
        if kind == "op":
            text = {"≥": ">=", "≤": "<=", "==": "="}.get(text, text)
        out.append(_Tok(kind, text))
    return out


class _Parser:
    def __init__(self, toks: list[_Tok], line: int):
        self.toks = toks
        self.i = 0
        self.line = line

    def peek(self) -> _Tok | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def take(self) -> _Tok:
        tok = self.peek()
        if tok is None:
            raise RuleError(_l("the condition ends too early."), self.line)
        self.i += 1
        return tok

    def is_word(self, word: str) -> bool:
        tok = self.peek()
        return tok is not None and tok.kind == "word" and tok.text.lower() == word

    def expect(self, text: str) -> None:
        tok = self.take()
        if tok.text.lower() != text:
            raise RuleError(_l("expected “%(want)s” but found “%(got)s”."), self.line, want=text, got=tok.text)

    def parse(self) -> dict:
        if not self.toks:
            raise RuleError(_l("the rule has no condition."), self.line)
        node = self.expr()
        if self.peek() is not None:
            raise RuleError(_l("unexpected “%(got)s”."), self.line, got=self.peek().text)
        return node

    def expr(self) -> dict:
        parts = [self.term()]
        while self.is_word("or"):
            self.take()
            parts.append(self.term())
        return parts[0] if len(parts) == 1 else {"any": parts}

    def term(self) -> dict:
        parts = [self.factor()]
        while self.is_word("and"):
            self.take()
            parts.append(self.factor())
        return parts[0] if len(parts) == 1 else {"all": parts}

    def factor(self) -> dict:
        tok = self.peek()
        if tok is None:
            raise RuleError(_l("the condition ends too early."), self.line)
        if self.is_word("not"):
            self.take()
            return {"not": self.factor()}
        if tok.text == "(":
            self.take()
            node = self.expr()
            self.expect(")")
            return node
        if self.is_word("at"):
            self.take()
            self.expect("least")
            n = self.take()
            if n.kind != "num" or not n.text.isdigit() or int(n.text) < 1:
                raise RuleError(_l("“at least” needs a whole number of 1 or more."), self.line)
            self.expect("of")
            self.expect("(")
            items = [self.expr()]
            while self.peek() is not None and self.peek().text == ",":
                self.take()
                items.append(self.expr())
            self.expect(")")
            if int(n.text) > len(items):
                raise RuleError(
                    _l("“at least %(n)s of” lists only %(m)s conditions."), self.line, n=int(n.text), m=len(items)
                )
            return {"at_least": int(n.text), "of": items}
        return self.condition()

    def condition(self) -> dict:
        tok = self.take()
        if tok.kind != "word" or tok.text.lower() in KEYWORDS:
            raise RuleError(_l("expected an indicator but found “%(got)s”."), self.line, got=tok.text)
        ind = INDICATORS.get(tok.text)
        if ind is None:
            raise RuleError(_l("unknown indicator “%(code)s”."), self.line, code=tok.text)
        nxt = self.peek()
        if nxt is None or nxt.kind != "op":
            if ind.type != "bool":
                raise RuleError(
                    _l("“%(code)s” is a number: compare it with a threshold, e.g. “%(code)s >= %(example)s”."),
                    self.line, code=ind.code, example="10%" if ind.type == "rate" else "3",
                )
            return {"ind": ind.code, "op": "is", "value": True}
        op = self.take().text
        if ind.type == "bool":
            raise RuleError(
                _l("“%(code)s” is a yes/no fact and takes no threshold: write just “%(code)s” (or “not %(code)s”)."),
                self.line, code=ind.code,
            )
        val = self.take()
        if val.kind != "num":
            raise RuleError(
                _l("the threshold of “%(code)s” must be a number, not “%(got)s”."), self.line, code=ind.code, got=val.text
            )
        return {"ind": ind.code, "op": op, "value": _threshold(ind, val.text, self.line)}


def _threshold(ind, text: str, line: int) -> float:
    if ind.type == "rate":
        if not text.endswith("%"):
            raise RuleError(_l("“%(code)s” is a rate: write the threshold in percent, e.g. 10%%."), line, code=ind.code)
        v = float(text[:-1]) / 100
        if v > 1:
            raise RuleError(_l("a rate cannot be more than 100%%."), line)
        return v
    if text.endswith("%"):
        raise RuleError(_l("“%(code)s” is a count: write a whole number, not a percentage."), line, code=ind.code)
    if "." in text:
        raise RuleError(_l("“%(code)s” is a count: write a whole number, not “%(got)s”."), line, code=ind.code, got=text)
    return int(text)


def _logical_lines(source: str):
    current: list[str] = []
    start = 0
    for n, raw in enumerate(source.splitlines(), 1):
        line = raw.split("#", 1)[0].rstrip()
        if not line.strip():
            continue
        if raw[:1] in (" ", "\t") and current:
            current.append(line)
            continue
        if current:
            yield start, " ".join(current)
        current, start = [line], n
    if current:
        yield start, " ".join(current)


def parse(source: str) -> list[dict]:
    """Parse and validate rule-set text; a list of ``{code, urgency, when, text}``."""
    rules: list[dict] = []
    seen: set[str] = set()
    for line, text in _logical_lines(source or ""):
        m = _HEAD.match(text)
        if m is None:
            raise RuleError(
                _l("a rule starts with its name (lower-case letters, digits and _), then a colon, e.g. “absence_recent: absence_rate_3m >= 10%%”."),
                line,
            )
        code = m.group("code")
        if code in seen:
            raise RuleError(_l("the rule name “%(code)s” is used twice."), line, code=code)
        seen.add(code)
        urg = (m.group("urg") or "2").strip()
        if urg not in ("1", "2", "3"):
            raise RuleError(_l("the urgency in brackets must be 1, 2 or 3."), line)
        when = _Parser(_tokens(m.group("body"), line), line).parse()
        rules.append({"code": code, "urgency": int(urg), "when": when, "text": m.group("body").strip()})
    if not rules:
        raise RuleError(_l("The rule set has no rules."))
    return rules


def indicators_of(node: dict) -> set[str]:
    if "ind" in node:
        return {node["ind"]}
    if "not" in node:
        return indicators_of(node["not"])
    kids = node.get("all") or node.get("any") or node.get("of") or []
    out: set[str] = set()
    for k in kids:
        out |= indicators_of(k)
    return out


def purposes_of(rule: dict) -> set[str]:
    return {INDICATORS[c].purpose for c in indicators_of(rule["when"])}


# -- evaluation -------------------------------------------------------------------


def _leaf(node: dict, table: IndicatorTable) -> np.ndarray:
    col = table.columns[node["ind"]]
    op, v = node["op"], node["value"]
    if op == "is":
        return col.astype(bool) == bool(v)
    col = col.astype(float)
    v = float(v)
    eps = 1e-9
    return {
        ">=": col >= v - eps,
        ">": col > v + eps,
        "<=": col <= v + eps,
        "<": col < v - eps,
        "=": np.abs(col - v) <= eps,
    }[op]


def mask(node: dict, table: IndicatorTable) -> np.ndarray:
    """Which children (rows of the table) satisfy the condition."""
    if "ind" in node:
        return _leaf(node, table)
    if "not" in node:
        return ~mask(node["not"], table)
    if "all" in node:
        out = np.ones(len(table), dtype=bool)
        for k in node["all"]:
            out &= mask(k, table)
        return out
    if "any" in node:
        out = np.zeros(len(table), dtype=bool)
        for k in node["any"]:
            out |= mask(k, table)
        return out
    counts = np.zeros(len(table), dtype=int)
    for k in node["of"]:
        counts += mask(k, table)
    return counts >= node["at_least"]


def rule_mask(rule: dict, table: IndicatorTable) -> np.ndarray:
    """Children the rule fires for; a rule never fires for a child whose needed consent is missing."""
    m = mask(rule["when"], table)
    for purpose in purposes_of(rule):
        m &= table.covered.get(purpose, np.zeros(len(table), dtype=bool))
    return m


def _positive_leaves(node: dict, negated: bool = False) -> list[dict]:
    if "ind" in node:
        return [] if negated else [node]
    if "not" in node:
        return _positive_leaves(node["not"], not negated)
    out: list[dict] = []
    for k in node.get("all") or node.get("any") or node.get("of") or []:
        out += _positive_leaves(k, negated)
    return out


def facts_for(rule: dict, table: IndicatorTable, i: int) -> list[dict]:
    """The facts that held for row ``i``: each true condition with its value and threshold."""
    from backoffice.screening.indicators import _plain

    facts = []
    seen = set()
    for leaf in _positive_leaves(rule["when"]):
        if not bool(_leaf(leaf, table)[i]):
            continue
        key = (leaf["ind"], leaf["op"], leaf["value"])
        if key in seen:
            continue
        seen.add(key)
        ind = INDICATORS[leaf["ind"]]
        facts.append(
            {
                "indicator": ind.code,
                "fact": _plain(table.columns[ind.code][i], ind.type),
                "params": {"op": leaf["op"], "value": leaf["value"]},
                "rule": rule["code"],
            }
        )
    return facts


PURPOSES = (LINKAGE, SURVEYS)

DEMO_RULES = """\
# Demo screening rules (a starting point for the data steward)
long_absence [3]: absence_30_days
absence_recent [2]: absence_rate_3m >= 10% or absence_rising
help_requested [3]: help_request
mood_and_background [2]: (low_mood or who5_low) and at least 1 of (single_parent_allowance,
    public_assistance, school_cost_assistance, lunch_arrears_months >= 2)
health_and_fees [1]: (health_check_missed or untreated_caries >= 3) and lunch_arrears_months >= 2
"""
