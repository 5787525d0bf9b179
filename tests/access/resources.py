from portal.auth.access import ALL_ROLES

FAMILY = ("guardian", "student")
COORD = ("coordinator",)

EXPECTED = {
    # The catalogue is public information: anyone may browse it (see resources/views.py).
    "resources.browse": ALL_ROLES,
    "resources.detail": ALL_ROLES,
    "resources.calendar": ALL_ROLES,
    "resources.favourite": FAMILY,
    "resources.favourites": FAMILY,
    "resources.inbox": ("guardian",),
    "resources.message": ("guardian",),
    "resources.manage": COORD,
    "resources.new_service": COORD,
    "resources.edit_service": COORD,
    "resources.publish": COORD,
    "resources.archive": COORD,
    "resources.verify": COORD,
    "resources.export_json": COORD,
    "resources.export_csv": COORD,
    "resources.export_tabular": COORD,
    "resources.import_file": COORD,
    "resources.campaigns": COORD,
    "resources.new_campaign": COORD,
    "resources.edit_campaign": COORD,
    "resources.campaign": COORD,
    "resources.campaign_preview": COORD,
    "resources.campaign_schedule": COORD,
    "resources.campaign_unschedule": COORD,
    "resources.campaign_failed_to_letters": COORD,
    "resources.letters_home": ("teacher", "school_lead"),
    "resources.letters_pdf": ("teacher", "school_lead"),
    "resources.letters_zip": ("school_lead",),
}
