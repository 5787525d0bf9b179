from portal.auth.access import SCHOOL_STAFF

QUEUE = (*SCHOOL_STAFF, "data_steward")
STEWARD = ("data_steward",)
RULE_READERS = ("data_steward", "school_lead", "coordinator")
EVAL = ("data_steward", "analyst", "school_lead", "coordinator")

EXPECTED = {
    "screening.queue": QUEUE,
    "screening.child": QUEUE,
    "screening.resolve": QUEUE,
    "screening.indicators": tuple(sorted({*QUEUE, *RULE_READERS, *EVAL})),
    "screening.rule_sets": RULE_READERS,
    "screening.rule_set_new": STEWARD,
    "screening.rule_set": RULE_READERS,
    "screening.rule_set_submit": STEWARD,
    "screening.rule_set_approve": RULE_READERS,
    "screening.rule_set_reject": RULE_READERS,
    "screening.run": STEWARD,
    "screening.evaluation": EVAL,
    "screening.evaluation_export": EVAL,
    "screening.model_card": EVAL,
    "screening.model_train": STEWARD,
    "screening.model_switch": STEWARD,
}
