"""One read path for consent-based data: no page, report or export queries those tables around the gate.

Check-ins, answers, scores, free text, signals, linked and proposed records
and the flags derived from them are shown only through the consent gate
(``consent.gate``). The read paths are :mod:`surveys.reads` and
:mod:`backoffice.screening.reads` (every query there joins the gate), and the
gated functions of the linkage service. This test reads the source of the
whole application:

* a *display* module (``views.py``, ``reports.py``, ``charts.py`` and any
  module that writes an export or a PDF) never names a consent-based model:
  it asks a read path;
* every other function that names one in its body either joins the gate
  (calls ``consented_child_ids`` / ``is_consented``, a ``reads`` module, or
  a function that does) or is listed in :data:`EXEMPT` with the reason
  (writes, purges, the disclosure); no display module may be exempt;
* every query of a read-path module joins the gate, or is listed in
  :data:`READS_EXEMPT` with the reason.

A new page that reads ``SurveyResponse`` directly fails here;
``tests/security/test_consent_gated_reads.py`` proves the same by walking
every route with sentinels.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("portal", "consent", "surveys", "resources", "backoffice")
CONSENT_BASED = {
    "SurveyAssignment", "SurveyResponse", "SurveySignal",  # wellbeing_survey
    "LinkedRecord", "ReviewItem", "ReviewCandidate", "LinkDecision",  # data_linkage
    "Flag",  # screening: derived from both
}
READ_PATHS = ("surveys/reads.py", "backoffice/screening/reads.py")
GATE = {"consented_child_ids", "is_consented", "reads"}
DISPLAY_NAMES = ("views.py", "reports.py", "charts.py")
DISPLAY_WORDS = ("export", "pdf", "csv", "tabular", "letters", "receipts")

_WRITE = "a write path: it stores, updates or deletes rows and shows nothing"
_PURGE = "a purger or retention job: it deletes what consent or retention no longer allows"
_DISCLOSURE = "the disclosure (開示) answers the family's right of access to everything held, whatever the consent"
EXEMPT: dict[tuple[str, str], str] = {
    ("backoffice/casework/flags.py", "resolve"): _WRITE + " (closes the flag the school decided on)",
    ("backoffice/screening/service.py", "_flag_for"): _WRITE + " (the flag being resolved, scoped to the actor)",
    ("backoffice/screening/service.py", "resolve_flag"): _WRITE + " (closes the flag with one guarded UPDATE; shows nothing)",
    ("backoffice/screening/service.py", "_purge"): _PURGE,
    ("backoffice/screening/service.py", "disclosure_rows"): _DISCLOSURE,
    ("backoffice/screening/service.py", "run_screening"):
        "the run reads children only through indicators.compute, which joins the gate "
        "(tests/consent/test_gate_is_the_only_way.py); it writes flags",
    ("backoffice/screening/service.py", "_score_manual_flags"): _WRITE + " (scores from the gated indicator table)",
    ("backoffice/screening/model.py", "switch"): _WRITE + " (clears the scores when the model is switched off)",
    ("backoffice/linkage/hooks.py", "_disclosure"): _DISCLOSURE,
    ("backoffice/linkage/importer/service.py", "import_file"):
        _WRITE + " (matches only children in the gate: _consented_ids)",
    ("backoffice/linkage/importer/service.py", "rollback_batch"): _WRITE,
    ("backoffice/linkage/importer/service.py", "_delete_records"): _PURGE,
    ("backoffice/linkage/importer/service.py", "expired_condition"): _PURGE,
    ("backoffice/linkage/importer/service.py", "purge_children"): _PURGE,
    ("surveys/scheduling.py", "deactivate_schedule"): _WRITE,
    ("surveys/scheduling.py", "close_due"): _WRITE,
    ("surveys/scheduling.py", "remind_due"): _WRITE + " (reminders go only to open assignments of consented children)",
    ("surveys/service.py", "_respondent_filter"):
        "a filter of the answering principal's own assignments, always used with the gate",
    ("surveys/service.py", "submit"): _WRITE + " (answerable() refuses a child outside the gate)",
    ("surveys/service.py", "_derive_signals"): _WRITE,
    ("surveys/service.py", "purge_children"): _PURGE,
    ("surveys/service.py", "disclosure_checkins"): _DISCLOSURE,
    ("surveys/service.py", "disclosure_family"): _DISCLOSURE,
}
READS_EXEMPT: dict[tuple[str, str], str] = {
    ("surveys/reads.py", "own_response"):
        "the answer a student has just given, shown back to that student only to say whom to expect "
        "after a request for help (which reaches an adult whatever the consent)",
}


# -- reading the source --------------------------------------------------------------------


def _modules() -> list[str]:
    out = []
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            if path.name in ("models.py", "demo.py") or "/templates/" in rel:
                continue  # the tables themselves; demo loaders write demo data and show nothing
            out.append(rel)
    return out


def _is_display(rel: str) -> bool:
    name = rel.rsplit("/", 1)[-1]
    return name in DISPLAY_NAMES or any(w in name for w in DISPLAY_WORDS)


def _body_names(fn) -> set[str]:
    """Names used in a function's body (not its annotations: a type is not a query)."""
    names: set[str] = set()
    for stmt in fn.body:
        for n in ast.walk(stmt):
            if isinstance(n, ast.Name):
                names.add(n.id)
            elif isinstance(n, ast.Attribute):
                names.add(n.attr)
            elif isinstance(n, ast.alias):
                names.add(n.asname or n.name)
    return names


def _gate_aliases(tree) -> set[str]:
    """Names a module gives the gate's functions (``from consent.gate import is_consented as x``)."""
    return {
        a.asname or a.name
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module == "consent.gate"
        for a in node.names
    }


def _functions(tree) -> list:
    return [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]


def _parse(rel: str):
    return ast.parse((ROOT / rel).read_text(encoding="utf-8"))


def _module_rel(dotted: str) -> str | None:
    for cand in (dotted.replace(".", "/") + ".py", dotted.replace(".", "/") + "/__init__.py"):
        if (ROOT / cand).exists():
            return cand
    return None


def _imports(tree) -> tuple[dict[str, str], dict[str, tuple[str, str]]]:
    """(local name -> module, local name -> (module, function)) for a module's imports."""
    modules: dict[str, str] = {}
    functions: dict[str, tuple[str, str]] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                rel = _module_rel(a.name)
                if rel and a.asname:
                    modules[a.asname] = rel
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for a in node.names:
                sub = _module_rel(f"{node.module}.{a.name}")
                if sub:
                    modules[a.asname or a.name] = sub
                elif (rel := _module_rel(node.module)):
                    functions[a.asname or a.name] = (rel, a.name)
    return modules, functions


def _references(fn, modules, functions) -> tuple[set[str], set[tuple[str, str]]]:
    """(plain names, (module, function) pairs) a function's body refers to."""
    names: set[str] = set()
    pairs: set[tuple[str, str]] = set()
    for stmt in fn.body:
        for n in ast.walk(stmt):
            if isinstance(n, ast.Name):
                names.add(n.id)
                if n.id in functions:
                    pairs.add(functions[n.id])
            elif isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name) and n.value.id in modules:
                pairs.add((modules[n.value.id], n.attr))
            elif isinstance(n, ast.alias):
                names.add(n.asname or n.name)
    return names, pairs


def _gated_functions(sources: dict[str, ast.AST], *, trust_read_paths: bool = True) -> set[tuple[str, str]]:
    """(module, function) pairs that join the gate, directly or through a function that does.

    A function is gated when its body uses the gate (``consented_child_ids``,
    ``is_consented``, however imported, or a ``reads`` module), or calls a
    gated function: of its own module by name, of another module through
    the import that names it. The read paths are trusted here (their own
    test checks every query of theirs joins the gate).
    """
    refs, gate = {}, {}
    for rel, tree in sources.items():
        modules, functions = _imports(tree)
        gate[rel] = GATE | _gate_aliases(tree)
        for fn in _functions(tree):
            refs[(rel, fn.name)] = _references(fn, modules, functions)
    gated = {key for key in refs if key[0] in READ_PATHS} if trust_read_paths else set()
    changed = True
    while changed:
        changed = False
        for (rel, name), (names, pairs) in refs.items():
            if (rel, name) in gated:
                continue
            local = {n for (r, n) in gated if r == rel}
            via_read_path = trust_read_paths and any(m in READ_PATHS for m, _ in pairs)
            if names & (gate[rel] | local) or pairs & gated or via_read_path:
                gated.add((rel, name))
                changed = True
    return gated


@pytest.fixture(scope="module")
def sources() -> dict[str, ast.AST]:
    return {rel: _parse(rel) for rel in _modules()}


# -- the tests -------------------------------------------------------------------------------


def test_display_modules_never_name_a_consent_based_table(sources):
    offenders = {}
    for rel, tree in sources.items():
        if not _is_display(rel):
            continue
        names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)} | {
            a.asname or a.name for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) for a in n.names
        }
        hit = sorted(names & CONSENT_BASED)
        if hit:
            offenders[rel] = hit
    assert not offenders, (
        f"pages, reports and exports that name consent-based tables (read them through surveys.reads, "
        f"backoffice.screening.reads or a gated service function instead): {offenders}"
    )


def test_every_query_of_a_consent_based_table_joins_the_gate(sources):
    gated = _gated_functions(sources)
    offenders, touching = [], set()
    for rel, tree in sources.items():
        if rel in READ_PATHS:
            continue
        for fn in _functions(tree):
            if not (_body_names(fn) & CONSENT_BASED):
                continue
            touching.add((rel, fn.name))
            if (rel, fn.name) not in gated and (rel, fn.name) not in EXEMPT:
                offenders.append(f"{rel}:{fn.name}")
    assert not offenders, (
        "functions that query consent-based tables without the consent gate (use a read path, join "
        f"consented_child_ids, or list them in EXEMPT with the reason): {offenders}"
    )
    assert not [k for k in EXEMPT if _is_display(k[0])], "a page, report or export cannot be exempt"
    stale = sorted(set(EXEMPT) - touching)
    assert not stale, f"EXEMPT lists functions that no longer query those tables: {stale}"


@pytest.mark.parametrize("rel", READ_PATHS)
def test_every_query_of_a_read_path_joins_the_gate(sources, rel):
    tree = _parse(rel)
    gated = _gated_functions({rel: tree}, trust_read_paths=False)
    assert gated, f"{rel} never uses the consent gate"
    offenders = [
        fn.name for fn in _functions(tree)
        if _body_names(fn) & CONSENT_BASED and (rel, fn.name) not in gated and (rel, fn.name) not in READS_EXEMPT
    ]
    assert not offenders, f"{rel}: queries without the consent gate: {offenders}"


def test_the_checker_catches_a_page_that_reads_around_the_gate():
    page = ast.parse(
        "from surveys.models import SurveyResponse\n"
        "def view(child_id):\n"
        "    return db.session.scalars(select(SurveyResponse).where(SurveyResponse.child_id == child_id))\n"
    )
    gated_page = ast.parse(
        "from surveys import reads\n"
        "def view(child_id):\n"
        "    return db.session.scalars(reads.child_responses(child_id, since))\n"
    )
    assert {n.id for n in ast.walk(page) if isinstance(n, ast.Name)} & CONSENT_BASED
    assert not _gated_functions({"x/views.py": page})
    assert _gated_functions({"x/views.py": gated_page}) == {("x/views.py", "view")}
    assert _is_display("backoffice/casework/views.py") and _is_display("resources/hsds_tabular.py")
