"""The schema of a question: what the YAML bank may say, checked by pydantic.

A question that loads is usable: its type matches its choices or answers, every objective and area
exists, and a single-choice question has exactly one right choice. Softer defects (a missing
explanation, an objective nobody tests) are left to :mod:`quizzes.lint`, so authors can see every
problem of a draft bank at once.
"""

from __future__ import annotations

from typing import Annotated, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from .objectives import AREAS, OBJECTIVES

LETTERS = "ABCDEFGH"
COUNT_WORDS = {2: "TWO", 3: "THREE", 4: "FOUR", 5: "FIVE"}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --- verify blocks: how tests/test_quiz_facts.py checks a question against the real Postfix ----------
class PostconfDefault(_Strict):
    """``postconf -d -h NAME`` prints exactly VALUE."""

    kind: Literal["postconf_default"]
    name: str
    value: str


class ParameterExists(_Strict):
    """``postconf -d NAME`` knows the parameter (no "unknown parameter" warning)."""

    kind: Literal["parameter_exists"]
    name: str


class ParameterUnknown(_Strict):
    """A distractor that must *not* be a Postfix parameter."""

    kind: Literal["parameter_unknown"]
    name: str


class SmtpReply(_Strict):
    """Run DIALOG against the lab Postfix at smtpd_tls_security_level LEVEL and look at the last reply.

    ``expect``: one line of the last reply equals it; ``expect_prefix``: one line starts with it;
    ``absent``: no line of the last reply starts with it. The word ``STARTTLS`` in the dialog, when
    answered 220, switches the connection to TLS before the next command.
    """

    kind: Literal["smtp_reply"]
    level: Literal["none", "may", "encrypt"]
    dialog: list[str] = []  # [] = just the greeting; "{domain}" becomes the lab's domain
    settings: dict[str, str] = {}  # extra main.cf settings for this check, restored afterwards
    expect: str | None = None
    expect_prefix: str | None = None
    absent: str | None = None
    log_contains: str | None = None  # the lab's maillog shows this after the dialog

    @model_validator(mode="after")
    def _one_expectation(self) -> "SmtpReply":
        if not (self.expect or self.expect_prefix or self.absent or self.log_contains):
            raise ValueError("smtp_reply needs expect, expect_prefix, absent or log_contains")
        return self


class PathExists(_Strict):
    """The path exists on a Debian 12 machine with the postfix package installed."""

    kind: Literal["path_exists"]
    path: str


class CommandExists(_Strict):
    """The command is on PATH (or in /usr/sbin)."""

    kind: Literal["command_exists"]
    name: str


class ManualText(_Strict):
    """The installed manual page contains TEXT (troff markup stripped, whitespace collapsed)."""

    kind: Literal["manual_text"]
    page: str = "postconf.5"
    text: str


class CommandOutput(_Strict):
    """Running ARGV prints (stdout or stderr) text containing CONTAINS."""

    kind: Literal["command_output"]
    argv: list[str] = Field(min_length=1)
    contains: str


Verify = Annotated[
    Union[
        PostconfDefault,
        ParameterExists,
        ParameterUnknown,
        SmtpReply,
        PathExists,
        CommandExists,
        ManualText,
        CommandOutput,
    ],
    Field(discriminator="kind"),
]


# --- the question ------------------------------------------------------------------------------------
class Choice(_Strict):
    text: str = Field(min_length=1)
    correct: bool = False
    why: str = ""  # why this choice is right or wrong; lint requires it


class Question(_Strict):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*[a-z0-9]$")
    type: Literal["single", "multiple", "fill"]
    objectives: list[str] = Field(min_length=1)
    area: str
    tags: list[str] = []
    difficulty: Literal[1, 2, 3]
    prompt: str = Field(min_length=1)
    choices: list[Choice] = []
    answers: list[str] = []  # fill-in: every accepted answer, the canonical one first
    case_sensitive: bool = True  # fill-in: commands, parameters and paths are case-sensitive
    shuffle: bool = True  # choices are shown in a fixed order derived from the id (see bank.py)
    explanation: str = ""
    references: list[str] = []
    verify: list[Verify] = []
    # where the question was read from; filled in by the loader, not written in YAML
    source: str = ""
    line: int = 0

    @field_validator("objectives", mode="before")
    @classmethod
    def _numbers_are_ids(cls, v: object) -> object:
        """YAML reads an unquoted 211.1 as a float; it is an objective id."""
        return [str(o) if isinstance(o, (int, float)) else o for o in v] if isinstance(v, list) else v

    @field_validator("objectives")
    @classmethod
    def _known_objectives(cls, v: list[str]) -> list[str]:
        unknown = [o for o in v if o not in OBJECTIVES]
        if unknown:
            raise ValueError(f"unknown objective(s) {unknown}; known: {sorted(OBJECTIVES)}")
        return v

    @field_validator("area")
    @classmethod
    def _known_area(cls, v: str) -> str:
        if v not in AREAS:
            raise ValueError(f"unknown area {v!r}; known: {sorted(AREAS)}")
        return v

    @model_validator(mode="after")
    def _shape_matches_type(self) -> "Question":
        right = sum(c.correct for c in self.choices)
        if self.type == "fill":
            if self.choices:
                raise ValueError("a fill-in question has no choices")
            if not self.answers or any(not a.strip() or a != a.strip() for a in self.answers):
                raise ValueError("a fill-in question needs answers, each non-empty and already trimmed")
            return self
        if self.answers:
            raise ValueError(f"a {self.type} question lists its answers as choices with correct: true")
        if not 3 <= len(self.choices) <= len(LETTERS):
            raise ValueError(f"a {self.type} question needs 3 to {len(LETTERS)} choices")
        if len({c.text for c in self.choices}) != len(self.choices):
            raise ValueError("two choices have the same text")
        if self.type == "single" and right != 1:
            raise ValueError(f"answer not among choices: a single-choice question needs exactly one "
                             f"correct choice, this one has {right}")
        if self.type == "multiple" and not 2 <= right < len(self.choices):
            raise ValueError(f"answer not among choices: a multiple-choice question needs 2 or more correct "
                             f"choices and at least one wrong one, this one has {right} of {len(self.choices)}")
        if "(Choose" in self.prompt:
            raise ValueError('leave out "(Choose N ...)": the engine states the count itself')
        return self

    # --- derived, shared by every face -------------------------------------------------------------
    @property
    def correct_keys(self) -> list[str]:
        """Letters of the right choices, as the learner types them."""
        return [LETTERS[i] for i, c in enumerate(self.choices) if c.correct]

    @property
    def choose(self) -> int | None:
        """How many answers to choose (multiple-choice only)."""
        return len(self.correct_keys) if self.type == "multiple" else None

    @property
    def display_prompt(self) -> str:
        """The prompt as LPI words it, with "(Choose TWO correct answers.)" for multiple choice."""
        if self.type == "multiple":
            n = self.choose or 0
            return f"{self.prompt.rstrip()} (Choose {COUNT_WORDS.get(n, str(n))} correct answers.)"
        return self.prompt.rstrip()

    @property
    def canonical_answer(self) -> str:
        """The answer to show after a miss: letters for choices, the first listed answer for fill-ins."""
        return self.answers[0] if self.type == "fill" else ", ".join(self.correct_keys)
