/* Practice questions, lesson quizzes and the exam simulation of the course site.
 *
 * Everything that is a rule comes from the Python side, generated at build time by the mkdocs hook
 * (scripts/gen_site/hooks.py, quizdata.py) into assets/quiz-bank.js (window.QUIZ_BANK):
 *   - the questions (quizzes.bank.to_json(), with pre-rendered *_html fields);
 *   - QUIZ_BANK.exam: the questions an exam may draw, how many each draw unit gives to an exam of each length,
 *     and the scaled score and pass verdict for each number of right answers (quizzes.exam.draw/score);
 *     this file only picks at random within those quotas and looks the score up;
 *   - QUIZ_BANK.lessons: each lesson's end-of-lesson questions.
 * and into assets/quiz-links.js (window.QUIZ_LINKS): for every question, the lesson section and the reference row
 * that teach it (checked to resolve when the site is built).
 *
 * Judging is quizzes/judge.py's, applied to the generated answer data: all or nothing; single choice exactly the
 * one right letter; multiple choice exactly the right set; fill-in trimmed at both ends, then equal to one of the
 * accepted answers, case-sensitive unless the question says case_sensitive: false. tests/test_site_browser.py runs
 * this judge() against quizzes.judge on generated responses for every question.
 *
 * Progress stays in this browser (localStorage) and can be exported and imported as the progress file the CLI
 * reads (notes/progress-format.md, quizzes/progress.py). A <script> is used for the data rather than fetch()
 * so that the site also works when opened from files.
 */
(function () {
  "use strict";

  var SCRIPT = document.currentScript;
  var BASE = SCRIPT && SCRIPT.src ? SCRIPT.src.replace(/quiz\.js(\?.*)?$/, "") : "assets/";
  var ROOT = BASE + "../";
  var STORE_KEY = "postfix-tls-lab:progress:v1";
  var OLD_KEY = "postfix-tls-lab:quiz:v1";
  var FORMAT = "postfix-tls-lab-progress";
  var VERSION = 1;
  var PER_PAGE = 5;
  var STAMP = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/;
  // The site's spacing of missed questions: after a miss, right answers in a row bring it back after these days.
  var REVIEW_DAYS = [1, 3, 7, 16];

  // --- storage: the answers as the progress file has them, oldest first ---------------------------------------
  function now() { return new Date().toISOString().replace(/\.\d+Z$/, "Z"); }
  function loadStore() {
    var s;
    try { s = JSON.parse(window.localStorage.getItem(STORE_KEY) || "null"); } catch (e) { s = null; }
    s = s && typeof s === "object" ? s : {};
    s.answers = Array.isArray(s.answers) ? s.answers : [];
    s.exams = Array.isArray(s.exams) ? s.exams : [];
    s.given = s.given && typeof s.given === "object" ? s.given : {};
    if (!s.migrated) { // the first version kept {id: {correct, at}}
      try {
        var old = JSON.parse(window.localStorage.getItem(OLD_KEY) || "null");
        if (old && old.answers && !Array.isArray(old.answers)) {
          Object.keys(old.answers).forEach(function (id) {
            var a = old.answers[id];
            if (a && typeof a.correct === "boolean") {
              s.answers.push({ question: id, correct: a.correct, answered_at: new Date(a.at || Date.now()).toISOString().replace(/\.\d+Z$/, "Z"), source: "site" });
            }
          });
          sortAnswers(s.answers);
        }
      } catch (e) { /* nothing to migrate */ }
      s.migrated = true;
    }
    return s;
  }
  function saveStore(s) {
    try { window.localStorage.setItem(STORE_KEY, JSON.stringify(s)); } catch (e) { /* private mode: forgets */ }
  }
  function sortAnswers(list) { list.sort(function (a, b) { return a.answered_at < b.answered_at ? -1 : a.answered_at > b.answered_at ? 1 : 0; }); }
  function record(store, qid, correct) {
    store.answers.push({ question: qid, correct: correct, answered_at: now(), source: "site" });
  }
  /* {qid: [answers oldest first]} */
  function history(store) {
    var h = {};
    store.answers.forEach(function (a) { (h[a.question] = h[a.question] || []).push(a); });
    return h;
  }
  function latest(store) {
    var h = history(store), out = {};
    Object.keys(h).forEach(function (k) { out[k] = h[k][h[k].length - 1]; });
    return out;
  }
  function due(answers, at) {
    if (!answers || !answers.length) return false;
    var last = answers[answers.length - 1];
    if (!last.correct) return true;
    var lastMiss = -1;
    answers.forEach(function (a, i) { if (!a.correct) lastMiss = i; });
    if (lastMiss < 0) return false;
    var streak = answers.length - 1 - lastMiss;
    if (streak > REVIEW_DAYS.length) return false;
    return at - Date.parse(last.answered_at) >= REVIEW_DAYS[streak - 1] * 86400000;
  }

  // --- progress file (notes/progress-format.md) -----------------------------------------------------------------------
  function exportFile(store) {
    return {
      format: FORMAT, version: VERSION, exported_at: now(),
      answers: store.answers.map(function (a) { return { question: a.question, correct: a.correct, answered_at: a.answered_at, source: a.source }; }),
      exams: store.exams.map(function (x) { return { taken_at: x.taken_at, score: x.score, passed: x.passed, right: x.right, total: x.total, missed: x.missed.slice() }; }),
    };
  }
  /* Returns {added, unknown, exams} or throws Error(message) without touching the store. */
  function importFile(store, data, bank) {
    if (!data || typeof data !== "object" || Array.isArray(data)) throw new Error("This is not a progress file (not a JSON object).");
    if (data.format !== FORMAT) throw new Error("This is not a progress file of this course (format " + JSON.stringify(data.format) + ", expected " + FORMAT + ").");
    if (typeof data.version !== "number" || data.version !== Math.floor(data.version) || data.version < 1) throw new Error("The file has no valid version.");
    if (data.version > VERSION) throw new Error("The file was made by a newer version of the course (version " + data.version + "): update the course.");
    if (!Array.isArray(data.answers)) throw new Error("The file has no list of answers.");
    data.answers.forEach(function (a, i) {
      if (!a || typeof a.question !== "string" || !a.question || typeof a.correct !== "boolean" || typeof a.answered_at !== "string" ||
          !STAMP.test(a.answered_at) || isNaN(Date.parse(a.answered_at)) || (a.source !== "site" && a.source !== "cli")) {
        throw new Error("Answer " + (i + 1) + " in the file is not valid (question, correct, answered_at as UTC time with Z, source site or cli).");
      }
    });
    var exams = data.exams === undefined ? [] : data.exams;
    if (!Array.isArray(exams)) throw new Error("The file's exams are not a list.");
    exams.forEach(function (x, i) {
      if (!x || typeof x.taken_at !== "string" || !STAMP.test(x.taken_at) || typeof x.score !== "number" || typeof x.passed !== "boolean" ||
          typeof x.right !== "number" || typeof x.total !== "number" || !Array.isArray(x.missed)) {
        throw new Error("Exam " + (i + 1) + " in the file is not valid.");
      }
    });
    var seen = {};
    store.answers.forEach(function (a) { seen[a.question + "\n" + a.answered_at.slice(0, 19)] = true; });
    var known = {};
    bank.questions.forEach(function (q) { known[q.id] = true; });
    var added = 0, unknown = {};
    data.answers.forEach(function (a) {
      var key = a.question + "\n" + a.answered_at.slice(0, 19);
      if (!known[a.question]) unknown[a.question] = true;
      if (seen[key]) return;
      seen[key] = true;
      store.answers.push({ question: a.question, correct: a.correct, answered_at: a.answered_at, source: a.source });
      added++;
    });
    sortAnswers(store.answers);
    var have = {};
    function examKey(x) { return x.taken_at.slice(0, 19) + "\n" + x.score + "\n" + x.total; }
    store.exams.forEach(function (x) { have[examKey(x)] = true; });
    var newExams = 0;
    exams.forEach(function (x) {
      if (have[examKey(x)]) return;
      have[examKey(x)] = true;
      store.exams.push({ taken_at: x.taken_at, score: x.score, passed: x.passed, right: x.right, total: x.total, missed: x.missed.slice() });
      newExams++;
    });
    store.exams.sort(function (a, b) { return a.taken_at < b.taken_at ? -1 : 1; });
    return { added: added, unknown: Object.keys(unknown), exams: newExams };
  }

  // --- judging (quizzes/judge.py) -------------------------------------------------------------------------------------------
  function correctKeys(q) {
    return q.choices.filter(function (c) { return c.correct; }).map(function (c) { return c.key; });
  }
  function judge(q, response) {
    if (q.type === "fill") {
      var given = (typeof response === "string" ? response : (response || []).join(" ")).trim();
      if (!given) return false;
      if (q.case_sensitive !== false) return q.answers.indexOf(given) >= 0;
      var low = given.toLowerCase();
      return q.answers.some(function (a) { return a.toLowerCase() === low; });
    }
    var chosen = (Array.isArray(response) ? response : []).map(function (k) { return String(k).trim().toUpperCase(); })
      .filter(function (k, i, a) { return k && a.indexOf(k) === i; }).sort();
    var right = correctKeys(q).slice().sort();
    if (!chosen.length) return false;
    if (q.type === "single" && chosen.length !== 1) return false;
    return chosen.length === right.length && chosen.every(function (k, i) { return k === right[i]; });
  }
  function answered(q, r) { return q.type === "fill" ? !!String(r || "").trim() : !!(r && r.length); }

  // --- small helpers ---------------------------------------------------------------------------------------------------------
  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      var v = attrs[k];
      if (v === null || v === undefined || v === false) return;
      if (k === "html") node.innerHTML = v;
      else if (k === "text") node.textContent = v;
      else if (k === "class") node.className = v;
      else if (k.indexOf("on") === 0) node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v === true ? "" : v);
    });
    (children || []).forEach(function (c) { if (c) node.appendChild(typeof c === "string" ? document.createTextNode(c) : c); });
    return node;
  }
  function shuffle(a) {
    for (var i = a.length - 1; i > 0; i--) {
      var j = Math.floor(Math.random() * (i + 1));
      var t = a[i]; a[i] = a[j]; a[j] = t;
    }
    return a;
  }
  function pct(n, d) { return d ? Math.round((100 * n) / d) + "%" : "-"; }
  function clock(sec) { sec = Math.max(0, Math.round(sec)); return Math.floor(sec / 60) + ":" + String(sec % 60).padStart(2, "0"); }
  function when(stamp) { var d = new Date(stamp); return isNaN(d) ? stamp : d.toLocaleString(); }
  var LETTERS = "ABCDEFGHIJ";
  var TYPE_LABEL = { single: "Single choice: choose one answer", multiple: "Multiple choice", fill: "Fill in the blank" };
  var uid = 0;

  function linksOf(qid) {
    var l = (window.QUIZ_LINKS || {})[qid] || {};
    var out = [];
    if (l.lesson) out.push(el("a", { href: ROOT + l.lesson.href, class: "quiz-link quiz-link--lesson", text: "Lesson: " + l.lesson.title }));
    if (l.reference) out.push(el("a", { href: ROOT + l.reference.href, class: "quiz-link quiz-link--reference", text: "Reference: " + l.reference.title }));
    return out;
  }

  // --- one question ---------------------------------------------------------------------------------------------------------------
  /* opts: {number, total, mode: "practice"|"exam", order: [original keys in display order], onAnswer(q, response, ok),
            onChange(response), stored: {given, correct} (show as answered), meta: text, noLinks} */
  function QuestionCard(bank, q, opts) {
    var self = this;
    uid += 1;
    var name = "q" + uid;
    this.q = q;
    var order = opts.order || (q.choices || []).map(function (c) { return c.key; });
    this.order = order;
    var byKey = {};
    (q.choices || []).forEach(function (c) { byKey[c.key] = c; });
    function shown(key) { return LETTERS[order.indexOf(key)]; }
    var inputs = [];
    var body;
    var promptId = name + "-prompt";
    if (q.type === "fill") {
      var input = el("input", { type: "text", class: "quiz-fill", id: name + "-fill", name: name, autocomplete: "off", autocapitalize: "off",
        spellcheck: "false", "aria-describedby": promptId });
      input.addEventListener("keydown", function (ev) {
        if (ev.key === "Enter" && opts.mode === "practice") { ev.preventDefault(); self.check(); }
      });
      input.addEventListener("input", function () { if (opts.onChange) opts.onChange(self.response()); });
      inputs.push(input);
      body = el("div", { class: "quiz-q__body" }, [el("label", { for: name + "-fill", class: "quiz-fill__label", text: "Your answer" }), input]);
    } else {
      var list = el("div", { class: "quiz-choices" });
      order.forEach(function (key, i) {
        var c = byKey[key];
        var box = el("input", { type: q.type === "single" ? "radio" : "checkbox", name: name, value: key, id: name + "-" + key });
        box.addEventListener("change", function () { if (opts.onChange) opts.onChange(self.response()); });
        inputs.push(box);
        list.appendChild(el("div", { class: "quiz-choice", "data-key": key }, [
          box,
          el("label", { for: name + "-" + key }, [el("span", { class: "quiz-choice__key", text: LETTERS[i] + "." }),
            el("span", { class: "quiz-choice__text", html: c.text_html })]),
          el("div", { class: "quiz-choice__why", hidden: true, html: c.why_html || "" }),
        ]));
      });
      body = el("div", { class: "quiz-q__body" }, [list]);
    }
    var feedback = el("div", { class: "quiz-feedback", tabindex: "-1", hidden: true });
    var status = el("p", { class: "quiz-status", role: "status", "aria-live": "polite" });
    var checkBtn = el("button", { type: "button", class: "md-button md-button--primary quiz-check", text: "Check", onclick: function () { self.check(); } });
    var retryBtn = el("button", { type: "button", class: "md-button quiz-retry", text: "Try again", hidden: true, onclick: function () { self.reset(); } });
    var actions = opts.mode === "practice" ? el("div", { class: "quiz-q__actions" }, [checkBtn, retryBtn]) : null;
    var legend = el("legend", { class: "quiz-q__legend" }, [
      el("span", { class: "quiz-q__num", text: "Question " + opts.number + (opts.total ? " of " + opts.total : "") }),
      el("span", { class: "quiz-q__meta", text: (opts.meta ? opts.meta + " · " : "") + TYPE_LABEL[q.type] }),
    ]);
    var fieldset = el("fieldset", { class: "quiz-q__fieldset" }, [legend, el("div", { class: "quiz-q__prompt", id: promptId, html: q.prompt_html }), body]);
    this.node = el("article", { class: "quiz-q", id: "q-" + q.id + (opts.idSuffix || ""), "data-qid": q.id, "data-type": q.type },
      [fieldset, actions, status, feedback]);

    this.response = function () {
      if (q.type === "fill") return inputs[0].value;
      return inputs.filter(function (i) { return i.checked; }).map(function (i) { return i.value; });
    };
    this.setResponse = function (r) {
      if (q.type === "fill") inputs[0].value = typeof r === "string" ? r : "";
      else inputs.forEach(function (i) { i.checked = (r || []).indexOf(i.value) >= 0; });
    };
    this.focus = function () { if (inputs[0]) inputs[0].focus(); };
    this.lock = function (locked) { inputs.forEach(function (i) { i.disabled = locked; }); };
    this.show = function (ok, given) {
      given = given === undefined ? self.response() : given;
      var none = !answered(q, given);
      self.node.classList.toggle("quiz-q--right", ok);
      self.node.classList.toggle("quiz-q--wrong", !ok);
      feedback.hidden = false;
      feedback.className = "quiz-feedback " + (ok ? "quiz-feedback--right" : none ? "quiz-feedback--wrong quiz-feedback--unanswered" : "quiz-feedback--wrong");
      feedback.innerHTML = "";
      feedback.appendChild(el("p", { class: "quiz-verdict", text: ok ? "✔ Correct." : none ? "✘ Not answered." : "✘ Incorrect." }));
      if (!ok) {
        var expected = q.type === "fill" ? q.answers[0] : correctKeys(q).map(shown).sort().join(", ");
        feedback.appendChild(el("p", { class: "quiz-expected" }, [
          "The answer: ", el("code", { text: expected }),
          q.type === "fill" && q.answers.length > 1 ? " (also accepted: " + q.answers.slice(1).join(", ") + ")" : "",
        ]));
      }
      if (q.explanation_html) feedback.appendChild(el("div", { class: "quiz-explanation", html: q.explanation_html }));
      if (!opts.noLinks) {
        var links = linksOf(q.id);
        if (links.length) feedback.appendChild(el("p", { class: "quiz-refs" }, ["Learn it here: "].concat(links.reduce(function (acc, a, i) { if (i) acc.push(" · "); acc.push(a); return acc; }, []))));
      }
      if (q.type !== "fill") {
        self.node.querySelectorAll(".quiz-choice").forEach(function (row) {
          var c = byKey[row.getAttribute("data-key")];
          row.classList.toggle("quiz-choice--correct", c.correct);
          row.classList.toggle("quiz-choice--chosen", (given || []).indexOf(c.key) >= 0);
          var why = row.querySelector(".quiz-choice__why");
          why.hidden = !c.why_html;
          if (!row.querySelector(".quiz-choice__mark")) {
            row.querySelector("label").appendChild(el("span", { class: "quiz-choice__mark", text: c.correct ? " (right answer)" : "" }));
          }
        });
      }
      self.setResponse(given);
      self.lock(true);
      checkBtn.hidden = true;
      retryBtn.hidden = opts.mode !== "practice";
    };
    this.reset = function () {
      self.node.classList.remove("quiz-q--right", "quiz-q--wrong");
      feedback.hidden = true;
      status.textContent = "";
      self.node.querySelectorAll(".quiz-choice").forEach(function (row) {
        row.classList.remove("quiz-choice--correct", "quiz-choice--chosen");
        row.querySelector(".quiz-choice__why").hidden = true;
        var m = row.querySelector(".quiz-choice__mark");
        if (m) m.remove();
      });
      self.lock(false);
      self.setResponse(q.type === "fill" ? "" : []);
      checkBtn.hidden = false;
      retryBtn.hidden = true;
      self.focus();
    };
    var checkedAt = 0;
    retryBtn.addEventListener("click", function (ev) {
      // a double click on Check must not land on "Try again" and empty the answer
      if (Date.now() - checkedAt < 700) { ev.stopImmediatePropagation(); }
    }, true);
    this.check = function () {
      if (checkBtn.hidden) return;
      var r = self.response();
      if (!answered(q, r)) {
        status.textContent = q.type === "fill" ? "Type an answer first." : "Choose an answer first.";
        self.focus();
        return;
      }
      var ok = judge(q, r);
      checkedAt = Date.now();
      self.show(ok, r);
      status.textContent = ok ? "Correct." : "Incorrect.";
      feedback.focus();
      if (opts.onAnswer) opts.onAnswer(q, r, ok);
    };
    if (opts.stored) self.show(opts.stored.correct, opts.stored.given);
  }

  function choiceOrder(q) { return shuffle((q.choices || []).map(function (c) { return c.key; })); }

  // --- practice ------------------------------------------------------------------------------------------------------------------
  function practice(root, bank, fixedIds) {
    var store = loadStore();
    var byId = {};
    bank.questions.forEach(function (q) { byId[q.id] = q; });
    var lessonMode = !!fixedIds;
    var select = el("select", { class: "quiz-filter", id: "quiz-filter-" + (++uid) });
    var sizeSel = el("select", { class: "quiz-pagesize", id: "quiz-size-" + uid }, [
      el("option", { value: "1", text: "One at a time" }), el("option", { value: String(PER_PAGE), text: PER_PAGE + " per page" })]);
    var score = el("p", { class: "quiz-score", "aria-live": "polite" });
    var list = el("div", { class: "quiz-list" });
    var pager = el("nav", { class: "quiz-pager", "aria-label": "Questions" });
    var notice = el("p", { class: "quiz-notice", role: "status", "aria-live": "polite" });
    var order = [], page = 0, orders = {};

    function count(fn) { return bank.questions.filter(fn).length; }
    function option(value, text, n) { return el("option", { value: value, text: text + " (" + n + ")" }); }
    function buildFilter() {
      var keep = select.value;
      select.innerHTML = "";
      var h = history(store), t = Date.now();
      select.appendChild(option("", "All questions", bank.questions.length));
      select.appendChild(option("due", "Due for review (missed)", count(function (q) { return due(h[q.id], t); })));
      select.appendChild(option("wrong", "Wrong last time", count(function (q) { return h[q.id] && !h[q.id][h[q.id].length - 1].correct; })));
      select.appendChild(option("unseen", "Not yet seen", count(function (q) { return !h[q.id]; })));
      var gl = el("optgroup", { label: "By lesson" });
      Object.keys(bank.lessons || {}).forEach(function (stem) {
        var l = bank.lessons[stem];
        gl.appendChild(option("lesson=" + stem, "Lesson " + l.title, l.quiz.length));
      });
      var go = el("optgroup", { label: "By objective" });
      Object.keys(bank.objectives).forEach(function (id) {
        var o = bank.objectives[id];
        var label = o.source === "lesson" ? "Lesson objective " + id.split("-").pop() : id;
        go.appendChild(option("objective=" + id, label + ": " + o.title, count(function (q) { return q.objectives.indexOf(id) >= 0; })));
      });
      var ga = el("optgroup", { label: "By topic area" });
      Object.keys(bank.areas).forEach(function (id) {
        ga.appendChild(option("area=" + id, bank.areas[id].title, count(function (q) { return q.area === id; })));
      });
      [gl, go, ga].forEach(function (g) { select.appendChild(g); });
      if (keep !== undefined && select.querySelector('option[value="' + keep + '"]')) select.value = keep;
    }
    function filterFn() {
      if (lessonMode) return function (q) { return fixedIds.indexOf(q.id) >= 0; };
      var v = select.value, h = history(store), t = Date.now();
      if (!v) return function () { return true; };
      if (v === "due") return function (q) { return due(h[q.id], t); };
      if (v === "wrong") return function (q) { return h[q.id] && !h[q.id][h[q.id].length - 1].correct; };
      if (v === "unseen") return function (q) { return !h[q.id]; };
      var kv = v.split("=");
      if (kv[0] === "lesson") { var ids = ((bank.lessons || {})[kv[1]] || { quiz: [] }).quiz; return function (q) { return ids.indexOf(q.id) >= 0; }; }
      if (kv[0] === "objective") return function (q) { return q.objectives.indexOf(kv[1]) >= 0; };
      return function (q) { return q.area === kv[1]; };
    }
    function perPage() { return lessonMode ? order.length || 1 : parseInt(sizeSel.value, 10); }
    function updateScore() {
      var last = latest(store);
      var qs = order.map(function (id) { return byId[id]; });
      var done = qs.filter(function (q) { return last[q.id]; });
      var right = done.filter(function (q) { return last[q.id].correct; });
      score.setAttribute("data-correct", right.length);
      score.setAttribute("data-answered", done.length);
      score.setAttribute("data-total", qs.length);
      score.innerHTML = "";
      score.appendChild(el("strong", { class: "quiz-score__value", text: "Score: " + right.length + " / " + done.length }));
      score.appendChild(document.createTextNode(" right of the " + done.length + " you have answered, " + qs.length + " questions here (" + pct(right.length, done.length) + ")."));
    }
    function render(focusFirst) {
      list.innerHTML = "";
      var last = latest(store);
      var n = perPage(), pages = Math.max(1, Math.ceil(order.length / n));
      page = Math.min(page, pages - 1);
      var first = null;
      order.slice(page * n, page * n + n).forEach(function (id, i) {
        var q = byId[id];
        if (!orders[id]) orders[id] = choiceOrder(q);
        var stored = lessonMode && last[id] && store.given[id] !== undefined ? { correct: last[id].correct, given: store.given[id] } : null;
        var card = new QuestionCard(bank, q, {
          number: page * n + i + 1, total: order.length, mode: "practice", order: orders[id], stored: stored,
          meta: lessonMode ? null : q.objectives.join(", "),
          onAnswer: function (qq, r, ok) {
            record(store, qq.id, ok);
            store.given[qq.id] = r;
            saveStore(store);
            updateScore();
            if (!lessonMode) buildFilter(); // the counts of "wrong last time", "not yet seen", "due"
          },
        });
        if (!first) first = card;
        list.appendChild(card.node);
      });
      if (!order.length) list.appendChild(el("p", { text: "No question matches this choice yet." }));
      pager.innerHTML = "";
      if (!lessonMode && pages > 1) {
        pager.appendChild(el("button", { type: "button", class: "md-button quiz-prev", text: "Previous", disabled: page === 0, onclick: function () { page--; render(true); } }));
        pager.appendChild(el("span", { class: "quiz-pager__pos", text: (n === 1 ? "Question " : "Page ") + (page + 1) + " of " + pages }));
        pager.appendChild(el("button", { type: "button", class: "md-button md-button--primary quiz-next", text: "Next", disabled: page >= pages - 1, onclick: function () { page++; render(true); } }));
      }
      updateScore();
      if (focusFirst && first) first.focus();
    }
    function restart() {
      order = shuffle(bank.questions.filter(filterFn()).map(function (q) { return q.id; }));
      if (lessonMode) order = fixedIds.filter(function (id) { return byId[id]; });
      orders = {};
      page = 0;
      render(false);
    }
    root.innerHTML = "";
    if (!lessonMode) {
      buildFilter();
      var fileInput = el("input", { type: "file", accept: ".json,application/json", class: "quiz-import-file", id: "quiz-import-" + uid, hidden: true });
      fileInput.addEventListener("change", function () {
        var f = fileInput.files && fileInput.files[0];
        if (!f) return;
        var reader = new FileReader();
        reader.onload = function () {
          var data;
          try { data = JSON.parse(String(reader.result)); } catch (e) { notice.textContent = "Not imported: the file is not valid JSON."; return; }
          var fresh = loadStore();
          try {
            var res = importFile(fresh, data, bank);
            saveStore(fresh);
            store = fresh;
            notice.textContent = "Imported " + res.added + " new answer(s) and " + res.exams + " exam(s)" +
              (res.unknown.length ? "; " + res.unknown.length + " answer(s) to questions this site does not have were kept: " + res.unknown.join(", ") : "") + ".";
            buildFilter();
            restart();
          } catch (e) { notice.textContent = "Not imported, nothing changed: " + e.message; }
          fileInput.value = "";
        };
        reader.readAsText(f);
      });
      root.appendChild(el("div", { class: "quiz-toolbar" }, [
        el("label", { for: select.id, class: "quiz-toolbar__label" }, ["Practise", select]),
        el("label", { for: sizeSel.id, class: "quiz-toolbar__label" }, ["Show", sizeSel]),
        el("button", { type: "button", class: "md-button quiz-shuffle", text: "Shuffle again", onclick: restart }),
      ]));
      root.appendChild(score);
      root.appendChild(list);
      root.appendChild(pager);
      root.appendChild(el("div", { class: "quiz-toolbar quiz-toolbar--progress" }, [
        el("button", { type: "button", class: "md-button quiz-export", text: "Export progress", onclick: function () {
          download("postfix-tls-lab-progress.json", JSON.stringify(exportFile(loadStore()), null, 2) + "\n");
          notice.textContent = "Progress exported: postfix-tls-lab-progress.json (read it in a terminal with: quizzes progress import FILE).";
        } }),
        el("button", { type: "button", class: "md-button quiz-import", text: "Import progress", onclick: function () { fileInput.click(); } }),
        fileInput,
        el("button", { type: "button", class: "md-button quiz-reset", text: "Forget my answers", onclick: function () {
          if (!window.confirm("Forget every answer and exam stored in this browser? Export your progress first to keep it.")) return;
          store.answers = []; store.exams = []; store.given = {};
          saveStore(store);
          buildFilter();
          restart();
        } }),
      ]));
      root.appendChild(notice);
      select.addEventListener("change", function () {
        if (window.history && window.history.replaceState) window.history.replaceState(null, "", select.value ? "#" + select.value : window.location.pathname);
        restart();
      });
      sizeSel.addEventListener("change", function () { page = 0; render(false); });
      function fromHash() {
        var hash = decodeURIComponent(window.location.hash.replace(/^#/, ""));
        if (hash && select.querySelector('option[value="' + hash.replace(/"/g, "") + '"]')) { select.value = hash; return true; }
        return false;
      }
      fromHash();
      window.addEventListener("hashchange", function () { if (fromHash()) restart(); });
    } else {
      root.appendChild(score);
      root.appendChild(list);
      var stem = root.getAttribute("data-lesson");
      root.appendChild(el("p", { class: "quiz-more" }, [el("a", { href: ROOT + "quiz/index.html#lesson=" + stem, text: "Practise this lesson's questions on the practice page" }),
        " (one at a time, shuffled, with your progress, export and import)."]));
    }
    restart();
  }

  function download(name, text) {
    var blob = new Blob([text], { type: "application/json" });
    var a = el("a", { href: URL.createObjectURL(blob), download: name, hidden: true });
    document.body.appendChild(a);
    a.click();
    setTimeout(function () { URL.revokeObjectURL(a.href); a.remove(); }, 1000);
  }

  // --- exam ------------------------------------------------------------------------------------------------------------------------
  var RUN_KEY = "postfix-tls-lab:exam-running:v1";
  function loadRun() { try { return JSON.parse(window.localStorage.getItem(RUN_KEY) || "null"); } catch (e) { return null; } }
  function saveRun(r) { try { if (r) window.localStorage.setItem(RUN_KEY, JSON.stringify(r)); else window.localStorage.removeItem(RUN_KEY); } catch (e) { /* */ } }

  /* Pick the questions of an exam of plan size N: within each draw unit, as many at random as its quota. */
  function pick(bank, size) {
    var plan = bank.exam;
    var units = {};
    plan.pool.forEach(function (id) { var g = plan.group[id]; (units[g] = units[g] || []).push(id); });
    var out = [];
    Object.keys(size.quotas).forEach(function (g) { out = out.concat(shuffle((units[g] || []).slice()).slice(0, size.quotas[g])); });
    return shuffle(out);
  }

  function exam(root, bank) {
    var plan = bank.exam;
    var byId = {};
    bank.questions.forEach(function (q) { byId[q.id] = q; });
    var live = el("p", { class: "quiz-sr-only", role: "status", "aria-live": "polite" });

    function sizeOf(n) { return plan.sizes.filter(function (s) { return s.n === n; })[0]; }

    function start(message) {
      root.innerHTML = "";
      var store = loadStore();
      var sizeSel = el("select", { class: "quiz-exam-size", id: "quiz-exam-size" });
      plan.sizes.forEach(function (s) {
        sizeSel.appendChild(el("option", { value: String(s.n), text: s.n + " questions, " + Math.round(s.seconds / 60) + " minutes" + (s.n === plan.pool.length ? " (every exam question)" : s.n === 60 ? " (as long as the real exam)" : "") }));
      });
      sizeSel.value = String(plan["default"]);
      if (message) root.appendChild(el("p", { class: "quiz-notice", role: "status", text: message }));
      root.appendChild(el("div", { class: "quiz-toolbar" }, [
        el("label", { for: "quiz-exam-size", class: "quiz-toolbar__label" }, ["Exam", sizeSel]),
        el("button", { type: "button", class: "md-button md-button--primary quiz-start", text: "Start the exam", onclick: function () {
          var size = sizeOf(parseInt(sizeSel.value, 10));
          var ids = pick(bank, size);
          var orders = {};
          ids.forEach(function (id) { orders[id] = choiceOrder(byId[id]); });
          var run = { n: size.n, ids: ids, orders: orders, responses: {}, flags: {}, current: 0, started_at: now(), deadline: Date.now() + size.seconds * 1000 };
          saveRun(run);
          sit(run);
        } }),
      ]));
      pastExams(store);
      root.appendChild(live);
    }

    function pastExams(store) {
      if (!store.exams.length) return;
      root.appendChild(el("h2", { id: "your-past-exams", text: "Your past exams in this browser" }));
      var scores = store.exams.map(function (x) { return x.score; });
      root.appendChild(trend(scores));
      var rows = [el("tr", {}, [el("th", { scope: "col", text: "taken" }), el("th", { scope: "col", text: "score" }), el("th", { scope: "col", text: "result" }),
        el("th", { scope: "col", text: "right" }), el("th", { scope: "col", text: "review" })])];
      store.exams.slice().reverse().slice(0, 20).forEach(function (x) {
        rows.push(el("tr", {}, [el("td", { text: when(x.taken_at) }), el("td", { text: String(x.score) }), el("td", { text: x.passed ? "passed" : "not passed" }),
          el("td", { text: x.right + " / " + x.total }),
          el("td", {}, [x.ids ? el("button", { type: "button", class: "md-button quiz-review", text: "Review", "aria-label": "Review the exam of " + when(x.taken_at),
            onclick: function () { result(x, false); } }) : document.createTextNode(x.missed.length + " missed (imported)")])]));
      });
      root.appendChild(el("div", { class: "md-typeset__scrollwrap" }, [el("table", { class: "quiz-table quiz-history" }, [el("tbody", {}, rows)])]));
    }

    function trend(scores) {
      var w = 300, h = 80, pad = 6, box = el("figure", { class: "quiz-trend" });
      var last = scores.slice(-20);
      var text = last.length > 1 ? "Scaled scores of your last " + last.length + " exams, oldest first: " + last.join(", ") + ". " +
        (last[last.length - 1] > last[0] ? "Up by " + (last[last.length - 1] - last[0]) + " since the first of them." : last[last.length - 1] < last[0] ? "Down by " + (last[0] - last[last.length - 1]) + " since the first of them." : "Level.")
        : "Your first exam: " + last[0] + ". Take more to see a trend.";
      var ns = "http://www.w3.org/2000/svg";
      var svg = document.createElementNS(ns, "svg");
      svg.setAttribute("viewBox", "0 0 " + w + " " + h);
      svg.setAttribute("role", "img");
      svg.setAttribute("aria-label", text);
      svg.setAttribute("class", "quiz-trend__svg");
      var lo = plan.scale.min, hi = plan.scale.max;
      function y(v) { return pad + (h - 2 * pad) * (1 - (v - lo) / (hi - lo)); }
      var passLine = document.createElementNS(ns, "line");
      passLine.setAttribute("x1", 0); passLine.setAttribute("x2", w); passLine.setAttribute("y1", y(plan.scale.pass)); passLine.setAttribute("y2", y(plan.scale.pass));
      passLine.setAttribute("class", "quiz-trend__pass");
      svg.appendChild(passLine);
      var pts = last.map(function (v, i) { return (last.length > 1 ? pad + (w - 2 * pad) * i / (last.length - 1) : w / 2) + "," + y(v); });
      var line = document.createElementNS(ns, "polyline");
      line.setAttribute("points", pts.join(" "));
      line.setAttribute("class", "quiz-trend__line");
      svg.appendChild(line);
      pts.forEach(function (p) {
        var c = document.createElementNS(ns, "circle");
        c.setAttribute("cx", p.split(",")[0]); c.setAttribute("cy", p.split(",")[1]); c.setAttribute("r", 3);
        c.setAttribute("class", "quiz-trend__dot");
        svg.appendChild(c);
      });
      box.appendChild(svg);
      box.appendChild(el("figcaption", { text: text + " The dashed line is the pass mark, " + plan.scale.pass + "." }));
      return box;
    }

    function sit(run) {
      root.innerHTML = "";
      var size = sizeOf(run.n);
      var cards = [];
      var timer = el("p", { class: "quiz-timer" });
      var counter = el("p", { class: "quiz-counter", "aria-live": "polite" });
      var nav = el("nav", { class: "quiz-navigator", "aria-label": "Exam questions" });
      var stage = el("div", { class: "quiz-stage" });
      var flagBtn = el("button", { type: "button", class: "md-button quiz-flag", "aria-pressed": "false", text: "Flag for review" });
      var prev = el("button", { type: "button", class: "md-button quiz-prev", text: "Previous" });
      var next = el("button", { type: "button", class: "md-button md-button--primary quiz-next", text: "Next" });
      var handIn = el("button", { type: "button", class: "md-button quiz-handin", text: "Hand in" });
      var navButtons = [];
      run.ids.forEach(function (id, i) {
        var q = byId[id];
        var card = new QuestionCard(bank, q, { number: i + 1, total: run.ids.length, mode: "exam", order: run.orders[id], noLinks: true, idSuffix: "-exam",
          onChange: function (r) { run.responses[id] = r; saveRun(run); refresh(); } });
        if (run.responses[id] !== undefined) card.setResponse(run.responses[id]);
        cards.push(card);
        var b = el("button", { type: "button", class: "quiz-navigator__q", text: String(i + 1), onclick: function () { go(i, true); } });
        navButtons.push(b);
        nav.appendChild(b);
      });
      function isAnswered(i) { return answered(byId[run.ids[i]], run.responses[run.ids[i]]); }
      function refresh() {
        var done = 0, flagged = 0;
        navButtons.forEach(function (b, i) {
          var a = isAnswered(i), f = !!run.flags[run.ids[i]];
          done += a ? 1 : 0; flagged += f ? 1 : 0;
          b.className = "quiz-navigator__q" + (a ? " is-answered" : "") + (f ? " is-flagged" : "") + (i === run.current ? " is-current" : "");
          b.setAttribute("aria-label", "Question " + (i + 1) + ", " + (a ? "answered" : "not answered") + (f ? ", flagged" : ""));
          if (i === run.current) b.setAttribute("aria-current", "step"); else b.removeAttribute("aria-current");
        });
        counter.textContent = "Answered " + done + " of " + run.ids.length + (flagged ? " · flagged " + flagged : "");
        counter.setAttribute("data-answered", done);
        var f = !!run.flags[run.ids[run.current]];
        flagBtn.setAttribute("aria-pressed", f ? "true" : "false");
        flagBtn.textContent = f ? "Flagged: remove the flag" : "Flag for review";
        prev.disabled = run.current === 0;
        next.disabled = run.current === run.ids.length - 1;
      }
      function go(i, focus) {
        run.current = Math.max(0, Math.min(run.ids.length - 1, i));
        saveRun(run);
        stage.innerHTML = "";
        stage.appendChild(cards[run.current].node);
        refresh();
        if (focus) cards[run.current].focus();
      }
      flagBtn.addEventListener("click", function () {
        var id = run.ids[run.current];
        if (run.flags[id]) delete run.flags[id]; else run.flags[id] = true;
        saveRun(run);
        refresh();
        live.textContent = run.flags[id] ? "Question " + (run.current + 1) + " flagged." : "Flag removed.";
      });
      prev.addEventListener("click", function () { go(run.current - 1, true); });
      next.addEventListener("click", function () { go(run.current + 1, true); });
      var dialog = el("div", { class: "quiz-confirm", role: "alertdialog", "aria-modal": "false", "aria-labelledby": "quiz-confirm-title", hidden: true });
      handIn.addEventListener("click", function () {
        var missing = [], flagged = [];
        run.ids.forEach(function (id, i) { if (!isAnswered(i)) missing.push(i + 1); if (run.flags[id]) flagged.push(i + 1); });
        dialog.innerHTML = "";
        dialog.appendChild(el("p", { id: "quiz-confirm-title", class: "quiz-confirm__title", text: "Hand in the exam?" }));
        dialog.appendChild(el("p", { class: "quiz-confirm__missing", text: missing.length ?
          "Not answered: question" + (missing.length > 1 ? "s " : " ") + missing.join(", ") + ". An unanswered question counts as wrong." : "Every question is answered." }));
        if (flagged.length) dialog.appendChild(el("p", { text: "Flagged for review: " + flagged.join(", ") + "." }));
        var yes = el("button", { type: "button", class: "md-button md-button--primary quiz-confirm__yes", text: "Hand in now", onclick: function () { finish(false); } });
        var no = el("button", { type: "button", class: "md-button quiz-confirm__no", text: "Go back to the exam", onclick: function () {
          dialog.hidden = true; handIn.focus(); } });
        var firstMissing = missing.length ? el("button", { type: "button", class: "md-button quiz-confirm__goto", text: "Go to question " + missing[0], onclick: function () {
          dialog.hidden = true; go(missing[0] - 1, true); } }) : null;
        dialog.appendChild(el("div", { class: "quiz-q__actions" }, [yes, firstMissing, no]));
        dialog.hidden = false;
        dialog.addEventListener("keydown", function (ev) { if (ev.key === "Escape") { dialog.hidden = true; handIn.focus(); } });
        (firstMissing || yes).focus();
      });
      root.appendChild(el("div", { class: "quiz-exam-bar" }, [timer, counter]));
      root.appendChild(nav);
      root.appendChild(stage);
      root.appendChild(el("div", { class: "quiz-q__actions quiz-exam-actions" }, [prev, flagBtn, next, handIn]));
      root.appendChild(dialog);
      root.appendChild(live);
      root.scrollIntoView({ block: "start" });
      var warned = false, done = false;
      function tick() {
        var left = (run.deadline - Date.now()) / 1000;
        timer.textContent = "Time left " + clock(left);
        if (!warned && left <= 300 && size.seconds > 300) { warned = true; live.textContent = "Five minutes left."; }
        if (left <= 0) finish(true);
      }
      var interval = window.setInterval(tick, 1000);
      tick();
      if (!done) go(run.current || 0, false);

      function finish(timeUp) {
        if (done) return;
        done = true;
        window.clearInterval(interval);
        var store = loadStore();
        var right = 0, missed = [];
        run.ids.forEach(function (id) {
          var r = run.responses[id];
          var ok = judge(byId[id], r);
          right += ok ? 1 : 0;
          if (!ok) missed.push(id);
          if (answered(byId[id], r)) record(store, id, ok); // an exam answer is an answer (unanswered ones are not)
        });
        var x = { taken_at: now(), score: size.scaled[right], passed: size.passed[right], right: right, total: run.ids.length, missed: missed,
          ids: run.ids, orders: run.orders, responses: run.responses, time_up: !!timeUp };
        store.exams.push(x);
        store.exams = store.exams.slice(-50);
        saveStore(store);
        saveRun(null);
        result(x, true);
      }
    }

    function result(x, fresh) {
      root.innerHTML = "";
      var qs = x.ids.map(function (id) { return byId[id]; }).filter(Boolean);
      var res = {};
      qs.forEach(function (q) { res[q.id] = judge(q, x.responses[q.id]) ? 1 : 0; });
      var head = el("h2", { class: "quiz-result__title", id: "quiz-result", tabindex: "-1",
        text: (x.time_up && fresh ? "Time is up. " : "") + "Your score: " + x.score + " (" + (x.passed ? "passed" : "not passed") + ")" });
      var box = el("section", { class: "quiz-result admonition " + (x.passed ? "success" : "warning"), "aria-labelledby": "quiz-result" }, [
        head,
        el("p", { class: "quiz-result__line", text: x.right + " of " + x.total + " right (" + pct(x.right, x.total) + "), taken " + when(x.taken_at) +
          ". On LPI's scale of " + plan.scale.min + " to " + plan.scale.max + " a score of " + plan.scale.pass + " passes; the course maps your right answers to it as quizzes/exam.py does." }),
      ]);
      root.appendChild(box);
      // weakest objectives and areas
      var groups = [];
      Object.keys(bank.objectives).forEach(function (id) {
        var o = bank.objectives[id];
        groups.push({ label: (o.source === "lesson" ? "Lesson objective " + id.split("-").pop() : id) + ": " + o.title, href: "quiz/index.html#objective=" + id,
          qs: qs.filter(function (q) { return q.objectives.indexOf(id) >= 0; }) });
      });
      Object.keys(bank.areas).forEach(function (id) {
        groups.push({ label: bank.areas[id].title, href: "quiz/index.html#area=" + id, qs: qs.filter(function (q) { return q.area === id; }) });
      });
      groups = groups.filter(function (g) { return g.qs.length; }).map(function (g) {
        var r = g.qs.filter(function (q) { return res[q.id]; }).length;
        return { label: g.label, href: g.href, right: r, total: g.qs.length, frac: r / g.qs.length };
      });
      var weakest = groups.filter(function (g) { return g.right < g.total; }).sort(function (a, b) { return a.frac - b.frac || b.total - a.total; }).slice(0, 3);
      box.appendChild(el("h3", { id: "quiz-weakest", text: weakest.length ? "Your weakest objectives and areas" : "No weak spot in this exam" }));
      if (weakest.length) {
        box.appendChild(el("ol", { class: "quiz-weakest" }, weakest.map(function (g) {
          return el("li", {}, [el("strong", { text: g.label }), ": " + g.right + " of " + g.total + " right. ", el("a", { href: ROOT + g.href, text: "Practise these questions" })]);
        })));
      }
      var rows = [el("tr", {}, [el("th", { scope: "col", text: "objective or area" }), el("th", { scope: "col", text: "right / asked" }), el("th", { scope: "col", text: "score" })])];
      groups.forEach(function (g) { rows.push(el("tr", {}, [el("td", { text: g.label }), el("td", { text: g.right + " / " + g.total }), el("td", { text: pct(g.right, g.total) })])); });
      box.appendChild(el("div", { class: "md-typeset__scrollwrap" }, [el("table", { class: "quiz-table" }, [el("tbody", {}, rows)])]));
      // the missed questions, each with where to learn it
      var missed = qs.filter(function (q) { return !res[q.id]; });
      root.appendChild(el("h3", { id: "quiz-missed", text: missed.length ? "The " + missed.length + " question(s) you missed, and where to learn them" : "You missed no question" }));
      if (missed.length) {
        root.appendChild(el("ol", { class: "quiz-missed" }, missed.map(function (q) {
          var i = x.ids.indexOf(q.id);
          var given = x.responses[q.id];
          var order = (x.orders || {})[q.id] || (q.choices || []).map(function (c) { return c.key; });
          function shown(k) { return LETTERS[order.indexOf(k)]; }
          var givenText = !answered(q, given) ? "not answered" : q.type === "fill" ? given : given.map(shown).sort().join(", ");
          var rightText = q.type === "fill" ? q.answers[0] : correctKeys(q).map(shown).sort().join(", ");
          return el("li", { class: "quiz-missed__item", "data-qid": q.id }, [
            el("div", { class: "quiz-missed__prompt", html: "<strong>Question " + (i + 1) + ".</strong> " + q.prompt_html }),
            el("p", {}, ["Your answer: ", el("code", { text: givenText }), " · the answer: ", el("code", { text: rightText })]),
            el("p", { class: "quiz-refs" }, ["Learn it here: "].concat(linksOf(q.id).reduce(function (acc, a, k) { if (k) acc.push(" · "); acc.push(a); return acc; }, []))),
          ]);
        })));
      }
      var all = el("details", { class: "quiz-all" }, [el("summary", { text: "Every question of this exam with your answer and the explanation" })]);
      x.ids.forEach(function (id, i) {
        var q = byId[id];
        if (!q) return;
        var card = new QuestionCard(bank, q, { number: i + 1, total: x.ids.length, mode: "exam", order: (x.orders || {})[id], idSuffix: "-review",
          meta: q.objectives.join(", ") + " · " + ((bank.areas[q.area] || {}).title || q.area) });
        card.show(!!res[id], x.responses[id] === undefined ? (q.type === "fill" ? "" : []) : x.responses[id]);
        all.appendChild(card.node);
      });
      root.appendChild(all);
      root.appendChild(el("div", { class: "quiz-q__actions" }, [
        el("button", { type: "button", class: "md-button md-button--primary quiz-again", text: fresh ? "Take another exam" : "Back to the exams", onclick: function () { start(); } })]));
      root.appendChild(live);
      head.focus();
      head.scrollIntoView({ block: "start" });
    }

    var running = loadRun();
    if (running && running.ids && sizeOf(running.n) && running.ids.every(function (id) { return byId[id]; })) {
      sit(running);
      live.textContent = "Your exam was resumed where you left it.";
      root.insertBefore(el("p", { class: "quiz-notice quiz-resumed", text: "Resumed: your running exam was kept in this browser, with its answers and flags. The clock kept running." }), root.firstChild);
    } else {
      if (running) saveRun(null);
      start();
    }
  }

  // --- start -------------------------------------------------------------------------------------------------------------
  function load(src, test, cb) {
    if (test()) return cb(true);
    var s = document.createElement("script");
    s.src = BASE + src;
    s.onload = function () { cb(test()); };
    s.onerror = function () { cb(false); };
    document.head.appendChild(s);
  }
  function init() {
    var roots = document.querySelectorAll(".quiz-app");
    if (!roots.length) return;
    load("quiz-bank.js", function () { return !!window.QUIZ_BANK; }, function () {
      load("quiz-links.js", function () { return !!window.QUIZ_LINKS; }, function () {
        var bank = window.QUIZ_BANK;
        roots.forEach(function (root) {
          if (!bank || !bank.questions) {
            root.textContent = "The question bank could not be loaded (assets/quiz-bank.js).";
            return;
          }
          var mode = root.getAttribute("data-mode");
          if (mode === "exam") exam(root, bank);
          else if (mode === "lesson") practice(root, bank, (root.getAttribute("data-ids") || "").split(/\s+/).filter(Boolean));
          else practice(root, bank, null);
          root.setAttribute("data-ready", "true");
        });
      });
    });
  }
  window.CourseQuiz = { judge: judge, pick: pick, exportFile: exportFile, importFile: importFile, due: due, storeKey: STORE_KEY, runKey: RUN_KEY };
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
