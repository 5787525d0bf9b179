"""The one translation catalogue (portal/translations), kept in step with the code.

    python scripts/i18n.py update           extract, merge into ja and en, compile
    python scripts/i18n.py missing          print untranslated ja msgids as JSON
    python scripts/i18n.py fill FILE.json   add ja translations {msgid: msgstr}, then update
    python scripts/i18n.py check            exit 1 when a ja message is missing or fuzzy
    python scripts/i18n.py compile          compile the .po catalogues to .mo (no extraction)

English is the source language, so the en catalogue carries each msgid as its
own translation. Every step runs under a file lock, so several people (or
agents) working at once never overwrite each other's translations.
"""

from __future__ import annotations

import fcntl
import io
import json
import subprocess
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po, write_po

ROOT = Path(__file__).resolve().parent.parent
TRANSLATIONS = ROOT / "portal" / "translations"
SOURCES = ["portal", "backoffice", "consent", "surveys", "resources"]
LOCALES = ["ja", "en"]


@contextmanager
def locked():
    TRANSLATIONS.mkdir(parents=True, exist_ok=True)
    with open(TRANSLATIONS / ".lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def extract():
    with tempfile.TemporaryDirectory() as tmp:
        pot = Path(tmp) / "messages.pot"
        subprocess.run(
            [sys.executable, "-m", "babel.messages.frontend", "extract", "-F", str(ROOT / "babel.cfg"),
             "-k", "_l", "-k", "lazy_gettext", "-k", "lazy_ngettext:1,2", "--no-location", "--sort-output",
             "--omit-header", "-o", str(pot), *SOURCES],
            cwd=ROOT, check=True, capture_output=True,
        )
        with open(pot, "rb") as fh:
            return read_po(fh)


def po_path(locale: str) -> Path:
    return TRANSLATIONS / locale / "LC_MESSAGES" / "messages.po"


def load(locale: str):
    path = po_path(locale)
    if not path.exists():
        from babel.messages.catalog import Catalog

        return Catalog(locale=locale)
    with open(path, "rb") as fh:
        return read_po(fh, locale=locale)


def save(locale: str, catalog) -> None:
    path = po_path(locale)
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    write_po(buf, catalog, width=0, no_location=True, sort_output=True, ignore_obsolete=True)
    tmp = path.with_suffix(".po.tmp")
    tmp.write_bytes(buf.getvalue())
    tmp.replace(path)
    with open(path.with_suffix(".mo"), "wb") as fh:
        write_mo(fh, catalog, use_fuzzy=False)


def _update(template) -> None:
    for locale in LOCALES:
        catalog = load(locale)
        catalog.update(template, no_fuzzy_matching=True)
        if locale == "en":
            for msg in catalog:
                if msg.id and not msg.string:
                    msg.string = msg.id
                msg.flags.discard("fuzzy")
        save(locale, catalog)


def untranslated(catalog) -> list:
    out = []
    for msg in catalog:
        if not msg.id:
            continue
        strings = msg.string if isinstance(msg.string, tuple) else (msg.string,)
        if "fuzzy" in msg.flags or not all(strings):
            out.append(msg.id)
    return out


def main(argv: list[str]) -> int:
    cmd = argv[1] if len(argv) > 1 else "update"
    with locked():
        if cmd == "update":
            _update(extract())
            return 0
        if cmd == "missing":
            _update(extract())
            ids = untranslated(load("ja"))
            print(json.dumps({(i if isinstance(i, str) else i[0]): "" for i in ids}, ensure_ascii=False, indent=1))
            return 0
        if cmd == "fill":
            pairs = json.loads(Path(argv[2]).read_text(encoding="utf-8"))
            _update(extract())
            catalog = load("ja")
            unknown = []
            for msgid, msgstr in pairs.items():
                msg = catalog.get(msgid)
                if msg is None:
                    # plural entries are keyed by their singular
                    msg = next((m for m in catalog if isinstance(m.id, tuple) and m.id[0] == msgid), None)
                if msg is None:
                    unknown.append(msgid)
                    continue
                if isinstance(msg.id, tuple):
                    msg.string = tuple(msgstr if isinstance(msgstr, str) else s for s in (msgstr if isinstance(msgstr, list) else [msgstr] * len(msg.id)))
                else:
                    msg.string = msgstr
                msg.flags.discard("fuzzy")
            save("ja", catalog)
            if unknown:
                print(f"{len(unknown)} msgids are not in the code (ignored):", file=sys.stderr)
                for u in unknown[:20]:
                    print("  " + u, file=sys.stderr)
            left = untranslated(catalog)
            print(f"ja: {len(left)} untranslated left")
            return 0
        if cmd == "compile":
            for locale in LOCALES:
                catalog = load(locale)
                with open(po_path(locale).with_suffix(".mo"), "wb") as fh:
                    write_mo(fh, catalog, use_fuzzy=False)
            return 0
        if cmd == "check":
            template = extract()
            ja = load("ja")
            missing = [m.id for m in template if m.id and (ja.get(m.id) is None or not ja.get(m.id).string or "fuzzy" in ja.get(m.id).flags)]
            if missing:
                print(f"{len(missing)} messages lack a Japanese translation:")
                for m in missing[:50]:
                    print("  ", m)
                return 1
            return 0
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
