EXPECTED = {
    "people.classes": ("teacher", "school_lead"),
    "people.cards": ("teacher", "school_lead"),
    "people.letters": ("school_lead",),
}
