"""Words shown for people-model codes, in the user's language."""

from flask_babel import lazy_gettext as _l

ROLE_LABELS = {
    "guardian": _l("Guardian"),
    "guardian_unconfirmed": _l("Guardian (e-mail not confirmed yet)"),
    "student": _l("Student"),
    "teacher": _l("Teacher"),
    "school_lead": _l("School lead"),
    "counsellor": _l("School counsellor"),
    "social_worker": _l("School social worker"),
    "coordinator": _l("Coordinator"),
    "data_steward": _l("Data steward"),
    "analyst": _l("Analyst"),
    "administrator": _l("Administrator"),
    "system": _l("System"),
}


def role_label(role) -> str:
    key = getattr(role, "value", role)
    return str(ROLE_LABELS.get(key, key))
