from __future__ import annotations

from types import SimpleNamespace

from portal.people.models import Role
from resources import demo
from resources import service as catalogue
from resources.models import Campaign, CampaignStatus, Channel, Delivery, Service


def test_demo_catalogue_campaigns_and_inbox(session, make):
    cls = make.school_class(grade=8)
    guardian = make.guardian(make.child(cls))
    ctx = SimpleNamespace(staff={"coordinator": make.staff(Role.coordinator)}, guardians=[guardian])
    demo.load(session, ctx)
    assert session.query(Service).count() == len(demo.SERVICES) >= 20
    assert len(catalogue.find(session, catalogue.Search())) == len(demo.SERVICES) - 2  # a draft, a hidden one
    assert {c.status for c in session.query(Campaign)} == {CampaignStatus.sent, CampaignStatus.draft}
    inbox = session.query(Delivery).filter_by(guardian_id=guardian.id, channel=Channel.inbox).all()
    assert len(inbox) == 2 and sum(d.read_at is not None for d in inbox) == 1
