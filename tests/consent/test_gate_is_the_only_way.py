"""The consent gate is the only way in: processing code reads children through it.

Linkage (import, matching, review), screening (indicators and runs)
and survey assignment must choose children with ``consent.gate.consented_child_ids`` (or check one
with ``is_consented``). This test reads their source: every function in
those modules that selects children (``select(Child…)``, ``select(Enrolment…)``,
``select(GuardianChild…)``) must also call the gate, and each module must use
the gate at all. A new query that reads children another way fails here.
"""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROCESSING_MODULES = [
    "backoffice/linkage/importer/service.py",
    "backoffice/linkage/service.py",
    "backoffice/screening/indicators.py",
    "backoffice/screening/service.py",
    "surveys/scheduling.py",
]
# ``reads``: a domain's read path for consent-based data (surveys.reads,
# backoffice.screening.reads), every query of which joins the gate.
GATE = {"consented_child_ids", "is_consented", "reads"}
# Functions that read children for a reason other than processing them for a
# purpose. Each entry needs its reason; keep this list short.
EXEMPT = {
    ("backoffice/linkage/importer/service.py", "import_roster"):
        "the roster import maintains the children master itself",
    ("backoffice/linkage/importer/service.py", "export_rows"):
        "exports records already linked, which exist only for consented children and are purged on withdrawal",
    ("backoffice/linkage/service.py", "review_detail"):
        "shows a review item's candidates, chosen through the gate at matching and purged on withdrawal",
}
CHILD_TABLES = {"Child", "Enrolment", "GuardianChild"}


def _names(node) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)} | {
        n.attr for n in ast.walk(node) if isinstance(n, ast.Attribute)
    }


def _selects_children(fn) -> bool:
    for call in ast.walk(fn):
        if isinstance(call, ast.Call) and getattr(call.func, "id", getattr(call.func, "attr", None)) == "select":
            for arg in call.args:
                base = arg
                while isinstance(base, ast.Attribute):
                    base = base.value
                if isinstance(base, ast.Name) and base.id in CHILD_TABLES:
                    return True
    return False


@pytest.mark.parametrize("path", PROCESSING_MODULES)
def test_processing_module_reads_children_only_through_the_gate(path):
    assert (ROOT / path).exists(), f"{path} moved: point this test at the module that now selects children"
    tree = ast.parse((ROOT / path).read_text(encoding="utf-8"))
    assert GATE & _names(tree), f"{path} never uses the consent gate"
    fns = [fn for fn in ast.walk(tree) if isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef)]
    # A function is gated when it calls the gate, or a helper of the module that is gated.
    gated = set(GATE)
    changed = True
    while changed:
        changed = False
        for fn in fns:
            if fn.name not in gated and gated & _names(fn):
                gated.add(fn.name)
                changed = True
    offenders = [
        fn.name for fn in fns
        if _selects_children(fn) and fn.name not in gated and (path, fn.name) not in EXEMPT
    ]
    assert not offenders, f"{path}: functions select children without the consent gate: {offenders}"


def test_the_checker_catches_a_query_around_the_gate():
    bad = ast.parse("def pick(s):\n    return s.scalars(select(Child.id).where(Child.name != ''))\n")
    good = ast.parse("def pick(s):\n    return s.scalars(select(Child.id).where(Child.id.in_(consented_child_ids('x'))))\n")
    assert _selects_children(bad.body[0]) and not (GATE & _names(bad.body[0]))
    assert GATE & _names(good.body[0])


def test_the_gate_module_is_importable_without_other_domains():
    spec = importlib.util.find_spec("consent.gate")
    source = Path(spec.origin).read_text(encoding="utf-8")
    for other in ("backoffice", "surveys", "resources"):
        assert f"from {other}" not in source and f"import {other}" not in source
