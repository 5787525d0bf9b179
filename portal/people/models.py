"""People model: municipality, schools, years, classes, children, guardians, staff.

Children are the centre of every other domain: every table that holds a
child's data has a ``child_id`` pointing here.
"""

from __future__ import annotations

import enum
from datetime import date, datetime

from sqlalchemy import (
    Boolean,
    Date,
    Enum,
    ForeignKey,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.orm import Base, UTCDateTime, utcnow


class SchoolKind(enum.StrEnum):
    elementary = "elementary"
    junior_high = "junior_high"


class Role(enum.StrEnum):
    """Staff roles (ARCHITECTURE.md: People, roles and scopes)."""

    teacher = "teacher"
    school_lead = "school_lead"
    counsellor = "counsellor"
    social_worker = "social_worker"
    coordinator = "coordinator"
    data_steward = "data_steward"
    analyst = "analyst"
    administrator = "administrator"


class Municipality(Base):
    __tablename__ = "municipality"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(6), unique=True)  # 全国地方公共団体コード
    name_ja: Mapped[str] = mapped_column(String(100))
    name_en: Mapped[str] = mapped_column(String(100))


class School(Base):
    __tablename__ = "school"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(20), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    name_en: Mapped[str] = mapped_column(String(100), default="")
    kind: Mapped[SchoolKind] = mapped_column(Enum(SchoolKind, native_enum=False, length=20))
    district: Mapped[str] = mapped_column(String(100), default="")

    classes: Mapped[list[SchoolClass]] = relationship(back_populates="school")

    @property
    def first_grade(self) -> int:
        """Grades run 1-9 across the municipality: 1-6 elementary, 7-9 junior high."""
        return 1 if self.kind == SchoolKind.elementary else 7


class SchoolYear(Base):
    """A Japanese school year (年度), April to March."""

    __tablename__ = "school_year"

    id: Mapped[int] = mapped_column(primary_key=True)
    fiscal_year: Mapped[int] = mapped_column(Integer, unique=True)
    starts_on: Mapped[date] = mapped_column(Date)
    ends_on: Mapped[date] = mapped_column(Date)
    is_current: Mapped[bool] = mapped_column(Boolean, default=False)


class SchoolClass(Base):
    __tablename__ = "school_class"
    __table_args__ = (UniqueConstraint("school_id", "school_year_id", "grade", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    school_id: Mapped[int] = mapped_column(ForeignKey("school.id"), index=True)
    school_year_id: Mapped[int] = mapped_column(ForeignKey("school_year.id"))
    grade: Mapped[int] = mapped_column(Integer)  # 1-9, municipality-wide
    name: Mapped[str] = mapped_column(String(20))  # 組, e.g. "1"
    homeroom_teacher_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"), index=True)

    school: Mapped[School] = relationship(back_populates="classes")
    school_year: Mapped[SchoolYear] = relationship()
    homeroom_teacher: Mapped[Staff | None] = relationship()

    @property
    def grade_in_school(self) -> int:
        return self.grade if self.grade <= 6 else self.grade - 6


class Child(Base):
    """A child of the municipality, and the student's own sign-in."""

    __tablename__ = "child"

    id: Mapped[int] = mapped_column(primary_key=True)
    student_no: Mapped[str] = mapped_column(String(20), unique=True)  # 児童生徒番号
    atena_no: Mapped[str | None] = mapped_column(String(20), index=True)  # 宛名番号
    name: Mapped[str] = mapped_column(String(100))  # 氏名 (kanji), "family given"
    name_kana: Mapped[str] = mapped_column(String(100), default="")  # 氏名カナ
    birth_date: Mapped[date] = mapped_column(Date)
    sex: Mapped[str | None] = mapped_column(String(1))  # "M" / "F"
    address: Mapped[str] = mapped_column(String(200), default="")
    locale: Mapped[str] = mapped_column(String(5), default="ja")
    # Student sign-in: PIN (argon2) or a QR card token (HMAC, see auth.service)
    pin_hash: Mapped[str | None] = mapped_column(String(200))
    card_token_digest: Mapped[str | None] = mapped_column(String(64), unique=True)
    card_last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # shown to the teacher
    card_revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # a teacher revoked the card
    # Sign-in throttling (auth.service): failures since the last success, and
    # the moment before which no attempt is even considered (at most 30 s
    # ahead; a delay, never a lockout), for unknown browsers and, apart, for
    # browsers this child has signed in on before.
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    login_not_before: Mapped[datetime | None] = mapped_column(UTCDateTime)
    trusted_not_before: Mapped[datetime | None] = mapped_column(UTCDateTime)
    session_version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    enrolments: Mapped[list[Enrolment]] = relationship(back_populates="child")
    guardian_links: Mapped[list[GuardianChild]] = relationship(back_populates="child")


class Enrolment(Base):
    """A child's class in a school year (在籍)."""

    __tablename__ = "enrolment"
    __table_args__ = (UniqueConstraint("child_id", "school_year_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    child_id: Mapped[int] = mapped_column(ForeignKey("child.id", ondelete="CASCADE"), index=True)
    school_year_id: Mapped[int] = mapped_column(ForeignKey("school_year.id"))
    class_id: Mapped[int] = mapped_column(ForeignKey("school_class.id"), index=True)
    attendance_no: Mapped[int | None] = mapped_column(Integer)  # 出席番号

    child: Mapped[Child] = relationship(back_populates="enrolments")
    school_class: Mapped[SchoolClass] = relationship()


class Guardian(Base):
    """A guardian; the account part is filled when they register with a code."""

    __tablename__ = "guardian"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    name_kana: Mapped[str] = mapped_column(String(100), default="")
    email: Mapped[str | None] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str | None] = mapped_column(String(200))
    locale: Mapped[str] = mapped_column(String(5), default="ja")
    address: Mapped[str] = mapped_column(String(200), default="")
    registered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Set when the account holder proves the address (the link e-mailed at
    # registration). Until then the account sees no child (auth.access).
    email_confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    login_not_before: Mapped[datetime | None] = mapped_column(UTCDateTime)  # sign-in delay, see auth.service
    trusted_not_before: Mapped[datetime | None] = mapped_column(UTCDateTime)  # the same, for known browsers
    session_version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    child_links: Mapped[list[GuardianChild]] = relationship(back_populates="guardian")


class GuardianChild(Base):
    __tablename__ = "guardian_child"
    __table_args__ = (UniqueConstraint("guardian_id", "child_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    guardian_id: Mapped[int] = mapped_column(ForeignKey("guardian.id", ondelete="CASCADE"), index=True)
    child_id: Mapped[int] = mapped_column(ForeignKey("child.id", ondelete="CASCADE"), index=True)
    relationship_: Mapped[str] = mapped_column("relationship", String(20), default="parent")  # 続柄
    parental_authority: Mapped[bool] = mapped_column(Boolean, default=True)  # 親権

    guardian: Mapped[Guardian] = relationship(back_populates="child_links")
    child: Mapped[Child] = relationship(back_populates="guardian_links")


class EnrolmentCode(Base):
    """The one-time code the school prints on a letter for each child.

    Only an HMAC digest of the code is kept, so a database dump reveals no
    usable code.
    """

    __tablename__ = "enrolment_code"

    id: Mapped[int] = mapped_column(primary_key=True)
    child_id: Mapped[int] = mapped_column(ForeignKey("child.id", ondelete="CASCADE"), index=True)
    code_digest: Mapped[str] = mapped_column(String(64), unique=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    used_by_guardian_id: Mapped[int | None] = mapped_column(ForeignKey("guardian.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class EmailToken(Base):
    """A single-use link e-mailed to a guardian's address.

    ``purpose``: ``confirm`` (prove the address of a new account), ``join``
    (the school already knows this address for the child: its owner chooses
    the password), ``add_child`` (the address already has an account: add the
    code's child to it) or ``reset`` (a new password). Only an HMAC digest of
    the token is kept; :func:`portal.auth.service.consume_email_token` spends
    it with one guarded UPDATE.
    """

    __tablename__ = "email_token"

    id: Mapped[int] = mapped_column(primary_key=True)
    purpose: Mapped[str] = mapped_column(String(20))
    token_digest: Mapped[str] = mapped_column(String(64), unique=True)
    guardian_id: Mapped[int] = mapped_column(ForeignKey("guardian.id", ondelete="CASCADE"), index=True)
    child_id: Mapped[int | None] = mapped_column(ForeignKey("child.id", ondelete="CASCADE"))
    enrolment_code_id: Mapped[int | None] = mapped_column(ForeignKey("enrolment_code.id", ondelete="CASCADE"))
    relationship_: Mapped[str | None] = mapped_column("relationship", String(20))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Staff(Base):
    __tablename__ = "staff"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    role: Mapped[Role] = mapped_column(Enum(Role, native_enum=False, length=30))
    password_hash: Mapped[str] = mapped_column(String(200))
    totp_secret_enc: Mapped[str | None] = mapped_column(String(300))  # Fernet token
    totp_last_step: Mapped[int | None] = mapped_column(Integer)  # replay guard
    locale: Mapped[str] = mapped_column(String(5), default="ja")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # Set when an administrator gives a temporary password: the next page
    # after sign-in is "choose your own password" (portal.admin).
    password_change_required: Mapped[bool] = mapped_column(Boolean, default=False)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    login_not_before: Mapped[datetime | None] = mapped_column(UTCDateTime)  # sign-in delay, see auth.service
    trusted_not_before: Mapped[datetime | None] = mapped_column(UTCDateTime)  # the same, for known browsers
    session_version: Mapped[int] = mapped_column(Integer, default=1)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    previous_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # shown on the home page
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    scopes: Mapped[list[StaffScope]] = relationship(back_populates="staff", cascade="all, delete-orphan")


class StaffScope(Base):
    """Which schools a staff member works for (teacher, lead, counsellor, SSW)."""

    __tablename__ = "staff_scope"
    __table_args__ = (UniqueConstraint("staff_id", "school_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff.id", ondelete="CASCADE"), index=True)
    school_id: Mapped[int] = mapped_column(ForeignKey("school.id"), index=True)

    staff: Mapped[Staff] = relationship(back_populates="scopes")
    school: Mapped[School] = relationship()
