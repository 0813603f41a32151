"""Classroom mode: one isolated lab per student on one machine, their check results and quiz results.

Layout of a classroom directory (``--dir``, ``$LABSIM_CLASSROOM``; default ``/var/lib/labsim-classroom`` for
root, else ``~/.local/state/labsim-classroom``)::

    classroom.json            who, which backend, which port block
    students/NAME/lab/        the student's lab home (LABSIM_HOME): main.cf, queue, log, mailbox, CA
    students/NAME/env         eval "$(cat students/NAME/env)" aims a shell or a notebook at that lab
    students/NAME/quizzes.sqlite3   the student's quiz results (QUIZZES_DB in the env file)
    report.csv, report.html   written by ``labsim classroom report``

Ports: student *i* (0-based) gets the block ``base + i * stride`` ... ``+ stride - 1`` (stride at least the
number of lab ports), in the order of ``BLOCK``; every port is checked free before anything starts.

One CA per student: each lab runs its own pebble and mock DNS. pebble validates http-01 challenges on a
single port fixed in its configuration (``httpPort``), so one shared pebble would make every student's
``certbot --standalone`` listen on that same port, and a class issuing certificates at once would
collide (or need a queue). One pebble per student also keeps a student's ``labsim down``/restart of the CA
from touching anyone else. It costs about 30 MB per student (see bench/bench_classroom.py).

Layout: :mod:`.ports` (the port blocks), :mod:`.room` (students, up, down, their processes), :mod:`.report`
(checks and quiz results, CSV and HTML from ``labsim/data/classroom-report.html.j2``).
"""

from .ports import BLOCK, DEFAULT_BASE_PORT, DEFAULT_STRIDE, block, block_exports, busy_ports, find_base  # noqa: F401
from .report import (CSV_FIELDS, quiz_summary, report, report_rows, status, student_status, to_csv,  # noqa: F401
                     to_html)
from .room import (LAB_PROGRAMS, NAME_RE, STATE, Classroom, Student, default_root, down, lab_processes,  # noqa: F401
                   leftover_processes, load, memory, names_from, up, write_env)
