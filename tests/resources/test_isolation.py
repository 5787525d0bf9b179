"""The resources domain cannot reach consent, surveys, screening or linkage."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import resources

FORBIDDEN = ("consent", "surveys", "backoffice")


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_no_resources_module_imports_consent_surveys_or_screening():
    root = Path(resources.__file__).parent
    offenders = {
        str(p.relative_to(root)): sorted(n for n in _imports(p) if n.split(".")[0] in FORBIDDEN)
        for p in root.rglob("*.py")
    }
    assert not {k: v for k, v in offenders.items() if v}


def test_campaign_code_loads_without_flags_scores_or_consent():
    """Importing the campaign modules pulls in none of those packages (checked in a fresh interpreter)."""
    code = (
        "import sys, resources.campaigns, resources.letters, resources.service;"
        "bad=[m for m in sys.modules if m.split('.')[0] in ('consent','surveys','backoffice')];"
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(resources.__file__).parent.parent)
    assert out.stdout.strip() == ""


def test_campaign_audience_has_no_flag_score_or_consent_field():
    from resources.models import Audience, Campaign

    assert {a.value for a in Audience} == {"all", "school", "grades", "ages"}
    columns = {c.name for c in Campaign.__table__.columns}
    assert not {c for c in columns if any(w in c for w in ("flag", "score", "consent", "risk"))}
