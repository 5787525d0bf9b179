"""The people of a municipality: schools, classes, children, guardians, staff."""

from flask_babel import lazy_gettext as _l


def init_app(app) -> None:
    from portal import nav
    from portal.people.models import Role

    nav.register(_l("My classes"), "people.classes", (Role.teacher.value, Role.school_lead.value), 20)
