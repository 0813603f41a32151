"""Dates on every day of the month: the formats Postfix writes, and every pattern that masks them.

"Now" is never read from the clock in these tests except in the live ones: the format functions take the
time as an argument (an injected clock), so a test can be any day of any year. The live tests compare what
the real Postfix writes *today* with what ``labsim.dates`` writes for the same second, so on a single-digit
day (as on the 2nd, when this was found) they check the space padding against Postfix itself.
"""

from __future__ import annotations

import configparser
import datetime as dt
import email.utils
import os
import re
import time
from pathlib import Path

import pytest

from labsim import dates
from tests.conftest import need_postfix

SANITIZE = Path(__file__).resolve().parent.parent / "notebooks" / "sanitize.cfg"

# Copied from the real Postfix 3.7.11 (Debian 12), TZ=UTC:
# - a two-digit day: the Received: header stored in notebooks/01-smtp-in-the-clear.ipynb, and its log line;
# - a one-digit day: the lab's Postfix on 2 December 2026 (FACTS: "Dates"): Received:/Date:, maillog, anvil.
REAL = [
    # (epoch seconds, header date, maillog_file stamp, anvil stamp)
    (dt.datetime(2026, 11, 24, 20, 19, 11, tzinfo=dt.timezone.utc), "Tue, 24 Nov 2026 20:19:11 +0000 (UTC)",
     "Nov 24 20:19:11", "Nov 24 20:19:11"),
    (dt.datetime(2026, 12, 2, 13, 8, 16, tzinfo=dt.timezone.utc), "Wed,  2 Dec 2026 13:08:16 +0000 (UTC)",
     "Dec 02 13:08:16", "Dec  2 13:08:16"),
]


@pytest.fixture
def tz():
    """Set the process's time zone for one test (the format functions use the local zone, as Postfix)."""
    old = os.environ.get("TZ")

    def use(name: str) -> None:
        os.environ["TZ"] = name
        time.tzset()

    yield use
    if old is None:
        os.environ.pop("TZ", None)
    else:
        os.environ["TZ"] = old
    time.tzset()


def every_day(year: int = 2028):
    """Noon and a second before midnight of every day of a leap year (29 February included)."""
    day = dt.datetime(year, 1, 1, tzinfo=dt.timezone.utc)
    while day.year == year:
        yield day.replace(hour=12, minute=0, second=0)
        yield day.replace(hour=23, minute=59, second=59)
        day += dt.timedelta(days=1)


@pytest.mark.parametrize("when, header, maillog, anvil", REAL, ids=["day-24", "day-2"])
def test_formats_match_strings_from_the_real_postfix(tz, when, header, maillog, anvil) -> None:
    tz("UTC")
    t = when.timestamp()
    assert dates.header_date(t) == header
    assert dates.maillog_stamp(t) == maillog
    assert dates.anvil_stamp(t) == anvil


def test_header_date_in_another_time_zone(tz) -> None:
    """Postfix writes local time with its offset and zone name; so does the simulator."""
    tz("Asia/Kolkata")
    t = dt.datetime(2026, 12, 2, 13, 8, 16, tzinfo=dt.timezone.utc).timestamp()
    assert dates.header_date(t) == "Wed,  2 Dec 2026 18:38:16 +0530 (IST)"
    tz("America/Sao_Paulo")  # a zone whose abbreviation is a number: "-03"
    assert dates.header_date(t) == "Wed,  2 Dec 2026 10:08:16 -0300 (-03)"


def test_header_date_agrees_with_the_rfc_5322_parser(tz) -> None:
    tz("Europe/Berlin")
    for when in every_day():
        text = dates.header_date(when.timestamp())
        assert email.utils.parsedate_to_datetime(text.split(" (")[0]) == when, text


def _samples(when: dt.datetime) -> dict[str, str]:
    """One sample of every dated format the lab's outputs carry, for that moment (UTC)."""
    t = when.timestamp()
    return {
        "header": dates.header_date(t),  # Postfix: space-padded day
        "header-zero": email.utils.format_datetime(when).replace("-0000", "+0000") + " (UTC)",  # swaks/Python
        "maillog": dates.maillog_stamp(t) + " lab postfix/smtpd[123]: connect from localhost[127.0.0.1]",
        "anvil": "statistics: max connection rate 1/60s for (smtp:127.0.0.1) at " + dates.anvil_stamp(t),
        "openssl": "notAfter=" + when.strftime("%b ") + f"{when.day:2d}" + when.strftime(" %H:%M:%S %Y GMT"),
        "ls": "-rw-r--r-- 1 student student 1704 " + when.strftime("%b ") + f"{when.day:2d}" + when.strftime(" %H:%M privkey1.pem"),
        "certbot": "This certificate expires on " + when.strftime("%Y-%m-%d") + ".",
    }


def test_mask_hides_every_date_format_on_every_day(tz) -> None:
    tz("UTC")
    seen: dict[str, set[str]] = {}
    for when in every_day():
        for name, text in _samples(when).items():
            masked = dates.mask(text)
            assert "<DATE>" in masked and not re.search(r"\d\d:\d\d|\b20\d\d\b", masked), (name, text, masked)
            seen.setdefault(name, set()).add(masked)
    # The same line on any day masks to one text: a stored output from the 24th matches a run on the 2nd.
    assert all(len(v) == 1 for v in seen.values()), {k: v for k, v in seen.items() if len(v) > 1}


def _sanitizer() -> list[tuple[re.Pattern[str], str]]:
    cfg = configparser.ConfigParser(interpolation=None)
    cfg.read(SANITIZE)
    sections = sorted(cfg.sections(), key=lambda s: int(re.sub(r"\D", "", s) or 0))
    return [(re.compile(cfg[s]["regex"]), cfg[s].get("replace", "")) for s in sections]


def _sanitize(rules, text: str) -> str:
    for pattern, replace in rules:
        text = pattern.sub(replace, text)
    return text


def test_nbval_sanitizer_hides_every_date_format_on_every_day(tz) -> None:
    """notebooks/sanitize.cfg, applied as nbval applies it, maps every day's output to the same text."""
    tz("UTC")
    rules = _sanitizer()
    seen: dict[str, set[str]] = {}
    for when in every_day():
        for name, text in _samples(when).items():
            seen.setdefault(name, set()).add(_sanitize(rules, text))
    assert all(len(v) == 1 for v in seen.values()), {k: sorted(v)[:3] for k, v in seen.items() if len(v) > 1}
    assert not any(re.search(r"\d\d:\d\d", next(iter(v))) for v in seen.values()), seen


def test_parse_log_stamp_every_day_and_at_new_year() -> None:
    for when in every_day():
        naive = when.replace(tzinfo=None)
        for text in (f"{naive:%b} {naive.day:02d} {naive:%H:%M:%S}", f"{naive:%b} {naive.day:2d} {naive:%H:%M:%S}"):
            assert dt.datetime.fromtimestamp(dates.parse_log_stamp(text, naive)) == naive
    # A December line read in January is last year's; 29 February read in 2029 is from 2028.
    jan = dt.datetime(2029, 1, 2, 10, 0, 0)
    assert dt.datetime.fromtimestamp(dates.parse_log_stamp("Dec 31 23:59:59", jan)).year == 2028
    assert dt.datetime.fromtimestamp(dates.parse_log_stamp("Feb 29 08:00:00", jan)) == dt.datetime(2028, 2, 29, 8)
    with pytest.raises(ValueError):
        dates.parse_log_stamp("Foo 12 10:00:00", jan)


@pytest.mark.parametrize("backend", ["postfix", "sim"])
def test_both_backends_write_todays_dates_as_postfix_does(request, backend) -> None:
    """Live: a message through the lab's real Postfix and through the simulator; its Received:, Date: and
    log stamps, re-made by labsim.dates from the time they carry, are the same strings (today, whatever day
    of the month it is; the formats themselves are pinned to the real Postfix's strings above)."""
    from labsim import mailbox
    from tests.sim_fixtures import play

    if backend == "postfix":
        need_postfix()
    s = request.getfixturevalue(f"{backend}_lab")
    before = len(mailbox.files(s))
    play(s.smtp_port, ["EHLO client.example", "MAIL FROM:<a@example.org>", "RCPT TO:<student@lab.itpro.tv>",
                       "DATA", b"Subject: dates\r\n\r\nno Date: header, so Postfix adds one\r\n.\r\n", "QUIT"])
    msgs = mailbox.wait_for(s, before + 1)
    assert len(msgs) > before, "nothing delivered"
    raw = mailbox.files(s)[-1].read_text()
    received = re.search(r"^Received: .*?; (.+?)$", raw, re.M | re.S)
    date = re.search(r"^Date: (.+)$", raw, re.M)
    assert received and date, raw
    for text in (received.group(1).strip(), date.group(1).strip()):
        when = email.utils.parsedate_to_datetime(text.split(" (")[0]).timestamp()
        assert dates.header_date(when) == text
    line = s.log_file.read_text().splitlines()[-1]
    stamp = line[:15]
    assert dates.maillog_stamp(dates.parse_log_stamp(stamp)) == stamp, line


def test_the_checks_read_master_lines_on_every_day() -> None:
    """labsim.checks finds the master's ``daemon started``/``reload`` line (when main.cf was last read)."""
    from labsim import checks

    for when in every_day():
        line = (f"{dates.maillog_stamp(when.timestamp())} lab postfix/master[42]: reload -- version 3.7.11, "
                f"configuration /var/lib/labsim/postfix")
        m = checks.probes._MASTER_LINE.match(line)
        assert m and m.group("stamp") == line[:15], line
