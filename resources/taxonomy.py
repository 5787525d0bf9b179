"""The catalogue's categories: a small HSDS taxonomy of local support.

Codes are stable (they go into HSDS exports as taxonomy terms); labels are
translated.
"""

from __future__ import annotations

from flask_babel import lazy_gettext as _l

TAXONOMY = "mimamori-local-support"

CATEGORIES: dict[str, object] = {
    "after_school": _l("After-school places"),
    "childrens_cafeteria": _l("Children's cafeterias"),
    "study_support": _l("Study support"),
    "counselling": _l("Counselling"),
    "health": _l("Health"),
    "money": _l("Money and benefits"),
    "disability": _l("Disability support"),
    "young_carers": _l("Young carers"),
    "childcare": _l("Childcare and parenting"),
    "play_and_sport": _l("Play and sport"),
    "language_support": _l("Language support"),
}

# The same in words a child understands.
CATEGORIES_FOR_CHILDREN: dict[str, object] = {
    "after_school": _l("Places to go after school"),
    "childrens_cafeteria": _l("Places to eat together"),
    "study_support": _l("Help with homework"),
    "counselling": _l("Someone to talk to"),
    "health": _l("Staying healthy"),
    "money": _l("Help for your family with money"),
    "disability": _l("Help if something is hard for you"),
    "young_carers": _l("Help if you look after someone at home"),
    "childcare": _l("Help for your family"),
    "play_and_sport": _l("Play and sport"),
    "language_support": _l("Help with Japanese"),
}


def label(code: str, *, for_children: bool = False) -> str:
    table = CATEGORIES_FOR_CHILDREN if for_children else CATEGORIES
    return str(table.get(code, code))


STATUS_LABELS: dict[str, object] = {
    "draft": _l("Draft"),
    "published": _l("Published"),
    "archived": _l("Archived"),
    "scheduled": _l("Scheduled"),
    "sent": _l("Sent"),
    "inbox": _l("Inbox"),
    "email": _l("E-mail"),
    "letter": _l("Letter"),
}


def status_label(value: str) -> str:
    return str(STATUS_LABELS.get(value, value))
