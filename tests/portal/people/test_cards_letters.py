"""Sign-in card sheets and enrolment letters: services, PDFs and pages."""

from __future__ import annotations

from sqlalchemy import select

from portal.audit.models import AuditEvent
from portal.auth import service as auth
from portal.auth.service import principal_for
from portal.people import cards, letters
from portal.people.models import Child, EnrolmentCode
from tests.conftest import PASSWORD
from tests.portal.people.conftest import pdf_pages, pins_by_student_no

CARD_URL = "http://school.example/student/card"


def _class_of(make, setup, n):
    return [make.child(setup["class_a"], name=f"見守 花子{i}", name_kana="ミマモリ ハナコ") for i in range(n)]


# -- services -------------------------------------------------------------------


def test_issue_cards_gives_new_pins_and_cards_and_old_ones_stop_working(app, make, session, school_setup):
    kids = _class_of(make, school_setup, 3)
    first = cards.issue_cards(session, principal_for(school_setup["teacher_a"]), school_setup["class_a"],
                              secret_key="k", card_url=CARD_URL)
    second = cards.issue_cards(session, principal_for(school_setup["teacher_a"]), school_setup["class_a"],
                               secret_key="k", card_url=CARD_URL)
    assert [c.child_id for c in second] == [k.id for k in kids]
    kid, old, new = kids[0], first[0], second[0]
    assert auth.student_check_pin(session, kid.student_no, new.pin).ok
    if old.pin != new.pin:
        assert not auth.student_check_pin(session, kid.student_no, old.pin).ok
    auth.clear_delay(session.get(Child, kid.id))  # the old PIN's failure delays the next try (cards too)
    # the token is in the fragment, which the browser never sends (auth.views.student_card)
    old_token = old.url.split("#t=")[1]
    new_token = new.url.split("#t=")[1]
    assert new.url.startswith(CARD_URL + "#t=")
    assert not auth.student_check_card(session, "k", old_token).ok
    assert auth.student_check_card(session, "k", new_token).obj.id == kid.id
    # only digests are stored
    assert session.get(Child, kid.id).card_token_digest != new_token


def test_issue_cards_is_audited_with_counts_only(app, make, session, school_setup):
    _class_of(make, school_setup, 4)
    cards.issue_cards(session, principal_for(school_setup["lead"]), school_setup["class_a"], secret_key="k", card_url=CARD_URL)
    ev = session.scalar(select(AuditEvent).where(AuditEvent.action == "people.cards_issued"))
    assert ev.role == "school_lead"
    assert ev.detail == {"class_id": school_setup["class_a"].id, "school_id": school_setup["school"].id, "cards": 4}


def test_card_sheet_has_eight_cards_a_page_with_every_child(app, make, session, school_setup):
    kids = _class_of(make, school_setup, 17)
    issued = cards.issue_cards(session, principal_for(school_setup["teacher_a"]), school_setup["class_a"],
                               secret_key="k", card_url=CARD_URL)
    pdf = cards.render_card_sheet(school_setup["school"], school_setup["class_a"], issued)
    pages = pdf_pages(pdf)
    assert len(pages) == 3  # 8 + 8 + 1
    assert [p.count("T0") for p in pages] == [8, 8, 1]
    assert "見守 花子0" in pages[0] and "2年 1組" in pages[0]
    pins = pins_by_student_no(pdf, [k.student_no for k in kids])
    assert pins == {c.student_no: c.pin for c in issued}


def test_card_labels_follow_the_childs_language(app, make, session, school_setup):
    make.child(school_setup["class_a"], locale="en")
    issued = cards.issue_cards(session, principal_for(school_setup["teacher_a"]), school_setup["class_a"],
                               secret_key="k", card_url=CARD_URL)
    text = pdf_pages(cards.render_card_sheet(school_setup["school"], school_setup["class_a"], issued))[0]
    assert "Grade 2, class 1" in text


def test_letters_only_for_families_without_an_account(app, make, session, school_setup):
    registered, unknown_family, known_unregistered = _class_of(make, school_setup, 3)
    make.guardian(registered)  # has a password: an account
    make.guardian(known_unregistered, password=None, email=None, locale="en")
    out = letters.issue_letters(session, principal_for(school_setup["lead"]), school_setup["class_a"], secret_key="k", days=30)
    assert {lt.child_id for lt in out} == {unknown_family.id, known_unregistered.id}
    by_child = {lt.child_id: lt for lt in out}
    assert by_child[known_unregistered.id].locale == "en"
    assert by_child[unknown_family.id].locale == "ja"
    pdf = letters.render_letters(session, school_setup["school"], school_setup["class_a"], out, register_url="http://x/family/register")
    pages = pdf_pages(pdf)
    assert len(pages) == 2
    texts = {lt.child_id: next(p for p in pages if lt.code in p) for lt in out}
    assert "Your enrolment code" in texts[known_unregistered.id]
    assert "http://x/family/register" in texts[unknown_family.id]
    ev = session.scalar(select(AuditEvent).where(AuditEvent.action == "people.letters_issued"))
    assert ev.detail["letters"] == 2 and ev.detail["class_id"] == school_setup["class_a"].id


def test_printed_code_registers_a_guardian_and_reprinting_retires_the_old_code(app, make, session, school_setup):
    (kid,) = _class_of(make, school_setup, 1)
    lead = principal_for(school_setup["lead"])
    (old,) = letters.issue_letters(session, lead, school_setup["class_a"], secret_key="k", days=30)
    (new,) = letters.issue_letters(session, lead, school_setup["class_a"], secret_key="k", days=30)
    assert auth.find_usable_code(session, "k", old.code) is None
    reg = auth.register_guardian(session, "k", new.code, name="見守 母", email="m@example.invalid", password=PASSWORD, locale="ja")
    g = reg.guardian
    assert reg.outcome == "created" and [link.child_id for link in g.child_links] == [kid.id]
    # until the address is proven the account does not count: the school can still send a letter
    assert [lt.child_id for lt in letters.issue_letters(session, lead, school_setup["class_a"], secret_key="k", days=30)] == [kid.id]
    assert auth.confirm_email(session, "k", reg.token) is not None
    # the family now has an account: no more letters
    assert letters.issue_letters(session, lead, school_setup["class_a"], secret_key="k", days=30) == []
    assert session.scalar(select(EnrolmentCode).where(EnrolmentCode.used_at.is_not(None))).child_id == kid.id
