from portal.auth.access import ALL_ROLES

STEWARD = ("data_steward",)

EXPECTED = {
    "consent.family_home": ("guardian",),
    "consent.family_purpose": ("guardian",),
    "consent.family_history": ("guardian",),
    "consent.family_receipt": ("guardian",),
    "consent.family_access": ("guardian",),
    "consent.family_requests": ("guardian",),
    "consent.family_disclosure": ("guardian",),
    "consent.student_home": ("student",),
    "consent.student_purpose": ("student",),
    "consent.student_receipt": ("student",),
    "consent.student_history": ("student",),
    "consent.staff_purposes": STEWARD,
    "consent.staff_publish": STEWARD,
    "consent.staff_purpose_edit": STEWARD,
    "consent.staff_paper": STEWARD,
    "consent.staff_requests": STEWARD,
    "consent.staff_request": STEWARD,
    "consent.staff_disclosure": STEWARD,
    "consent.staff_release": STEWARD,
    "consent.staff_coverage": ("data_steward", "coordinator"),
    "consent.public_purposes": ALL_ROLES,
    "consent.public_register": ALL_ROLES,
}
