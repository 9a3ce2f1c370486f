"""Reading the docs' markdown tables, so tests can hold them to the code."""

import re
from pathlib import Path

DOCS = Path(__file__).resolve().parent.parent / "docs"


def doc_table(page):
    """{first cell: other cells} of the markdown table rows of ``docs/page`` whose first
    cell is a backquoted name."""
    rows = {}
    for line in (DOCS / page).read_text().splitlines():
        m = re.match(r"\|\s*`(\w+)`\s*\|(.*)\|\s*$", line)
        if m:
            rows[m.group(1)] = [c.strip() for c in m.group(2).split("|")]
    return rows
