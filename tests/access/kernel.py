from portal.auth.access import ALL_ROLES, SIGNED_IN, STAFF_ROLES

EXPECTED = {
    "public.index": ALL_ROLES,
    "public.healthz": ALL_ROLES,
    "public.readyz": ALL_ROLES,
    "auth.sign_in": ALL_ROLES,
    "auth.staff_sign_in": ALL_ROLES,
    "auth.staff_totp": ALL_ROLES,
    "auth.staff_totp_setup": ALL_ROLES,
    "auth.guardian_sign_in": ALL_ROLES,
    "auth.guardian_register": ALL_ROLES,
    "auth.guardian_add_child": ("guardian",),
    "auth.password_reset_request": ALL_ROLES,
    "auth.password_reset": ALL_ROLES,
    "auth.student_sign_in": ALL_ROLES,
    "auth.student_card": ALL_ROLES,
    "auth.sign_out": SIGNED_IN,
    "auth.set_language": ALL_ROLES,
    "family.home": ("guardian",),
    "family.child": ("guardian",),
    "student.home": ("student",),
    "backoffice.home": STAFF_ROLES,
}
