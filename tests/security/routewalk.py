"""Walking every GET route as every role, over a world where everything exists.

Shared by the class-wide tests (every CSV route neutralises formulas, every
page that names a child audits the read, every analyst output suppresses
small cells). It reuses tests/security/test_idor.py's world (the victim in
class B1 of school B, and someone in scope of each role) and its
:data:`OBJECT_ROUTES` to fill the path arguments of id routes, and builds
every object those routes name, so that list pages have something to list.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta

from portal.auth.access import roles_for
from tests.conftest import sign_in_as
from tests.security.test_idor import INSIDERS, OBJECT_ROUTES, World, _plan_action

#: Someone of each role, from the world (a staff member in scope of the victim).
STAFF_INSIDERS = {role: name for role, name in INSIDERS.items() if role not in ("guardian", "student")}


@dataclass(frozen=True)
class Visit:
    role: str
    who: str  # the World attribute
    endpoint: str
    url: str


def build_everything(w: World, session) -> None:
    """Every object an id route names (a case, flag, plan action, meeting, referral,
    alert, schedule, consent event, data request, campaign, delivery ...),
    plus a task that is overdue."""
    for target in OBJECT_ROUTES.values():
        target.values(w, session)
    action = _plan_action(w, session)
    from backoffice.casework.models import PlanAction

    session.add(PlanAction(plan_id=action.plan_id, case_id=action.case_id, child_id=w.victim.id, text="電話連絡",
                           owner_id=w.teacher_v.id, due_on=date.today() - timedelta(days=3)))
    session.flush()


def get_routes(app, session, w: World) -> Iterator[tuple[str, str, frozenset[str]]]:
    """(endpoint, url, roles) of every GET route that can be built: routes without
    path arguments, and id routes of OBJECT_ROUTES with the victim's objects."""
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        if "GET" not in rule.methods or rule.endpoint == "static" or rule.endpoint.endswith(".static"):
            continue
        roles = roles_for(app.view_functions[rule.endpoint]) or frozenset()
        if not rule.arguments:
            yield rule.endpoint, rule.rule, roles
        elif rule.endpoint in OBJECT_ROUTES:
            yield rule.endpoint, rule.build(OBJECT_ROUTES[rule.endpoint].values(w, session), append_unknown=False)[1], roles


def staff_visits(app, session, w: World, roles=None) -> list[Visit]:
    out = []
    for endpoint, url, allowed in get_routes(app, session, w):
        for role, who in sorted(STAFF_INSIDERS.items()):
            if role in allowed and (roles is None or role in roles):
                out.append(Visit(role, who, endpoint, url))
    return out


def client_as(app, w: World, who: str):
    c = app.test_client()
    sign_in_as(c, getattr(w, who))
    return c


def content_text(content: bytes, mimetype: str = "", name: str = "") -> str:
    """What a person reads in a file: a page, a CSV or JSON, a PDF's text, every member of a zip."""
    import io
    import zipfile

    from pypdf import PdfReader

    if mimetype == "application/pdf" or name.endswith(".pdf") or content[:5] == b"%PDF-":
        return "\n".join(page.extract_text() or "" for page in PdfReader(io.BytesIO(content)).pages)
    if mimetype == "application/zip" or name.endswith(".zip") or content[:4] == b"PK\x03\x04":
        with zipfile.ZipFile(io.BytesIO(content)) as zf:
            return "\n".join(content_text(zf.read(member), "", member) for member in zf.namelist())
    return content.decode("utf-8", errors="replace")


def text_of(resp) -> str:
    """What a person reads in a response (see :func:`content_text`)."""
    return content_text(resp.get_data(), resp.mimetype)
