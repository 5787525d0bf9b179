"""Campaigns to every family: audience, inbox, e-mail through real SMTP, letters, never twice."""

from __future__ import annotations

import email
import re
import socket
from datetime import date, timedelta

import pytest
from aiosmtpd.controller import Controller

from portal.auth.principal import SYSTEM
from portal.orm import utcnow
from portal.people.models import Role, SchoolKind
from resources import campaigns as camp
from resources import letters
from resources.campaigns import CampaignData, CampaignError
from resources.models import Campaign, CampaignStatus, Channel, Delivery, DeliveryStatus


class Recorder:
    def __init__(self):
        self.messages: list[tuple[list[str], bytes]] = []

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802
        if address.startswith("bounce"):
            return "550 5.1.1 No such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        self.messages.append((list(envelope.rcpt_tos), envelope.content))
        return "250 Message accepted"


@pytest.fixture
def smtp_server(app):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    handler = Recorder()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    saved = {k: app.config[k] for k in ("MAIL_BACKEND", "MAIL_SERVER", "MAIL_PORT", "MAIL_USE_TLS", "MAIL_USERNAME")}
    app.config.update(MAIL_BACKEND="smtp", MAIL_SERVER="127.0.0.1", MAIL_PORT=port, MAIL_USE_TLS=False, MAIL_USERNAME=None)
    yield handler
    app.config.update(saved)
    controller.stop()


@pytest.fixture
def town(make, make_service, session):
    """Two schools; families in Japanese and English, with and without accounts and e-mail."""
    school = make.school(name="ひだまり小学校", name_en="Hidamari ES")
    other = make.school(name="せせらぎ中学校", kind=SchoolKind.junior_high)
    c3 = make.school_class(school, grade=3)
    c5 = make.school_class(school, grade=5)
    c8 = make.school_class(other, grade=8)
    kids = {
        "ja": make.child(c3, name="日本 一郎", name_kana="ニホン イチロウ"),
        "en": make.child(c3, name="Smith Amy", name_kana="スミス エイミー"),
        "mailonly": make.child(c5, name="手紙 二郎", name_kana="テガミ ジロウ"),
        "paper_en": make.child(c5, name="Silva Ana", name_kana="シルバ アナ"),
        "paper_ja": make.child(c5, name="紙山 花", name_kana="カミヤマ ハナ"),
        "bounce": make.child(c8, name="不達 三郎", name_kana="フタツ サブロウ"),
        "sibling": make.child(c8, name="日本 次郎", name_kana="ニホン ジロウ"),
    }
    g = {
        "ja": make.guardian(kids["ja"], kids["sibling"], email="ja@example.invalid", locale="ja"),
        "en": make.guardian(kids["en"], email="en@example.invalid", locale="en"),
        "mailonly": make.guardian(kids["mailonly"], email="mailonly@example.invalid", password=None),
        "paper_en": make.guardian(kids["paper_en"], email="p1@x.invalid", password=None, locale="en"),
        "paper_ja": make.guardian(kids["paper_ja"], email="p2@x.invalid", password=None),
        "bounce": make.guardian(kids["bounce"], email="bounce@example.invalid"),
    }
    for key in ("paper_en", "paper_ja"):
        g[key].email = None
    session.flush()
    services = [make_service(), make_service("ひだまり学習室", name_en="Hidamari Study Room", categories=["study_support"])]
    return {"school": school, "other": other, "classes": (c3, c5, c8), "kids": kids, "guardians": g, "services": services}


def _campaign(session, town, **kw):
    data = CampaignData(
        title_ja="地域の居場所のお知らせ", title_en="Local places for your family",
        body_ja="すべてのご家庭にお届けしています。", body_en="We send this to every family.",
        service_ids=[s.id for s in town["services"]], **kw)
    return camp.save_campaign(session, SYSTEM, data)


def _parts(raw: bytes):
    msg = email.message_from_bytes(raw)
    subject = str(email.header.make_header(email.header.decode_header(msg["Subject"])))
    text = msg.get_body(("plain",)) if hasattr(msg, "get_body") else None
    plain = html = ""
    for part in msg.walk():
        if part.get_content_type() == "text/plain":
            plain = part.get_payload(decode=True).decode(part.get_content_charset())
        elif part.get_content_type() == "text/html":
            html = part.get_payload(decode=True).decode(part.get_content_charset())
    return subject, plain, html, text


def test_campaign_through_a_real_smtp_server_in_two_languages(app, session, town, smtp_server):
    c = _campaign(session, town)
    counts = camp.send_now(session, SYSTEM, c)
    assert counts == {"inbox": 3, "email": 4, "letter": 2}
    result = camp.deliver_emails(session, checkpoint=session.commit)
    assert result == {"sent": 3, "failed": 1}

    by_rcpt = {rcpts[0]: raw for rcpts, raw in smtp_server.messages}
    assert set(by_rcpt) == {"ja@example.invalid", "en@example.invalid", "mailonly@example.invalid"}
    subject, plain, html, _ = _parts(by_rcpt["ja@example.invalid"])
    assert subject == "地域の居場所のお知らせ"
    assert "すべてのご家庭にお届けしています。" in plain and "ひだまり学習室" in plain and "料金: 無料" in plain
    assert "<h1>地域の居場所のお知らせ</h1>" in html
    subject, plain, html, _ = _parts(by_rcpt["en@example.invalid"])
    assert subject == "Local places for your family"
    assert "We send this to every family." in plain and "Hidamari Study Room" in plain and "Cost: Free" in plain
    assert "Hidamari Study Room" in html and 'lang="en"' in html

    # The refused recipient is recorded as a failure with the SMTP reason, never retried.
    failed = session.query(Delivery).filter_by(status=DeliveryStatus.failed).one()
    assert failed.guardian_id == town["guardians"]["bounce"].id and "Refused" in failed.error
    stats = camp.stats(session, c.id)
    assert stats["counts"]["email"] == {"sent": 3, "failed": 1}
    assert stats["counts"]["inbox"] == {"sent": 3}
    assert stats["counts"]["letter"] == {"queued": 2}
    assert camp.deliver_emails(session) == {}
    assert len(smtp_server.messages) == 3


def test_a_campaign_is_never_sent_twice(session, town, outbox, english):
    c = _campaign(session, town)
    camp.send_now(session, SYSTEM, c)
    camp.deliver_emails(session)
    n_deliveries, n_mail = session.query(Delivery).count(), len(outbox)
    with pytest.raises(CampaignError) as exc:
        camp.queue(session, SYSTEM, c)
    assert "never sent twice" in str(exc.value.message)
    with pytest.raises(CampaignError):
        camp.schedule(session, SYSTEM, c)
    with pytest.raises(CampaignError):
        camp.save_campaign(session, SYSTEM, camp.data_from_campaign(c), c)
    assert camp.send_due_campaigns(session, utcnow() + timedelta(days=1)) == {"campaigns": 0}
    assert session.query(Delivery).count() == n_deliveries and len(outbox) == n_mail


def test_unique_constraint_stops_a_duplicate_delivery(session, town):
    from sqlalchemy.exc import IntegrityError

    c = _campaign(session, town)
    camp.send_now(session, SYSTEM, c)
    g = town["guardians"]["ja"]
    with pytest.raises(IntegrityError):
        with session.begin_nested():
            session.add(Delivery(campaign_id=c.id, guardian_id=g.id, channel=Channel.inbox))
            session.flush()


def test_scheduled_campaign_goes_out_when_due(session, town, outbox):
    c = _campaign(session, town)
    when = utcnow() + timedelta(hours=2)
    camp.schedule(session, SYSTEM, c, when)
    assert camp.send_due_campaigns(session, utcnow()) == {"campaigns": 0}
    result = camp.send_due_campaigns(session, when + timedelta(minutes=1))
    assert result == {"campaigns": 1, "sent": 4}  # the memory backend accepts every address
    assert session.get(Campaign, c.id).status == CampaignStatus.sent
    assert {m["To"] for m in outbox} >= {"ja@example.invalid", "en@example.invalid"}


@pytest.mark.parametrize(
    "kw, families",
    [
        ({"audience": "all"}, {"ja", "en", "mailonly", "paper_en", "paper_ja", "bounce"}),
        ({"audience": "school"}, {"ja", "en", "mailonly", "paper_en", "paper_ja"}),
        ({"audience": "grades", "grades": [5, 8]}, {"ja", "mailonly", "paper_en", "paper_ja", "bounce"}),
        ({"audience": "ages", "min_age": 13, "max_age": 14}, {"ja", "bounce"}),
    ],
)
def test_audiences(session, town, kw, families):
    if kw["audience"] == "school":
        kw = {**kw, "school_id": town["school"].id}
    c = _campaign(session, town, **kw)
    got = {k for k, g in town["guardians"].items() if g.id in {f.guardian_id for f in camp.audience(session, c)}}
    assert got == families


def test_bad_audiences_are_refused(session, town, english):
    for kw, message in [
        ({"audience": "ages", "min_age": 12, "max_age": 6}, "upside down"),
        ({"audience": "grades", "grades": []}, "grade"),
        ({"audience": "school", "school_id": None}, "school"),
        ({"audience": "flags"}, "audience"),
    ]:
        with pytest.raises(CampaignError) as exc:
            _campaign(session, town, **kw)
        assert message in str(exc.value.message)


def test_letters_one_pdf_per_class_one_page_per_family(app, session, town):
    c = _campaign(session, town)
    camp.send_now(session, SYSTEM, c)
    c3, c5, c8 = town["classes"]
    rows = letters.letters_by_class(session, c.id, [town["school"].id, town["other"].id])
    assert [(r[0].id, r[2]) for r in rows] == [(c5.id, 2)]
    with app.test_request_context():
        pdf = letters.render_class_pdf(session, SYSTEM, c, c5.id)
    assert pdf.startswith(b"%PDF")
    assert len(re.findall(rb"/Type /Page[^s]", pdf)) == 2
    assert b"HeiseiMin-W3" in pdf
    assert session.query(Delivery).filter_by(channel=Channel.letter, status=DeliveryStatus.sent).count() == 2


def test_failed_emails_can_become_letters(session, town, smtp_server):
    c = _campaign(session, town)
    camp.send_now(session, SYSTEM, c)
    camp.deliver_emails(session)
    assert camp.failed_emails_to_letters(session, SYSTEM, c) == 1
    assert camp.failed_emails_to_letters(session, SYSTEM, c) == 0
    c8 = town["classes"][2]
    assert session.query(Delivery).filter_by(channel=Channel.letter, class_id=c8.id).count() == 1


# -- pages ---------------------------------------------------------------------------


def test_inbox_and_read_receipt(client, session, town, login):
    c = _campaign(session, town)
    camp.send_now(session, SYSTEM, c)
    session.commit()
    g = town["guardians"]["en"]
    login(g)
    page = client.get("/resources/inbox").get_data(as_text=True)
    assert "Local places for your family" in page
    mine = session.query(Delivery).filter_by(guardian_id=g.id, channel=Channel.inbox).one()
    other = session.query(Delivery).filter_by(guardian_id=town["guardians"]["ja"].id, channel=Channel.inbox).one()
    assert client.get(f"/resources/inbox/{other.id}").status_code == 404
    msg = client.get(f"/resources/inbox/{mine.id}").get_data(as_text=True)
    assert "Hidamari Study Room" in msg
    session.expire_all()
    assert session.get(Delivery, mine.id).read_at is not None
    assert session.get(Delivery, other.id).read_at is None
    assert camp.stats(session, c.id)["reads"] == 1


def test_coordinator_composes_previews_and_sends(client, session, town, make, login, post_form, outbox):
    coord = make.staff(Role.coordinator, locale="en")
    session.commit()
    login(coord)
    bad = post_form("/resources/campaigns/new", {"title_ja": "x", "services": str(town["services"][0].id),
                                                 "audience": "ages", "min_age": "10", "max_age": "3"})
    assert "upside down" in bad.get_data(as_text=True)
    resp = post_form("/resources/campaigns/new", {
        "title_ja": "お知らせ", "title_en": "News", "body_ja": "<b>本文</b>", "body_en": "Body",
        "services": [str(s.id) for s in town["services"]], "audience": "all"})
    assert resp.status_code == 302
    c = session.query(Campaign).one()
    assert c.body_ja == "本文"
    ja = client.get(f"/resources/campaigns/{c.id}/preview/ja").get_data(as_text=True)
    en = client.get(f"/resources/campaigns/{c.id}/preview/en").get_data(as_text=True)
    assert "お知らせ" in ja and "子ども食堂ひだまり" in ja
    assert "News" in en and "Hidamari Children&#39;s Cafeteria" in en
    detail = client.get(f"/resources/campaigns/{c.id}").get_data(as_text=True)
    assert "6 families" in detail
    post_form(f"/resources/campaigns/{c.id}/schedule", {"when": ""}, page=f"/resources/campaigns/{c.id}")
    assert len(outbox) == 4
    again = post_form(f"/resources/campaigns/{c.id}/schedule", {"when": ""}, page=f"/resources/campaigns/{c.id}",
                      follow_redirects=True)
    assert "never sent twice" in again.get_data(as_text=True)
    assert len(outbox) == 4
    stats_page = client.get(f"/resources/campaigns/{c.id}").get_data(as_text=True)
    assert "Inbox messages read: 0" in stats_page


def test_teacher_prints_own_class_letters_only(client, session, town, make, login):
    c = _campaign(session, town)
    camp.send_now(session, SYSTEM, c)
    c3, c5, c8 = town["classes"]
    teacher = make.staff(Role.teacher, schools=[town["school"]])
    c5.homeroom_teacher_id = teacher.id
    session.commit()
    login(teacher)
    page = client.get("/resources/letters/").get_data(as_text=True)
    assert f"/resources/letters/{c.id}/{c5.id}.pdf" in page
    resp = client.get(f"/resources/letters/{c.id}/{c5.id}.pdf")
    assert resp.status_code == 200 and resp.mimetype == "application/pdf"
    assert client.get(f"/resources/letters/{c.id}/{c8.id}.pdf").status_code == 404


def test_age_audience_uses_birthdays_today(session, town, make):
    c = _campaign(session, town, audience="ages", min_age=8, max_age=8)
    today = date.today()
    fams = camp.audience(session, c, today)
    ages = {f.child_id for f in fams}
    from portal.people.models import Child

    for cid in ages:
        child = session.get(Child, cid)
        assert 8 <= (today.year - child.birth_date.year - ((today.month, today.day) < (child.birth_date.month, child.birth_date.day))) <= 8


def test_job_is_registered_with_the_scheduler_and_the_cli_sends_due_campaigns(app, session, town, outbox):
    from portal.scheduler import registered_jobs, run_job

    assert registered_jobs()["resources.send_due_campaigns"].func_path == "resources.jobs:send_due"
    c = _campaign(session, town)
    camp.schedule(session, SYSTEM, c, utcnow() - timedelta(minutes=1))
    session.commit()
    assert run_job("resources.send_due_campaigns", app=app)
    session.expire_all()
    assert session.get(Campaign, c.id).status == CampaignStatus.sent
    assert len(outbox) == 4
    result = app.test_cli_runner().invoke(args=["resources", "send-due"])
    assert result.exit_code == 0 and "campaigns=0" in result.output
    assert len(outbox) == 4


def test_a_title_with_a_line_break_cannot_inject_mail_headers(session, town, outbox):
    c = camp.save_campaign(session, SYSTEM, CampaignData(
        title_ja="お知らせ\r\nBcc: everyone@example.invalid", service_ids=[town["services"][0].id]))
    assert c.title_ja == "お知らせ Bcc: everyone@example.invalid"
    camp.send_now(session, SYSTEM, c)
    camp.deliver_emails(session)
    assert all(m["Bcc"] is None for m in outbox)


def test_school_lead_downloads_every_class_of_the_school_as_a_zip(client, session, town, make, login):
    import io
    import zipfile

    c = _campaign(session, town)
    camp.send_now(session, SYSTEM, c)
    lead = make.staff(Role.school_lead, schools=[town["school"]])
    session.commit()
    login(lead)
    resp = client.get(f"/resources/letters/{c.id}/school-{town['school'].id}.zip")
    assert resp.status_code == 200
    names = zipfile.ZipFile(io.BytesIO(resp.data)).namelist()
    assert len(names) == 1 and names[0].endswith(".pdf")
    assert client.get(f"/resources/letters/{c.id}/school-{town['other'].id}.zip").status_code == 404


def test_a_child_with_no_guardian_on_record_still_takes_a_letter_home(app, session, town, make):
    """Nobody left out: the family of a child the roster has no guardian for gets a letter, once."""
    c5 = town["classes"][1]
    alone = make.child(c5, name="一人 四郎", name_kana="ヒトリ シロウ")
    c = _campaign(session, town)
    assert camp.audience_counts(session, c)["letter"] == 3
    counts = camp.send_now(session, SYSTEM, c)
    assert counts["letter"] == 3
    letter = session.query(Delivery).filter_by(campaign_id=c.id, child_id=alone.id, channel=Channel.letter).one()
    assert letter.guardian_id is None and letter.class_id == c5.id and letter.locale == "ja"
    with app.test_request_context():
        pdf = letters.render_class_pdf(session, SYSTEM, c, c5.id)
    assert len(re.findall(rb"/Type /Page[^s]", pdf)) == 3
    # The database refuses a second letter for the same child in the same campaign.
    from sqlalchemy.exc import IntegrityError

    with pytest.raises(IntegrityError):
        with session.begin_nested():
            session.add(Delivery(campaign_id=c.id, guardian_id=None, child_id=alone.id, channel=Channel.letter))
            session.flush()
    with pytest.raises(CampaignError):
        camp.queue(session, SYSTEM, c)
    assert session.query(Delivery).filter_by(campaign_id=c.id, child_id=alone.id).count() == 1


def _dsn(original_message_id: str, status: str = "5.1.1", action: str = "failed") -> bytes:
    """A delivery status notification (RFC 3464) the way a mail server sends one back."""
    from email.message import Message
    from email.mime.multipart import MIMEMultipart
    from email.mime.text import MIMEText

    report = MIMEMultipart("report", report_type="delivery-status")
    report["From"] = "MAILER-DAEMON@mx.example.invalid"
    report["To"] = "noreply@mimamori.invalid"
    report["Subject"] = "Undelivered Mail Returned to Sender"
    report.attach(MIMEText("This is the mail system. Your message could not be delivered.", "plain"))
    status_part = Message()
    status_part.set_type("message/delivery-status")
    per_message, per_recipient = Message(), Message()
    per_message["Reporting-MTA"] = "dns; mx.example.invalid"
    per_recipient["Final-Recipient"] = "rfc822; ja@example.invalid"
    per_recipient["Action"] = action
    per_recipient["Status"] = status
    status_part.set_payload([per_message, per_recipient])
    report.attach(status_part)
    headers = MIMEText(f"Message-ID: {original_message_id}\r\nSubject: x\r\n", "rfc822-headers")
    report.attach(headers)
    return report.as_bytes()


def test_an_email_that_bounces_later_is_marked_failed_shown_and_never_resent(
        client, session, town, make, login, outbox, tmp_path, app):
    c = _campaign(session, town)
    camp.send_now(session, SYSTEM, c)
    camp.deliver_emails(session)
    sent = len(outbox)
    ja = session.query(Delivery).filter_by(guardian_id=town["guardians"]["ja"].id, channel=Channel.email).one()
    en = session.query(Delivery).filter_by(guardian_id=town["guardians"]["en"].id, channel=Channel.email).one()
    assert ja.status == DeliveryStatus.sent and ja.message_id == next(m for m in outbox if m["To"] == "ja@example.invalid")["Message-ID"]
    session.commit()

    # One real bounce, one "delayed" notice (not a failure), one message that is no bounce of ours.
    (tmp_path / "1.eml").write_bytes(_dsn(ja.message_id))
    (tmp_path / "2.eml").write_bytes(_dsn(en.message_id, status="4.4.7", action="delayed"))
    (tmp_path / "3.eml").write_bytes(b"From: someone@example.invalid\r\nSubject: hello\r\n\r\nhi\r\n")
    result = app.test_cli_runner().invoke(args=["resources", "record-bounces", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "bounces=3 failed=1 not_failures=1 unknown=1" in result.output
    session.expire_all()
    assert session.get(Delivery, ja.id).status == DeliveryStatus.failed
    assert session.get(Delivery, ja.id).error == "bounced 5.1.1"
    assert session.get(Delivery, en.id).status == DeliveryStatus.sent
    # Recording the same bounce again changes nothing; nothing is ever sent again.
    app.test_cli_runner().invoke(args=["resources", "record-bounces", str(tmp_path / "1.eml")])
    assert camp.deliver_emails(session) == {} and len(outbox) == sent
    assert camp.stats(session, c.id)["counts"]["email"] == {"sent": 3, "failed": 1}

    coord = make.staff(Role.coordinator, locale="en")
    session.commit()
    login(coord)
    page = client.get(f"/resources/campaigns/{c.id}").get_data(as_text=True)
    assert "E-mail failures" in page and "Bounced back after sending (5.1.1): 1" in page
    assert "The address was refused by the mail server" not in page  # the memory backend refuses nobody
    assert camp.failed_emails_to_letters(session, SYSTEM, c) == 1  # the bounced family gets a letter


def test_bounces_in_an_mbox_and_without_a_report(session, town, outbox, tmp_path):
    import mailbox

    from resources.bounces import read_messages, record_bounces

    c = _campaign(session, town)
    camp.send_now(session, SYSTEM, c)
    camp.deliver_emails(session)
    d = session.query(Delivery).filter_by(guardian_id=town["guardians"]["en"].id, channel=Channel.email).one()
    box = mailbox.mbox(tmp_path / "bounces.mbox")
    # A carrier's plain-text bounce that just quotes the original message.
    box.add(f"From: postmaster@carrier.example.invalid\r\nSubject: 配信エラー\r\n\r\n"
            f"宛先不明のため配信できませんでした。\r\n\r\nMessage-ID: {d.message_id}\r\n".encode())
    box.flush()
    box.close()
    assert record_bounces(session, SYSTEM, read_messages([tmp_path / "bounces.mbox"])) == {
        "bounces": 1, "failed": 1, "not_failures": 0, "unknown": 0}
    session.refresh(d)
    assert d.status == DeliveryStatus.failed and d.error == "bounced"
