"""Audit the installed dependencies for known vulnerabilities (pip-audit).

Runs pip-audit on the virtual environment's pinned packages and reads its JSON
report, so that a run which could not reach the vulnerability service is not
mistaken for a clean one: pip-audit says "No known vulnerabilities found" even
when every package was skipped.

Exit status: 1 when a vulnerability is found, 0 otherwise. The last line says
how many packages were audited, so a log shows at once when none could be.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path


def main() -> int:
    py = sys.executable
    freeze = subprocess.run(
        [py, "-m", "pip", "freeze", "--exclude-editable"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    with tempfile.TemporaryDirectory() as tmp:
        req = Path(tmp) / "requirements.txt"
        req.write_text(freeze)
        out = Path(tmp) / "audit.json"
        proc = subprocess.run(
            [
                py, "-m", "pip_audit", "-r", str(req), "--no-deps", "--disable-pip",
                "--progress-spinner", "off", "-f", "json", "-o", str(out),
            ],
            capture_output=True,
            text=True,
        )
        if not out.exists():
            print(proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "pip-audit failed")
            print("pip-audit: no report (the vulnerability service did not answer): audited=0")
            return 0
        report = json.loads(out.read_text())
    deps = report.get("dependencies", [])
    skipped = [d for d in deps if d.get("skip_reason")]
    audited = [d for d in deps if not d.get("skip_reason")]
    vulnerable = [d for d in audited if d.get("vulns")]
    for d in vulnerable:
        ids = ", ".join(v["id"] for v in d["vulns"])
        print(f"VULNERABLE {d['name']} {d.get('version', '')}: {ids}")
    if deps and not audited:
        print("pip-audit: the vulnerability service knows none of these packages "
              "(unreachable from this machine): nothing was audited")
    print(f"pip-audit: packages={len(deps)} audited={len(audited)} skipped={len(skipped)} "
          f"vulnerable={len(vulnerable)}")
    return 1 if vulnerable else 0


if __name__ == "__main__":
    sys.exit(main())
