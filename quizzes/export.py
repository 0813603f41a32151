"""The bank in the formats students and instructors already use: Anki, IMS QTI 2.1, Moodle XML, GIFT.

``quizzes export --format anki|qti|moodle|gift --output FILE`` (JSON and CSV stay in the CLI). Every
writer takes a loaded :class:`~quizzes.bank.Bank` (so a bank with a broken question never gets this far:
:func:`~quizzes.bank.load_bank` refuses it) and returns bytes; :func:`write_atomic` puts them in place
through a temporary file in the same directory and a rename, so a failed export leaves no half file and
an older export of the same name stays as it was.

What each format carries, and why:

* **Anki** (``.apkg``, written with genanki): one note per question. Ids are fixed: the deck and note
  type ids are constants and each note's GUID is derived from the question id, so importing an updated
  deck updates the notes in place (and keeps their review history) instead of adding duplicates. Two note
  types: *choice* (single and multiple answer: the choices on the front, the right letters, every
  choice's reason, the explanation and the references on the back) and *fill-in* (Anki's ``{{type:...}}``
  answer box, which Anki compares character by character with the first accepted answer; the other
  accepted answers and the case rule are on the back). Anki has no multiple-select card of its own;
  a scripted checkbox template would behave differently in Anki desktop, AnkiDroid and AnkiMobile, so a
  multiple-answer question is a recall card like the exam's: decide the letters, turn the card, compare.
  Tags: ``objective::211.1``, ``objective::lesson-1``, ``area::tls-config``,
  ``lesson::securing-postfix-with-tls`` and the question's own tags as ``topic::starttls``.
* **QTI 2.1** content package (``.zip``): ``imsmanifest.xml`` (IMS CP 1.1) and one ``assessmentItem`` per
  question in ``items/ID.xml``. Single and multiple answer are a ``choiceInteraction`` scored all or
  nothing (SCORE 1 when the response matches the correct response, as LPI scores); fill-in is a
  ``textEntryInteraction`` whose ``mapping`` lists every accepted answer with its case rule, scored by
  ``mapResponse``. Response processing is written out (not a template URI), so an importer that ignores
  templates scores the same. Per-choice reasons are ``modalFeedback`` shown for the choices picked; the
  explanation is shown after every attempt.
* **Moodle XML**: a category per knowledge area (``$course$/top/Securing Postfix with TLS/<area>``),
  ``multichoice`` (``single`` true or false; in a multiple-answer question each right choice is worth
  100/N %, each wrong one -100 %, so any wrong pick scores 0 and core Moodle's partial credit is the only
  departure from LPI's all or nothing), ``shortanswer`` with every accepted answer at 100 % and
  ``usecase`` from the question's case rule; feedback per choice, the explanation as general feedback.
* **GIFT**: the same questions in Moodle's text format: ``$CATEGORY`` per area, ``=``/``~`` choices,
  ``~%50%`` weights for multiple answer, ``#`` per-choice feedback, ``####`` general feedback. GIFT has no
  way to say that a short answer is case-sensitive; Moodle imports GIFT short answers case-insensitive,
  so use the Moodle XML export when the case rule matters (all but five fill-ins are case-sensitive).
"""

from __future__ import annotations

import html
import io
import os
import tempfile
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path
from typing import Callable

from .bank import Bank
from .model import LETTERS, Question
from .objectives import AREAS

LESSON = "Securing Postfix with TLS"
LESSON_TAG = "securing-postfix-with-tls"
FORMATS = ("json", "csv", "anki", "qti", "moodle", "gift")
#: the file name ending each format is usually given
SUFFIX = {"json": ".json", "csv": ".csv", "anki": ".apkg", "qti": ".zip", "moodle": ".xml", "gift": ".gift.txt"}


class ExportError(Exception):
    """An export cannot be written; ``hint`` says what to do."""

    def __init__(self, message: str, hint: str = ""):
        self.hint = hint
        super().__init__(message + (f"\n{hint}" if hint else ""))


# --- writing a file all or nothing ---------------------------------------------------------------------
def write_atomic(path: str | os.PathLike[str], data: bytes | str) -> Path:
    """Write DATA to PATH through a temporary file in the same directory and a rename.

    A failure at any point leaves PATH as it was (absent, or the previous complete file) and no
    temporary file behind. Raises :class:`ExportError` with what to do.
    """
    target = Path(path)
    payload = data.encode("utf-8") if isinstance(data, str) else data
    parent = target.parent if str(target.parent) else Path(".")
    if target.is_dir():
        raise ExportError(f"cannot write {target}: it is a directory", "give a file name, e.g. --output quiz.apkg")
    if not parent.exists():
        raise ExportError(f"cannot write {target}: the directory {parent} does not exist",
                          "create it first or choose another --output")
    if not parent.is_dir():
        raise ExportError(f"cannot write {target}: {parent} is not a directory", "choose another --output")
    tmp_name = None
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=parent)
        with os.fdopen(fd, "wb") as fh:
            fh.write(payload)
            fh.flush()
            os.fsync(fh.fileno())
        if target.exists():
            os.chmod(tmp_name, target.stat().st_mode & 0o777)
        else:
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp_name, 0o666 & ~umask)
        os.replace(tmp_name, target)
        tmp_name = None
    except OSError as exc:
        raise ExportError(f"cannot write {target}: {exc.strerror or exc}",
                          "choose a writable place for --output") from exc
    finally:
        if tmp_name and os.path.exists(tmp_name):
            os.unlink(tmp_name)
    return target


# --- shared helpers --------------------------------------------------------------------------------------
def tags_for(q: Question) -> list[str]:
    """Anki-style hierarchical tags (no blanks) for a question."""
    tags = [f"objective::{o}" for o in q.objectives]
    tags += [f"area::{q.area}", f"lesson::{LESSON_TAG}"]
    tags += [f"topic::{t}" for t in q.tags]
    return [t.replace(" ", "_") for t in tags]


def _esc(text: str) -> str:
    return html.escape(text, quote=False)


def _references(q: Question) -> str:
    return "; ".join(q.references)


# --- Anki ------------------------------------------------------------------------------------------------
#: fixed ids (chosen once at random): changing one makes Anki treat the deck or note type as new
ANKI_DECK_ID = 1_733_150_211_1
ANKI_CHOICE_MODEL_ID = 1_733_150_211_2
ANKI_FILL_MODEL_ID = 1_733_150_211_3
ANKI_DECK_NAME = f"LPIC-2 202-450::{LESSON}"
ANKI_CSS = """.card { font-family: sans-serif; font-size: 18px; text-align: left; }
.choices { list-style: none; padding-left: 0; } .choices li { margin: .3em 0; }
.right { color: #1b7f3b; } .wrong { color: #a12a2a; } .meta, .refs { font-size: 14px; color: #666; }
code { font-family: monospace; }"""


def anki_guid(q: Question) -> str:
    """The note's GUID: a function of the question id only, so re-importing updates the note."""
    import genanki

    return genanki.guid_for("postfix-tls-lab", q.id)


def _anki_models():
    import genanki

    choice = genanki.Model(
        ANKI_CHOICE_MODEL_ID, "postfix-tls-lab choice",
        fields=[{"name": n} for n in ("Id", "Question", "Choices", "Answer", "Reasons", "Explanation",
                                      "References", "Area")],
        templates=[{
            "name": "Choice",
            "qfmt": '<div class="meta">{{Area}}</div><div class="q">{{Question}}</div>{{Choices}}',
            "afmt": '{{FrontSide}}<hr id="answer"><div class="answer"><b>Answer: {{Answer}}</b></div>'
                    '{{Reasons}}<p>{{Explanation}}</p><div class="refs">{{References}}</div>',
        }],
        css=ANKI_CSS, sort_field_index=1,
    )
    fill = genanki.Model(
        ANKI_FILL_MODEL_ID, "postfix-tls-lab fill-in",
        fields=[{"name": n} for n in ("Id", "Question", "Answer", "Accepted", "CaseRule", "Explanation",
                                      "References", "Area")],
        templates=[{
            "name": "Fill-in",
            "qfmt": '<div class="meta">{{Area}}</div><div class="q">{{Question}}</div>{{type:Answer}}',
            "afmt": '<div class="meta">{{Area}}</div><div class="q">{{Question}}</div><hr id="answer">'
                    '{{type:Answer}}{{#Accepted}}<p>Also accepted: {{Accepted}}</p>{{/Accepted}}'
                    '<p class="meta">{{CaseRule}}</p><p>{{Explanation}}</p><div class="refs">{{References}}</div>',
        }],
        css=ANKI_CSS, sort_field_index=1,
    )
    return choice, fill


def anki_fields(q: Question) -> list[str]:
    """The note's fields, in the order of its note type."""
    area = _esc(AREAS[q.area].title)
    if q.type == "fill":
        rule = "Case matters." if q.case_sensitive else "Case does not matter."
        return [q.id, _esc(q.display_prompt), _esc(q.answers[0]), " | ".join(_esc(a) for a in q.answers[1:]),
                rule, _esc(q.explanation), _esc(_references(q)), area]
    choices = "".join(f"<li>{LETTERS[i]}. {_esc(c.text)}</li>" for i, c in enumerate(q.choices))
    reasons = "".join(
        f'<li class="{"right" if c.correct else "wrong"}">{"+" if c.correct else "-"} {LETTERS[i]}: '
        f"{_esc(c.why)}</li>" for i, c in enumerate(q.choices))
    return [q.id, _esc(q.display_prompt), f'<ul class="choices">{choices}</ul>', ", ".join(q.correct_keys),
            f'<ul class="choices">{reasons}</ul>', _esc(q.explanation), _esc(_references(q)), area]


def to_anki(bank: Bank) -> bytes:
    """The bank as an Anki package (.apkg bytes)."""
    import genanki

    choice, fill = _anki_models()
    deck = genanki.Deck(ANKI_DECK_ID, ANKI_DECK_NAME,
                        description="LPIC-2 202-450, objective 211.1: Securing Postfix with TLS (postfix-tls-lab)")
    for q in bank:
        deck.add_note(genanki.Note(model=fill if q.type == "fill" else choice, fields=anki_fields(q),
                                   tags=tags_for(q), guid=anki_guid(q), sort_field=q.display_prompt))
    with tempfile.TemporaryDirectory(prefix="quizzes-anki-") as tmp:
        out = Path(tmp) / "deck.apkg"
        genanki.Package(deck).write_to_file(str(out))
        return out.read_bytes()


# --- QTI 2.1 ---------------------------------------------------------------------------------------------
QTI_NS = "http://www.imsglobal.org/xsd/imsqti_v2p1"
QTI_XSD = "http://www.imsglobal.org/xsd/qti/qtiv2p1/imsqti_v2p1.xsd"
CP_NS = "http://www.imsglobal.org/xsd/imscp_v1p1"
CP_XSD = "http://www.imsglobal.org/xsd/imscp_v1p1.xsd"
XSI = "http://www.w3.org/2001/XMLSchema-instance"


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    el = ET.SubElement(parent, tag, {k.rstrip("_"): v for k, v in attrs.items()})
    if text is not None:
        el.text = text
    return el


def _qti_value(parent: ET.Element, base: str, value: str) -> ET.Element:
    return _sub(parent, "baseValue", value, baseType=base)


def qti_item(q: Question) -> bytes:
    """One question as a QTI 2.1 assessmentItem."""
    item = ET.Element("assessmentItem", {
        "xmlns": QTI_NS, f"{{{XSI}}}schemaLocation": f"{QTI_NS} {QTI_XSD}",
        "identifier": q.id, "title": q.id, "adaptive": "false", "timeDependent": "false",
    })
    fill = q.type == "fill"
    rd = _sub(item, "responseDeclaration", identifier="RESPONSE",
              cardinality="multiple" if q.type == "multiple" else "single",
              baseType="string" if fill else "identifier")
    correct = _sub(rd, "correctResponse")
    for value in ([q.answers[0]] if fill else q.correct_keys):
        _sub(correct, "value", value)
    if fill:
        mapping = _sub(rd, "mapping", defaultValue="0", lowerBound="0", upperBound="1")
        for a in q.answers:
            _sub(mapping, "mapEntry", mapKey=a, mappedValue="1",
                 caseSensitive="true" if q.case_sensitive else "false")
    _sub(item, "outcomeDeclaration", identifier="SCORE", cardinality="single", baseType="float")
    _sub(item, "outcomeDeclaration", identifier="MAXSCORE", cardinality="single", baseType="float")
    _sub(item, "outcomeDeclaration", identifier="FEEDBACK", cardinality="multiple", baseType="identifier")
    body = _sub(item, "itemBody")
    if fill:
        p = _sub(body, "p", q.display_prompt + " ")
        _sub(p, "textEntryInteraction", responseIdentifier="RESPONSE",
             expectedLength=str(max(len(a) for a in q.answers)))
    else:
        inter = _sub(body, "choiceInteraction", responseIdentifier="RESPONSE", shuffle="false",
                     maxChoices="1" if q.type == "single" else "0")
        _sub(inter, "prompt", q.display_prompt)
        for i, c in enumerate(q.choices):
            _sub(inter, "simpleChoice", c.text, identifier=LETTERS[i])
    # response processing, written out: SCORE, MAXSCORE and which feedback to show
    rp = _sub(item, "responseProcessing")
    maxs = _sub(rp, "setOutcomeValue", identifier="MAXSCORE")
    _qti_value(maxs, "float", "1")
    cond = _sub(rp, "responseCondition")
    if fill:
        rif = _sub(cond, "responseIf")
        isnull = _sub(rif, "isNull")
        _sub(isnull, "variable", identifier="RESPONSE")
        _qti_value(_sub(rif, "setOutcomeValue", identifier="SCORE"), "float", "0")
        rels = _sub(cond, "responseElse")
        mr = _sub(rels, "setOutcomeValue", identifier="SCORE")
        _sub(mr, "mapResponse", identifier="RESPONSE")
    else:
        rif = _sub(cond, "responseIf")
        m = _sub(rif, "match")
        _sub(m, "variable", identifier="RESPONSE")
        _sub(m, "correct", identifier="RESPONSE")
        _qti_value(_sub(rif, "setOutcomeValue", identifier="SCORE"), "float", "1")
        rels = _sub(cond, "responseElse")
        _qti_value(_sub(rels, "setOutcomeValue", identifier="SCORE"), "float", "0")
    fb = _sub(rp, "setOutcomeValue", identifier="FEEDBACK")
    mult = _sub(fb, "multiple")
    if not fill:
        # the choices picked (none picked: isNull, and multiple() of NULL is empty)
        _sub(mult, "variable", identifier="RESPONSE")
    _qti_value(mult, "identifier", "EXPLANATION")
    for i, c in enumerate(q.choices):
        mf = _sub(item, "modalFeedback", outcomeIdentifier="FEEDBACK", identifier=LETTERS[i], showHide="show",
                  title=f"{LETTERS[i]}: {'right' if c.correct else 'wrong'}")
        mf.text = c.why
    expl = q.explanation
    if fill:
        expl = f"Accepted: {' | '.join(q.answers)} ({'case matters' if q.case_sensitive else 'any case'}). {expl}"
    if q.references:
        expl = f"{expl} See: {_references(q)}"
    _sub(item, "modalFeedback", expl.strip(), outcomeIdentifier="FEEDBACK", identifier="EXPLANATION",
         showHide="show", title="Explanation")
    ET.indent(item)
    return ET.tostring(item, encoding="utf-8", xml_declaration=True)


def qti_manifest(bank: Bank) -> bytes:
    """The package's IMS CP manifest. It names the QTI 2.1 namespace and says "QTIv2.1 Package" (Canvas
    takes a package for QTI 2 by either, and converts it as QTI 1.2 otherwise), and gives each item's
    interaction type in the resource's qtiMetadata (Canvas reads the question type from there)."""
    ET.register_namespace("imsqti", QTI_NS)
    man = ET.Element("manifest", {"xmlns": CP_NS, f"{{{XSI}}}schemaLocation":
                                  f"{CP_NS} {CP_XSD} {QTI_NS} {QTI_XSD}", "identifier": "postfix-tls-lab-bank"})
    meta = _sub(man, "metadata")
    _sub(meta, "schema", "QTIv2.1 Package")
    _sub(meta, "schemaversion", "1.0.0")
    _sub(man, "organizations")
    res = _sub(man, "resources")
    for q in bank:
        r = _sub(res, "resource", identifier=f"res-{q.id}", type="imsqti_item_xmlv2p1", href=f"items/{q.id}.xml")
        qmeta = ET.SubElement(_sub(r, "metadata"), f"{{{QTI_NS}}}qtiMetadata")
        ET.SubElement(qmeta, f"{{{QTI_NS}}}interactionType").text = (
            "textEntryInteraction" if q.type == "fill" else "choiceInteraction")
        _sub(r, "file", href=f"items/{q.id}.xml")
    ET.indent(man)
    return ET.tostring(man, encoding="utf-8", xml_declaration=True)


def to_qti(bank: Bank) -> bytes:
    """The bank as an IMS QTI 2.1 content package (.zip bytes)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("imsmanifest.xml", qti_manifest(bank))
        for q in bank:
            z.writestr(f"items/{q.id}.xml", qti_item(q))
    return buf.getvalue()


# --- Moodle XML ------------------------------------------------------------------------------------------
def moodle_category(area: str) -> str:
    return f"$course$/top/{LESSON}/{area}"


def _fraction(value: float) -> str:
    """A percentage as Moodle writes its grade list (100, 50, 33.33333, -100)."""
    return f"{value:.5f}".rstrip("0").rstrip(".")


def moodle_fractions(q: Question) -> list[str]:
    """Each choice's grade in percent: all or nothing for single, 100/N right and -100 wrong for multiple."""
    if q.type == "single":
        return ["100" if c.correct else "0" for c in q.choices]
    n = len(q.correct_keys)
    return [_fraction(100 / n) if c.correct else "-100" for c in q.choices]


def _text(parent: ET.Element, tag: str, text: str, fmt: str | None = "markdown", **attrs: str) -> ET.Element:
    el = _sub(parent, tag, **({"format": fmt} if fmt else {}), **attrs)
    _sub(el, "text", text)
    return el


def _shortanswer_escape(answer: str) -> str:
    """Moodle short answers treat * as a wildcard; a literal * is written \\*."""
    return answer.replace("*", "\\*")


def to_moodle(bank: Bank) -> bytes:
    """The bank as Moodle XML (UTF-8 bytes)."""
    quiz = ET.Element("quiz")
    for area in AREAS:
        qs = [q for q in bank if q.area == area]
        if not qs:
            continue
        cat = _sub(quiz, "question", type="category")
        _text(cat, "category", moodle_category(area), fmt=None)
        _text(cat, "info", AREAS[area].title, fmt="plain_text")
        for q in qs:
            general = q.explanation + (f"\n\nSee: {_references(q)}" if q.references else "")
            el = _sub(quiz, "question", type="shortanswer" if q.type == "fill" else "multichoice")
            _text(el, "name", q.id, fmt=None)
            _text(el, "questiontext", q.display_prompt)
            _text(el, "generalfeedback", general)
            _sub(el, "defaultgrade", "1")
            _sub(el, "penalty", "0.3333333")
            _sub(el, "hidden", "0")
            _sub(el, "idnumber", q.id)
            if q.type == "fill":
                _sub(el, "usecase", "1" if q.case_sensitive else "0")
                for a in q.answers:
                    ans = _text(el, "answer", _shortanswer_escape(a), fmt="plain_text", fraction="100")
                    _text(ans, "feedback", "Accepted.", fmt="plain_text")
            else:
                _sub(el, "single", "true" if q.type == "single" else "false")
                _sub(el, "shuffleanswers", "true" if q.shuffle else "false")
                _sub(el, "answernumbering", "ABCD")
                _sub(el, "showstandardinstruction", "0")
                _text(el, "correctfeedback", "Right.", fmt="plain_text")
                _text(el, "partiallycorrectfeedback",
                      f"Partly right: the answer is {q.canonical_answer}.", fmt="plain_text")
                _text(el, "incorrectfeedback", f"Wrong: the answer is {q.canonical_answer}.", fmt="plain_text")
                for c, frac in zip(q.choices, moodle_fractions(q)):
                    ans = _text(el, "answer", c.text, fraction=frac)
                    _text(ans, "feedback", c.why)
            tags = _sub(el, "tags")
            for t in tags_for(q):
                _text(tags, "tag", t, fmt=None)
    ET.indent(quiz)
    return ET.tostring(quiz, encoding="utf-8", xml_declaration=True)


# --- GIFT ------------------------------------------------------------------------------------------------
_GIFT_RESERVED = {"\\": "\\\\", "~": "\\~", "=": "\\=", "#": "\\#", "{": "\\{", "}": "\\}", ":": "\\:",
                  "\n": "\\n", "\r": ""}


def gift_escape(text: str) -> str:
    """Escape GIFT's control characters the way Moodle's own GIFT export does."""
    return "".join(_GIFT_RESERVED.get(ch, ch) for ch in text)


def gift_question(q: Question) -> str:
    general = q.explanation + (f" See: {_references(q)}" if q.references else "")
    lines = [f"::{gift_escape(q.id)}::[markdown]{gift_escape(q.display_prompt)} {{"]
    if q.type == "fill":
        lines += [f"\t={gift_escape(a)}" for a in q.answers]
    else:
        for c, frac in zip(q.choices, moodle_fractions(q)):
            if q.type == "single":
                mark = "=" if c.correct else "~"
            else:
                mark = f"~%{frac}%"
            lines.append(f"\t{mark}{gift_escape(c.text)}" + (f"#{gift_escape(c.why)}" if c.why else ""))
    if general.strip():
        lines.append(f"\t####{gift_escape(general)}")
    lines.append("}")
    return "\n".join(lines)


def to_gift(bank: Bank) -> bytes:
    """The bank as GIFT (UTF-8 text bytes)."""
    out = [f"// {LESSON} (LPIC-2 202-450, 211.1): question bank of postfix-tls-lab"]
    for area in AREAS:
        qs = [q for q in bank if q.area == area]
        if not qs:
            continue
        out += ["", f"$CATEGORY: {moodle_category(area)}", ""]
        for q in qs:
            out += [f"// {q.type}; objectives: {', '.join(q.objectives)}", gift_question(q), ""]
    return ("\n".join(out).rstrip() + "\n").encode("utf-8")


WRITERS: dict[str, Callable[[Bank], bytes]] = {"anki": to_anki, "qti": to_qti, "moodle": to_moodle, "gift": to_gift}


def export(bank: Bank, fmt: str, output: str | os.PathLike[str]) -> Path:
    """Write the bank in FMT to OUTPUT, all or nothing."""
    if fmt not in WRITERS:
        raise ExportError(f"unknown format {fmt!r}", f"choose one of: {', '.join(FORMATS)}")
    if not len(bank):
        raise ExportError("the bank has no questions", "check --bank / QUIZZES_BANK")
    return write_atomic(output, WRITERS[fmt](bank))


__all__ = ["ExportError", "FORMATS", "WRITERS", "export", "write_atomic", "to_anki", "to_qti", "to_moodle",
           "to_gift", "tags_for", "anki_guid"]
