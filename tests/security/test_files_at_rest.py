"""Personal data the application writes to files outside the database is not in clear.

Beside the backup (tests/reliability/test_backup_restore.py), the same class:
an uploaded administrative file waiting for the steward's confirmation (up
to 24 hours under instance/uploads) holds children's names, addresses and
birth dates; and a CSV export written to a path may hold identifiers.
"""

from __future__ import annotations

import stat

from backoffice.linkage import jobs
from portal.tabular import write_csv

ROSTER = "児童生徒番号,氏名,生年月日,住所\r\nA0001,見守 花子,2017-04-02,石川県みまもり市ひだまり町1-2-3\r\n".encode()


def test_an_uploaded_file_waits_encrypted_and_owner_only(app):
    with app.test_request_context():
        digest = jobs.save_upload(app.instance_path, ROSTER)
        path = jobs.upload_path(app.instance_path, digest)
        stored = path.read_bytes()
        for value in ("見守 花子", "2017-04-02", "ひだまり町", "A0001"):
            assert value.encode() not in stored
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert jobs.read_upload(app.instance_path, digest) == ROSTER
        path.unlink()


def test_a_csv_export_written_to_a_path_is_owner_only(tmp_path):
    out = tmp_path / "export.csv"
    write_csv(out, ["student_no"], [["A0001"]])
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
