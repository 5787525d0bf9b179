"""HSDS 3.0 export (validated against the official schema) and import."""

from __future__ import annotations

import io
import json
from datetime import time
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator, FormatChecker

from portal.auth.principal import SYSTEM
from portal.people.models import Role
from resources import hsds
from resources.models import Service, ServiceStatus
from resources.service import ResourceError, ScheduleData

SCHEMAS = Path(__file__).resolve().parents[2].parent / "shared" / "hsds-3.0"


@pytest.fixture
def catalogue(make_service, session):
    make_service(organization_name="みまもり子ども食堂の会", min_age_months=0, max_age_months=18 * 12 + 11,
                 languages=["ja", "en", "pt"], accessibility_ja="車いす可", url="https://example.invalid/a",
                 email="shokudo@example.invalid", postal_code="920-0000")
    make_service("学習室", name_en="Study room", categories=["study_support", "young_carers"], is_free=False,
                 fees_ja="月500円", fees_en="500 yen a month", min_age_months=22, address="",
                 schedules=[ScheduleData("MONTHLY", "2SA,4SA", time(10), time(12))])
    make_service("下書き", publish=False)
    session.flush()


@pytest.mark.skipif(not (SCHEMAS / "service.json").exists(), reason="../shared/hsds-3.0 is absent")
@pytest.mark.parametrize("locale", ["ja", "en"])
def test_export_conforms_to_the_official_hsds_3_service_schema(session, catalogue, locale):
    schema = json.loads((SCHEMAS / "service.json").read_text())
    validator = Draft202012Validator(schema, format_checker=FormatChecker())
    items = json.loads(hsds.export_json(session, locale))
    assert len(items) == 2  # drafts are not exported
    for item in items:
        errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(item)]
        assert not errors, errors
    first = items[0]
    assert first["service_at_locations"][0]["location"]["addresses"][0]["state_province"] == "石川県"
    assert {a["taxonomy_term"]["code"] for a in items[1]["attributes"]} == {"study_support", "young_carers"}
    assert items[1]["minimum_age"] == pytest.approx(22 / 12, abs=0.01)


def test_json_round_trip_updates_the_same_entries(session, catalogue):
    exported = hsds.export_json(session, "ja").encode()
    created, updated = hsds.import_json(session, SYSTEM, exported, "ja")
    assert (created, updated) == (0, 2)
    study = session.query(Service).filter_by(name_ja="学習室").one()
    assert study.name_en == "Study room" and study.fees_en == "500 yen a month"  # the other locale kept
    assert study.schedules[0].byday == "2SA,4SA" and study.status == ServiceStatus.published


def test_import_into_an_empty_catalogue_makes_drafts(session, catalogue):
    exported = hsds.export_json(session, "en")
    for s in session.query(Service).all():
        session.delete(s)
    session.flush()
    created, updated = hsds.import_json(session, SYSTEM, exported.encode(), "en")
    assert (created, updated) == (2, 0)
    names = {(s.name_ja, s.name_en, s.status) for s in session.query(Service)}
    assert ("学習室", "Study room", ServiceStatus.draft) in names


@pytest.mark.parametrize(
    "raw, expected",
    [
        (b"{not json", "not valid JSON"),
        (b"[]", "no HSDS services"),
        (json.dumps([{"id": "x", "status": "active"}]).encode(), "'name' is a required property"),
        (json.dumps([{"id": "x", "name": "a", "status": "open"}]).encode(), "status"),
        (json.dumps([{"id": "x", "name": "a", "status": "active", "minimum_age": 10, "maximum_age": 3}]).encode(),
         "minimum age is above the maximum age"),
    ],
)
def test_an_invalid_hsds_file_is_refused_with_a_clear_message_and_nothing_imported(session, raw, expected, english):
    with pytest.raises(ResourceError) as exc:
        hsds.import_json(session, SYSTEM, raw)
    assert expected in str(exc.value.message)
    assert session.query(Service).count() == 0


def test_csv_export_and_import(session, catalogue):
    text = hsds.export_csv(session, "ja")
    assert text.splitlines()[0].startswith("id,organization_id,name,alternate_name,description")
    for s in session.query(Service).all():
        session.delete(s)
    session.flush()
    created, _ = hsds.import_csv(session, SYSTEM, text.encode())
    assert created == 2
    with pytest.raises(ResourceError):
        hsds.import_csv(session, SYSTEM, b"foo,bar\r\n1,2\r\n")


def test_import_page_shows_every_problem(client, session, make, login):
    coord = make.staff(Role.coordinator, locale="en")
    session.commit()
    login(coord)
    from tests.conftest import csrf_token_from

    token = csrf_token_from(client.get("/resources/manage/import").get_data(as_text=True))
    bad = json.dumps([{"id": "1", "status": "active"}, {"id": "2", "name": "b", "status": "active",
                                                          "minimum_age": 9, "maximum_age": 2}]).encode()
    resp = client.post("/resources/manage/import", data={
        "csrf_token": token, "kind": "hsds_json", "locale": "ja", "file": (io.BytesIO(bad), "bad.json")},
        content_type="multipart/form-data")
    page = resp.get_data(as_text=True)
    assert resp.status_code == 200
    assert "Entry 1" in page and "Entry 2" in page
    assert session.query(Service).count() == 0


def test_export_download_for_coordinators(client, session, make, login, catalogue):
    coord = make.staff(Role.coordinator)
    session.commit()
    login(coord)
    resp = client.get("/resources/manage/export.json?lang=en")
    assert resp.status_code == 200 and len(resp.get_json()) == 2
    assert client.get("/resources/manage/export.csv").status_code == 200


# -- the tabular data package (a zip of CSV tables) ----------------------------------------


def _unzip(raw: bytes) -> dict[str, list[dict]]:
    import csv
    import zipfile

    zf = zipfile.ZipFile(io.BytesIO(raw))
    out = {}
    for name in zf.namelist():
        if name.endswith(".csv"):
            out[name] = list(csv.DictReader(io.StringIO(zf.read(name).decode("utf-8"), newline="")))
    out["datapackage.json"] = json.loads(zf.read("datapackage.json"))
    return out


@pytest.mark.skipif(not (SCHEMAS / "tabular.json").exists(), reason="../shared/hsds-3.0 is absent")
@pytest.mark.parametrize("locale", ["ja", "en"])
def test_tabular_export_conforms_to_the_official_hsds_3_tables(session, catalogue, locale):
    """Every table is an HSDS table, every column an HSDS column, every row valid, every link resolves."""
    from resources import hsds_tabular

    official = json.loads((SCHEMAS / "tabular.json").read_text())["properties"]
    by_path = {t["items"]["path"]: t["items"] for t in official.values()}
    files = _unzip(hsds_tabular.export_datapackage(session, locale))
    package = files.pop("datapackage.json")
    assert {r["path"] for r in package["resources"]} == set(files)
    for path, rows in files.items():
        table = by_path[path]  # an HSDS table
        props = table["properties"]
        header = [f["name"] for f in next(r for r in package["resources"] if r["path"] == path)["schema"]["fields"]]
        assert set(header) <= set(props), (path, set(header) - set(props))
        validator = Draft202012Validator(
            {**{k: v for k, v in table.items() if k not in ("name", "path", "datapackage_metadata")},
             "required": table.get("required", []) + table.get("tabular_required", [])},
            format_checker=FormatChecker())
        for row in rows:
            typed = {k: (float(v) if props[k].get("type") == "number" else v) for k, v in row.items() if v != ""}
            errors = [f"{path} {list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(typed)]
            assert not errors, errors
    ids = {path: {r["id"] for r in rows} for path, rows in files.items()}
    for path, col, target in [
        ("services.csv", "organization_id", "organizations.csv"), ("schedules.csv", "service_id", "services.csv"),
        ("phones.csv", "service_id", "services.csv"), ("languages.csv", "service_id", "services.csv"),
        ("cost_options.csv", "service_id", "services.csv"), ("attributes.csv", "link_id", "services.csv"),
        ("attributes.csv", "taxonomy_term_id", "taxonomy_terms.csv"),
        ("taxonomy_terms.csv", "taxonomy_id", "taxonomies.csv"),
        ("service_at_location.csv", "service_id", "services.csv"),
        ("service_at_location.csv", "location_id", "locations.csv"), ("addresses.csv", "location_id", "locations.csv"),
        ("accessibility.csv", "location_id", "locations.csv"), ("service_areas.csv", "service_id", "services.csv"),
    ]:
        assert {r[col] for r in files[path]} <= ids[target], (path, col)
    assert len(files["services.csv"]) == 2 and len(files["schedules.csv"]) == 2
    assert {r["value"] for r in files["attributes.csv"]} == {"childrens_cafeteria", "study_support", "young_carers"}


def test_tabular_round_trip_keeps_everything(session, catalogue, make_service):
    from resources import hsds_tabular
    from resources import service as catalogue_service

    make_service("地図つき", latitude=36.5, longitude=136.6, district="ひだまり学区", languages=["ja", "vi"])
    session.flush()
    before = {s.uuid: catalogue_service.data_from_service(s) for s in session.query(Service)
              if s.status == ServiceStatus.published}
    raw = hsds_tabular.export_datapackage(session, "ja")
    for s in session.query(Service).all():
        session.delete(s)
    session.flush()
    assert hsds_tabular.import_datapackage(session, SYSTEM, raw, "ja") == (3, 0)
    after = {s.uuid: catalogue_service.data_from_service(s) for s in session.query(Service)}
    assert set(after) == set(before)
    for uuid_, data in before.items():
        got = after[uuid_]
        # A one-locale file carries the other locale's name only (alternate_name).
        for key in ("description_en", "fees_en", "accessibility_en"):
            setattr(data, key, "")
        for sc in data.schedules:
            sc.description_en = ""
        assert got == data


def test_tabular_update_and_bad_packages(session, catalogue, english):
    import zipfile

    from resources import hsds_tabular

    raw = hsds_tabular.export_datapackage(session, "en")
    assert hsds_tabular.import_datapackage(session, SYSTEM, raw, "en") == (0, 2)
    study = session.query(Service).filter_by(name_ja="学習室").one()
    assert study.name_en == "Study room" and study.fees_ja == "月500円" and study.category_codes == [
        "study_support", "young_carers"]

    def zipped(files: dict[str, str]) -> bytes:
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w") as zf:
            for name, text in files.items():
                zf.writestr(name, text)
        return out.getvalue()

    n = session.query(Service).count()
    for bad, message in [
        (b"PK\x03\x04not really a zip", "cannot be read"),
        (zipped({"readme.txt": "hello"}), "no services.csv"),
        (zipped({"services.csv": "id,name,status\r\n"}), "no HSDS services"),
        (zipped({"services.csv": "id,name,status,minimum_age,maximum_age\r\nx,a,active,12,3\r\n"}), "minimum age"),
        (zipped({"services.csv": "id,name,status,minimum_age\r\nx,a,active,ten\r\n"}), "minimum_age"),
        (zipped({"services.csv": "id,name,status\r\nx,a,active\r\n",
                 "schedules.csv": "id,service_id,freq,byday\r\ns,x,DAILY,MO\r\n"}), "schedules"),
    ]:
        with pytest.raises(ResourceError) as exc:
            hsds_tabular.import_datapackage(session, SYSTEM, bad, "en")
        assert message in str(exc.value.message), (message, str(exc.value.message))
    assert session.query(Service).count() == n


def test_import_page_takes_the_tables_zip(client, session, make, login, catalogue):
    from resources import hsds_tabular

    coord = make.staff(Role.coordinator, locale="en")
    raw = hsds_tabular.export_datapackage(session, "ja")
    for s in session.query(Service).all():
        session.delete(s)
    session.commit()
    login(coord)
    assert client.get("/resources/manage/export-tables.zip").status_code == 200
    from tests.conftest import csrf_token_from

    token = csrf_token_from(client.get("/resources/manage/import").get_data(as_text=True))
    resp = client.post("/resources/manage/import", data={
        "csrf_token": token, "kind": "hsds_csv", "locale": "ja", "file": (io.BytesIO(raw), "hsds.zip")},
        content_type="multipart/form-data")
    assert resp.status_code == 302
    assert session.query(Service).count() == 2


def test_commands_export_json_csv_and_the_tables_zip_and_import_open_data(app, session, catalogue, tmp_path):
    import zipfile

    runner = app.test_cli_runner()
    session.commit()
    out = runner.invoke(args=["resources", "export-hsds", "--locale", "en"])
    assert out.exit_code == 0 and len(json.loads(out.output)) == 2
    out = runner.invoke(args=["resources", "export-hsds", "--csv"])
    assert out.exit_code == 0 and out.output.startswith("id,organization_id,name")
    target = tmp_path / "hsds.zip"
    out = runner.invoke(args=["resources", "export-hsds", "--zip", str(target)])
    assert out.exit_code == 0 and "services.csv" in zipfile.ZipFile(target).namelist()
    csv_file = tmp_path / "kosodate.csv"
    csv_file.write_text("名称,住所,受入年齢\r\nこもれび保育園,石川県みまもり市2-2,1歳10か月\r\n", encoding="utf-8")
    out = runner.invoke(args=["resources", "import-opendata", str(csv_file)])
    assert out.exit_code == 0 and "created=1" in out.output
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\r\n1,2\r\n", encoding="utf-8")
    out = runner.invoke(args=["resources", "import-opendata", str(bad)])
    assert out.exit_code != 0 and "名称" in out.output
