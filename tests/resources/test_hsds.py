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
