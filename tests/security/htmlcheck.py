"""Parse a page and say whether an injected payload came out live or escaped.

The templates hold no inline script and no event-handler attribute
(``tests/portal/test_pages_quality.py``), so in a parsed page any ``<script>``
without ``src``, any ``on*`` attribute, any ``javascript:`` URL or any
``<img src=x>`` can only have come from data: that is a live injection. A
payload that is shown escaped appears in the page's *text* (or in an
attribute value), which is what :attr:`Scan.seen` collects.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser

PAYLOAD = '<script>alert({tag})</script>"><img src=x onerror=alert({tag})>'
SHORT_PAYLOAD = "<i onclick={tag}>"  # for columns too short for the long one


def payload(tag: str, room: int | None = None) -> str:
    long = PAYLOAD.format(tag=tag)
    return long if room is None or room >= len(long) else SHORT_PAYLOAD.format(tag=tag)


@dataclass
class Scan:
    live: list[str] = field(default_factory=list)  # descriptions of live injected markup
    text: list[str] = field(default_factory=list)  # text nodes and attribute values, unescaped

    def seen(self, tag: str) -> bool:
        return any(tag in t for t in self.text)


class _Parser(HTMLParser):
    def __init__(self, scan: Scan):
        super().__init__(convert_charrefs=True)
        self.scan = scan
        self._in_script = False

    def handle_starttag(self, tag, attrs):
        self._check(tag, attrs)

    def handle_startendtag(self, tag, attrs):
        self._check(tag, attrs)

    def _check(self, tag, attrs):
        a = dict(attrs)
        if tag == "script":
            self._in_script = True
            if not a.get("src") or not a["src"].startswith("/"):
                self.scan.live.append(f"<script {a}>")
        if tag == "img" and a.get("src") == "x":
            self.scan.live.append("<img src=x>")
        for name, value in attrs:
            if name.startswith("on"):
                self.scan.live.append(f"<{tag} {name}={value!r}>")
            if name in ("href", "src", "action", "formaction") and value and value.strip().lower().startswith("javascript:"):
                self.scan.live.append(f"<{tag} {name}={value!r}>")
            if value:
                self.scan.text.append(value)

    def handle_endtag(self, tag):
        if tag == "script":
            self._in_script = False

    def handle_data(self, data):
        if self._in_script and data.strip():
            self.scan.live.append(f"script body {data[:60]!r}")
        self.scan.text.append(data)


def scan(html: str) -> Scan:
    s = Scan()
    p = _Parser(s)
    p.feed(html)
    p.close()
    return s
