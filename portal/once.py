"""Things that happen once: one guarded statement decides who did it.

A one-time thing (answering a referral, approving a rule set, deciding a
review item, sending a campaign) must not be checked with a read and then
changed with a later write: two requests arriving together both read "not
done yet" and both do it. Instead the change itself carries the check:

- :func:`claim` runs ``UPDATE … WHERE id = :id AND <still in the expected
  state>`` and says whether this request's statement matched the row. On
  PostgreSQL the second of two concurrent updates waits for the first to
  commit, then re-checks its WHERE on the new row and matches nothing; on
  SQLite writers are serialised and the second sees the first's change.
  The loser is told in words (the caller raises its domain's error).
- :func:`flush_unique` writes a new row whose key must be unique (a staff
  e-mail address, a purpose code) and says whether it went in: of two
  double-submitted forms, the second meets the unique constraint and is told
  in words instead of getting a server error (the transaction rolls back).
- :func:`lock` takes the row's write lock before the state is read, for a
  step that must read before it writes (one open case per child, one
  version number per purpose). On PostgreSQL ``SELECT … FOR UPDATE``; on
  SQLite, which has no row locks, a no-op ``UPDATE`` of the row takes the
  database's write lock for the rest of the transaction.

Everything read about the row *after* :func:`claim` or :func:`lock` is
current; the caller re-reads what it decides on (``populate_existing``).
"""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session


def claim(session: Session, model, row_id: int, *where, **values) -> bool:
    """Move one row out of its expected state; True when this call did it.

    ``where`` are the conditions that say the thing is still to be done
    (``Referral.status == ReferralStatus.in_progress``); ``values`` the
    change. The objects already loaded in the session are refreshed.
    """
    table = model.__table__
    res = session.execute(
        update(model).where(table.c.id == row_id, *where).values(**values).execution_options(synchronize_session=False)
    )
    won = res.rowcount == 1
    obj = session.identity_map.get(session.identity_key(model, (row_id,))) if won else None
    if obj is not None:
        session.refresh(obj)
    return won


def lock(session: Session, model, row_id: int) -> bool:
    """Hold the row's write lock until the transaction ends; False when there is no such row."""
    table = model.__table__
    if session.get_bind().dialect.name == "postgresql":
        found = session.execute(select(table.c.id).where(table.c.id == row_id).with_for_update()).first()
        return found is not None
    # SQLite: a write takes the database's write lock. Every column with an
    # onupdate default is set to itself, so the no-op changes nothing.
    same = {c.name: c for c in table.c if c.onupdate is not None or c.server_onupdate is not None}
    res = session.execute(update(table).where(table.c.id == row_id).values(id=table.c.id, **same))
    return res.rowcount == 1


def fresh(session: Session, model, row_id: int):
    """The row as it is now (after :func:`lock`), not as this session first loaded it."""
    return session.scalar(select(model).where(model.__table__.c.id == row_id).execution_options(populate_existing=True))


def flush_unique(session: Session) -> bool:
    """Flush the pending new rows; False when a unique key was taken meanwhile.

    On False the transaction is spoiled: the caller raises its domain's error and the view rolls
    back, as every view does on one (no savepoint: SQLite's driver would commit at its release).
    """
    try:
        session.flush()
    except IntegrityError:
        return False
    return True
