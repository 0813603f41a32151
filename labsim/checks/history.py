"""Every check result of a lab, one JSON line each: a grading report can say when a step first passed, also
for a step a later step undoes (opportunistic and encrypt exclude each other)."""

from __future__ import annotations

import json
import time
from pathlib import Path

from ..settings import Settings
from .model import StepResult


def history_file(settings: Settings) -> Path:
    return settings.home / "checks.jsonl"


def record(settings: Settings, results: list[StepResult]) -> None:
    if not settings.home.is_dir():
        return
    now = time.time()
    lines = "".join(json.dumps({"time": round(now, 3), "step": r.step, "ok": r.ok}) + "\n" for r in results)
    try:
        with open(history_file(settings), "a", encoding="utf-8") as f:
            f.write(lines)
    except OSError:
        pass


def history(settings: Settings) -> dict[str, float]:
    """step -> when its check first passed (steps that never passed are absent)."""
    first: dict[str, float] = {}
    try:
        text = history_file(settings).read_text(encoding="utf-8")
    except FileNotFoundError:
        return first
    for line in text.splitlines():
        try:
            item = json.loads(line)
        except ValueError:
            continue
        if item.get("ok") and item.get("step") not in first:
            first[item["step"]] = item["time"]
    return first
