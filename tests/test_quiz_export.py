"""Every export read back by a consumer that is not its writer, with every question's right answers.

* Anki: Anki's own package (``anki``) imports the .apkg into a temporary collection and renders the cards.
* QTI 2.1: a strict reader (lxml) of the content package that refuses any element it does not know and
  *runs* each item's response processing on right and wrong responses (SCORE 1 / 0).
* Moodle XML: a strict reader that grades every question as Moodle does (fractions from Moodle's own grade
  list, multichoice sums clamped to [0, 1], short answers with Moodle's wildcard and case rule).
* GIFT: a reader following Moodle's own GIFT importer (question/format/gift/format.php: escapes, ``{}``,
  ``~``/``=``, ``%w%`` weights, ``#`` feedback, ``####`` general feedback, ``$CATEGORY``).
"""

from __future__ import annotations

import html
import io
import re
import time
import zipfile

import pytest
from lxml import etree

from quizzes import export
from quizzes.bank import Bank, load_bank
from quizzes.model import LETTERS, Question
from quizzes.objectives import AREAS


@pytest.fixture(scope="module")
def bank() -> Bank:
    return load_bank()


def _strip_html(text: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "\n", text))


def _wrong_responses(q: Question) -> list[set[str]]:
    """Responses that must score 0: every single wrong letter, the right set with one right letter left out
    or one wrong letter added."""
    right = set(q.correct_keys)
    wrong = [LETTERS[i] for i, c in enumerate(q.choices) if not c.correct]
    if q.type == "single":
        return [{w} for w in wrong] + [right | {wrong[0]}]
    return [right - {k} for k in right] + [right | {w} for w in wrong]


def _case_variants(q: Question) -> list[tuple[str, bool]]:
    """(response, should it score) for a fill-in: each accepted answer, its other-case twin, junk."""
    out = [(a, True) for a in q.answers]
    for a in q.answers:
        twin = a.swapcase()
        if twin != a and twin not in q.answers:
            out.append((twin, not q.case_sensitive))
    out.append((q.answers[0] + "x", False))
    return out


# --- Anki ---------------------------------------------------------------------------------------------------
def _anki_import(col, path):
    from anki.collection import ImportAnkiPackageOptions, ImportAnkiPackageRequest

    return col.import_anki_package(ImportAnkiPackageRequest(
        package_path=str(path), options=ImportAnkiPackageOptions(with_scheduling=True, merge_notetypes=True)))


def test_anki_package_imports_into_anki(bank, tmp_path):
    from anki.collection import Collection

    path = export.export(bank, "anki", tmp_path / "bank.apkg")
    col = Collection(str(tmp_path / "collection.anki2"))
    try:
        log = _anki_import(col, path).log
        assert len(log.new) == len(bank) and not log.updated and not log.duplicate
        notes = {col.get_note(nid)["Id"]: col.get_note(nid) for nid in col.find_notes("")}
        assert set(notes) == set(bank.ids())
        for q in bank:
            note = notes[q.id]
            assert note.guid == export.anki_guid(q)
            kind = note.note_type()["name"]
            assert kind == ("postfix-tls-lab fill-in" if q.type == "fill" else "postfix-tls-lab choice")
            assert set(note.tags) >= {f"objective::{o}" for o in q.objectives} | {
                f"area::{q.area}", "lesson::securing-postfix-with-tls"}
            card = note.cards()[0]
            front, back = _strip_html(card.question()), _strip_html(card.answer())
            assert q.display_prompt in front and q.explanation in back
            if q.type == "fill":
                assert html.unescape(note["Answer"]) == q.answers[0]
                assert [html.unescape(a) for a in note["Accepted"].split(" | ") if a] == q.answers[1:]
                assert "[[type:Answer]]" in card.question()  # Anki's type-in box, compared on the back
                assert ("Case matters." in back) == q.case_sensitive
            else:
                assert note["Answer"] == ", ".join(q.correct_keys)
                for i, c in enumerate(q.choices):
                    assert f"{LETTERS[i]}. {c.text}" in front
                    assert f"{'+' if c.correct else '-'} {LETTERS[i]}: {c.why}" in back
                assert "Answer: " + ", ".join(q.correct_keys) in back
        assert col.decks.by_name(export.ANKI_DECK_NAME) is not None
    finally:
        col.close()


def test_anki_reimport_updates_notes_in_place(bank, tmp_path):
    """Stable ids: a later export of a changed bank updates the notes (Anki's default 'if newer')."""
    from anki.collection import Collection

    col = Collection(str(tmp_path / "collection.anki2"))
    try:
        _anki_import(col, export.export(bank, "anki", tmp_path / "v1.apkg"))
        cards = sorted(col.find_cards(""))  # a card's review history (revlog) hangs on its id
        first = bank.questions[0]
        changed = first.model_copy(update={"explanation": first.explanation + " (revised)"})
        time.sleep(1.1)  # genanki stamps notes to the second; Anki updates a note only from a newer one
        log = _anki_import(col, export.export(Bank((changed,) + bank.questions[1:]), "anki",
                                              tmp_path / "v2.apkg")).log
        assert not log.new and len(log.updated) == len(bank)
        assert len(col.find_notes("")) == len(bank) and sorted(col.find_cards("")) == cards
        nid = col.find_notes(f"Id:{first.id}")[0]
        assert col.get_note(nid)["Explanation"].endswith("(revised)")
    finally:
        col.close()


# --- QTI 2.1 ----------------------------------------------------------------------------------------------
QTI = "{http://www.imsglobal.org/xsd/imsqti_v2p1}"
CP = "{http://www.imsglobal.org/xsd/imscp_v1p1}"
ITEM_CHILDREN = {"responseDeclaration", "outcomeDeclaration", "itemBody", "responseProcessing", "modalFeedback"}


class QtiItem:
    """A strict reader and response-processing engine for the subset of QTI 2.1 the bank needs."""

    def __init__(self, xml: bytes):
        root = etree.fromstring(xml)
        assert root.tag == f"{QTI}assessmentItem"
        for attr in ("identifier", "title", "adaptive", "timeDependent"):  # required by QTI 2.1
            assert root.get(attr), attr
        assert {c.tag.removeprefix(QTI) for c in root} <= ITEM_CHILDREN
        self.root = root
        self.id = root.get("identifier")
        self.decl = {d.get("identifier"): d for d in root.iter(f"{QTI}responseDeclaration",
                                                               f"{QTI}outcomeDeclaration")}
        rd = self.decl["RESPONSE"]
        self.cardinality, self.base = rd.get("cardinality"), rd.get("baseType")
        assert self.cardinality in ("single", "multiple") and self.base in ("identifier", "string")
        self.correct = [v.text for v in rd.find(f"{QTI}correctResponse")]
        self.mapping = [(m.get("mapKey"), float(m.get("mappedValue")), m.get("caseSensitive"))
                        for m in rd.iter(f"{QTI}mapEntry")]
        assert all(cs in ("true", "false") for _k, _v, cs in self.mapping)
        body = root.find(f"{QTI}itemBody")
        self.choice = body.find(f"{QTI}choiceInteraction")
        self.text_entry = body.find(f".//{QTI}textEntryInteraction")
        assert (self.choice is None) != (self.text_entry is None)
        inter = self.choice if self.choice is not None else self.text_entry
        assert inter.get("responseIdentifier") == "RESPONSE"
        if self.choice is not None:
            self.prompt = self.choice.find(f"{QTI}prompt").text
            self.choices = [(c.get("identifier"), c.text) for c in self.choice.findall(f"{QTI}simpleChoice")]
            assert len({i for i, _t in self.choices}) == len(self.choices)
            self.max_choices = int(self.choice.get("maxChoices"))
        else:
            self.prompt = self.text_entry.getparent().text.strip()
        self.feedback = {f.get("identifier"): f.text for f in root.findall(f"{QTI}modalFeedback")}
        assert all(f.get("outcomeIdentifier") == "FEEDBACK" and f.get("showHide") == "show"
                   for f in root.findall(f"{QTI}modalFeedback"))

    # -- the engine --
    def run(self, response):
        """Run responseProcessing for RESPONSE (None, a string, or a set of identifiers) -> outcomes."""
        self.vars = {"RESPONSE": response, "SCORE": 0.0, "MAXSCORE": 0.0, "FEEDBACK": None}
        for rule in self.root.find(f"{QTI}responseProcessing"):
            self._rule(rule)
        return self.vars

    def _rule(self, el):
        tag = el.tag.removeprefix(QTI)
        if tag == "setOutcomeValue":
            (expr,) = list(el)
            assert el.get("identifier") in self.decl
            self.vars[el.get("identifier")] = self._expr(expr)
        elif tag == "responseCondition":
            for branch in el:
                btag = branch.tag.removeprefix(QTI)
                assert btag in ("responseIf", "responseElseIf", "responseElse")
                kids = list(branch)
                if btag == "responseElse" or self._expr(kids.pop(0)):
                    for k in kids if btag != "responseElse" else list(branch):
                        self._rule(k)
                    return
        else:
            raise AssertionError(f"unknown rule {tag}")

    def _expr(self, el):
        tag = el.tag.removeprefix(QTI)
        kids = list(el)
        if tag == "variable":
            return self.vars[el.get("identifier")]
        if tag == "correct":
            assert el.get("identifier") == "RESPONSE"
            return set(self.correct) if self.cardinality == "multiple" else self.correct[0]
        if tag == "baseValue":
            return float(el.text) if el.get("baseType") == "float" else el.text
        if tag == "isNull":
            v = self._expr(kids[0])
            return v is None or v == "" or v == set()
        if tag == "match":
            a, b = (self._expr(k) for k in kids)
            return a is not None and a == b
        if tag == "mapResponse":
            r = self.vars["RESPONSE"]
            for key, value, cs in self.mapping:
                if (r == key) if cs == "true" else (r.casefold() == key.casefold()):
                    return value
            return float(self.decl["RESPONSE"].find(f"{QTI}mapping").get("defaultValue"))
        if tag == "multiple":
            out = set()
            for k in kids:
                v = self._expr(k)
                out |= v if isinstance(v, set) else ({v} if v is not None else set())
            return out
        raise AssertionError(f"unknown expression {tag}")


def test_qti_package_round_trip(bank, tmp_path):
    path = export.export(bank, "qti", tmp_path / "bank.zip")
    with zipfile.ZipFile(path) as z:
        names = set(z.namelist())
        manifest = etree.fromstring(z.read("imsmanifest.xml"))
        assert manifest.tag == f"{CP}manifest"
        # Canvas's importer (canvas-lms lib/qti: Converter.is_qti_2) takes a package for QTI 2 when the
        # manifest declares a QTI 2 namespace or its schema says QTIv2.x; otherwise it converts it as 1.2
        assert QTI.strip("{}") in manifest.nsmap.values()
        assert re.search(r"QTIv2\.", manifest.findtext(f"{CP}metadata/{CP}schema"), re.I)
        resources = manifest.findall(f"{CP}resources/{CP}resource")
        assert len(resources) == len(bank)
        hrefs, kinds = set(), {}
        for r in resources:
            assert r.get("type") == "imsqti_item_xmlv2p1"  # what Canvas selects: resource[type^=imsqti_item_xmlv2p]
            assert [f.get("href") for f in r.findall(f"{CP}file")] == [r.get("href")]
            assert [c.tag for c in r] == [f"{CP}metadata", f"{CP}file"]  # IMS CP order
            kinds[r.get("href")] = r.findtext(f"{CP}metadata/{QTI}qtiMetadata/{QTI}interactionType")
            hrefs.add(r.get("href"))
        assert names == hrefs | {"imsmanifest.xml"}
        items = {}
        for href in hrefs:
            item = QtiItem(z.read(href))
            items[item.id] = item
            assert kinds[href] == ("choiceInteraction" if item.choice is not None else "textEntryInteraction")
    assert set(items) == set(bank.ids())
    for q in bank:
        item = items[q.id]
        assert item.prompt == q.display_prompt
        assert item.feedback["EXPLANATION"].find(q.explanation) >= 0
        if q.type == "fill":
            assert item.base == "string" and item.cardinality == "single"
            for response, scores in _case_variants(q):
                assert item.run(response)["SCORE"] == (1.0 if scores else 0.0), (q.id, response)
            assert item.run(None)["SCORE"] == 0.0
            continue
        assert item.choices == [(LETTERS[i], c.text) for i, c in enumerate(q.choices)]
        assert item.max_choices == (1 if q.type == "single" else 0)
        right = set(q.correct_keys)
        given = right if q.type == "multiple" else q.correct_keys[0]
        out = item.run(given)
        assert out["SCORE"] == 1.0 and out["MAXSCORE"] == 1.0
        assert out["FEEDBACK"] == right | {"EXPLANATION"}  # the reasons of the choices picked
        for i, c in enumerate(q.choices):
            assert item.feedback[LETTERS[i]] == c.why
        for wrong in _wrong_responses(q):
            resp = wrong if q.type == "multiple" else (next(iter(wrong)) if len(wrong) == 1 else wrong)
            assert item.run(resp)["SCORE"] == 0.0, (q.id, wrong)
        assert item.run(None)["SCORE"] == 0.0


# --- Moodle XML ---------------------------------------------------------------------------------------------
#: question/engine/bank.php, fraction_options_full(): the grades Moodle's importer accepts
MOODLE_FRACTIONS = [1.0, 0.9, 0.8333333, 0.8, 0.75, 0.7, 0.6666667, 0.6, 0.5, 0.4, 0.3333333, 0.3, 0.25, 0.2,
                    0.1666667, 0.1428571, 0.125, 0.1111111, 0.1, 0.05, 0.0]
MOODLE_FRACTIONS += [-f for f in MOODLE_FRACTIONS if f] + [-1.0]
MOODLE_FORMATS = {"html", "moodle_auto_format", "plain_text", "markdown"}


def _moodle_text(el, tag):
    node = el.find(tag)
    assert node is not None, tag
    if node.get("format") is not None:
        assert node.get("format") in MOODLE_FORMATS
    return node.find("text").text or ""


def _moodle_shortanswer_match(answer: str, response: str, usecase: bool) -> bool:
    """qtype_shortanswer::compare_string_with_wildcard: * matches anything, \\* is a literal star."""
    parts = re.split(r"(?<!\\)\*", answer)
    pattern = ".*".join(re.escape(p.replace("\\*", "*")) for p in parts)
    return re.fullmatch(pattern, response.strip(), 0 if usecase else re.IGNORECASE) is not None


def _moodle_grade(question, response) -> float:
    answers = [(float(a.get("fraction")) / 100, a) for a in question.findall("answer")]
    if question.get("type") == "shortanswer":
        usecase = question.findtext("usecase") == "1"
        hits = [f for f, a in answers if _moodle_shortanswer_match(a.findtext("text"), response, usecase)]
        return max(hits, default=0.0)
    texts = {a.findtext("text"): f for f, a in answers}
    return min(1.0, max(0.0, sum(texts[t] for t in response)))


def test_moodle_xml_round_trip(bank, tmp_path):
    path = export.export(bank, "moodle", tmp_path / "bank.xml")
    root = etree.parse(str(path), etree.XMLParser(resolve_entities=False)).getroot()
    assert root.tag == "quiz"
    category, seen = None, {}
    for el in root:
        assert el.tag == "question"
        if el.get("type") == "category":
            category = _moodle_text(el, "category")
            continue
        assert el.get("type") in ("multichoice", "shortanswer")
        seen[_moodle_text(el, "name")] = (category, el)
    assert set(seen) == set(bank.ids())
    for q in bank:
        category, el = seen[q.id]
        assert category == f"$course$/top/Securing Postfix with TLS/{q.area}" and q.area in AREAS
        assert _moodle_text(el, "questiontext") == q.display_prompt
        assert _moodle_text(el, "generalfeedback").startswith(q.explanation)
        assert el.findtext("idnumber") == q.id
        fractions = [float(a.get("fraction")) / 100 for a in el.findall("answer")]
        assert all(any(abs(f - m) < 1e-6 for m in MOODLE_FRACTIONS) for f in fractions), fractions
        tags = {t.findtext("text") for t in el.findall("tags/tag")}
        assert {f"objective::{o}" for o in q.objectives} <= tags and f"area::{q.area}" in tags
        if q.type == "fill":
            assert el.get("type") == "shortanswer"
            assert el.findtext("usecase") == ("1" if q.case_sensitive else "0")
            assert [a.findtext("text") for a in el.findall("answer")] == q.answers
            for response, scores in _case_variants(q):
                assert _moodle_grade(el, response) == (1.0 if scores else 0.0), (q.id, response)
            continue
        assert el.findtext("single") == ("true" if q.type == "single" else "false")
        answers = el.findall("answer")
        assert [a.findtext("text") for a in answers] == [c.text for c in q.choices]
        assert [a.findtext("feedback/text") for a in answers] == [c.why for c in q.choices]
        right = [c.text for c in q.choices if c.correct]
        assert _moodle_grade(el, right) == pytest.approx(1.0, abs=1e-5)
        for wrong in _wrong_responses(q):
            if q.type == "single" and len(wrong) > 1:
                continue  # radio buttons: one pick only
            texts = [q.choices[LETTERS.index(k)].text for k in wrong]
            grade = _moodle_grade(el, texts)
            if set(wrong) < set(q.correct_keys):
                assert 0 < grade < 1  # core Moodle: partial credit for part of the right set
            else:
                assert grade == 0.0, (q.id, wrong)


# --- GIFT ---------------------------------------------------------------------------------------------------
_PLACEHOLDERS = {"\\:": "\x01058", "\\#": "\x01035", "\\=": "\x01061", "\\{": "\x01123", "\\}": "\x01125",
                 "\\~": "\x01126", "\\n": "\x01010"}
_CHARS = {"\x01058": ":", "\x01035": "#", "\x01061": "=", "\x01123": "{", "\x01125": "}", "\x01126": "~",
          "\x01010": "\n"}
_WEIGHT = re.compile(r"^%-*([0-9]{1,2})\.?([0-9]*)%")


def _gift_pre(text: str) -> str:
    text = text.replace("\\\\", "\x01092")
    for k, v in _PLACEHOLDERS.items():
        text = text.replace(k, v)
    return text.replace("\x01092", "\\")


def _gift_post(text: str) -> str:
    for k, v in _CHARS.items():
        text = text.replace(k, v)
    return text


def _gift_format(text: str) -> tuple[str, str]:
    if text.startswith("["):
        end = text.index("]")
        return text[1:end], _gift_post(text[end + 1:]).strip()
    return "moodle", _gift_post(text).strip()


def parse_gift(source: str) -> list[dict]:
    """Moodle's GIFT import, step by step (readquestion), strict where Moodle would warn or guess."""
    out, category = [], None
    blocks = re.split(r"\n\s*\n", source)
    for block in blocks:
        lines = [" " if ln.strip().startswith("//") else ln for ln in block.split("\n")]
        text = "\n".join(lines).strip()
        if not text:
            continue
        text = _gift_pre(text)
        if text.startswith("$CATEGORY:"):
            category = text[10:].strip()
            continue
        assert text.startswith("::"), text[:80]
        end = text.index("::", 2)
        name, text = _gift_post(text[2:end]), text[end + 2:].strip()
        assert text.count("{") == 1 and text.count("}") == 1 and text.endswith("}"), name  # strict
        start = text.index("{")
        answer_text = text[start + 1:-1].strip()
        fmt, question_text = _gift_format(text[:start].strip())
        general = ""
        if "####" in answer_text:
            answer_text, general = answer_text[:answer_text.rindex("####")].strip(), answer_text[
                answer_text.rindex("####") + 4:]
        if "~" in answer_text:
            qtype, single = "multichoice", "=" in answer_text
            parts = [p.strip() for p in answer_text.replace("=", "~=").split("~")]
        else:
            assert "->" not in answer_text and answer_text not in ("T", "TRUE", "F", "FALSE")
            qtype, single = "shortanswer", None
            parts = [p.strip() for p in answer_text.split("=")]
        if not parts[0]:
            parts.pop(0)
        answers = []
        for part in parts:
            if qtype == "multichoice" and part.startswith("="):
                weight, part = 1.0, part[1:]
            elif _WEIGHT.match(part):
                w = part[1:part.index("%", 1)]
                weight, part = float(w) / 100, part[part.index("%", 1) + 1:]
            else:
                weight = 0.0 if qtype == "multichoice" else 1.0
            ans, _, fb = part.partition("#")
            answers.append({"text": _gift_post(ans.strip()), "fraction": weight, "feedback": _gift_post(fb.strip())})
        out.append({"name": name, "category": category, "format": fmt, "text": question_text, "type": qtype,
                    "single": single, "answers": answers, "general": _gift_format(general.strip())[1]})
    return out


def test_gift_round_trip(bank, tmp_path):
    path = export.export(bank, "gift", tmp_path / "bank.gift.txt")
    parsed = {p["name"]: p for p in parse_gift(path.read_text(encoding="utf-8"))}
    assert set(parsed) == set(bank.ids())
    for q in bank:
        p = parsed[q.id]
        assert p["category"] == f"$course$/top/Securing Postfix with TLS/{q.area}"
        assert p["format"] == "markdown" and p["text"] == q.display_prompt
        assert p["general"].startswith(q.explanation)
        if q.type == "fill":
            assert p["type"] == "shortanswer"
            assert [a["text"] for a in p["answers"]] == q.answers and all(a["fraction"] == 1 for a in p["answers"])
            continue
        assert p["type"] == "multichoice" and p["single"] == (q.type == "single")
        assert [a["text"] for a in p["answers"]] == [c.text for c in q.choices]
        assert [a["feedback"] for a in p["answers"]] == [c.why for c in q.choices]
        right = [a for a, c in zip(p["answers"], q.choices) if c.correct]
        wrong = [a for a, c in zip(p["answers"], q.choices) if not c.correct]
        assert sum(a["fraction"] for a in right) == pytest.approx(1.0, abs=1e-4)
        assert all(a["fraction"] == (0.0 if q.type == "single" else -1.0) for a in wrong)
        assert all(any(abs(a["fraction"] - m) < 1e-6 for m in MOODLE_FRACTIONS) for a in p["answers"])


def test_gift_escapes_every_control_character():
    q = Question(id="esc-test", type="single", objectives=["211.1"], area="smtp", difficulty=1,
                 prompt=r"Which of {a} ~b =c #d e:f \g is it?", shuffle=False,
                 choices=[{"text": "a = b", "correct": True, "why": "# ~ { } : \\"},
                          {"text": "c ~ d", "why": "x"}, {"text": "e # f", "why": "y"}])
    (p,) = parse_gift(export.gift_question(q))
    assert p["text"] == q.display_prompt
    assert [a["text"] for a in p["answers"]] == ["a = b", "c ~ d", "e # f"]
    assert p["answers"][0] == {"text": "a = b", "fraction": 1.0, "feedback": "# ~ { } : \\"}


# --- the command: formats, errors, nothing half-written ------------------------------------------------------
@pytest.fixture
def run(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from quizzes.cli import main

    monkeypatch.setenv("QUIZZES_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("QUIZZES_DB", raising=False)
    monkeypatch.delenv("QUIZZES_BANK", raising=False)
    return lambda *args: CliRunner().invoke(main, list(args), catch_exceptions=False)


@pytest.mark.parametrize("fmt", ["anki", "qti", "moodle", "gift", "json", "csv"])
def test_export_command_writes_each_format(run, tmp_path, fmt, bank):
    out = tmp_path / f"bank{export.SUFFIX[fmt]}"
    r = run("export", "--format", fmt, "--output", str(out))
    assert r.exit_code == 0, r.output
    data = out.read_bytes()
    if fmt in ("anki", "qti"):
        assert zipfile.ZipFile(io.BytesIO(data)).testzip() is None
    elif fmt == "moodle":
        assert len(etree.fromstring(data).findall("question[@type='multichoice']")) == len(
            [q for q in bank if q.type != "fill"])
    elif fmt == "gift":
        assert len(parse_gift(data.decode())) == len(bank)
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_export_errors_write_nothing(run, tmp_path):
    r = run("export", "--format", "pdf", "--output", str(tmp_path / "x.pdf"))
    assert r.exit_code == 2 and "'pdf' is not one of" in r.output and not (tmp_path / "x.pdf").exists()
    r = run("export", "--format", "anki")
    assert r.exit_code == 2 and "--output" in r.output
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    r = run("export", "--format", "qti", "--output", str(blocker / "bank.zip"))
    assert r.exit_code == 1 and "is not a directory" in r.output
    r = run("export", "--format", "gift", "--output", str(tmp_path / "missing" / "bank.gift"))
    assert r.exit_code == 1 and "does not exist" in r.output and not (tmp_path / "missing").exists()
    # a bank with a broken question: the error names it, and an earlier export stays as it was
    broken = tmp_path / "bank"
    broken.mkdir()
    (broken / "x.yaml").write_text("title: x\nquestions:\n  - id: half-a-question\n    type: single\n")
    old = tmp_path / "old.xml"
    old.write_text("<quiz/>")
    r = run("--bank", str(broken), "export", "--format", "moodle", "--output", str(old))
    assert r.exit_code == 1 and "x.yaml:3: half-a-question" in r.output
    assert old.read_text() == "<quiz/>" and sorted(p.name for p in tmp_path.iterdir()) == [
        "a-file", "bank", "old.xml"]


def test_write_atomic_keeps_the_old_file_on_failure(tmp_path, monkeypatch):
    import os

    target = tmp_path / "bank.apkg"
    target.write_bytes(b"old")

    def boom(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(export.ExportError, match="No space left on device"):
        export.write_atomic(target, b"new")
    assert target.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["bank.apkg"]


def test_csv_export_of_a_corrupt_database_says_so(run, tmp_path):
    junk = tmp_path / "student.db"
    junk.write_bytes(b"not a database" * 200)
    out = tmp_path / "results.csv"
    r = run("export", "--format", "csv", "--results", str(junk), "--output", str(out))
    assert r.exit_code == 1 and "is not a usable progress database" in r.output and not out.exists()
