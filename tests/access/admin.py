from portal.auth.access import STAFF_ROLES

EXPECTED = {
    "admin.staff_list": ("administrator",),
    "admin.staff_new": ("administrator",),
    "admin.staff_edit": ("administrator",),
    "admin.staff_active": ("administrator",),
    "admin.staff_reset_password": ("administrator",),
    "admin.staff_reset_totp": ("administrator",),
    "admin.change_password": STAFF_ROLES,
}
