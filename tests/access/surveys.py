from portal.auth.access import SCHOOL_STAFF

LEADS = ("school_lead", "coordinator")

EXPECTED = {
    "surveys.checkins": ("student",),
    "surveys.checkin": ("student",),
    "surveys.checkin_done": ("student",),
    "surveys.talk": ("student",),
    "surveys.talk_sent": ("student",),
    "surveys.family_list": ("guardian",),
    "surveys.family_answer": ("guardian",),
    "surveys.today": SCHOOL_STAFF,
    "surveys.child": SCHOOL_STAFF,
    "surveys.alerts": SCHOOL_STAFF,
    "surveys.alert_ack": SCHOOL_STAFF,
    "surveys.schedules": LEADS,
    "surveys.schedule_stop": LEADS,
    "surveys.schedule_edit": LEADS,
    "surveys.closed_day_remove": LEADS,
    "surveys.closed_days": LEADS,
}
