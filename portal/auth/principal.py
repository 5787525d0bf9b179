"""Who is acting: a plain value passed to services (never Flask's globals)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Principal:
    """The signed-in user, or the system itself (jobs, CLI).

    ``kind`` is ``guardian``, ``student``, ``staff`` or ``system``; ``role`` is
    ``guardian``, ``student``, a staff :class:`portal.people.models.Role`
    value, or ``system``.
    """

    kind: str
    id: int
    role: str
    locale: str = "ja"
    session_version: int = 1
    school_ids: tuple[int, ...] = field(default=())

    # Flask-Login protocol
    is_authenticated = True
    is_active = True
    is_anonymous = False

    def get_id(self) -> str:
        return f"{self.kind}:{self.id}:{self.session_version}"

    @property
    def is_staff(self) -> bool:
        return self.kind == "staff"


SYSTEM = Principal(kind="system", id=0, role="system")


class Anonymous:
    kind = "anonymous"
    role = "anonymous"
    id = None
    is_authenticated = False
    is_active = False
    is_anonymous = True
    is_staff = False
    locale = None

    def get_id(self):
        return None
