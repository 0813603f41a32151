/* Practice questions and exam simulation for the course site.
 *
 * The questions come from the course's one question bank (quizzes/bank/*.yaml). At build time the mkdocs
 * hook (scripts/gen_site/hooks.py) writes it as assets/quiz-bank.js (window.QUIZ_BANK = {...}) in the shape
 * of quizzes.bank.to_json(), plus pre-rendered *_html fields. A <script> is used rather than fetch() so
 * that the site also works when opened from files.
 *
 * Judging follows quizzes/judge.py, as the exam does: all or nothing. Single choice: the one right letter.
 * Multiple choice: exactly the right set. Fill-in: trimmed at both ends, then equal to one of the accepted
 * answers, case-sensitive unless the question says case_sensitive: false.
 *
 * Progress lives in localStorage under one key; nothing leaves the browser. No dependencies.
 */
(function () {
  "use strict";

  var SCRIPT = document.currentScript;
  var BASE = SCRIPT && SCRIPT.src ? SCRIPT.src.replace(/quiz\.js(\?.*)?$/, "") : "assets/";
  var STORE_KEY = "postfix-tls-lab:quiz:v1";
  var SECONDS_PER_QUESTION = 90; // 202-450: 60 questions in 90 minutes
  var READY_MARK = 0.8; // the course's advice, not an LPI rule

  // --- storage -----------------------------------------------------------------------------------------
  function loadStore() {
    try {
      var s = JSON.parse(window.localStorage.getItem(STORE_KEY) || "{}");
      s.answers = s.answers || {};
      s.exams = s.exams || [];
      return s;
    } catch (e) {
      return { answers: {}, exams: [] };
    }
  }
  function saveStore(s) {
    try {
      window.localStorage.setItem(STORE_KEY, JSON.stringify(s));
    } catch (e) {
      /* private mode or storage full: the quiz still works, it only forgets */
    }
  }

  // --- judging (keep in step with quizzes/judge.py) -----------------------------------------------------
  function correctKeys(q) {
    return q.choices.filter(function (c) { return c.correct; }).map(function (c) { return c.key; });
  }
  function canonical(q) {
    return q.type === "fill" ? q.answers[0] : correctKeys(q).join(", ");
  }
  function judge(q, response) {
    if (q.type === "fill") {
      var given = (response || "").trim();
      if (!given) return false;
      if (q.case_sensitive !== false) return q.answers.indexOf(given) >= 0;
      var low = given.toLowerCase();
      return q.answers.some(function (a) { return a.toLowerCase() === low; });
    }
    var chosen = (response || []).slice().sort();
    var right = correctKeys(q).slice().sort();
    if (q.type === "single" && chosen.length !== 1) return false;
    return chosen.length === right.length && chosen.every(function (k, i) { return k === right[i]; });
  }

  // --- small DOM helpers ----------------------------------------------------------------------------------
  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === "html") node.innerHTML = attrs[k];
      else if (k === "text") node.textContent = attrs[k];
      else if (k === "class") node.className = attrs[k];
      else if (k.indexOf("on") === 0) node.addEventListener(k.slice(2), attrs[k]);
      else node.setAttribute(k, attrs[k]);
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
  var TYPE_LABEL = { single: "single choice", multiple: "multiple choice", fill: "fill in the blank" };

  // --- one question card -------------------------------------------------------------------------------------
  /* opts: {number, mode: "practice"|"exam", onAnswer(q, response, ok), stored} */
  function QuestionCard(bank, q, opts) {
    var self = this;
    this.q = q;
    var name = "q-" + opts.mode + "-" + q.id;
    var inputs = [];
    var body = el("div", { class: "quiz-q__body" });
    if (q.type === "fill") {
      var input = el("input", {
        type: "text", class: "quiz-fill", name: name, autocomplete: "off", autocapitalize: "off",
        spellcheck: "false", "aria-label": "Your answer",
      });
      input.addEventListener("keydown", function (ev) {
        if (ev.key === "Enter" && opts.mode === "practice") { ev.preventDefault(); self.check(); }
      });
      inputs.push(input);
      body.appendChild(input);
    } else {
      var list = el("ul", { class: "quiz-choices" });
      q.choices.forEach(function (c) {
        var box = el("input", { type: q.type === "single" ? "radio" : "checkbox", name: name, value: c.key });
        inputs.push(box);
        list.appendChild(el("li", { class: "quiz-choice", "data-key": c.key }, [
          el("label", {}, [box, el("span", { class: "quiz-choice__key", text: c.key + "." }),
            el("span", { class: "quiz-choice__text", html: c.text_html })]),
          el("div", { class: "quiz-choice__why", hidden: "hidden", html: c.why_html || "" }),
        ]));
      });
      body.appendChild(list);
    }
    var feedback = el("div", { class: "quiz-feedback", role: "status", "aria-live": "polite", hidden: "hidden" });
    var checkBtn = el("button", { type: "button", class: "md-button md-button--primary quiz-check", text: "Check", onclick: function () { self.check(); } });
    var retryBtn = el("button", { type: "button", class: "md-button quiz-retry", text: "Try again", hidden: "hidden", onclick: function () { self.reset(); } });
    var objectives = q.objectives.map(function (o) { return o; }).join(", ");
    var area = (bank.areas[q.area] || {}).title || q.area;
    this.node = el("article", { class: "quiz-q", id: "q-" + q.id, "data-qid": q.id, "data-type": q.type }, [
      el("header", { class: "quiz-q__head" }, [
        el("span", { class: "quiz-q__num", text: "Question " + opts.number }),
        el("span", { class: "quiz-q__meta", text: TYPE_LABEL[q.type] + " · " + objectives + " · " + area }),
      ]),
      el("div", { class: "quiz-q__prompt", html: q.prompt_html }),
      body,
      opts.mode === "practice" ? el("div", { class: "quiz-q__actions" }, [checkBtn, retryBtn]) : null,
      feedback,
    ]);

    this.response = function () {
      if (q.type === "fill") return inputs[0].value;
      return inputs.filter(function (i) { return i.checked; }).map(function (i) { return i.value; });
    };
    this.setResponse = function (r) {
      if (q.type === "fill") inputs[0].value = r || "";
      else inputs.forEach(function (i) { i.checked = (r || []).indexOf(i.value) >= 0; });
    };
    this.lock = function (locked) { inputs.forEach(function (i) { i.disabled = locked; }); };
    this.show = function (ok) {
      self.node.classList.toggle("quiz-q--right", ok);
      self.node.classList.toggle("quiz-q--wrong", !ok);
      var given = self.response();
      var unanswered = q.type === "fill" ? !String(given).trim() : given.length === 0;
      feedback.hidden = false;
      feedback.className = "quiz-feedback " + (ok ? "quiz-feedback--right" : unanswered ? "quiz-feedback--wrong quiz-feedback--unanswered" : "quiz-feedback--wrong");
      feedback.innerHTML = "";
      feedback.appendChild(el("p", { class: "quiz-verdict", text: ok ? "✔ Correct." : unanswered ? "✘ Not answered." : "✘ Incorrect." }));
      if (!ok) {
        feedback.appendChild(el("p", { class: "quiz-expected" }, [
          "The answer: ", el("code", { text: canonical(q) }),
          q.type === "fill" && q.answers.length > 1 ? " (also accepted: " + q.answers.slice(1).join(", ") + ")" : "",
        ]));
      }
      if (q.explanation_html) feedback.appendChild(el("div", { class: "quiz-explanation", html: q.explanation_html }));
      if (q.references && q.references.length) {
        feedback.appendChild(el("p", { class: "quiz-refs", text: "See: " + q.references.join("; ") }));
      }
      if (q.type !== "fill") {
        self.node.querySelectorAll(".quiz-choice").forEach(function (li) {
          var c = q.choices.filter(function (x) { return x.key === li.getAttribute("data-key"); })[0];
          li.classList.toggle("quiz-choice--correct", c.correct);
          li.classList.toggle("quiz-choice--chosen", given.indexOf(c.key) >= 0);
          var why = li.querySelector(".quiz-choice__why");
          why.hidden = !c.why_html;
        });
      }
      self.lock(true);
      checkBtn.hidden = true;
      retryBtn.hidden = opts.mode !== "practice";
    };
    this.reset = function () {
      self.node.classList.remove("quiz-q--right", "quiz-q--wrong");
      feedback.hidden = true;
      self.node.querySelectorAll(".quiz-choice").forEach(function (li) {
        li.classList.remove("quiz-choice--correct", "quiz-choice--chosen");
        li.querySelector(".quiz-choice__why").hidden = true;
      });
      self.lock(false);
      self.setResponse(q.type === "fill" ? "" : []);
      checkBtn.hidden = false;
      retryBtn.hidden = true;
      if (inputs[0]) inputs[0].focus();
    };
    this.check = function () {
      var r = self.response();
      var empty = q.type === "fill" ? !String(r).trim() : r.length === 0;
      if (empty) {
        feedback.hidden = false;
        feedback.className = "quiz-feedback quiz-feedback--hint";
        feedback.textContent = q.type === "fill" ? "Type an answer first." : "Choose an answer first.";
        return;
      }
      var ok = judge(q, r);
      self.show(ok);
      if (opts.onAnswer) opts.onAnswer(q, r, ok);
    };
    if (opts.stored) {
      self.setResponse(opts.stored.given);
      self.show(opts.stored.correct);
    }
  }

  // --- practice -------------------------------------------------------------------------------------------------
  function practice(root, bank) {
    var store = loadStore();
    var select = el("select", { class: "quiz-filter", "aria-label": "Questions to practise" });
    select.appendChild(el("option", { value: "", text: "All questions (" + bank.questions.length + ")" }));
    var groupO = el("optgroup", { label: "By objective" });
    Object.keys(bank.objectives).forEach(function (id) {
      var n = bank.questions.filter(function (q) { return q.objectives.indexOf(id) >= 0; }).length;
      groupO.appendChild(el("option", { value: "objective=" + id, text: id + ": " + bank.objectives[id].title + " (" + n + ")" }));
    });
    var groupA = el("optgroup", { label: "By topic area" });
    Object.keys(bank.areas).forEach(function (id) {
      var n = bank.questions.filter(function (q) { return q.area === id; }).length;
      groupA.appendChild(el("option", { value: "area=" + id, text: bank.areas[id].title + " (" + n + ")" }));
    });
    select.appendChild(groupO);
    select.appendChild(groupA);
    var score = el("p", { class: "quiz-score", "aria-live": "polite" });
    var table = el("div", { class: "quiz-progress" });
    var list = el("div", { class: "quiz-list" });
    var resetBtn = el("button", {
      type: "button", class: "md-button quiz-reset", text: "Forget my answers",
      onclick: function () {
        if (!window.confirm("Forget every practice answer stored in this browser?")) return;
        store.answers = {};
        saveStore(store);
        render();
      },
    });
    root.innerHTML = "";
    root.appendChild(el("div", { class: "quiz-toolbar" }, [el("label", {}, ["Practise: ", select]), resetBtn]));
    root.appendChild(score);
    root.appendChild(list);
    root.appendChild(el("details", { class: "quiz-progress-box" }, [el("summary", { text: "Your progress by objective and area" }), table]));

    function filterFn() {
      var v = select.value;
      if (!v) return function () { return true; };
      var kv = v.split("=");
      return kv[0] === "objective" ? function (q) { return q.objectives.indexOf(kv[1]) >= 0; } : function (q) { return q.area === kv[1]; };
    }
    function updateScore() {
      var qs = bank.questions.filter(filterFn());
      var answered = qs.filter(function (q) { return store.answers[q.id]; });
      var right = answered.filter(function (q) { return store.answers[q.id].correct; });
      score.setAttribute("data-correct", right.length);
      score.setAttribute("data-answered", answered.length);
      score.setAttribute("data-total", qs.length);
      score.innerHTML = "";
      score.appendChild(el("strong", { class: "quiz-score__value", text: "Score: " + right.length + " / " + answered.length }));
      score.appendChild(document.createTextNode(
        " correct of the questions you answered (" + answered.length + " of " + qs.length + " answered, " + pct(right.length, answered.length) + ")."));
      table.innerHTML = "";
      table.appendChild(progressTable(bank, function (q) {
        var a = store.answers[q.id];
        return a ? (a.correct ? 1 : 0) : null;
      }));
    }
    function render() {
      list.innerHTML = "";
      var qs = bank.questions.filter(filterFn());
      qs.forEach(function (q, i) {
        var card = new QuestionCard(bank, q, {
          number: i + 1, mode: "practice", stored: store.answers[q.id],
          onAnswer: function (qq, r, ok) {
            var prev = store.answers[qq.id];
            store.answers[qq.id] = { correct: ok, given: r, tries: (prev ? prev.tries || 1 : 0) + 1, at: Date.now() };
            saveStore(store);
            updateScore();
          },
        });
        list.appendChild(card.node);
      });
      if (!qs.length) list.appendChild(el("p", { text: "No questions for this choice yet." }));
      updateScore();
    }
    select.addEventListener("change", function () {
      if (window.history && window.history.replaceState) window.history.replaceState(null, "", select.value ? "#" + select.value : "#");
      render();
    });
    var hash = decodeURIComponent(window.location.hash.replace(/^#/, ""));
    if (hash && select.querySelector('option[value="' + hash.replace(/"/g, "") + '"]')) select.value = hash;
    render();
  }

  /* A table of results per objective and per area. result(q) gives 1 (right), 0 (wrong) or null (not asked). */
  function progressTable(bank, result, only) {
    function row(label, qs) {
      var asked = qs.filter(function (q) { return result(q) !== null; });
      var right = asked.filter(function (q) { return result(q) === 1; });
      if (only && !asked.length) return null;
      return el("tr", {}, [el("td", { html: label }), el("td", { text: right.length + " / " + asked.length }),
        el("td", { text: pct(right.length, asked.length) }), only ? null : el("td", { text: String(qs.length) })]);
    }
    var head = el("tr", {}, [el("th", { text: "objective or area" }), el("th", { text: "right / answered" }), el("th", { text: "score" }),
      only ? null : el("th", { text: "in the bank" })]);
    var rows = [head];
    Object.keys(bank.objectives).forEach(function (id) {
      rows.push(row("<strong>" + id + "</strong> " + bank.objectives[id].title,
        bank.questions.filter(function (q) { return q.objectives.indexOf(id) >= 0; })));
    });
    Object.keys(bank.areas).forEach(function (id) {
      rows.push(row("Area: " + bank.areas[id].title, bank.questions.filter(function (q) { return q.area === id; })));
    });
    return el("table", { class: "quiz-table" }, [el("tbody", {}, rows)]);
  }

  // --- exam simulation ----------------------------------------------------------------------------------------------
  /* Draw n questions, each area getting a share proportional to its weight (largest remainder), as far as
     the bank has questions in it; what an area cannot fill goes to the others. */
  function draw(bank, n) {
    var pools = {};
    bank.questions.forEach(function (q) { (pools[q.area] = pools[q.area] || []).push(q); });
    Object.keys(pools).forEach(function (a) { shuffle(pools[a]); });
    var quota = {};
    var left = Math.min(n, bank.questions.length);
    while (left > 0) {
      var open = Object.keys(pools).filter(function (a) { return (quota[a] || 0) < pools[a].length; });
      var weight = open.reduce(function (s, a) { return s + ((bank.areas[a] || {}).weight || 1); }, 0);
      var shares = open.map(function (a) {
        var exact = (left * ((bank.areas[a] || {}).weight || 1)) / weight;
        return { a: a, whole: Math.floor(exact), frac: exact - Math.floor(exact) };
      });
      var given = 0;
      shares.forEach(function (s) {
        var room = pools[s.a].length - (quota[s.a] || 0);
        var take = Math.min(s.whole, room);
        quota[s.a] = (quota[s.a] || 0) + take;
        given += take;
      });
      if (given === 0) { // hand out the remainders, biggest first
        shares.sort(function (x, y) { return y.frac - x.frac; });
        for (var i = 0; i < shares.length && given < left; i++) {
          if ((quota[shares[i].a] || 0) < pools[shares[i].a].length) { quota[shares[i].a] = (quota[shares[i].a] || 0) + 1; given++; }
        }
      }
      left -= given;
    }
    var out = [];
    Object.keys(quota).forEach(function (a) { out = out.concat(pools[a].slice(0, quota[a])); });
    return shuffle(out);
  }

  function exam(root, bank) {
    var store = loadStore();
    var total = bank.questions.length;
    function start() {
      root.innerHTML = "";
      var sizes = [10, 20, 30, 60].filter(function (s) { return s < total; }).concat([total]);
      var sizeSel = el("select", { class: "quiz-exam-size", "aria-label": "Number of questions" });
      sizes.forEach(function (s) {
        sizeSel.appendChild(el("option", { value: String(s), text: s + " questions, " + Math.round((s * SECONDS_PER_QUESTION) / 60) + " minutes" + (s === total ? " (the whole bank)" : "") }));
      });
      sizeSel.value = String(sizes.indexOf(20) >= 0 ? 20 : sizes[sizes.length - 1]);
      root.appendChild(el("div", { class: "quiz-toolbar" }, [
        el("label", {}, ["Exam: ", sizeSel]),
        el("button", { type: "button", class: "md-button md-button--primary quiz-start", text: "Start the exam", onclick: function () { run(parseInt(sizeSel.value, 10)); } }),
      ]));
      if (store.exams.length) {
        var rows = [el("tr", {}, [el("th", { text: "date" }), el("th", { text: "score" }), el("th", { text: "questions" })])];
        store.exams.slice(-10).reverse().forEach(function (x) {
          rows.push(el("tr", {}, [el("td", { text: new Date(x.at).toLocaleString() }), el("td", { text: x.right + " / " + x.total + " (" + pct(x.right, x.total) + ")" }), el("td", { text: String(x.total) })]));
        });
        root.appendChild(el("h3", { text: "Your last exams in this browser" }));
        root.appendChild(el("table", { class: "quiz-table quiz-history" }, [el("tbody", {}, rows)]));
      }
    }
    function run(n) {
      var qs = draw(bank, n);
      var cards = [];
      var deadline = Date.now() + qs.length * SECONDS_PER_QUESTION * 1000;
      var timer = el("p", { class: "quiz-timer", "aria-live": "off" });
      var list = el("div", { class: "quiz-list" });
      var handIn = el("button", { type: "button", class: "md-button md-button--primary quiz-handin", text: "Hand in", onclick: function () { finish(false); } });
      root.innerHTML = "";
      root.appendChild(timer);
      root.appendChild(list);
      root.appendChild(handIn);
      qs.forEach(function (q, i) {
        var card = new QuestionCard(bank, q, { number: i + 1, mode: "exam" });
        cards.push(card);
        list.appendChild(card.node);
      });
      var tick = window.setInterval(function () {
        var left = Math.max(0, Math.round((deadline - Date.now()) / 1000));
        timer.textContent = "Time left: " + Math.floor(left / 60) + ":" + String(left % 60).padStart(2, "0") + " · " + qs.length + " questions";
        if (left === 0) finish(true);
      }, 1000);
      timer.textContent = "Time left: " + Math.round((qs.length * SECONDS_PER_QUESTION) / 60) + ":00 · " + qs.length + " questions";
      var done = false;
      function finish(timeUp) {
        if (done) return;
        done = true;
        window.clearInterval(tick);
        var results = {};
        var right = 0;
        cards.forEach(function (c) {
          var ok = judge(c.q, c.response());
          results[c.q.id] = ok ? 1 : 0;
          right += ok ? 1 : 0;
          c.show(ok);
        });
        handIn.remove();
        store.exams.push({ at: Date.now(), right: right, total: qs.length, results: results });
        store.exams = store.exams.slice(-50);
        saveStore(store);
        var ready = right / qs.length >= READY_MARK;
        var summary = el("div", { class: "quiz-result admonition " + (ready ? "success" : "warning") }, [
          el("p", { class: "admonition-title", text: (timeUp ? "Time is up. " : "") + "Your score: " + right + " / " + qs.length + " (" + pct(right, qs.length) + ")" }),
          el("p", { text: ready ? "At or above the course's 80% mark: you are ready for the 211.1 TLS questions." : "Below the course's 80% mark: read the explanations below, then practise the weakest objective." }),
          progressTable(bank, function (q) { return q.id in results ? results[q.id] : null; }, true),
          el("button", { type: "button", class: "md-button quiz-again", text: "Take another exam", onclick: start }),
        ]);
        timer.replaceWith(summary);
        summary.scrollIntoView();
      }
    }
    start();
  }

  // --- start -------------------------------------------------------------------------------------------------------------
  function withBank(cb) {
    if (window.QUIZ_BANK) return cb(window.QUIZ_BANK);
    var s = document.createElement("script");
    s.src = BASE + "quiz-bank.js";
    s.onload = function () { cb(window.QUIZ_BANK); };
    s.onerror = function () { cb(null); };
    document.head.appendChild(s);
  }
  function init() {
    var roots = document.querySelectorAll(".quiz-app");
    if (!roots.length) return;
    withBank(function (bank) {
      roots.forEach(function (root) {
        if (!bank || !bank.questions) {
          root.textContent = "The question bank could not be loaded (assets/quiz-bank.js).";
          return;
        }
        if (root.getAttribute("data-mode") === "exam") exam(root, bank);
        else practice(root, bank);
        root.setAttribute("data-ready", "true");
      });
    });
  }
  window.CourseQuiz = { judge: judge, draw: draw };
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
