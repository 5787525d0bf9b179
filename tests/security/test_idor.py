"""Object-level access (IDOR): a URL naming someone else's object is refused, and nothing changes.

``tests/test_access_matrix.py`` proves who may use each *route*. This file
proves who may use each *object*: every route that names an object in its
URL (a child, a case, an assessment, a flag, a consent event, a data
request, a check-in, a campaign letter, ...) is listed in
:data:`OBJECT_ROUTES` with how to build such an object for one child (the
*victim*, in class B1 of school B) and whose it is. For every role the
route allows, people of that role who are out of the object's scope ask for
it: a guardian of another family, another child, a teacher of another class
(same school and another school), a school lead, counsellor and social
worker of another school, and the municipality roles that never see a
single child (coordinator, analyst, administrator). Each gets 403 or 404,
the response names no one, no table changes and no read of the victim's
record is logged. Where it is a page, someone in scope gets it, so the test
is not passing for the wrong reason.

Default deny for new routes: :func:`test_every_id_route_is_listed` walks
``app.url_map`` and fails on any route with a path argument that is in
neither :data:`OBJECT_ROUTES` nor :data:`UNSCOPED` (with its reason).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta

import pytest
from sqlalchemy import func, select

from consent.testing import give_consent
from portal.auth.access import roles_for
from portal.auth.principal import SYSTEM
from portal.extensions import db
from portal.orm import utcnow
from portal.people.models import Role, SchoolKind
from tests.conftest import csrf_token_from, sign_in_as

VICTIM_NAME = "標的 花子"
VICTIM_KANA = "ヒョウテキ ハナコ"
VICTIM_GUARDIAN = "標的 保護者"
PURPOSES = ("data_linkage", "wellbeing_survey", "share_with_partners")


# -- the world: two schools, three classes, the victim in class B1 ------------------


@dataclass
class World:
    school_a: object
    school_b: object
    cls_a: object
    cls_v: object
    cls_b2: object
    victim: object
    child_b2: object
    child_a: object
    guardian_v: object
    guardian_a: object
    teacher_v: object
    teacher_b2: object
    teacher_a: object
    lead_b: object
    lead_a: object
    counsellor_b: object
    counsellor_a: object
    ssw_b: object
    ssw_a: object
    coordinator: object
    analyst: object
    administrator: object
    steward: object
    built: dict = field(default_factory=dict)

    def once(self, key: str, make: Callable[[], object]):
        if key not in self.built:
            self.built[key] = make()
        return self.built[key]


def build_world(make, session) -> World:
    school_a = make.school(SchoolKind.elementary, name="甲テスト小学校")
    school_b = make.school(SchoolKind.junior_high, name="乙テスト中学校")
    teacher_a, cls_a = make.teacher_with_class(3, school=school_a)
    teacher_v = make.staff(Role.teacher, schools=[school_b])
    cls_v = make.school_class(school_b, grade=8, name="1", teacher=teacher_v)
    teacher_b2 = make.staff(Role.teacher, schools=[school_b])
    cls_b2 = make.school_class(school_b, grade=8, name="2", teacher=teacher_b2)
    victim = make.child(cls_v, name=VICTIM_NAME, name_kana=VICTIM_KANA, pin="135246")
    child_b2 = make.child(cls_b2, pin="246135")
    child_a = make.child(cls_a, pin="362514")
    guardian_v = make.guardian(victim, name=VICTIM_GUARDIAN)
    guardian_a = make.guardian(child_a)
    make.guardian(child_b2)
    for child in (victim, child_a, child_b2):
        give_consent(session, child, *PURPOSES)
    w = World(
        school_a=school_a, school_b=school_b, cls_a=cls_a, cls_v=cls_v, cls_b2=cls_b2,
        victim=victim, child_b2=child_b2, child_a=child_a, guardian_v=guardian_v, guardian_a=guardian_a,
        teacher_v=teacher_v, teacher_b2=teacher_b2, teacher_a=teacher_a,
        lead_b=make.staff(Role.school_lead, schools=[school_b]),
        lead_a=make.staff(Role.school_lead, schools=[school_a]),
        counsellor_b=make.staff(Role.counsellor, schools=[school_b]),
        counsellor_a=make.staff(Role.counsellor, schools=[school_a]),
        ssw_b=make.staff(Role.social_worker, schools=[school_b]),
        ssw_a=make.staff(Role.social_worker, schools=[school_a]),
        coordinator=make.staff(Role.coordinator),
        analyst=make.staff(Role.analyst),
        administrator=make.staff(Role.administrator),
        steward=make.staff(Role.data_steward),
    )
    session.flush()
    return w


# Who asks, by whose object it is. "child": a record about the victim;
# "school": a record of school B (a meeting, a schedule); "class": class B1.
_MUNICIPAL = {"coordinator": ["coordinator"], "analyst": ["analyst"], "administrator": ["administrator"]}
_FAMILY = {"guardian": ["guardian_a"], "student": ["child_a", "child_b2"]}
ATTACKERS: dict[str, dict[str, list[str]]] = {
    "child": {
        "teacher": ["teacher_b2", "teacher_a"], "school_lead": ["lead_a"], "counsellor": ["counsellor_a"],
        "social_worker": ["ssw_a"], **_MUNICIPAL, **_FAMILY,
    },
    "class": {
        "teacher": ["teacher_b2", "teacher_a"], "school_lead": ["lead_a"], "counsellor": ["counsellor_a"],
        "social_worker": ["ssw_a"], **_MUNICIPAL, **_FAMILY,
    },
    # The coordinator works for the whole municipality: every school's
    # schedules and closed days are theirs, so they are no attacker here.
    "school": {
        "teacher": ["teacher_a"], "school_lead": ["lead_a"], "counsellor": ["counsellor_a"],
        "social_worker": ["ssw_a"], "analyst": ["analyst"], "administrator": ["administrator"], **_FAMILY,
    },
}
# Someone in scope, to show the same request is not refused for them.
INSIDERS = {
    "guardian": "guardian_v", "student": "victim", "teacher": "teacher_v", "school_lead": "lead_b",
    "counsellor": "counsellor_b", "social_worker": "ssw_b", "data_steward": "steward", "coordinator": "coordinator",
}


# -- the objects, built for the victim -------------------------------------------------


def _case(w: World, s):
    from backoffice.casework import service

    return w.once("case", lambda: service.open_case(s, SYSTEM, w.victim.id))


def _flag(w: World, s):
    from backoffice.screening.models import Flag, FlagSource

    def make():
        flag = Flag(child_id=w.victim.id, source=FlagSource.rule, reason_key="rule:absence", rule_code="absence",
                    reasons=[{"indicator": "absence_days_3m", "fact": 12, "params": {"op": ">=", "value": 10}}],
                    urgency=2, created_at=utcnow(), needs_linkage=True, needs_survey=False)
        s.add(flag)
        s.flush()
        return flag

    return w.once("flag", make)


def _plan_action(w: World, s):
    from backoffice.casework.models import PlanAction, SupportPlan

    def make():
        case = _case(w, s)
        plan = SupportPlan(case_id=case.id, child_id=w.victim.id, created_by_id=w.lead_b.id,
                           review_date=date.today() + timedelta(days=30))
        s.add(plan)
        s.flush()
        action = PlanAction(plan_id=plan.id, case_id=case.id, child_id=w.victim.id, text="家庭訪問",
                            owner_id=w.teacher_v.id, due_on=date.today() + timedelta(days=7))
        s.add(action)
        s.flush()
        return action

    return w.once("action", make)


def _meeting(w: World, s):
    from backoffice.casework.models import Meeting, MeetingItem

    def make():
        case = _case(w, s)
        meeting = Meeting(school_id=w.school_b.id, held_on=date.today() + timedelta(days=3), created_by_id=w.lead_b.id)
        s.add(meeting)
        s.flush()
        s.add(MeetingItem(meeting_id=meeting.id, case_id=case.id, child_id=w.victim.id))
        s.flush()
        return meeting

    return w.once("meeting", make)


def _referral(w: World, s):
    from backoffice.casework.models import Referral, ReferralTarget

    def make():
        case = _case(w, s)
        r = Referral(case_id=case.id, child_id=w.victim.id, school_id=w.school_b.id, target=ReferralTarget.counsellor,
                     receiver_id=w.counsellor_b.id, reason="相談", created_by_id=w.lead_b.id,
                     answer_due=date.today() + timedelta(days=7))
        s.add(r)
        s.flush()
        return r

    return w.once("referral", make)


def _alert(w: World, s):
    from surveys.models import AlertReason, HelpAlert

    def make():
        a = HelpAlert(child_id=w.victim.id, school_id=w.school_b.id, class_id=w.cls_v.id, reason=AlertReason.talk_request)
        s.add(a)
        s.flush()
        return a

    return w.once("alert", make)


def _schedule(w: World, s, instrument: str = "mood"):
    from surveys.models import Frequency
    from tests.surveys.conftest import SurveyFactory

    # A family questionnaire is termly and stays open for days; a check-in is daily.
    kw = {"frequency": Frequency.termly, "days_open": 14} if instrument == "family" else {}
    return w.once(f"schedule:{instrument}", lambda: SurveyFactory(s, None).schedule(w.cls_v, instrument, **kw))


def _assignment(w: World, s, instrument: str):
    from tests.surveys.conftest import open_now

    return w.once(f"assignment:{instrument}", lambda: open_now(s, _schedule(w, s, instrument), w.victim))


def _closed_day(w: World, s):
    from surveys.models import ClosedDay

    def make():
        d = ClosedDay(school_id=w.school_b.id, day=date(2026, 11, 20), reason="行事")
        s.add(d)
        s.flush()
        return d

    return w.once("closed_day", make)


def _consent_event(w: World, s, party: str = "guardian"):
    from consent.models import ConsentEvent, Party

    return s.scalar(select(ConsentEvent.id).where(ConsentEvent.child_id == w.victim.id, ConsentEvent.party == Party(party))
                    .order_by(ConsentEvent.id).limit(1))


def _data_request(w: World, s):
    from consent.models import DataRequest, RequestKind

    def make():
        r = DataRequest(child_id=w.victim.id, guardian_id=w.guardian_v.id, kind=RequestKind.disclosure,
                        due_on=date.today() + timedelta(days=30), disclosure_ready=True)
        s.add(r)
        s.flush()
        return r

    return w.once("data_request", make)


def _campaign(w: World, s):
    from resources.models import Campaign

    def make():
        c = Campaign(title_ja="子育て支援のお知らせ", title_en="Support for families", body_ja="本文", body_en="Body",
                     created_by_id=w.coordinator.id)
        s.add(c)
        s.flush()
        return c

    return w.once("campaign", make)


def _delivery(w: World, s):
    from resources.models import Channel, Delivery

    def make():
        d = Delivery(campaign_id=_campaign(w, s).id, guardian_id=w.guardian_v.id, channel=Channel.inbox,
                     class_id=w.cls_v.id, child_id=w.victim.id)
        s.add(d)
        s.flush()
        return d

    return w.once("delivery", make)


@dataclass(frozen=True)
class Target:
    """How to name one of the victim's objects in a route's URL."""

    owner: str  # "child", "school" or "class": whose scope decides
    values: Callable[[World, object], dict]  # URL values
    data: Callable[[World, object], dict] | None = None  # POST form fields besides the CSRF token
    control: bool = True  # a GET by someone in scope is not refused
    # Extra URL values mixing the attacker's own object with the victim's
    # (a guardian's own child id with the victim's consent event).
    mixed: Callable[[World, object], dict] | None = None


def _case_id(w, s):
    return {"case_id": _case(w, s).id}


def _child_id(w, s):
    return {"child_id": w.victim.id}


OBJECT_ROUTES: dict[str, Target] = {
    # family and student pages about a child
    "family.child": Target("child", _child_id),
    "consent.family_access": Target("child", _child_id),
    "consent.family_history": Target("child", _child_id),
    "consent.family_purpose": Target("child", lambda w, s: {"child_id": w.victim.id, "code": "data_linkage"},
                                     data=lambda w, s: {"decision": "withdraw", "confirm": "y"}),
    "consent.family_receipt": Target(
        "child", lambda w, s: {"child_id": w.victim.id, "event_id": _consent_event(w, s), "fmt": "json"},
        mixed=lambda w, s: {"child_id": w.child_a.id, "event_id": _consent_event(w, s), "fmt": "json"}),
    "consent.family_disclosure": Target("child", lambda w, s: {"request_id": _data_request(w, s).id, "fmt": "json"}),
    "consent.student_receipt": Target("child", lambda w, s: {"event_id": _consent_event(w, s, "child"), "fmt": "pdf"}),
    "surveys.checkin": Target("child", lambda w, s: {"assignment_id": _assignment(w, s, "mood").id},
                              data=lambda w, s: {"weather": "4", "sleep": "3", "breakfast": "3", "friends": "3",
                                                 "worries": "0", "talk": "0"}),
    "surveys.checkin_done": Target("child", lambda w, s: {"assignment_id": _assignment(w, s, "mood").id}, control=False),
    "surveys.family_answer": Target("child", lambda w, s: {"assignment_id": _assignment(w, s, "family").id}),
    "resources.message": Target("child", lambda w, s: {"delivery_id": _delivery(w, s).id}),
    # staff pages about a child
    "linkage.child_records": Target("child", _child_id),
    "screening.child": Target("child", _child_id, data=lambda w, s: {"reason": "気になる様子", "urgency": "2"}),
    "screening.resolve": Target("child", lambda w, s: {"flag_id": _flag(w, s).id},
                                data=lambda w, s: {"outcome": "not_needed", "reason": "確認済み"}),
    "surveys.child": Target("child", _child_id),
    "surveys.alert_ack": Target("child", lambda w, s: {"alert_id": _alert(w, s).id}, data=lambda w, s: {"note": "本人と話しました"}),
    "casework.case": Target("child", _case_id),
    "casework.assess": Target("child", _case_id),
    "casework.plan": Target("child", _case_id),
    "casework.close": Target("child", _case_id, data=lambda w, s: {"close-version": "1", "close-reason": "no_concern"}),
    "casework.continue_support": Target("child", _case_id, data=lambda w, s: {
        "cont-version": "1", "cont-review_date": (date.today() + timedelta(days=30)).isoformat()}),
    "casework.reopen": Target("child", _case_id, data=lambda w, s: {"version": "1"}),
    "casework.review": Target("child", _case_id, data=lambda w, s: {"version": "1"}),
    "casework.refer": Target("child", _case_id, data=lambda w, s: {"target": "counsellor", "receiver_id": str(w.counsellor_b.id),
                                                                 "reason": "相談"}),
    "casework.action_done": Target("child", lambda w, s: {"action_id": _plan_action(w, s).id}),
    "casework.referral_respond": Target("child", lambda w, s: {"referral_id": _referral(w, s).id},
                                        data=lambda w, s: {"accept": "Accept"}),
    "casework.referral_done": Target("child", lambda w, s: {"referral_id": _referral(w, s).id}),
    "casework.referral_revoke": Target("child", lambda w, s: {"referral_id": _referral(w, s).id}),
    # school records
    "casework.meeting": Target("school", lambda w, s: {"meeting_id": _meeting(w, s).id}),
    "casework.meeting_pdf": Target("school", lambda w, s: {"meeting_id": _meeting(w, s).id}),
    "casework.decide": Target("school", lambda w, s: {"meeting_id": _meeting(w, s).id},
                              data=lambda w, s: {"case_id": str(_case(w, s).id), f"d{_case(w, s).id}-version": "1",
                                                 f"d{_case(w, s).id}-decision": "close"}),
    "surveys.schedule_edit": Target("school", lambda w, s: {"schedule_id": _schedule(w, s).id}),
    "surveys.schedule_stop": Target("school", lambda w, s: {"schedule_id": _schedule(w, s).id}),
    "surveys.closed_day_remove": Target("school", lambda w, s: {"closed_day_id": _closed_day(w, s).id}),
    "resources.letters_zip": Target("school", lambda w, s: {"campaign_id": _campaign(w, s).id, "school_id": w.school_b.id}),
    # class records
    "people.cards": Target("class", lambda w, s: {"class_id": w.cls_v.id}, data=lambda w, s: {"confirm": "y"}),
    "people.letters": Target("class", lambda w, s: {"class_id": w.cls_v.id}, data=lambda w, s: {"confirm": "y"}),
    "people.sign_in_status": Target("class", lambda w, s: {"class_id": w.cls_v.id}),
    # a class the attacker manages with the victim's child id in it: 404, nothing changed
    "people.revoke_card": Target("class", lambda w, s: {"class_id": w.cls_v.id, "child_id": w.victim.id},
                                 mixed=lambda w, s: {"class_id": w.cls_b2.id, "child_id": w.victim.id}),
    "people.clear_delay": Target("class", lambda w, s: {"class_id": w.cls_v.id, "child_id": w.victim.id},
                                 mixed=lambda w, s: {"class_id": w.cls_b2.id, "child_id": w.victim.id}),
    "resources.letters_pdf": Target("class", lambda w, s: {"campaign_id": _campaign(w, s).id, "class_id": w.cls_v.id}),
}

# Routes with a path argument that names nothing in a child's, school's or
# class's scope: who may use them is decided by role alone (and proved by
# tests/test_access_matrix.py), each for the reason given.
_STEWARD_ONLY = "data steward only, who sees every child's record by role"
_COORDINATOR_CATALOGUE = "coordinator only: the municipality-wide resource catalogue and campaigns, no child data"
_PUBLIC_CATALOGUE = "the public resource catalogue: the same for everyone"
_STAFF_ACCOUNTS = "administrator only: staff accounts, no child data"
UNSCOPED: dict[str, str] = {
    "admin.staff_active": _STAFF_ACCOUNTS,
    "admin.staff_edit": _STAFF_ACCOUNTS,
    "admin.staff_reset_password": _STAFF_ACCOUNTS,
    "admin.staff_reset_totp": _STAFF_ACCOUNTS,
    "auth.password_reset": "an expiring, single-use e-mailed token, kept as a digest (tests/security/test_registration.py)",
    "auth.confirm_email": "an expiring, single-use e-mailed token, kept as a digest (tests/security/test_registration.py)",
    "auth.join_account": "an expiring, single-use e-mailed token, kept as a digest (tests/security/test_registration.py)",
    "auth.add_child_link": "an e-mailed token that works only for the account it was sent to, signed in "
                           "(tests/security/test_registration.py)",
    "consent.staff_disclosure": _STEWARD_ONLY,
    "consent.staff_request": _STEWARD_ONLY,
    "consent.staff_release": _STEWARD_ONLY,
    "consent.staff_publish": "a purpose code, municipality-wide; data steward only",
    "consent.staff_purpose_edit": "a purpose code, municipality-wide; data steward only",
    "consent.student_purpose": "a purpose code; the student's own consent only",
    "linkage.batch": _STEWARD_ONLY,
    "linkage.rollback": _STEWARD_ONLY,
    "linkage.job": _STEWARD_ONLY,
    "linkage.job_status": _STEWARD_ONLY,
    "linkage.review_item": _STEWARD_ONLY,
    "screening.model_switch": _STEWARD_ONLY,
    "screening.model_card": "a screening model's card: aggregate metrics, no child named",
    "screening.rule_set": "municipality-wide rule sets: no child data",
    "screening.rule_set_approve": "municipality-wide rule sets: no child data",
    "screening.rule_set_reject": "municipality-wide rule sets: no child data",
    "screening.rule_set_submit": "municipality-wide rule sets: no child data",
    "resources.archive": _COORDINATOR_CATALOGUE,
    "resources.campaign": _COORDINATOR_CATALOGUE,
    "resources.campaign_failed_to_letters": _COORDINATOR_CATALOGUE,
    "resources.campaign_preview": _COORDINATOR_CATALOGUE,
    "resources.campaign_schedule": _COORDINATOR_CATALOGUE,
    "resources.campaign_unschedule": _COORDINATOR_CATALOGUE,
    "resources.edit_campaign": _COORDINATOR_CATALOGUE,
    "resources.edit_service": _COORDINATOR_CATALOGUE,
    "resources.publish": _COORDINATOR_CATALOGUE,
    "resources.verify": _COORDINATOR_CATALOGUE,
    "resources.detail": _PUBLIC_CATALOGUE,
    "resources.calendar": _PUBLIC_CATALOGUE,
    "resources.favourite": _PUBLIC_CATALOGUE + " (the favourite is the signed-in user's own)",
}


# Known gaps, each owned by its domain: the refusal is there (nothing changes,
# nobody is named) but its answer is not 403/404. The main test tolerates the
# status given here and still checks everything else;
# test_known_gaps_are_still_open fails as soon as one is fixed, so the entry
# is removed and the strict check applies.
KNOWN_GAPS: dict[str, tuple[tuple[int, ...], str]] = {}


@dataclass(frozen=True)
class FormTarget:
    """A route that takes an object id in its form rather than its URL."""

    owner: str
    method: str
    data: Callable[[World, object], dict]
    refused: tuple[int, ...] = (403, 404)


FORM_ROUTES: dict[str, FormTarget] = {
    "casework.start": FormTarget("child", "POST", lambda w, s: {"flag_id": str(_flag(w, s).id)}),
    "casework.start#alert": FormTarget("child", "POST", lambda w, s: {"alert_id": str(_alert(w, s).id)}),
    # The child is a choice among the guardian's own children: another
    # family's child fails validation (422) and nothing is recorded.
    "consent.family_requests": FormTarget(
        "child", "POST", lambda w, s: {"child_id": str(w.victim.id), "kind": "disclosure", "details": "開示"},
        refused=(403, 404, 422)),
}

# -- helpers ------------------------------------------------------------------------------


def _rules(app) -> dict:
    out: dict = {}
    for rule in app.url_map.iter_rules():
        if rule.arguments and not rule.endpoint.endswith("static"):
            out.setdefault(rule.endpoint, []).append(rule)
    return out


def _snapshot(session) -> dict:
    """Every row of every table but the audit log (checked separately)."""
    session.expire_all()
    out = {}
    for table in db.metadata.sorted_tables:
        if table.name == "audit_event":
            continue
        pk = list(table.primary_key.columns) or list(table.columns)
        out[table.name] = [tuple(r) for r in session.execute(select(table).order_by(*pk)).all()]
    return out


def _diff(before: dict, after: dict) -> list[str]:
    return [name for name in before if before[name] != after[name]]


def _reads_of_victim(session, w: World) -> int:
    from portal.audit.models import AuditEvent

    return session.scalar(select(func.count()).select_from(AuditEvent).where(
        AuditEvent.child_id == w.victim.id, AuditEvent.action == "child.read"))


def _client_as(app, who):
    c = app.test_client()
    sign_in_as(c, who)
    # Any page carries the session's CSRF token (the language form in the header).
    token = csrf_token_from(c.get("/no-such-page").get_data(as_text=True))
    return c, token


def _attackers(w: World, owner: str, roles) -> list[tuple[str, str]]:
    table = ATTACKERS[owner]
    return [(role, name) for role in sorted(roles) for name in table.get(role, [])]


def _names_in(body: str) -> list[str]:
    return [n for n in (VICTIM_NAME, VICTIM_KANA, VICTIM_GUARDIAN) if n in body]


def _ask(app, session, w: World, who_name: str, method: str, url: str, data: dict) -> tuple[int, str, list[str], int]:
    """One refused-or-not request; (status, body, tables changed, new reads of the victim)."""
    who = getattr(w, who_name)
    before, reads = _snapshot(session), _reads_of_victim(session, w)
    c, token = _client_as(app, who)
    resp = c.open(url, method=method, data={"csrf_token": token, **data} if method == "POST" else None)
    body = resp.get_data(as_text=True) if resp.mimetype in ("text/html", "application/json", "text/plain", "text/csv") else ""
    status = resp.status_code
    resp.close()
    session.rollback()
    return status, body, _diff(before, _snapshot(session)), _reads_of_victim(session, w) - reads


@pytest.fixture
def world(make, session) -> World:
    return build_world(make, session)


# -- the tests -----------------------------------------------------------------------------


def test_every_id_route_is_listed(app):
    """Default deny for new routes: a route naming an object must say whose it is."""
    routes = _rules(app)
    unlisted = sorted(set(routes) - set(OBJECT_ROUTES) - set(UNSCOPED))
    assert not unlisted, (
        f"routes with a path argument missing from tests/security/test_idor.py (add to OBJECT_ROUTES, or to "
        f"UNSCOPED with the reason): {unlisted}"
    )
    stale = sorted((set(OBJECT_ROUTES) | set(UNSCOPED)) - set(routes))
    assert not stale, f"listed routes that no longer exist: {stale}"
    assert not set(OBJECT_ROUTES) & set(UNSCOPED)
    forms = {k.split("#")[0] for k in FORM_ROUTES}
    assert forms <= {r.endpoint for r in app.url_map.iter_rules()}, "FORM_ROUTES names a route that does not exist"


@pytest.mark.parametrize("endpoint", sorted(OBJECT_ROUTES))
def test_someone_elses_object_is_refused_and_nothing_changes(app, session, world, endpoint):
    w, target = world, OBJECT_ROUTES[endpoint]
    (rule,) = _rules(app)[endpoint]
    allowed = roles_for(app.view_functions[endpoint]) or frozenset()
    urls = [rule.build(target.values(w, session), append_unknown=False)[1]]
    if target.mixed:
        urls.append(rule.build(target.mixed(w, session), append_unknown=False)[1])
    session.commit()
    attackers = _attackers(w, target.owner, allowed)
    assert attackers, f"{endpoint}: no role it allows can be out of scope; list it in UNSCOPED instead"

    failures = []
    for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
        data = target.data(w, session) if (target.data and method == "POST") else {}
        session.commit()
        for url in urls:
            for role, name in attackers:
                status, body, changed, reads = _ask(app, session, w, name, method, url, data)
                who = f"{method} {url} as {role} ({name})"
                if status not in (403, 404, *KNOWN_GAPS.get(endpoint, ((), ""))[0]):
                    failures.append(f"{who}: {status}, not refused")
                if changed:
                    failures.append(f"{who}: changed {changed}")
                if reads:
                    failures.append(f"{who}: logged {reads} read(s) of the victim's record")
                if _names_in(body):
                    failures.append(f"{who}: the response names {_names_in(body)}")
    assert not failures, "\n".join(failures)

    # The control: someone in scope is not refused the same page.
    if target.control and "GET" in rule.methods:
        insider = next((INSIDERS[r] for r in sorted(allowed) if r in INSIDERS), None)
        if insider is not None:
            status, _body, _changed, reads = _ask(app, session, w, insider, "GET", urls[0], {})
            assert status not in (403, 404), f"GET {urls[0]} as {insider} (in scope): {status}"
            # Every staff read of a child's record leaves its audit row.
            if getattr(w, insider).__class__.__name__ == "Staff" and target.owner == "child":
                assert reads >= 1, f"GET {urls[0]} as {insider}: a staff read of the child's record, not audited"


@pytest.mark.parametrize("key", sorted(FORM_ROUTES))
def test_someone_elses_object_named_in_a_form_is_refused(app, session, world, key):
    w, target = world, FORM_ROUTES[key]
    endpoint = key.split("#")[0]
    (rule,) = [r for r in app.url_map.iter_rules() if r.endpoint == endpoint]
    allowed = roles_for(app.view_functions[endpoint]) or frozenset()
    data = target.data(w, session)
    session.commit()
    failures = []
    for role, name in _attackers(w, target.owner, allowed):
        status, body, changed, reads = _ask(app, session, w, name, target.method, rule.rule, data)
        who = f"{target.method} {rule.rule} {data} as {role} ({name})"
        if status not in target.refused:
            failures.append(f"{who}: {status}, not refused")
        if changed:
            failures.append(f"{who}: changed {changed}")
        if reads:
            failures.append(f"{who}: logged {reads} read(s) of the victim's record")
        if _names_in(body):
            failures.append(f"{who}: the response names {_names_in(body)}")
    assert not failures, "\n".join(failures)


def test_analyst_pages_never_name_a_child(app, session, world):
    """The analyst sees pseudonymised aggregates: no page open to them names a child or a guardian."""
    session.commit()
    c, _token = _client_as(app, world.analyst)
    seen = 0
    for rule in app.url_map.iter_rules():
        if "GET" not in rule.methods or rule.arguments:
            continue
        if "analyst" not in (roles_for(app.view_functions[rule.endpoint]) or ()):
            continue
        resp = c.get(rule.rule)
        body = resp.get_data(as_text=True) if resp.mimetype.startswith("text/") or resp.mimetype.endswith("json") else ""
        resp.close()
        seen += 1
        names = [n for n in (VICTIM_NAME, VICTIM_KANA, VICTIM_GUARDIAN, world.child_a.name, world.child_b2.name)
                 if n in body]
        assert not names, f"{rule.rule} names {names} to an analyst"
    assert seen >= 2


@pytest.mark.parametrize("endpoint", sorted(KNOWN_GAPS))
def test_known_gaps_are_still_open(app, session, world, endpoint):
    """When a known gap is fixed this fails: remove it from KNOWN_GAPS so the strict check applies."""
    w, target = world, OBJECT_ROUTES[endpoint]
    (rule,) = _rules(app)[endpoint]
    url = rule.build(target.values(w, session), append_unknown=False)[1]
    method = "POST" if "POST" in rule.methods else "GET"
    data = target.data(w, session) if target.data and method == "POST" else {}
    session.commit()
    allowed = roles_for(app.view_functions[endpoint]) or frozenset()
    statuses = {_ask(app, session, w, name, method, url, data)[0] for _role, name in _attackers(w, target.owner, allowed)}
    assert statuses - {403, 404}, f"{endpoint} now refuses with {statuses}: remove it from KNOWN_GAPS"
