/* Small fixes to Material's pages for keyboard and screen-reader users:
 * - a code block that scrolls sideways takes keyboard focus, so it can be scrolled without a mouse;
 * - the numbered buttons of code annotations get a name ("Annotation 1"). */
(function () {
  "use strict";
  function fix() {
    document.querySelectorAll(".md-typeset pre > code, .md-typeset .highlight > pre, .md-typeset .highlight-ipynb pre, .jp-OutputArea-output pre").forEach(function (el) {
      if (el.scrollWidth > el.clientWidth + 1 && !el.hasAttribute("tabindex")) {
        el.setAttribute("tabindex", "0");
        if (!el.hasAttribute("aria-label")) el.setAttribute("aria-label", "Code, scrolls sideways");
      }
    });
    document.querySelectorAll(".md-annotation__index").forEach(function (a) {
      if (!a.getAttribute("aria-label")) {
        var n = (a.textContent || "").trim() || a.getAttribute("data-md-annotation-id") || "";
        a.setAttribute("aria-label", "Annotation " + n);
      }
    });
  }
  var pending = null;
  function later() { if (pending) return; pending = setTimeout(function () { pending = null; fix(); }, 50); }
  function start() {
    fix();
    new MutationObserver(later).observe(document.body, { childList: true, subtree: true });
    window.addEventListener("resize", later);
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
