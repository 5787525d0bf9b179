"""The demo municipality: synthetic, plainly fictional people.

``flask --app portal demo load`` fills an empty database; ``demo logins``
prints the sign-ins again. Everything is generated from a fixed seed, so the
demo codes and PINs can be printed again at any time (demo only: real codes
are random and only their digests are kept).

Domains add their own demo data with a ``demo.py`` module holding
``load(session, ctx)``, called in the order of ``portal.DOMAINS``.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import random
from dataclasses import dataclass, field
from datetime import date, timedelta

import pyotp
from argon2 import PasswordHasher
from sqlalchemy import select
from sqlalchemy.orm import Session

from portal.auth import service as auth
from portal.auth.passwords import hash_password
from portal.orm import utcnow
from portal.people.models import (
    Child,
    Enrolment,
    EnrolmentCode,
    Guardian,
    GuardianChild,
    Municipality,
    Role,
    School,
    SchoolClass,
    SchoolKind,
    SchoolYear,
    Staff,
    StaffScope,
)

SEED = 20260401
FISCAL_YEAR = 2026
STAFF_PASSWORD = "demo-staff-pass"  # noqa: S105 (demo only, printed to the user)
GUARDIAN_PASSWORD = "demo-family-pass"  # noqa: S105
DEMO_DOMAIN = "demo.mimamori.invalid"
_DEMO_PIN_HASHER = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1)

FAMILY_NAMES = [
    ("山田", "ヤマダ"), ("佐藤", "サトウ"), ("鈴木", "スズキ"), ("高橋", "タカハシ"), ("田中", "タナカ"),
    ("伊藤", "イトウ"), ("渡辺", "ワタナベ"), ("中村", "ナカムラ"), ("小林", "コバヤシ"), ("加藤", "カトウ"),
    ("吉田", "ヨシダ"), ("山口", "ヤマグチ"), ("松本", "マツモト"), ("井上", "イノウエ"), ("木村", "キムラ"),
    ("林", "ハヤシ"), ("斎藤", "サイトウ"), ("清水", "シミズ"), ("山崎", "ヤマザキ"), ("森", "モリ"),
    ("池田", "イケダ"), ("橋本", "ハシモト"), ("阿部", "アベ"), ("石川", "イシカワ"), ("前田", "マエダ"),
    ("藤田", "フジタ"), ("小川", "オガワ"), ("岡田", "オカダ"), ("長谷川", "ハセガワ"), ("村上", "ムラカミ"),
    ("高田", "タカダ"), ("辺見", "ヘンミ"), ("沢口", "サワグチ"), ("浜田", "ハマダ"), ("島田", "シマダ"),
]
GIVEN_M = [("太郎", "タロウ"), ("翔", "ショウ"), ("蓮", "レン"), ("悠真", "ユウマ"), ("大翔", "ヒロト"),
           ("湊", "ミナト"), ("陽太", "ヒナタ"), ("健", "ケン"), ("颯", "ハヤテ"), ("樹", "イツキ")]
GIVEN_F = [("花子", "ハナコ"), ("結衣", "ユイ"), ("陽菜", "ヒナ"), ("葵", "アオイ"), ("凛", "リン"),
           ("さくら", "サクラ"), ("美咲", "ミサキ"), ("芽依", "メイ"), ("紬", "ツムギ"), ("結菜", "ユイナ")]
GIVEN_ADULT = [("恵子", "ケイコ"), ("由美", "ユミ"), ("直子", "ナオコ"), ("誠", "マコト"), ("博", "ヒロシ"),
               ("隆", "タカシ"), ("裕子", "ユウコ"), ("明美", "アケミ"), ("健一", "ケンイチ"), ("智子", "トモコ")]
TOWNS = ["みまもり町", "ひだまり町", "こもれび町", "あおぞら町", "せせらぎ町"]

SCHOOLS = [
    ("E001", "みまもり市立ひだまり小学校", "Hidamari Elementary School (fictional)", SchoolKind.elementary, "ひだまり"),
    ("E002", "みまもり市立こもれび小学校", "Komorebi Elementary School (fictional)", SchoolKind.elementary, "こもれび"),
    ("E003", "みまもり市立あおぞら小学校", "Aozora Elementary School (fictional)", SchoolKind.elementary, "あおぞら"),
    ("J001", "みまもり市立せせらぎ中学校", "Seseragi Junior High School (fictional)", SchoolKind.junior_high, "せせらぎ"),
]


@dataclass
class DemoContext:
    """What the base load made, for the domains' demo loaders."""

    rng: random.Random
    municipality: Municipality
    year: SchoolYear
    schools: list[School]
    classes: list[SchoolClass]
    children: list[Child]
    guardians: list[Guardian]
    staff: dict[str, Staff]
    logins: list[tuple[str, str, str]] = field(default_factory=list)  # (who, user, secret)


def demo_code(secret_key: str, student_no: str) -> str:
    digest = hashlib.sha256(f"{SEED}:{secret_key}:code:{student_no}".encode()).digest()
    raw = "".join(auth.CODE_ALPHABET[b % len(auth.CODE_ALPHABET)] for b in digest[:12])
    return auth.format_code(raw)


def demo_pin(student_no: str) -> str:
    return f"{int(hashlib.sha256(f'{SEED}:pin:{student_no}'.encode()).hexdigest(), 16) % 10**6:06d}"


def demo_totp_secret(email: str) -> str:
    import base64

    return base64.b32encode(hashlib.sha256(f"{SEED}:totp:{email}".encode()).digest()[:20]).decode()


def is_empty(session: Session) -> bool:
    return session.scalar(select(Municipality.id).limit(1)) is None


def _birth_date(rng: random.Random, grade: int) -> date:
    # Grade 1 in FY2026: born 2019-04-02 .. 2020-04-01
    start = date(FISCAL_YEAR - 6 - grade, 4, 2)
    return start + timedelta(days=rng.randrange(365))


def load(session: Session, secret_key: str, *, children_per_class: int = 22) -> DemoContext:
    rng = random.Random(SEED)
    muni = Municipality(code="999991", name_ja="みまもり市（架空）", name_en="Mimamori City (fictional)")
    year = SchoolYear(
        fiscal_year=FISCAL_YEAR, starts_on=date(FISCAL_YEAR, 4, 1), ends_on=date(FISCAL_YEAR + 1, 3, 31), is_current=True
    )
    session.add_all([muni, year])
    schools = [School(code=c, name=n, name_en=en, kind=k, district=d) for c, n, en, k, d in SCHOOLS]
    session.add_all(schools)
    session.flush()

    staff: dict[str, Staff] = {}
    # argon2 is slow on purpose: hash the shared demo password once (one salt
    # for every demo account is fine for fictional people; real accounts never share).
    staff_hash = hash_password(STAFF_PASSWORD)

    def make_staff(key: str, role: Role, name: str, school_ids=()) -> Staff:
        email = f"{key}@{DEMO_DOMAIN}"
        s = Staff(email=email, name=name, role=role, password_hash=staff_hash)
        auth.set_totp_secret(s, demo_totp_secret(email))
        s.scopes = [StaffScope(school_id=sid) for sid in school_ids]
        session.add(s)
        staff[key] = s
        return s

    # One homeroom teacher per class; the first is the demo teacher.
    classes: list[SchoolClass] = []
    n_teacher = 0
    for school in schools:
        grades = range(1, 7) if school.kind == SchoolKind.elementary else range(7, 10)
        per_grade = 1 if school.kind == SchoolKind.elementary else 2
        for grade in grades:
            for k in range(per_grade):
                n_teacher += 1
                key = "teacher" if n_teacher == 1 else f"teacher{n_teacher:02d}"
                fam, _ = FAMILY_NAMES[(n_teacher * 7) % len(FAMILY_NAMES)]
                given, _ = GIVEN_ADULT[n_teacher % len(GIVEN_ADULT)]
                t = make_staff(key, Role.teacher, f"{fam} {given}（架空）", [school.id])
                cls = SchoolClass(school_id=school.id, school_year_id=0, grade=grade, name=str(k + 1))
                cls.school_year = year
                cls.homeroom_teacher = t
                classes.append(cls)
    session.add_all(classes)
    # The demo teacher teaches grade 2 at the first school, so the demo has a
    # young class with ruby; make the second class's teacher the grade-8 demo teacher.
    make_staff("lead", Role.school_lead, "校長 見守（架空）", [schools[0].id])
    make_staff("lead-jh", Role.school_lead, "校長 瀬々良木（架空）", [schools[3].id])
    make_staff("counsellor", Role.counsellor, "相談 心（架空）", [s.id for s in schools])
    make_staff("ssw", Role.social_worker, "福祉 結（架空）", [s.id for s in schools])
    make_staff("coordinator", Role.coordinator, "調整 街子（架空）")
    make_staff("steward", Role.data_steward, "管理 守（架空）")
    make_staff("steward2", Role.data_steward, "確認 二郎（架空）")
    make_staff("analyst", Role.analyst, "分析 数恵（架空）")
    make_staff("admin", Role.administrator, "管理者 設定（架空）")
    session.flush()

    children: list[Child] = []
    guardians: list[Guardian] = []
    n = 0
    family_pool: list[tuple[Guardian, str, str, str]] = []  # siblings share guardians
    for cls in classes:
        school = cls.school
        for seat in range(1, children_per_class + 1):
            n += 1
            sibling = family_pool and rng.random() < 0.15
            if sibling:
                guardian, fam, fam_kana, address = rng.choice(family_pool)
            else:
                fam, fam_kana = rng.choice(FAMILY_NAMES)
                town = rng.choice(TOWNS)
                address = f"みまもり市{town}{rng.randint(1, 5)}-{rng.randint(1, 30)}-{rng.randint(1, 20)}"
                g_given, g_kana = rng.choice(GIVEN_ADULT)
                has_account = rng.random() < 0.7
                guardian = Guardian(
                    name=f"{fam} {g_given}",
                    name_kana=f"{fam_kana} {g_kana}",
                    address=address,
                    email=f"family{n:04d}@{DEMO_DOMAIN}" if has_account else None,
                    password_hash=None,
                    locale="en" if rng.random() < 0.05 else "ja",
                )
                session.add(guardian)
                guardians.append(guardian)
                family_pool.append((guardian, fam, fam_kana, address))
            sex = rng.choice("MF")
            given, given_kana = rng.choice(GIVEN_M if sex == "M" else GIVEN_F)
            student_no = f"{school.code[0]}{FISCAL_YEAR - cls.grade + 1:04d}{n:04d}"
            child = Child(
                student_no=student_no,
                atena_no=f"{100000 + n * 7:07d}" if rng.random() < 0.9 else None,
                name=f"{fam} {given}",
                name_kana=f"{fam_kana} {given_kana}",
                birth_date=_birth_date(rng, cls.grade),
                sex=sex,
                address=address,
            )
            session.add(child)
            children.append(child)
            session.flush()
            session.add(Enrolment(child_id=child.id, school_year_id=year.id, class_id=cls.id, attendance_no=seat))
            session.add(GuardianChild(guardian_id=guardian.id, child_id=child.id, relationship_="mother"))
    session.flush()

    # Registered demo families: the first guardian with an e-mail has an account.
    demo_guardian = next(g for g in guardians if g.email)
    demo_guardian.email = f"family@{DEMO_DOMAIN}"
    demo_guardian.password_hash = hash_password(GUARDIAN_PASSWORD)
    demo_guardian.registered_at = utcnow()
    demo_guardian.email_confirmed_at = demo_guardian.registered_at  # the demo account has proven its address

    # Enrolment codes for every child not yet linked to a registered guardian.
    now = utcnow()
    registered_children = {link.child_id for link in demo_guardian.child_links}
    for child in children:
        if child.id in registered_children:
            continue
        code = demo_code(secret_key, child.student_no)
        session.add(
            EnrolmentCode(child_id=child.id, code_digest=auth.code_digest(secret_key, code), expires_at=now + timedelta(days=365))
        )
    # PINs for the demo students (the school issues the rest with card sheets).
    grade2 = next(c for c in classes if c.grade == 2)
    grade8 = next(c for c in classes if c.grade == 8)
    # Every PIN differs, so each needs its own hash: with argon2's production
    # parameters that is ~0.4 s a child (most of `demo load`). Demo PINs use
    # light parameters instead; argon2 hashes carry their parameters, so
    # sign-in verifies them as usual. Real PINs go through set_student_pin.
    for cls in (grade2, grade8):
        for e in session.scalars(select(Enrolment).where(Enrolment.class_id == cls.id)):
            e.child.pin_hash = _DEMO_PIN_HASHER.hash(demo_pin(e.child.student_no))
            e.child.session_version = (e.child.session_version or 1) + 1
    session.flush()

    ctx = DemoContext(rng, muni, year, schools, classes, children, guardians, staff)
    _load_domains(session, ctx)
    return ctx


def _load_domains(session: Session, ctx: DemoContext) -> None:
    from portal import DOMAINS

    for domain in DOMAINS:
        name = f"{domain}.demo"
        if importlib.util.find_spec(name) is not None:
            importlib.import_module(name).load(session, ctx)
            session.flush()


def logins(session: Session, secret_key: str) -> list[tuple[str, str, str]]:
    """The demo sign-ins, recomputed from the seed."""
    rows: list[tuple[str, str, str]] = []
    for key, label in [
        ("teacher", "teacher (grade 1, Hidamari)"),
        ("lead", "school lead (Hidamari)"),
        ("counsellor", "counsellor"),
        ("ssw", "school social worker"),
        ("coordinator", "coordinator"),
        ("steward", "data steward"),
        ("steward2", "second data steward (four eyes)"),
        ("analyst", "analyst"),
        ("admin", "administrator"),
    ]:
        email = f"{key}@{DEMO_DOMAIN}"
        rows.append((f"staff: {label}", email, f"password {STAFF_PASSWORD}, TOTP key {demo_totp_secret(email)}"))
    rows.append(("guardian (registered)", f"family@{DEMO_DOMAIN}", f"password {GUARDIAN_PASSWORD}"))
    for grade in (2, 8):
        cls = session.scalar(select(SchoolClass).where(SchoolClass.grade == grade).order_by(SchoolClass.id))
        e = session.scalar(select(Enrolment).where(Enrolment.class_id == cls.id).order_by(Enrolment.attendance_no))
        rows.append((f"student (grade {grade})", e.child.student_no, f"PIN {demo_pin(e.child.student_no)}"))
    used = {cid for (cid,) in session.execute(select(GuardianChild.child_id).join(Guardian).where(Guardian.password_hash.is_not(None)))}
    child = session.scalar(select(Child).where(Child.id.not_in(used) if used else True).order_by(Child.id))
    rows.append(("guardian registration: enrolment code", child.student_no, demo_code(secret_key, child.student_no)))
    return rows


def current_totp(email: str) -> str:
    return pyotp.TOTP(demo_totp_secret(email)).now()
