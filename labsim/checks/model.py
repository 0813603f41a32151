"""The one step registry: what a check returns, what a step is, how steps are found, run, solved and shown.

A step is registered once (``register``) with its check, its solve and the lesson it belongs to. The lab's
steps (``labsim check`` with no argument runs them: :mod:`labsim.checks.lesson`) and the notebooks'
exercises (:mod:`labsim.checks.exercises`) are the same kind of object in the same registry, so
``labsim check tamper`` in a shell, ``check("tamper")`` in a notebook and the classroom report all mean the
same thing, and each step is solved one way only.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Callable

from ..errors import LabError
from ..settings import Settings


@dataclass
class Condition:
    """One thing a step needs. ``message`` says what is true, or what is missing."""

    id: str
    ok: bool
    message: str
    hint: str = ""
    solution: str = ""


@dataclass
class StepResult:
    step: str
    title: str
    conditions: list[Condition] = field(default_factory=list)
    #: What the learner should know but the step does not depend on (a misspelt, hence ignored, parameter).
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.conditions)

    def failing(self) -> list[Condition]:
        return [c for c in self.conditions if not c.ok]

    def as_dict(self, solution: bool = False) -> dict:
        conds = []
        for c in self.conditions:
            d = asdict(c)
            if not solution:
                d.pop("solution")
            conds.append(d)
        return {"step": self.step, "title": self.title, "ok": self.ok, "conditions": conds, "notes": self.notes}


@dataclass(frozen=True)
class Step:
    """A checked step. ``solve`` does it as the lesson (or the exercise's folded solution) does and returns
    what it did, one line each. ``requires``: steps solved first when their checks fail. ``lesson``: the
    notebook that teaches it. ``exercise``: a notebook's own exercise, not one of the steps ``labsim check``
    runs by default."""

    name: str
    title: str
    check: Callable[[Settings], list[Condition]]
    solve: Callable[[Settings], list[str]]
    requires: tuple[str, ...] = ()
    lesson: int = 0
    exercise: bool = False


#: Every step, in the order registered (the lesson's order).
REGISTRY: dict[str, Step] = {}


def register(step: Step) -> Step:
    """Add ``step`` to the registry. The module that defines a step's check owns its name: that module run
    again (``importlib.reload``, IPython's ``%autoreload``, a notebook cell run twice) replaces the step in
    place, keeping the lesson's order; another module taking a registered name is an error."""
    old = REGISTRY.get(step.name)
    if old is not None and old.check.__module__ != step.check.__module__:
        raise ValueError(f"lab step {step.name!r} is registered twice (by {old.check.__module__} and "
                         f"{step.check.__module__})")
    REGISTRY[step.name] = step
    return step


def lab_steps() -> list[str]:
    """The steps ``labsim check`` runs when given none (and the classroom grades): the lesson's own."""
    return [n for n, s in REGISTRY.items() if not s.exercise]


def get(name: str) -> Step:
    try:
        return REGISTRY[name]
    except KeyError:
        raise LabError(f"There is no lab step called {name!r}.", hint=f"Steps: {', '.join(REGISTRY)}.") from None


def run_check(settings: Settings, name: str) -> StepResult:
    """Check one step. Never raises for a lab in a wrong state: that is a failing condition."""
    from .. import lab

    step = get(name)
    if not (settings.config_dir / "main.cf").exists():
        conds = [Condition("lab", False, f"there is no lab in {settings.home}", hint="start the lab",
                           solution="labsim up")]
    else:
        try:
            conds = step.check(settings)
        except LabError as e:
            conds = [Condition("error", False, e.message, hint=e.hint)]
    notes = [lab.unused_message(n, near) + f" (labsim postconf -X {n})" for n, near in lab.unused_parameters(settings)]
    return StepResult(step.name, step.title, conds, notes)


def run_checks(settings: Settings, names: list[str] | None = None) -> list[StepResult]:
    return [run_check(settings, n) for n in (names or lab_steps())]


def solve_requirements(settings: Settings, name: str) -> list[str]:
    """Solve the earlier steps a step builds on, when their checks fail."""
    done: list[str] = []
    for req in get(name).requires:
        if not run_check(settings, req).ok:
            done += solve(settings, req)
    return done


def solve(settings: Settings, name: str) -> list[str]:
    """Do a step the way the lesson does it (and the earlier steps it needs). Returns what was done."""
    return get(name).solve(settings)


def render(results: list[StepResult], solution: bool = False) -> str:
    lines: list[str] = []
    for r in results:
        lines.append(f"{'PASS' if r.ok else 'FAIL'} {r.step}: {r.title}")
        for c in r.conditions:
            lines.append(f"  {'ok  ' if c.ok else 'FAIL'} {c.message}")
            if not c.ok and c.hint:
                lines.append(f"       hint: {c.hint}")
            if not c.ok and solution and c.solution:
                lines.append(f"       solution: {c.solution}")
        for note in r.notes:
            lines.append(f"  note {note}")
    return "\n".join(lines)
