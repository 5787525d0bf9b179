from portal.auth.access import SCHOOL_STAFF

LEAD = ("school_lead",)
PLANNERS = ("school_lead", "counsellor", "social_worker")

EXPECTED = {
    "casework.queue": ("teacher", "school_lead"),
    "casework.start": ("teacher", "school_lead"),
    "casework.register": SCHOOL_STAFF,
    "casework.register_csv": LEAD,
    "casework.case": SCHOOL_STAFF,
    "casework.assess": ("teacher", "school_lead"),
    "casework.review": LEAD,
    "casework.continue_support": LEAD,
    "casework.close": LEAD,
    "casework.reopen": LEAD,
    "casework.plan": PLANNERS,
    "casework.action_done": SCHOOL_STAFF,
    "casework.refer": LEAD,
    "casework.referrals": ("counsellor", "social_worker"),
    "casework.referral_respond": PLANNERS,
    "casework.referral_done": PLANNERS,
    "casework.referral_revoke": LEAD,
    "casework.meetings": LEAD,
    "casework.meeting": LEAD,
    "casework.decide": LEAD,
    "casework.meeting_pdf": LEAD,
    "casework.tasks": SCHOOL_STAFF,
    "casework.dashboard": SCHOOL_STAFF,
    "casework.municipality": ("coordinator",),
    "casework.municipality_csv": ("coordinator",),
    "casework.notices": SCHOOL_STAFF,
    "casework.notices_read": SCHOOL_STAFF,
}
