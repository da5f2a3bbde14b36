"""The two readers the credentials CSV must satisfy, as independent oracles.

- Python's :mod:`csv` (what scripts and spreadsheet-like tools do): RFC 4180 quoting rules.
- ``aws configure import`` (AWS CLI v2; CLI v1 has no such command): modelled on its documented
  behaviour, not on its code. It needs the ``User name``, ``Access key ID`` and
  ``Secret access key`` headers (matched ignoring case and surrounding spaces, a UTF-8 BOM
  dropped), cuts the text into rows with ``str.splitlines`` and each row on every plain comma,
  with no quoting at all, and strips each field it takes; a missing or empty field fails the row.
"""

from __future__ import annotations

import csv
import io

CSV_HEADER = "User name,Password,Access key ID,Secret access key,Console login link"
COLUMNS = ("user_name", "password", "access_key_id", "secret_access_key", "console_url")
IMPORTER_NEEDS = {"user name": "user_name", "access key id": "access_key_id", "secret access key": "secret_access_key"}


def console_csv(row: dict[str, str | None]) -> str:
    """The file the reveal page builds (``reveal.js`` ``toCsv``): header, one unquoted row."""
    return CSV_HEADER + "\n" + ",".join(row.get(name) or "" for name in COLUMNS) + "\n"


def read_with_python_csv(text: str) -> list[dict[str, str]]:
    """Rows as :class:`csv.DictReader` reads them, keyed by :data:`COLUMNS`."""
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader)
    assert header == CSV_HEADER.split(","), header
    rows = []
    for cells in reader:
        assert len(cells) == len(COLUMNS), f"a row has {len(cells)} fields, not {len(COLUMNS)}"
        rows.append(dict(zip(COLUMNS, cells, strict=True)))
    return rows


def read_like_aws_configure_import(text: str) -> list[dict[str, str]]:
    """``(user name, access key id, secret access key)`` of each row, as the importer takes them.

    Raises:
        AssertionError: where the importer would fail (a header or a field missing).
    """
    lines = text.splitlines()
    header = [h.removeprefix("\ufeff").strip().lower() for h in lines[0].split(",")]
    missing = set(IMPORTER_NEEDS) - set(header)
    assert not missing, f"the importer finds no {sorted(missing)} header"
    index = {IMPORTER_NEEDS[h]: header.index(h) for h in IMPORTER_NEEDS}
    rows = []
    for line in lines[1:]:
        cells = line.split(",")
        row = {name: cells[i].strip() if i < len(cells) else "" for name, i in index.items()}
        assert all(row.values()), "the importer would refuse a row with an empty field"
        rows.append(row)
    return rows
