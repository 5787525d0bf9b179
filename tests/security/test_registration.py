"""Registration with an enrolment code: the account is bound to the code's child, the address is proven.

The attacker holds one genuine letter (their own child's code) and knows
another family's e-mail address. Whatever address they type, they are never
signed in to another family, no record is adopted, nothing about a child is
shown before the address is proven, and the owner of the address is told.
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from portal.audit.models import AuditEvent
from portal.auth import service as auth
from portal.auth.principal import Principal
from portal.orm import utcnow
from portal.people.models import EmailToken, EnrolmentCode, Guardian, GuardianChild
from tests.conftest import PASSWORD

ATTACKER_PASSWORD = "attacker chose this one"
VICTIM_CHILD = "標的 花子"
SIBLING = "標的 次郎"
OWN_CHILD = "自分 一郎"


def _html(resp) -> str:
    return resp.get_data(as_text=True)


def _register(post_form, code: str, email: str, password: str = ATTACKER_PASSWORD, c=None):
    return post_form("/family/register", {
        "code": code, "name": "登録 太郎", "relationship": "father", "email": email,
        "password": password, "password_again": password,
    }, c=c)


def _sign_in(post_form, email: str, password: str, c=None):
    return post_form("/family/signin", {"email": email, "password": password}, c=c)


def _link(msg, path: str) -> str:
    m = re.search(rf"https?://[^/\s]+({path}/\S+)", msg.get_content())
    assert m, msg.get_content()
    return m.group(1)


def _names_in(outbox) -> bool:
    return any(name in m.get_content() or name in m["Subject"] for m in outbox for name in (VICTIM_CHILD, SIBLING, OWN_CHILD))


@pytest.fixture
def victim(make, session):
    """A family the school knows: a guardian record with an address, two children."""
    child, sibling = make.child(name=VICTIM_CHILD), make.child(name=SIBLING)
    return child, sibling


@pytest.mark.parametrize("has_account", [False, True], ids=["record_only", "with_account"])
def test_registration_with_another_guardians_email_never_signs_into_that_family(
    app, client, make, session, post_form, outbox, victim, has_account
):
    child, sibling = victim
    record = make.guardian(child, sibling, email="victim@example.invalid", password=PASSWORD if has_account else None)
    own = make.child(name=OWN_CHILD)
    code = auth.issue_enrolment_code(session, app.config["SECRET_KEY"], own)  # the attacker's own letter
    session.commit()
    before = session.scalar(select(func.count()).select_from(Guardian))

    r = _register(post_form, code, "victim@example.invalid")
    assert r.status_code == 302 and r.headers["Location"].endswith("/family/register/sent")
    page = client.get(r.headers["Location"])
    assert VICTIM_CHILD not in _html(page) and SIBLING not in _html(page)

    # Not signed in, to anything; the family pages stay closed.
    assert client.get("/family/").status_code == 302
    assert client.get(f"/family/children/{child.id}").status_code == 302
    # The attacker's password opens nothing.
    r = _sign_in(post_form, "victim@example.invalid", ATTACKER_PASSWORD, c=app.test_client())
    assert r.status_code == 200
    # The record is untouched: no new account, no password set, not linked to the attacker's child.
    session.expire_all()
    again = session.get(Guardian, record.id)
    assert session.scalar(select(func.count()).select_from(Guardian)) == before
    assert (again.password_hash is not None) == has_account
    assert sorted(link.child_id for link in again.child_links) == sorted([child.id, sibling.id])
    # The owner of the address is told (without anyone's name), and nobody else is.
    assert [m["To"] for m in outbox] == ["victim@example.invalid"]
    assert not _names_in(outbox)
    # The attempt is in the audit log, with ids only (no address, no name).
    ev = session.scalar(select(AuditEvent).where(AuditEvent.action == "family.registration"))
    assert ev.detail == {"outcome": "add_child" if has_account else "not_linked", "guardian_id": record.id}
    assert ev.child_id == own.id
    if has_account:
        # Their link adds the attacker's child only for them, signed in as themselves: the attacker,
        # signed in to any other account, cannot use it.
        link = _link(outbox[0], "/family/add-child")
        stranger = make.guardian(make.child())
        session.commit()
        other = app.test_client()
        _sign_in(post_form, stranger.email, PASSWORD, c=other)
        assert other.get(link).status_code == 400


def test_joining_a_schools_record_needs_the_link_sent_to_its_address(app, client, make, session, post_form, outbox, victim):
    """The record is linked to the code's child: still joined only by whoever reads its e-mail."""
    child, sibling = victim
    record = make.guardian(child, sibling, email="parent@example.invalid", password=None)
    code = auth.issue_enrolment_code(session, app.config["SECRET_KEY"], child)
    session.commit()

    r = _register(post_form, code, "parent@example.invalid")  # someone holding this child's letter
    assert r.headers["Location"].endswith("/family/register/sent")
    session.expire_all()
    assert session.get(Guardian, record.id).password_hash is None
    assert _sign_in(post_form, "parent@example.invalid", ATTACKER_PASSWORD, c=app.test_client()).status_code == 200
    assert not _names_in(outbox)

    # The owner opens the link and chooses the password: the registrant's password never works.
    url = _link(outbox[-1], "/family/join")
    page = client.get(url)
    assert page.status_code == 200 and VICTIM_CHILD not in _html(page)
    owner_password = "the owner's own password"
    r = post_form(url, {"password": owner_password, "password_again": owner_password})
    assert r.status_code == 302 and r.headers["Location"].endswith("/family/signin")
    assert client.get(url).status_code == 400  # single use
    owner = app.test_client()
    r = _sign_in(post_form, "parent@example.invalid", owner_password, c=owner)
    assert r.headers["Location"].endswith("/family/")
    # (after the owner's sign-in: a failure delays the account's next attempt)
    assert _sign_in(post_form, "parent@example.invalid", ATTACKER_PASSWORD, c=app.test_client()).status_code == 200
    home = _html(owner.get("/family/"))
    assert VICTIM_CHILD in home and SIBLING in home


def test_registration_binds_the_account_to_the_codes_child_only(app, client, make, session, post_form, outbox):
    own = make.child(name=OWN_CHILD)
    other = make.child(name=VICTIM_CHILD)
    make.guardian(other, email="someone@example.invalid", password=None)
    code = auth.issue_enrolment_code(session, app.config["SECRET_KEY"], own)
    session.commit()
    _register(post_form, code, "fresh@example.invalid", PASSWORD)
    session.expire_all()
    g = session.scalar(select(Guardian).where(Guardian.email == "fresh@example.invalid"))
    assert [link.child_id for link in g.child_links] == [own.id]
    assert g.email_confirmed_at is None
    assert session.scalar(select(EnrolmentCode.used_by_guardian_id)) == g.id


def test_new_family_account_sees_no_child_before_email_is_proven(app, client, make, session, post_form, outbox):
    own = make.child(name=OWN_CHILD)
    code = auth.issue_enrolment_code(session, app.config["SECRET_KEY"], own)
    session.commit()
    _register(post_form, code, "fresh@example.invalid", PASSWORD)
    assert len(outbox) == 1 and not _names_in(outbox)
    first_link = _link(outbox[0], "/family/confirm")

    r = _sign_in(post_form, "fresh@example.invalid", PASSWORD)
    assert r.headers["Location"].endswith("/family/confirm")
    pending = _html(client.get("/family/confirm"))
    assert "メールを確認してください" in pending and OWN_CHILD not in pending

    # Every page an unconfirmed account can ask for (every GET route, with the child's id in it)
    # names no child: the account is no guardian for the access rules yet.
    session.expire_all()
    guardian = session.scalar(select(Guardian).where(Guardian.email == "fresh@example.invalid"))
    assert auth.principal_for(guardian).role == "guardian_unconfirmed"
    shown = []
    for rule in app.url_map.iter_rules():
        if "GET" not in rule.methods or rule.endpoint.endswith("static") or rule.endpoint == "auth.sign_out":
            continue
        values = {a: own.id if "id" in a else "x" for a in rule.arguments}
        url = rule.build(values, append_unknown=False)[1]
        resp = client.get(url)
        if OWN_CHILD in _html(resp) or (resp.status_code == 200 and rule.endpoint.startswith(("family.", "consent.family", "surveys.family"))):
            shown.append(f"{url} {resp.status_code}")
    assert not shown, shown
    assert client.get("/family/").status_code == 403
    assert "メールアドレスを確認してください" in _html(client.get("/family/"))

    # Send the link again: not in the first minutes, then once, then refused for a while
    # (the older link stops working).
    r = post_form("/family/confirm/resend", {}, page="/family/confirm")
    assert r.status_code == 302 and len(outbox) == 1
    for tok in session.scalars(select(EmailToken)):
        tok.created_at -= auth.RESEND_INTERVAL + timedelta(seconds=1)
    session.commit()
    r = post_form("/family/confirm/resend", {}, page="/family/confirm")
    assert r.status_code == 302 and len(outbox) == 2
    r = post_form("/family/confirm/resend", {}, page="/family/confirm", follow_redirects=True)
    assert len(outbox) == 2
    assert "しばらく待ってから" in _html(r)
    assert client.get(first_link).status_code == 400
    link = _link(outbox[1], "/family/confirm")

    # Opening the link shows a button (a mail scanner's GET spends nothing); confirming shows the child.
    assert client.get(link).status_code == 200
    r = post_form(link, {})
    assert r.headers["Location"].endswith("/family/")
    assert OWN_CHILD in _html(client.get("/family/"))
    assert client.get(link).status_code == 400  # single use


def test_confirmation_link_never_signs_anyone_in(app, client, make, session, post_form, outbox):
    """Someone registered with your address: opening their link in your browser gives you no session in it."""
    own = make.child(name=OWN_CHILD)
    code = auth.issue_enrolment_code(session, app.config["SECRET_KEY"], own)
    session.commit()
    _register(post_form, code, "owner@example.invalid", PASSWORD, c=app.test_client())
    link = _link(outbox[0], "/family/confirm")
    r = post_form(link, {})
    assert r.headers["Location"].endswith("/family/signin")
    assert client.get("/family/").status_code == 302


def test_family_and_other_guardian_are_told_when_a_child_is_added(app, client, make, session, post_form, outbox, login):
    child = make.child(name=VICTIM_CHILD)
    other_parent = make.guardian(child, email="other@example.invalid")
    school_record = make.guardian(child, email="grandma@example.invalid", password=None)
    me = make.guardian(make.child(name=OWN_CHILD), email="me@example.invalid")
    code = auth.issue_enrolment_code(session, app.config["SECRET_KEY"], child)
    session.commit()
    login(me)
    r = post_form("/family/add-child", {"code": code})
    assert r.headers["Location"].endswith("/family/")
    assert sorted(m["To"] for m in outbox) == sorted([me.email, other_parent.email, school_record.email])
    own = next(m for m in outbox if m["To"] == me.email)
    assert "お子さんがアカウントに追加されました" in own["Subject"]
    assert all("/family/" in m.get_content() for m in outbox)
    assert not _names_in(outbox)

    # A new account is told when its address is proven (it sees the child from then on).
    outbox.clear()
    second = make.child(name=SIBLING)
    make.guardian(second, email="parent-of-second@example.invalid")
    code = auth.issue_enrolment_code(session, app.config["SECRET_KEY"], second)
    session.commit()
    _register(post_form, code, "newcomer@example.invalid", PASSWORD, c=app.test_client())
    assert [m["To"] for m in outbox] == ["newcomer@example.invalid"]  # the confirmation only
    post_form(_link(outbox[0], "/family/confirm"), {}, c=app.test_client())
    assert sorted(m["To"] for m in outbox[1:]) == ["newcomer@example.invalid", "parent-of-second@example.invalid"]
    assert not _names_in(outbox)


def test_email_tokens_are_single_use_expiring_and_stored_as_digests(app, make, session):
    key = app.config["SECRET_KEY"]
    guardian = make.guardian(make.child())
    token = auth.issue_email_token(session, key, guardian.id, "reset")
    session.commit()
    stored = session.scalar(select(EmailToken))
    assert token not in (stored.token_digest, str(stored.id)) and len(stored.token_digest) == 64
    assert stored.token_digest == auth.email_token_digest(key, "reset", token)
    # A token of one purpose does not work for another.
    assert auth.consume_email_token(session, key, "confirm", token) is None
    # Expired.
    late = utcnow() + auth.TOKEN_LIFETIME["reset"] + timedelta(seconds=1)
    assert auth.consume_email_token(session, key, "reset", token, now=late) is None
    # Once, then never again.
    assert auth.consume_email_token(session, key, "reset", token) is not None
    assert auth.consume_email_token(session, key, "reset", token) is None
    # A newer link replaces the older one.
    first = auth.issue_email_token(session, key, guardian.id, "reset")
    second = auth.issue_email_token(session, key, guardian.id, "reset")
    assert auth.peek_email_token(session, key, "reset", first) is None
    assert auth.peek_email_token(session, key, "reset", second) is not None
    # An add-child link works only for the account it was sent to.
    link_token = auth.issue_email_token(session, key, guardian.id, "add_child", child_id=make.child().id)
    stranger = Principal("guardian", guardian.id + 999, "guardian")
    assert auth.complete_add_child(session, key, link_token, stranger) is None
    session.rollback()


def test_accounts_that_exist_before_deployment_count_as_confirmed(tmp_path, app):
    """No family is locked out on deployment: the migration marks existing accounts as confirmed."""
    import logging

    from sqlalchemy import create_engine, text

    from portal import create_app
    from portal.extensions import db

    url = f"sqlite:///{tmp_path / 'deploy.sqlite3'}"
    migrated = create_app({"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": "migration-test", "MAIL_BACKEND": "memory"})
    root = logging.getLogger()
    saved = (root.level, list(root.handlers))
    engine = create_engine(url)
    try:
        with migrated.app_context():
            assert migrated.test_cli_runner().invoke(args=["db", "upgrade", "0001"]).exit_code == 0
        with engine.begin() as conn:
            conn.execute(text(
                "INSERT INTO guardian (name, name_kana, email, password_hash, locale, address, registered_at, "
                "failed_logins, session_version, created_at) VALUES "
                "('既存', '', 'old@example.invalid', 'argon2-hash', 'ja', '', '2026-04-01 00:00:00', 0, 1, "
                "'2026-04-01 00:00:00'), "
                "('記録', '', 'record@example.invalid', NULL, 'ja', '', NULL, 0, 1, '2026-04-01 00:00:00')"))
        with migrated.app_context():
            assert migrated.test_cli_runner().invoke(args=["db", "upgrade"]).exit_code == 0
        with engine.connect() as conn:
            rows = dict(conn.execute(text("SELECT email, email_confirmed_at FROM guardian")).all())
    finally:
        root.setLevel(saved[0])
        root.handlers[:] = saved[1]
        engine.dispose()
        with migrated.app_context():
            db.engine.dispose()
    assert rows["old@example.invalid"] is not None  # the account keeps working
    assert rows["record@example.invalid"] is None  # a school record without an account proves itself when it joins


def test_code_is_spent_and_the_answer_is_the_same_whatever_the_address(app, client, make, session, post_form, outbox):
    key = app.config["SECRET_KEY"]
    make.guardian(make.child(), email="account@example.invalid")
    make.guardian(make.child(), email="record@example.invalid", password=None)
    pages = []
    for email in ("account@example.invalid", "record@example.invalid", "nobody@example.invalid"):
        code = auth.issue_enrolment_code(session, key, make.child())
        session.commit()
        c = app.test_client()
        r = _register(post_form, code, email, c=c)
        pages.append((r.status_code, r.headers["Location"], _html(c.get(r.headers["Location"]))))
        assert auth.find_usable_code(session, key, code) is None
    strip = re.compile(r'value="[^"]*"')
    assert len({(s, loc, strip.sub("", h)) for s, loc, h in pages}) == 1
    assert len(outbox) == 3
    assert session.scalar(select(func.count()).select_from(GuardianChild)) == 3  # one new account, one link
