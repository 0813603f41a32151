"""Dates as Postfix 3.7 writes them, and the patterns that mask them in outputs we compare.

One function per format, used everywhere the simulator writes a date (FACTS: "Dates", checked on Postfix
3.7.11; the tests in ``tests/test_dates.py`` hold strings copied from the real Postfix):

- message headers (``Received:``, an added ``Date:``): ``%a, %e %b %Y %H:%M:%S %z (%Z)``, so the day of the
  month is padded with a *space* on days 1 to 9: ``Wed,  2 Dec 2026 13:08:16 +0000 (UTC)``
  (src/global/mail_date.c);
- ``maillog_file`` lines: ``%b %d %H:%M:%S``, zero-padded: ``Dec 02 13:12:33`` (src/util/logwriter.c);
- anvil's statistics: ``%b %e %H:%M:%S``, space-padded: ``at Dec  2 13:12:33``.

Names of days and months are always English, whatever the locale (Postfix and syslog write them so), and
the time zone is the process's local one, as Postfix's.

The ``MASKS`` patterns match every one of these formats and OpenSSL's and certbot's on every day of the
month; ``mask`` replaces them with a fixed token. ``notebooks/sanitize.cfg`` carries the same patterns for
nbval (it cannot import Python); ``tests/test_dates.py`` feeds both a sample for every day of a leap year.
"""

from __future__ import annotations

import datetime as _dt
import re
import time

_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def _local(when: float | None) -> _dt.datetime:
    return _dt.datetime.fromtimestamp(time.time() if when is None else when).astimezone()


def header_date(when: float | None = None) -> str:
    """``Wed,  2 Dec 2026 13:08:16 +0000 (UTC)``: Postfix's message-header date (mail_date.c)."""
    d = _local(when)
    offset = d.strftime("%z") or "+0000"
    zone = d.tzname() or "GMT"
    return (f"{_DAYS[d.weekday()]}, {d.day:2d} {_MONTHS[d.month - 1]} {d.year} "
            f"{d.hour:02d}:{d.minute:02d}:{d.second:02d} {offset} ({zone})")


def maillog_stamp(when: float | None = None) -> str:
    """``Dec 02 13:12:33``: the start of a ``maillog_file`` line (zero-padded day)."""
    d = _local(when)
    return f"{_MONTHS[d.month - 1]} {d.day:02d} {d.hour:02d}:{d.minute:02d}:{d.second:02d}"


def anvil_stamp(when: float | None = None) -> str:
    """``Dec  2 13:12:33``: the time in anvil's ``statistics: ... at ...`` lines (space-padded day)."""
    d = _local(when)
    return f"{_MONTHS[d.month - 1]} {d.day:2d} {d.hour:02d}:{d.minute:02d}:{d.second:02d}"


def parse_log_stamp(text: str, now: _dt.datetime | None = None) -> float:
    """Epoch seconds of a syslog-style stamp without a year (``Dec 02 13:12:33`` or ``Dec  2 13:12:33``).

    The year is the one that puts the stamp nearest before ``now`` (a December line read in January is
    last year's); 29 February takes the nearest leap year, so it never fails to parse.
    """
    now = now or _dt.datetime.now()
    mon, day, clock = text.split()
    month = _MONTHS.index(mon[:3].title()) + 1
    hh, mm, ss = (int(x) for x in clock.split(":"))
    for year in range(now.year, now.year - 8, -1):
        try:
            when = _dt.datetime(year, month, int(day), hh, mm, ss)
        except ValueError:  # 29 February of a common year
            continue
        if when <= now + _dt.timedelta(days=2):
            return when.timestamp()
    raise ValueError(f"not a log time stamp: {text!r}")


_MON = "(?:" + "|".join(_MONTHS) + ")"
_DAY = "(?:" + "|".join(_DAYS) + ")"
_ZONE = r"(?: \([A-Za-z0-9+-]+\))?"

#: Every date format that appears in the lab's outputs, by name; each matches days 1 to 31.
MASKS: dict[str, re.Pattern[str]] = {
    # Received:, Date: (Postfix, swaks): "Wed,  2 Dec 2026 13:08:16 +0000 (UTC)", "Wed, 02 Dec ...".
    "header": re.compile(rf"{_DAY}, {{1,2}}\d{{1,2}} {_MON} \d{{4}} \d\d:\d\d:\d\d [+-]\d{{4}}{_ZONE}"),
    # OpenSSL (x509 -dates, -text): "Dec  2 13:08:16 2026 GMT".
    "openssl": re.compile(rf"{_MON} {{1,2}}\d{{1,2}} \d\d:\d\d:\d\d \d{{4}} GMT"),
    # maillog_file, anvil, ls -l: "Dec 02 13:12:33", "Dec  2 13:12:33", "Dec  2 13:12".
    "log": re.compile(rf"{_MON} {{1,2}}\d{{1,2}} \d\d:\d\d(?::\d\d)?"),
    # certbot ("expires on 2031-12-02"), ISO time stamps.
    "iso": re.compile(r"\d{4}-\d\d-\d\d(?:[T ]\d\d:\d\d:\d\d(?:\.\d+)?(?:[+-]\d\d:?\d\d|Z)?)?"),
}


def mask(text: str, token: str = "<DATE>") -> str:
    """Replace every date in ``text`` (any of ``MASKS``, longest formats first) by ``token``."""
    for pattern in MASKS.values():
        text = pattern.sub(token, text)
    return text
