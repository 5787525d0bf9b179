"""Words for casework codes, in the reader's language."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l

STATUS = {
    "flagged": _l("Flagged"),
    "assessed": _l("Assessed"),
    "decided": _l("Decided"),
    "plan_active": _l("Plan active"),
    "under_review": _l("Under review"),
    "closed": _l("Closed"),
    "reopened": _l("Reopened"),
}
SOURCE = {
    "flag": _l("Screening flag"),
    "alert": _l("Help request"),
    "manual": _l("Opened by staff"),
}
CLOSE_REASON = {
    "no_concern": _l("No concern"),
    "support_complete": _l("Support complete"),
    "moved_away": _l("Moved away"),
    "consent_withdrawn": _l("Consent was withdrawn"),
    "other": _l("Other"),
}
PROPOSAL = {
    "support_needed": _l("Support needed"),
    "keep_watching": _l("Keep watching"),
    "no_concern": _l("No concern"),
}
CONCERN = {"none": _l("No concern"), "some": _l("Some concern"), "serious": _l("Serious concern")}
DOMAIN = {
    "attendance": _l("Attendance"),
    "learning": _l("Learning"),
    "health": _l("Health and hygiene"),
    "relationships": _l("Relationships"),
    "family_contact": _l("Family contact"),
}
DECISION = {
    "support_plan": _l("Make a support plan"),
    "keep_watching": _l("Keep watching"),
    "close": _l("Close: no support needed"),
}
TARGET = {
    "counsellor": _l("School counsellor"),
    "social_worker": _l("School social worker"),
    "family_support_centre": _l("Child and family support centre"),
    "resource": _l("Service from the catalogue"),
}
REFERRAL_STATUS = {
    "in_progress": _l("In progress"),
    "accepted": _l("Accepted"),
    "rejected": _l("Rejected"),
    "done": _l("Done"),
    "revoked": _l("Revoked"),
}
TASK = {
    "assessment_due": _l("Assessment due"),
    "review_due": _l("Review due"),
    "action_due": _l("Action due"),
    "referral_waiting": _l("Referral waiting"),
}
EVENT = {
    "opened": _l("Case opened"),
    "assessed": _l("Assessment recorded"),
    "flag_override": _l("Flag overridden: no concern"),
    "listed": _l("Listed for a case meeting"),
    "decided": _l("School decision"),
    "plan_made": _l("Support plan made"),
    "plan_changed": _l("Support plan changed"),
    "action_done": _l("Action done"),
    "referred": _l("Referral made"),
    "referral_accepted": _l("Referral accepted"),
    "referral_rejected": _l("Referral rejected"),
    "referral_done": _l("Referral done"),
    "referral_revoked": _l("Referral revoked"),
    "review_started": _l("Review started"),
    "review_continued": _l("Review: support continues"),
    "closed": _l("Case closed"),
    "reopened": _l("Case reopened"),
}


def label(table: dict, code) -> str:
    key = getattr(code, "value", code)
    if key is None:
        return ""
    return str(table.get(key, key))
