"""What the site's quiz gets from the Python side, beyond the questions themselves.

* ``plan(bank_data)``: the exam simulation as data, from ``quizzes.exam.site_plan`` (the questions an exam
  may draw, per-area quotas for each exam length, the scaled score and pass verdict for each number of
  right answers), the review intervals of ``quizzes.review`` and the judging settings. The browser samples
  within the quotas and looks the score up: it has no copy of the draw, the weights or the pass rule.
* ``lessons(notebooks)``: each lesson's end-of-lesson question ids (its ``show_quiz(ids=[...])`` cell).
* ``links(...)``: for every question, the lesson section and the reference row that teach it. Computed
  after the pages are built, from their real heading and row anchors, so that every link resolves;
  a question without both is an error that stops the build.
"""

from __future__ import annotations

import html as htmlmod
import math
import re
from collections import Counter
from pathlib import Path
from typing import Any

#: "Lesson: X" references in the bank name parts of the original episode; the notebook that teaches each.
EPISODE_PARTS: dict[str, str] = {
    "smtp security": "01-smtp-in-the-clear",
    "postfix security": "01-smtp-in-the-clear",
    "tls certificates": "02-certificates",
    "let's encrypt": "02-certificates",
    "postfix configuration": "03-configuring-postfix-tls",
    "opportunistic encryption": "04-opportunistic-tls",
    "forcing email encryption": "05-forcing-encryption",
}

#: Sections that summarise rather than teach: a question is never sent there.
SKIP_SECTIONS = {"key-points"}

_STOP = set("""the a an and or of to in on for with is are be by as at it its this that which what when
where who how not no yes from into than then there their them they you your can does do did was were will
would should could has have had one two all any each other only also same more most such both but if so
use used using set sets given give gives server client mail message postfix smtp lesson true false
answer answers question correct right wrong choose""".split())


SIZES = (10, 20, 30, 60)  # the exam lengths offered (60: the real exam), plus "every question it may draw"


def group_of(q: Any) -> str:
    """The draw's unit: a question's exam objective (quizzes.exam.exam_objective, when it has one) and area."""
    from quizzes import exam

    objective = exam.exam_objective(q) if hasattr(exam, "exam_objective") else ""
    return f"{objective or ''}|{q.area}"


def exam_plan(bank: Any, sizes: tuple[int, ...] = SIZES, seed: int = 0) -> dict[str, Any]:
    """The exam simulation as data, obtained by calling ``quizzes.exam.draw`` and ``score`` themselves.

    * ``pool``: the questions an exam may draw (an exam as long as the bank draws all of them);
    * ``group``: each pool question's draw unit (objective|area), ``sizes[].quotas``: how many each unit
      gives to an exam of that length (the counts of a seeded draw; the same for every seed, which
      tests/test_site.py checks), so the browser only picks at random within each unit;
    * ``sizes[].scaled`` / ``passed``: the scaled score and the verdict of ``score()`` for 0..n right.
    """
    from quizzes import exam

    pool = exam.draw(bank, n=len(bank), seed=seed)
    offered = sorted({n for n in sizes if 0 < n < len(pool)} | {len(pool)})
    plans = []
    for n in offered:
        ids = exam.draw(bank, n=n, seed=seed)
        quotas: Counter[str] = Counter(group_of(bank.get(qid)) for qid in ids)
        right = {qid: bank.get(qid).canonical_answer for qid in ids}
        results = [exam.score(bank, ids, {qid: right[qid] for qid in ids[:k]}) for k in range(n + 1)]
        plans.append({"n": n, "seconds": round(n * exam.SECONDS_PER_QUESTION), "quotas": dict(sorted(quotas.items())),
                      "scaled": [r["scaled"] for r in results], "passed": [r["passed"] for r in results]})
    pool_set = set(pool)
    whole = plans[-1]  # the scale's ends and pass mark, as score() gives them
    lo, hi = whole["scaled"][0], whole["scaled"][-1]
    if hasattr(exam, "passed"):  # the pass mark: the lowest score quizzes.exam's own rule passes
        mark = next(v for v in range(lo, hi + 1) if exam.passed(v))
    else:
        mark = min(s for s, ok in zip(whole["scaled"], whole["passed"]) if ok)
    scale = {"min": lo, "max": hi, "pass": mark}
    return {
        "scale": scale,
        "pool": [q.id for q in bank if q.id in pool_set],
        "group": {q.id: group_of(q) for q in bank if q.id in pool_set},
        "sizes": plans,
        "default": exam.DEFAULT_COUNT if exam.DEFAULT_COUNT in offered else offered[-1],
        "seconds_per_question": exam.SECONDS_PER_QUESTION,
        "rules": exam.rules() if hasattr(exam, "rules") else {},
    }


def plan(bank_data: dict[str, Any]) -> dict[str, Any]:
    """The exam and judging data of the site, from the quizzes package."""
    from quizzes import bank as qbank

    bank = qbank.load_bank()
    return {
        "exam": exam_plan(bank),
        "judging": {
            "note": "quizzes/judge.py: all or nothing; fill-in trimmed, exact, case-sensitive unless "
                    "case_sensitive is false; single choice exactly one letter; multiple choice exactly the set",
        },
    }


def lessons(notebooks: list[Any]) -> dict[str, Any]:
    return {nb.path.stem: {"title": nb.title, "page": nb.page, "quiz": list(nb.quiz)} for nb in notebooks}


# --- links ---------------------------------------------------------------------------------------------------
def _text(fragment: str) -> str:
    fragment = re.sub(r"<(script|style)\b.*?</\1>", " ", fragment, flags=re.S)
    fragment = re.sub(r"<div class=\"clipboard-copy-txt\".*?</div>", " ", fragment, flags=re.S)
    return htmlmod.unescape(re.sub(r"<[^>]+>", " ", fragment))


def lesson_sections(site_dir: Path, notebooks: list[Any]) -> dict[str, list[dict[str, str]]]:
    """{lesson stem: [{"id", "title", "text"}]} from the built lesson pages' <h2 id=...> sections."""
    out: dict[str, list[dict[str, str]]] = {}
    for nb in notebooks:
        page = (site_dir / nb.page).read_text(encoding="utf-8")
        article = page.split('<article', 1)[-1]
        parts = re.split(r'(<h2 id="[^"]+"[^>]*>.*?</h2>)', article, flags=re.S)
        sections = []
        for i in range(1, len(parts) - 1, 2):
            m = re.match(r'<h2 id="([^"]+)"', parts[i])
            title = " ".join(_text(parts[i]).replace("¶", "").split())
            sections.append({"id": m.group(1), "title": title, "text": _text(parts[i] + parts[i + 1])})
        out[nb.path.stem] = sections
    return out


def reference_rows(site_dir: Path) -> dict[str, dict[str, str]]:
    """{key: {"href", "title"}}: postconf parameter rows and glossary terms that have an anchor."""
    rows: dict[str, dict[str, str]] = {}
    postconf = (site_dir / "reference" / "postconf.html").read_text(encoding="utf-8")
    for name in re.findall(r'<span id="([a-zA-Z_]+)"></span><code>\1</code>', postconf):
        rows[f"param:{name}"] = {"href": f"reference/postconf.html#{name}", "title": f"{name} (postconf(5))"}
    glossary = (site_dir / "reference" / "glossary.html").read_text(encoding="utf-8")
    for gid, term in re.findall(r'<dt id="(term-[^"]+)"[^>]*>(.*?)</dt>', glossary, flags=re.S):
        title = " ".join(_text(term).replace("¶", "").split())
        rows[f"term:{gid}"] = {"href": f"reference/glossary.html#{gid}", "title": f"Glossary: {title}"}
    replies = (site_dir / "reference" / "smtp-replies.html").read_text(encoding="utf-8")
    for rid, situation, reply in re.findall(r'<td><span id="(reply-[a-z-]+)"></span>(.*?)</td>\s*<td>(.*?)</td>',
                                             replies, flags=re.S):
        situation = " ".join(_text(situation).split())
        rows[f"reply:{rid}"] = {"href": f"reference/smtp-replies.html#{rid}", "title": f"SMTP replies: {situation}",
                                "reply": " ".join(_text(reply).split())}
    return rows


def _reply_match(text: str, rows: dict[str, dict[str, str]]) -> str | None:
    """The reply row whose code and enhanced code (or, if no other row has it, whose code) the text names."""
    replies = [(k, r["reply"]) for k, r in rows.items() if k.startswith("reply:")]
    for key, reply in replies:
        m = re.match(r"(\d{3} \d\.\d\.\d+)", reply)
        if m and m.group(1) in text:
            return key
    for key, reply in replies:
        code = reply[:3]
        if sum(r[:3] == code for _k, r in replies) == 1 and re.search(rf"(?<![\d.]){code}(?![\d.])", text):
            return key
    return None


def _param_match(text: str, params: dict[str, str]) -> str | None:
    named = sorted((p for p in params if re.search(rf"\b{p}\b", text)), key=text.find)
    return params[named[0]] if named else None


def _term_match(text: str, terms: list[tuple[str, str]]) -> str | None:
    hits = [(k, pat) for k, pat in terms
            if re.search(rf"(?<![\w/.-]){re.escape(pat)}(?![\w-])", text,
                         0 if pat.isupper() or "." in pat or "/" in pat else re.I)]
    hits.sort(key=lambda kp: (-len(kp[1]), text.lower().find(kp[1].lower())))
    return hits[0][0] if hits else None


def _words(text: str) -> list[str]:
    return [w for w in re.findall(r"[a-z0-9][a-z0-9_./@-]*[a-z0-9]", text.lower()) if w not in _STOP and len(w) > 2]


def _question_text(q: dict[str, Any]) -> str:
    right = " ".join(c["text"] for c in q.get("choices", []) if c["correct"])
    return " ".join([q.get("display_prompt") or q["prompt"], right, " ".join(q.get("answers", [])),
                     q.get("explanation", "")])


def _term_patterns(title: str) -> list[str]:
    """Ways a glossary term is written in a question: "MTA, MUA, MX" -> MTA, MUA, MX; "(CA)" -> CA."""
    title = title.removeprefix("Glossary: ")
    names = re.split(r",\s*", re.sub(r"\s*\(([^)]*)\)", r", \1", title))
    return [n.strip() for n in names if len(n.strip()) >= 2]


def links(bank_data: dict[str, Any], sections: dict[str, list[dict[str, str]]],
          rows: dict[str, dict[str, str]], lessons_data: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """({question id: {"lesson": {...}, "reference": {...}}}, problems)."""
    # idf over all teaching sections
    docs = [(stem, s) for stem, ss in sections.items() for s in ss if s["id"] not in SKIP_SECTIONS]
    df: Counter[str] = Counter()
    bags = []
    for _stem, s in docs:
        bag = Counter(_words(s["text"] + " " + s["title"] * 3))
        bags.append(bag)
        df.update(set(bag))
    n_docs = len(docs) or 1
    params = {k.split(":", 1)[1]: k for k in rows if k.startswith("param:")}
    terms = [(k, pat) for k, r in rows.items() if k.startswith("term:") for pat in _term_patterns(r["title"])]
    out: dict[str, Any] = {}
    problems: list[str] = []
    for q in bank_data["questions"]:
        text = _question_text(q)
        qwords = Counter(_words(text))
        # which lessons may teach it: the episode part it names, else the lesson whose quiz has it
        allowed = {EPISODE_PARTS[r.split(":", 1)[1].strip().lower()] for r in q.get("references", [])
                   if r.lower().startswith("lesson:") and r.split(":", 1)[1].strip().lower() in EPISODE_PARTS}
        allowed |= {stem for stem, d in lessons_data.items() if q["id"] in d["quiz"]}
        best, best_score = None, 0.0
        for (stem, s), bag in zip(docs, bags):
            if allowed and stem not in allowed:
                continue
            sc = sum(min(k, 3) * math.log(n_docs / df[w]) for w, k in qwords.items() if w in bag)
            if s["id"].startswith("exercise"):
                sc *= 0.5  # exercises practise what the sections before them teach
            if sc > best_score:
                best, best_score = (stem, s), sc
        entry: dict[str, Any] = {}
        if best:
            stem, s = best
            entry["lesson"] = {"href": f"{lessons_data[stem]['page']}#{s['id']}",
                               "title": f"{lessons_data[stem]['title']}: {s['title']}"}
        else:
            problems.append(f"{q['id']}: no lesson section teaches it")
        # reference row: a parameter the references name; else what the question itself names (a parameter,
        # a reply, a glossary term); else what its explanation names
        ref_text = " ".join(q.get("references", []))
        right = " ".join(c["text"] for c in q.get("choices", []) if c["correct"])
        asked = " ".join([q.get("display_prompt") or q["prompt"], right, " ".join(q.get("answers", []))])
        key = _param_match(ref_text, params)
        for part in (asked, q.get("explanation", "") + " " + ref_text):
            key = key or _param_match(part, params) or _reply_match(part, rows) or _term_match(part, terms)
        if key:
            entry["reference"] = rows[key]
        else:
            problems.append(f"{q['id']}: no reference row (postconf parameter or glossary term) matches it")
        out[q["id"]] = entry
    return out, problems
