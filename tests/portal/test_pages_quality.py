"""Pages: strict CSP, no inline code, every input labelled, translations complete."""

from __future__ import annotations

import importlib.util
import re
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

from portal.auth.access import roles_for
from tests.conftest import sign_in_as

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ["portal", "backoffice", "consent", "surveys", "resources"]


def _templates() -> list[Path]:
    out: list[Path] = []
    for pkg in PACKAGES:
        out.extend(p for p in (ROOT / pkg).rglob("templates/**/*") if p.suffix in (".html", ".htm", ".svg", ".xml"))
    return sorted(out)


# -- CSP -------------------------------------------------------------------------


def test_csp_forbids_inline_script(client):
    for url in ("/", "/signin", "/family/register", "/no-such-page"):
        csp = client.get(url).headers["Content-Security-Policy"]
        directives = {d.split()[0]: d.split()[1:] for d in csp.split(";") if d.strip()}
        assert directives["script-src"] == ["'self'"], csp
        assert directives["style-src"] == ["'self'"], csp
        assert directives["object-src"] == ["'none'"]
        assert directives["frame-ancestors"] == ["'none'"]
        assert directives["base-uri"] == ["'self'"]
        for source in ("'unsafe-inline'", "'unsafe-eval'", "http:", "https:", "*"):
            assert source not in csp, csp


INLINE_SCRIPT = re.compile(r"<script\b(?![^>]*\bsrc\s*=)[^>]*>", re.I)
STYLE_BLOCK = re.compile(r"<style\b", re.I)
STYLE_ATTR = re.compile(r"<[a-zA-Z][^>]*\sstyle\s*=", re.S)
EVENT_ATTR = re.compile(r"<[a-zA-Z][^>]*\son[a-z]+\s*=", re.S)
JS_URL = re.compile(r"""(href|src|action)\s*=\s*["']\s*javascript:""", re.I)
EXTERNAL_ASSET = re.compile(r"""<(script|link|img|iframe)\b[^>]*(src|href)\s*=\s*["'](https?:)?//""", re.I)


def test_no_template_has_inline_script_or_style():
    templates = _templates()
    assert len(templates) > 20
    problems = []
    for path in templates:
        text = path.read_text(encoding="utf-8")
        for name, rx in (("inline <script>", INLINE_SCRIPT), ("<style> block", STYLE_BLOCK), ("style= attribute", STYLE_ATTR),
                         ("on…= handler", EVENT_ATTR), ("javascript: URL", JS_URL), ("asset from outside", EXTERNAL_ASSET)):
            for m in rx.finditer(text):
                line = text.count("\n", 0, m.start()) + 1
                problems.append(f"{path.relative_to(ROOT)}:{line}: {name}")
    assert not problems, "\n".join(problems)


# -- labels ----------------------------------------------------------------------


class _FormAudit(HTMLParser):
    """Collects form controls and the labels that name them."""

    UNLABELLED_TYPES = {"hidden", "submit", "button", "reset", "image"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.label_for: set[str] = set()
        self.controls: list[dict] = []
        self.label_depth = 0
        self.lang: str | None = None
        self.language_switcher = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "html":
            self.lang = a.get("lang")
        if tag == "select" and a.get("id") == "lang-select":
            self.language_switcher = True
        if tag == "label":
            self.label_depth += 1
            if a.get("for"):
                self.label_for.add(a["for"])
        if tag in ("input", "select", "textarea"):
            if tag == "input" and (a.get("type") or "text").lower() in self.UNLABELLED_TYPES:
                return
            self.controls.append({"tag": tag, "inside_label": self.label_depth > 0, **a})

    def handle_endtag(self, tag):
        if tag == "label" and self.label_depth:
            self.label_depth -= 1

    def unlabelled(self) -> list[str]:
        out = []
        for c in self.controls:
            named = (
                c["inside_label"]
                or (c.get("id") and c["id"] in self.label_for)
                or (c.get("aria-label") or "").strip()
                or (c.get("aria-labelledby") or "").strip()
            )
            if not named:
                out.append(f"<{c['tag']} name={c.get('name')!r} id={c.get('id')!r}>")
        return out


def _get_pages(app):
    for rule in app.url_map.iter_rules():
        if "GET" not in (rule.methods or ()) or rule.arguments or rule.endpoint.endswith("static"):
            continue
        yield rule.endpoint, rule.rule


@pytest.fixture
def people(make, session):
    teacher, cls = make.teacher_with_class(grade=5)
    child = make.child(cls, pin="482913")
    guardian = make.guardian(child)
    staff = {role: make.staff(role, schools=[cls.school]) for role in
             ("school_lead", "counsellor", "social_worker", "coordinator", "data_steward", "analyst", "administrator")}
    session.commit()
    return {"anonymous": None, "guardian": guardian, "student": child, "teacher": teacher, **staff}


def test_every_input_has_a_label(app, people):
    checked = 0
    problems = []
    for role, who in people.items():
        client = app.test_client()
        if who is not None:
            sign_in_as(client, who)
        for endpoint, url in _get_pages(app):
            allowed = roles_for(app.view_functions[endpoint]) or frozenset()
            if role not in allowed:
                continue
            resp = client.get(url)
            if resp.status_code != 200 or not resp.mimetype.startswith("text/html"):
                continue
            audit = _FormAudit()
            audit.feed(resp.get_data(as_text=True))
            checked += 1
            assert audit.lang in ("ja", "en"), f"{url} has no lang attribute"
            assert audit.language_switcher, f"{url} ({role}) offers no language choice"
            problems.extend(f"{role} {url}: {c}" for c in audit.unlabelled())
    assert checked >= 15
    assert not problems, "\n".join(sorted(set(problems)))


def test_error_pages_are_in_the_users_language(app, client):
    r = client.get("/no-such-page")
    assert r.status_code == 404 and '<html lang="ja">' in r.get_data(as_text=True)
    client.get("/")
    with client.session_transaction() as sess:
        sess["locale"] = "en"
    r = client.get("/no-such-page")
    assert '<html lang="en">' in r.get_data(as_text=True) and "Not found" in r.get_data(as_text=True)


# -- translations ----------------------------------------------------------------


def _i18n_module():
    spec = importlib.util.spec_from_file_location("mimamori_i18n_script", ROOT / "scripts" / "i18n.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault(spec.name, module)
    spec.loader.exec_module(module)
    return module


def translation_problems(template, ja) -> dict[str, list]:
    """Messages of the code that the Japanese catalogue lacks, marks fuzzy, or translates with other placeholders."""
    missing, fuzzy, placeholders = [], [], []
    for msg in template:
        if not msg.id:
            continue
        key = msg.id
        found = ja.get(key)
        if found is None or not (all(found.string) if isinstance(found.string, tuple) else found.string):
            missing.append(key)
            continue
        if "fuzzy" in found.flags:
            fuzzy.append(key)
        ids = key if isinstance(key, tuple) else (key,)
        strings = found.string if isinstance(found.string, tuple) else (found.string,)
        wanted = set(re.findall(r"%\((\w+)\)[sd]", ids[0]))
        for s in strings:
            if set(re.findall(r"%\((\w+)\)[sd]", s)) != wanted:
                placeholders.append(key)
    return {"missing": missing, "fuzzy": fuzzy, "placeholders": placeholders}


def test_translations_complete():
    i18n = _i18n_module()
    problems = translation_problems(i18n.extract(), i18n.load("ja"))
    assert not problems["missing"], f"{len(problems['missing'])} untranslated: {problems['missing'][:20]}"
    assert not problems["fuzzy"], f"fuzzy: {problems['fuzzy'][:20]}"
    assert not problems["placeholders"], f"placeholders differ: {problems['placeholders'][:20]}"


def test_translation_check_catches_missing_fuzzy_and_wrong_placeholders():
    from babel.messages.catalog import Catalog

    template = Catalog(locale="en")
    for msgid in ("Fine", "Missing", "Empty", "Fuzzy", "Hello %(name)s", ("%(n)d child", "%(n)d children")):
        template.add(msgid)
    ja = Catalog(locale="ja")
    ja.add("Fine", "良い")
    ja.add("Empty", "")
    ja.add("Fuzzy", "あいまい", flags=["fuzzy"])
    ja.add("Hello %(name)s", "こんにちは %(nom)s")
    ja.add(("%(n)d child", "%(n)d children"), ("子ども%(n)d人",))
    problems = translation_problems(template, ja)
    assert problems == {"missing": ["Missing", "Empty"], "fuzzy": ["Fuzzy"], "placeholders": ["Hello %(name)s"]}
