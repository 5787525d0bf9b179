"""The one read path for check-ins, answers, scores, free text and signals.

Everything a child or a guardian answered (``SurveyAssignment`` status and
progress, ``SurveyResponse`` answers, scores and free text, ``SurveySignal``)
is processed under ``wellbeing_survey`` consent: a page, an export or a PDF
reads it only here, and every query here joins the consent gate
(:func:`consent.gate.consented_child_ids`). A child whose consent was
withdrawn, has lapsed (a material new version that lapses at once) or was
never given is shown as having no check-in, whatever rows are still held
until the purge.

Not consent-based, and so not here: a child's request for help
(:class:`surveys.models.HelpAlert`, it reaches an adult whatever the
consent), and the family's disclosure (開示), which answers the right of
access to everything held.

``tests/security/test_consent_gated_reads.py`` walks every page for every
staff role; ``tests/security/test_one_read_path.py`` fails on a query of
these tables around this module.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Select, and_, func, select

from consent.gate import consented_child_ids
from portal.auth.access import current_year_id_subquery
from portal.people.models import Child, Enrolment
from surveys.models import SurveyAssignment, SurveyResponse, SurveySignal
from surveys.scheduling import PURPOSE


def consented(child_id_column):
    """SQL: the child of this column is in the gate for ``wellbeing_survey`` now."""
    return child_id_column.in_(consented_child_ids(PURPOSE))


def child_responses(child_id: int, since: datetime) -> Select:
    """A child's answer sets since ``since``, oldest first (none without consent)."""
    return (
        select(SurveyResponse)
        .where(SurveyResponse.child_id == child_id, SurveyResponse.submitted_at >= since, consented(SurveyResponse.child_id))
        .order_by(SurveyResponse.submitted_at)
    )


def child_signals(child_id: int, since: datetime) -> Select:
    """A child's signals since ``since``, newest first (none without consent)."""
    return (
        select(SurveySignal)
        .where(SurveySignal.child_id == child_id, SurveySignal.observed_at >= since, consented(SurveySignal.child_id))
        .order_by(SurveySignal.observed_at.desc())
    )


def class_mood_today(class_id: int, today: date, visible) -> Select:
    """(child, attendance no., today's mood check-in status, score, low, help) for a class.

    The check-in columns are NULL for a child outside the gate (shown as "no
    check-in"), in the same single query.
    """
    gated = consented(Child.id)
    return (
        select(Child, Enrolment.attendance_no, SurveyAssignment.status, SurveyResponse.score, SurveyResponse.low,
               SurveyResponse.help_requested)
        .join(Enrolment, Enrolment.child_id == Child.id)
        .outerjoin(
            SurveyAssignment,
            and_(
                SurveyAssignment.child_id == Child.id,
                SurveyAssignment.for_date == today,
                SurveyAssignment.instrument_code == "mood",
                gated,
            ),
        )
        .outerjoin(SurveyResponse, SurveyResponse.assignment_id == SurveyAssignment.id)
        .where(
            Enrolment.class_id == class_id,
            Enrolment.school_year_id == current_year_id_subquery(),
            Child.id.in_(visible),
        )
        .order_by(Enrolment.attendance_no, Child.id)
    )


def signal_counts(child_ids: list[int], since: datetime) -> Select:
    """(child id, number of signals since ``since``) for these children, through the gate."""
    return (
        select(SurveySignal.child_id, func.count())
        .where(SurveySignal.child_id.in_(child_ids), SurveySignal.observed_at >= since, consented(SurveySignal.child_id))
        .group_by(SurveySignal.child_id)
    )


def own_response(assignment_id: int, child_id: int) -> Select:
    """The answer a student has just given, shown back to that student (the thank-you page).

    Not gated: it is the child's own answer read by the child, and the page
    uses it only to say whom to expect when the child asked for help (a help
    request reaches an adult whatever the consent).
    """
    return select(SurveyResponse).where(SurveyResponse.assignment_id == assignment_id, SurveyResponse.child_id == child_id)
