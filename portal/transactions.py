"""One operation, one transaction, for the command-line commands.

Every ``flask --app portal …`` command that writes does the same: commit
when its work is done; when the domain refuses the input (a file that does
not pass, a rule set that cannot run), roll back, say why on stderr and exit
non-zero; on anything else roll back and let the error through.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import click
from sqlalchemy.orm import Session


@contextmanager
def command_transaction(
    session: Session,
    refusals: type[BaseException] | tuple[type[BaseException], ...],
    describe: Callable[[BaseException], str],
    *,
    exit_code: int = 1,
) -> Iterator[None]:
    """Run the ``with`` body as the command's one transaction (see the module)."""
    try:
        yield
        session.commit()
    except refusals as exc:
        session.rollback()
        click.echo(describe(exc), err=True)
        raise SystemExit(exit_code) from None
    except BaseException:
        session.rollback()
        raise
