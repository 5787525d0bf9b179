"""Password and PIN hashes: argon2id, the configured parameters, and an
upgrade at sign-in of hashes made with other parameters."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta

import pytest
from argon2 import PasswordHasher, extract_parameters

from portal.auth import passwords
from portal.auth import service as auth
from portal.orm import utcnow
from tests.conftest import PASSWORD

OLD = PasswordHasher(time_cost=3, memory_cost=2048, parallelism=2)  # "other parameters" than the current ones


def _params(h: str):
    p = extract_parameters(h)
    return p.time_cost, p.memory_cost, p.parallelism


@pytest.mark.parametrize("choice, expected", [
    ("", (2, 19 * 1024, 1)),  # the default: OWASP's first argon2id configuration
    ("owasp", (2, 19 * 1024, 1)),
    ("rfc9106", (3, 64 * 1024, 4)),
])
def test_the_configured_parameter_set_makes_argon2id_hashes(choice, expected):
    code = ("from portal.auth.passwords import hash_password; from argon2 import extract_parameters as e; "
            "h = hash_password('x' * 12); p = e(h); print(h.split('$')[1], p.time_cost, p.memory_cost, p.parallelism)")
    env = {"PATH": "/usr/bin:/bin", "MIMAMORI_ENV": "development"}
    if choice:
        env["MIMAMORI_PASSWORD_HASH"] = choice
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout.split()
    assert out[0] == "argon2id"
    assert tuple(map(int, out[1:])) == expected


def test_an_unknown_parameter_set_is_refused_at_start():
    env = {"PATH": "/usr/bin:/bin", "MIMAMORI_ENV": "development", "MIMAMORI_PASSWORD_HASH": "md5"}
    r = subprocess.run([sys.executable, "-c", "import portal.auth.passwords"], env=env, capture_output=True, text=True)
    assert r.returncode != 0 and "MIMAMORI_PASSWORD_HASH must be one of owasp, rfc9106" in r.stderr


def test_a_guardian_hash_with_other_parameters_is_upgraded_at_sign_in(make, session):
    guardian = make.guardian(make.child())
    guardian.password_hash = OLD.hash(PASSWORD)
    session.commit()
    assert passwords.needs_rehash(guardian.password_hash)

    assert not auth.guardian_check_password(session, guardian.email, "wrong password!").ok
    assert _params(guardian.password_hash) == (3, 2048, 2)  # a failed sign-in changes nothing
    later = utcnow() + timedelta(minutes=1)  # past the delay a failure sets
    assert auth.guardian_check_password(session, guardian.email, PASSWORD, now=later).ok
    session.commit()
    assert not passwords.needs_rehash(guardian.password_hash)
    assert _params(guardian.password_hash) != (3, 2048, 2)
    assert auth.guardian_check_password(session, guardian.email, PASSWORD).ok  # the new hash verifies


def test_a_student_pin_hash_with_other_parameters_is_upgraded_at_sign_in(make, session):
    child = make.child()
    child.pin_hash = OLD.hash("482913")
    version = child.session_version
    session.commit()
    assert auth.student_check_pin(session, child.student_no, "482913").ok
    session.commit()
    assert not passwords.needs_rehash(child.pin_hash)
    assert child.session_version == version  # the child's other sessions go on
    assert auth.student_check_pin(session, child.student_no, "482913").ok


def test_a_staff_hash_with_other_parameters_is_upgraded_at_sign_in(make, session):
    staff = make.staff()
    staff.password_hash = OLD.hash(PASSWORD)
    session.commit()
    assert auth.staff_check_password(session, staff.email, PASSWORD).ok
    session.commit()
    assert not passwords.needs_rehash(staff.password_hash)


def test_passwords_need_twelve_characters(client):
    from portal.auth.forms import PasswordResetForm

    assert passwords.MIN_PASSWORD_LENGTH == 12
    with client.application.test_request_context(method="POST", data={"password": "a" * 11, "password_again": "a" * 11}):
        form = PasswordResetForm(meta={"csrf": False})
        assert not form.validate() and form.password.errors
    with client.application.test_request_context(method="POST", data={"password": "a" * 12, "password_again": "a" * 12}):
        assert PasswordResetForm(meta={"csrf": False}).validate()
