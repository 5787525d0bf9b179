EXPECTED = {
    "audit.log": ("data_steward",),
    "audit.verify": ("data_steward",),
}
