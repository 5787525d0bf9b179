"""Every staff page that names a child leaves an audit row of that read.

The lead's overdue-tasks page listed children and wrote nothing to the audit
log. The test does not pick pages: in a world where every object exists for
one child whose name is a sentinel (tests/security/test_idor.py's victim),
it opens every GET route in the URL map as someone in scope of each staff
role, and wherever the sentinel name appears in the response (a page, a CSV,
the text of a PDF, the files of a zip), that request
must have written a ``child.read`` row for that child by that person.
"""

from __future__ import annotations

from sqlalchemy import func, select

from portal.audit.models import AuditEvent
from tests.security import routewalk
from tests.security.test_idor import VICTIM_KANA, VICTIM_NAME, build_world


def _top(session) -> int:
    return session.scalar(select(func.coalesce(func.max(AuditEvent.id), 0)))


def test_every_page_that_names_a_child_audits_the_read(app, session, make):
    w = build_world(make, session)
    routewalk.build_everything(w, session)
    session.commit()

    failures, named = [], set()
    for v in routewalk.staff_visits(app, session, w):
        top = _top(session)
        session.commit()
        c = routewalk.client_as(app, w, v.who)
        resp = c.get(v.url)
        body = routewalk.text_of(resp)
        request_id = resp.headers.get("X-Request-ID")
        resp.close()
        session.rollback()
        if resp.status_code != 200 or not (VICTIM_NAME in body or VICTIM_KANA in body):
            continue
        named.add(v.endpoint)
        staff = getattr(w, v.who)
        reads = session.execute(select(AuditEvent.request_id).where(
            AuditEvent.id > top, AuditEvent.action == "child.read", AuditEvent.child_id == w.victim.id,
            AuditEvent.actor_kind == "staff", AuditEvent.actor_id == staff.id)).scalars().all()
        if not reads:
            failures.append(f"GET {v.url} ({v.endpoint}) as {v.role}: names the child, no audited read")
        elif request_id and any(r is not None for r in reads) and request_id not in reads:
            failures.append(f"GET {v.url} ({v.endpoint}) as {v.role}: the read is logged under another request")
    session.rollback()
    assert not failures, "\n".join(failures)
    # Not passing for want of pages: the child's own pages and the lists name them.
    assert {"casework.case", "linkage.child_records", "screening.child", "surveys.child", "casework.meeting_pdf"} <= named, sorted(named)
    assert len(named) >= 12, sorted(named)


def test_every_document_a_form_returns_that_names_a_child_audits_the_read(app, session, make):
    """The same for POST routes that answer with a document (the class's sign-in cards, the enrolment letters)."""
    from portal.auth.access import roles_for
    from tests.security.test_idor import INSIDERS, OBJECT_ROUTES, _client_as

    w = build_world(make, session)
    routewalk.build_everything(w, session)
    session.commit()
    failures, named = [], set()
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        target = OBJECT_ROUTES.get(rule.endpoint)
        if "POST" not in rule.methods or target is None or target.data is None:
            continue
        for role in sorted(roles_for(app.view_functions[rule.endpoint]) or ()):
            who = INSIDERS.get(role)
            if who is None or role in ("guardian", "student"):
                continue
            url = rule.build(target.values(w, session), append_unknown=False)[1]
            data = target.data(w, session)
            top = _top(session)
            session.commit()
            c, token = _client_as(app, getattr(w, who))
            resp = c.post(url, data={"csrf_token": token, **data})
            body = routewalk.text_of(resp) if resp.mimetype != "text/html" else ""
            resp.close()
            session.rollback()
            if resp.status_code != 200 or VICTIM_NAME not in body:
                continue
            named.add(rule.endpoint)
            reads = session.scalar(select(func.count()).select_from(AuditEvent).where(
                AuditEvent.id > top, AuditEvent.action == "child.read", AuditEvent.child_id == w.victim.id,
                AuditEvent.actor_id == getattr(w, who).id))
            if not reads:
                failures.append(f"POST {url} ({rule.endpoint}) as {role}: the document names the child, no audited read")
    assert not failures, "\n".join(failures)
    assert "people.cards" in named, sorted(named)  # the victim has an account: no letter names them
