"""Dates and years from what documents, manifests and feeds write, in one
place: every reader and the news read them through these functions.

Two kinds of result, for two uses:
- a document's date is a calendar date, 'YYYY-MM-DD' text (iso_date,
  date_and_year), and its year an int (parse_year); a bare year is kept as a
  year and never invented into a date;
- a news item's moment is a naive datetime in UTC, how the library stores
  times (parse_date for feed text, utc and as_utc for values a caller
  gives).
"""
from __future__ import annotations

import datetime as dt
import email.utils
import re

YEAR = re.compile(r"(?<!\d)(\d{3,4})(?!\d)")
# A year, then perhaps a month, then perhaps a day: 1848, 1848-02, 1848/2/21.
DATE_IN_TEXT = re.compile(r"(\d{4})(?:[-/.](\d{1,2})(?:[-/.](\d{1,2}))?)?")
ISO_DATE_START = re.compile(r"\s*(\d{4})-(\d{2})-(\d{2})")
# Reuters-21578 writes '26-FEB-1987 15:18:06.67'.
REUTERS_PATTERNS = ("%d-%b-%Y %H:%M:%S.%f", "%d-%b-%Y %H:%M:%S", "%d-%b-%Y")


# --- a document's date and year ----------------------------------------------------------

def parse_year(value: str | int | None) -> int | None:
    """1845 from '1845', '1845-03-01', 'c. 1845' or 1845; None if none."""
    if value is None:
        return None
    m = YEAR.search(str(value))
    return int(m.group(1)) if m else None


def iso_date(value) -> str | None:
    """'YYYY-MM-DD' when the value starts with a real date, else None (a bare
    year is kept in `year`, not invented into a date)."""
    m = ISO_DATE_START.match(str(value or ""))
    if not m:
        return None
    try:
        return dt.date(*map(int, m.groups())).isoformat()
    except ValueError:
        return None


def date_and_year(value: str | None) -> tuple[str | None, int | None]:
    """('1848-02-21', 1848) from '1848-02-21' or '1848/2/21'; (None, 1848)
    from 'February 1848'; a date is only given when it is a whole one."""
    if not value:
        return None, None
    m = DATE_IN_TEXT.search(value)
    if m and m.group(3):
        year, month, day = (int(g) for g in m.groups())
        if 1 <= month <= 12 and 1 <= day <= 31:
            return f"{year:04d}-{month:02d}-{day:02d}", year
    return None, parse_year(value)


# --- a news item's moment ------------------------------------------------------------------

def utc(moment: dt.datetime | None) -> dt.datetime | None:
    """A naive datetime in UTC (how the library stores times); a naive input
    is taken to be UTC already."""
    if moment is None:
        return None
    if moment.tzinfo is not None:
        moment = moment.astimezone(dt.timezone.utc).replace(tzinfo=None)
    return moment


def as_utc(value: str | dt.date | dt.datetime) -> dt.datetime:
    """A naive UTC datetime from an ISO 8601 string, a datetime (naive ones
    are UTC) or a date (its midnight): the bounds of a news window."""
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    if isinstance(value, dt.datetime):
        return utc(value)
    return dt.datetime.combine(value, dt.time())


def parse_date(value: str | None) -> dt.datetime | None:
    """A naive UTC datetime from the dates feeds write: RFC 822 (RSS: 'Wed,
    01 May 2024 09:30:00 +0200'), ISO 8601 / RFC 3339 (Atom, Dublin Core,
    exports: '2024-05-01T09:30:00Z', '2024-05-01') and Reuters-21578's
    '26-FEB-1987 15:18:06.67'. None when it is none of these."""
    value = (value or "").strip()
    if not value:
        return None
    try:
        return utc(dt.datetime.fromisoformat(value.replace("Z", "+00:00")))
    except ValueError:
        pass
    try:
        parsed = email.utils.parsedate_to_datetime(value)
        if parsed is not None:
            return utc(parsed)
    except (TypeError, ValueError, IndexError):
        pass
    for pattern in REUTERS_PATTERNS:
        try:
            return dt.datetime.strptime(value, pattern)
        except ValueError:
            pass
    return None
