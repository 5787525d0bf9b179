EXPECTED = {
    "people.classes": ("teacher", "school_lead"),
    "people.cards": ("teacher", "school_lead"),
    "people.letters": ("school_lead",),
    "people.sign_in_status": ("teacher", "school_lead"),
    "people.revoke_card": ("teacher", "school_lead"),
    "people.clear_delay": ("teacher", "school_lead"),
}
