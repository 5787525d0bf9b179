"""A child's request for help reaches an adult whatever the consent, and a guardian cannot learn of it.

* No consent event deletes a help request: a guardian withdrawing
  ``wellbeing_survey`` leaves it on the counsellor's list and its escalation
  still fires (the check-in answers, which are consent-based, do go).
* The family's disclosure (開示, JSON and PDF) leaves out a child's request for
  help and everything that would reveal one (the alert, the answer that asked,
  the child's note, the signals, the staff's reading and acknowledging of it,
  the source of a case opened from it), under APPI art. 78(1)(i). Its one
  sentence about what may be left out names no category and is the same in
  every disclosure, so two families' downloads cannot be told apart by it.
* The data steward can release it for one request (audited, one person).
"""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest
from flask_babel import force_locale
from sqlalchemy import delete, select

from consent import rights
from consent.models import DataRequest, RequestStatus
from consent.testing import give_consent
from portal.audit.models import AuditEvent
from portal.auth.service import principal_for
from portal.people.models import Role
from portal.scheduler import run_job
from surveys import service as surveys
from surveys.models import HelpAlert, SurveyAssignment, SurveyResponse
from tests.conftest import csrf_token_from
from tests.security.routewalk import content_text, text_of
from tests.surveys.conftest import MONDAY_0830, MOOD_OK, SurveyFactory

NOW = MONDAY_0830 + timedelta(minutes=5)
HELP_WORDS = ("help_request", "talk_request", "critical_answer", '"talk"', "ないしょ", "alert")


def _withdraw_on_the_family_page(app, login, guardian, child, code="wellbeing_survey"):
    fam = login(guardian, app.test_client())
    url = f"/family/consent/children/{child.id}/{code}"
    html = fam.get(url).get_data(as_text=True)
    last = re.search(r'name="last_event" value="([^"]*)"', html).group(1)
    resp = fam.post(url, data={"csrf_token": csrf_token_from(html), "action": "withdraw", "last_event": last,
                               "confirm": "y"})
    assert resp.status_code == 302


def _asks_for_help(session, child):
    """The child answers today's check-in with "I want to talk to someone" and a note."""
    a = session.scalar(select(SurveyAssignment).where(SurveyAssignment.child_id == child.id))
    return surveys.submit(session, principal_for(child), a.id, {**MOOD_OK, "talk": "1", "note": "ないしょ"}, NOW).alert


def test_a_guardians_withdrawal_never_erases_a_childs_request_for_help(app, session, make, login, outbox):
    sv = SurveyFactory(session, make)
    env = sv.setup(grade=5)
    child = env["child"]
    from portal.people.models import Guardian, GuardianChild

    guardian = session.scalar(select(Guardian).join(GuardianChild).where(GuardianChild.child_id == child.id))
    alert = _asks_for_help(session, child)
    assert alert.response_id is not None
    session.commit()
    outbox.clear()

    _withdraw_on_the_family_page(app, login, guardian, child)
    session.expire_all()
    # the consent-based answers are gone ...
    assert session.scalar(select(SurveyResponse).where(SurveyResponse.child_id == child.id)) is None
    # ... the request for help is not
    kept = session.get(HelpAlert, alert.id)
    assert kept is not None and kept.acknowledged_at is None
    html = login(env["counsellor"], app.test_client()).get("/staff/alerts").get_data(as_text=True)
    assert child.name in html
    # and nobody acknowledged it: it escalates to the school lead
    assert run_job("surveys.escalate", alert.created_at + timedelta(minutes=61), app=app)
    session.expire_all()
    assert session.get(HelpAlert, alert.id).escalated_at is not None
    assert env["lead"].email in [m["To"] for m in outbox]


def test_a_purge_of_the_answers_never_cascades_to_the_request_for_help(session, make):
    """The foreign key from an alert to its check-in is SET NULL: no path that deletes answers deletes the alert."""
    sv = SurveyFactory(session, make)
    env = sv.setup(grade=5)
    alert = _asks_for_help(session, env["child"])
    session.commit()
    session.execute(delete(SurveyResponse).where(SurveyResponse.id == alert.response_id))
    session.commit()
    session.expire_all()
    assert session.get(HelpAlert, alert.id) is not None


def _family(session, make, cls, name):
    child = make.child(cls, name=name)
    guardian = make.guardian(child, locale="en")
    give_consent(session, child, "wellbeing_survey")
    return child, guardian


def _disclosure_for(app, session, login, post_form, guardian, child, steward):
    g = principal_for(guardian)
    req = rights.create_request(session, g, child.id, "disclosure")
    rights.answer_request(session, principal_for(steward), req, status=RequestStatus.completed, outcome="Here it is.")
    session.commit()
    fam = login(guardian, app.test_client())
    data = json.loads(fam.get(f"/family/requests/{req.id}/disclosure.json").get_data(as_text=True))
    pdf = fam.get(f"/family/requests/{req.id}/disclosure.pdf").data
    text = content_text(pdf, "application/pdf")
    return req, data, text


def _shape(data: dict) -> dict:
    return {s["key"]: sorted({tuple(r) for r in s["rows"]}) for s in data["sections"]}


def test_two_disclosures_read_the_same_whether_or_not_a_child_asked_for_help(app, session, make, login, post_form):
    from backoffice.casework import service as casework

    sv = SurveyFactory(session, make)
    env = sv.setup(grade=5)
    cls, counsellor, teacher = env["cls"], env["counsellor"], env["teacher"]
    steward = make.staff(Role.data_steward)
    asker, asker_guardian = _family(session, make, cls, "相談 したい")
    other, other_guardian = _family(session, make, cls, "元気 です")
    from surveys import scheduling

    scheduling.open_due(session, MONDAY_0830)
    alert = _asks_for_help(session, asker)
    a = session.scalar(select(SurveyAssignment).where(SurveyAssignment.child_id == other.id))
    surveys.submit(session, principal_for(other), a.id, MOOD_OK, NOW)
    session.commit()
    # the counsellor reads the list and answers the request; the teacher opens a case from it
    staff = login(counsellor, app.test_client())
    assert "相談 したい" in staff.get("/staff/alerts").get_data(as_text=True)
    surveys.acknowledge(session, principal_for(counsellor), alert.id, "Talked at lunch.", NOW + timedelta(minutes=20))
    casework.open_from_alert(session, principal_for(teacher), alert.id)
    session.commit()

    _req_a, with_help, pdf_a = _disclosure_for(app, session, login, post_form, asker_guardian, asker, steward)
    _req_b, without, pdf_b = _disclosure_for(app, session, login, post_form, other_guardian, other, steward)

    # the same sentence about what may be left out, in the JSON and in the PDF, naming no category
    assert with_help["withheld_notice"] == without["withheld_notice"]
    notice = with_help["withheld_notice"]
    assert "78" in notice and "33" not in notice and "help" not in notice.lower()
    flat = lambda t: re.sub(r"\s+", "", t)  # noqa: E731 (the PDF wraps lines)
    assert flat(notice) in flat(pdf_a) and flat(notice) in flat(pdf_b)
    # neither shows the request, in any section, the access log or the PDF
    for data, pdf in ((with_help, pdf_a), (without, pdf_b)):
        dumped = json.dumps(data, ensure_ascii=False)
        for word in HELP_WORDS:
            assert word not in dumped, word
            assert word not in pdf, word
        assert all(not k.startswith("_") for s in data["sections"] for r in s["rows"] for k in r)
        # the counsellor's reading and answering of the request are not in "who looked at the record"
        assert Role.counsellor.value not in {r["role"] for r in data["access_log"]}
    # the check-in rows have the same shape for both children
    checkins = {k: v for k, v in _shape(with_help).items() if k == "surveys.checkins"}
    assert checkins == {k: v for k, v in _shape(without).items() if k == "surveys.checkins"}
    # the data steward (and only the steward) sees what is held back, to decide on a release
    assert rights.withheld_summary(session, asker.id) and not rights.withheld_summary(session, other.id)
    # the case opened from the request reads as one a member of staff opened
    (case_row,) = next(s for s in with_help["sections"] if s["key"] == "casework")["rows"]
    assert case_row["source"] == "manual"


def test_a_steward_release_puts_the_request_for_help_in_the_familys_disclosure(app, session, make, login, post_form):
    sv = SurveyFactory(session, make)
    env = sv.setup(grade=5)
    child, counsellor = env["child"], env["counsellor"]
    from portal.people.models import Guardian, GuardianChild

    guardian = session.scalar(select(Guardian).join(GuardianChild).where(GuardianChild.child_id == child.id))
    guardian.locale = "en"
    steward = make.staff(Role.data_steward, locale="en")
    alert = _asks_for_help(session, child)
    surveys.acknowledge(session, principal_for(counsellor), alert.id, "Talked at lunch.", NOW + timedelta(minutes=20))
    req = rights.create_request(session, principal_for(guardian), child.id, "disclosure")
    session.commit()

    st = login(steward, app.test_client())
    page = st.get(f"/staff/consent/requests/{req.id}").get_data(as_text=True)
    assert "Release these records to the family" in page and "Wellbeing check-ins: " in page
    # without the confirmation nothing is released
    resp = post_form(f"/staff/consent/requests/{req.id}/release", {}, page=f"/staff/consent/requests/{req.id}", c=st)
    assert resp.status_code == 302
    session.expire_all()
    assert session.get(DataRequest, req.id).withheld_released_at is None
    resp = post_form(f"/staff/consent/requests/{req.id}/release", {"confirm": "y"},
                     page=f"/staff/consent/requests/{req.id}", c=st)
    assert resp.status_code == 302
    session.expire_all()
    assert session.get(DataRequest, req.id).withheld_released_at is not None
    audit_row = session.scalar(select(AuditEvent).where(AuditEvent.action == "consent.disclosure_released"))
    assert audit_row.child_id == child.id and audit_row.role == Role.data_steward.value
    assert audit_row.detail["request_id"] == req.id and audit_row.detail["items"] >= 1
    rights.answer_request(session, principal_for(steward), session.get(DataRequest, req.id),
                          status=RequestStatus.completed, outcome="Here it is.")
    session.commit()

    fam = login(guardian, app.test_client())
    data = json.loads(fam.get(f"/family/requests/{req.id}/disclosure.json").get_data(as_text=True))
    checkins = next(s for s in data["sections"] if s["key"] == "surveys.checkins")["rows"]
    assert any(r["record"] == "help_request" and r["acknowledged_at"] for r in checkins)
    answer = next(r for r in checkins if r["record"] == "answer")
    assert json.loads(answer["answers"])["talk"] == 1 and "ないしょ" in answer["free_text"]
    assert Role.counsellor.value in {r["role"] for r in data["access_log"]}
    # the sentence is the same as in any other disclosure
    with app.test_request_context(), force_locale("en"):
        assert data["withheld_notice"] == str(rights.WITHHELD_NOTICE)
    # staff names never appear, released or not
    assert counsellor.name not in json.dumps(data, ensure_ascii=False)


def _crawl(client, start=("/", "/family/", "/family/requests", "/family/consent/")) -> dict[str, str]:
    """Every page and download a signed-in family reaches by links (GET only), by path, as text."""
    seen: dict[str, str] = {}
    todo = list(start)
    while todo and len(seen) < 150:
        url = todo.pop(0)
        if url in seen:
            continue
        resp = client.get(url)
        body = text_of(resp)
        seen[url] = f"{resp.status_code}\n{body}"
        if resp.mimetype == "text/html":
            for href in re.findall(r'href="(/[^"#]*)"', body):
                if not href.startswith("/static") and href not in seen:
                    todo.append(href.replace("&amp;", "&"))
    return seen


def _normalised(pages: dict[str, str], *replace: str) -> dict[str, str]:
    def norm(text: str) -> str:
        for r in replace:
            text = text.replace(r, "«x»")
        text = re.sub(r'name="csrf_token"[^>]*>', "", text)
        text = re.sub(r"[0-9a-f]{24,}", "«h»", text)
        return re.sub(r"\d+", "#", text)

    return {norm(u): norm(t) for u, t in pages.items()}


def test_a_family_cannot_tell_from_any_page_download_or_email_that_their_child_asked_for_help(
    app, session, make, login, outbox
):
    """Two families, one child asked for help and one did not: every page, download and e-mail is the same."""
    from backoffice.casework import service as casework
    from surveys import scheduling

    sv = SurveyFactory(session, make)
    env = sv.setup(grade=5)
    cls, counsellor, teacher = env["cls"], env["counsellor"], env["teacher"]
    steward = make.staff(Role.data_steward)
    same = {"name": "見守 花子", "name_kana": "ミマモリ ハナコ", "sex": "F", "address": "みまもり町1-1"}
    families = []
    for _ in range(2):
        child = make.child(cls, **same)
        guardian = make.guardian(child, name="見守 保護者", locale="en")
        give_consent(session, child, "wellbeing_survey")
        families.append((child, guardian))
    (asker, asker_g), (other, other_g) = families
    scheduling.open_due(session, MONDAY_0830)
    alert = _asks_for_help(session, asker)
    a = session.scalar(select(SurveyAssignment).where(SurveyAssignment.child_id == other.id))
    surveys.submit(session, principal_for(other), a.id, MOOD_OK, NOW)
    session.commit()
    outbox.clear()
    # the adults act on the request; the other child gets a case a teacher opened by hand
    assert "見守 花子" in login(counsellor, app.test_client()).get("/staff/alerts").get_data(as_text=True)
    surveys.acknowledge(session, principal_for(counsellor), alert.id, "SENTINEL-ACK", NOW + timedelta(minutes=20))
    casework.open_from_alert(session, principal_for(teacher), alert.id)
    casework.open_case(session, principal_for(teacher), other.id)
    for child, guardian in families:
        req = rights.create_request(session, principal_for(guardian), child.id, "disclosure")
        rights.answer_request(session, principal_for(steward), req, status=RequestStatus.completed, outcome="Here.")
    session.commit()

    crawls = []
    for child, guardian in families:
        pages = _crawl(login(guardian, app.test_client()))
        assert any(u.endswith("disclosure.json") for u in pages) and any(u.endswith("disclosure.pdf") for u in pages)
        crawls.append(_normalised(pages, guardian.email, child.student_no))
    assert crawls[0].keys() == crawls[1].keys()
    for url in crawls[0]:
        assert crawls[0][url] == crawls[1][url], url
    joined = "\n".join(crawls[0].values())
    for word in ("SENTINEL-ACK", "ないしょ", "help_request", "talk_request"):
        assert word not in joined
    # no e-mail about it to either family
    assert not {asker_g.email, other_g.email} & {m["To"] for m in outbox}


def test_a_release_is_recorded_once_even_when_sent_twice(session, make):
    from consent.service import AlreadyRecorded

    child = make.child(grade=5)
    guardian = make.guardian(child)
    steward = principal_for(make.staff(Role.data_steward))
    req = rights.create_request(session, principal_for(guardian), child.id, "disclosure")
    rights.release_withheld(session, steward, req)
    with pytest.raises(AlreadyRecorded):
        rights.release_withheld(session, steward, req)
    rows = session.scalars(select(AuditEvent).where(AuditEvent.action == "consent.disclosure_released")).all()
    assert len(rows) == 1 and session.get(DataRequest, req.id).withheld_released_at is not None
