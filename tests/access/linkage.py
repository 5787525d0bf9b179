from backoffice.linkage.service import VIEW_ROLES

STEWARD = ("data_steward",)

EXPECTED = {
    "linkage.imports": STEWARD,
    "linkage.confirm": STEWARD,
    "linkage.job": STEWARD,
    "linkage.job_status": STEWARD,
    "linkage.batch": STEWARD,
    "linkage.rollback": STEWARD,
    "linkage.review_queue": STEWARD,
    "linkage.review_item": STEWARD,
    "linkage.child_records": VIEW_ROLES,
}
