// paperradar: theme toggle and keyboard shortcuts. The pages work without it.
(function () {
  "use strict";
  var root = document.documentElement;
  var KEY = "paperradar-theme";

  function systemDark() {
    return window.matchMedia && window.matchMedia("(prefers-color-scheme: dark)").matches;
  }
  function current() {
    return root.dataset.theme || (systemDark() ? "dark" : "light");
  }
  function label(btn) {
    var next = current() === "dark" ? "light" : "dark";
    btn.setAttribute("aria-label", "Switch to " + next + " theme");
    btn.setAttribute("aria-pressed", current() === "dark" ? "true" : "false");
  }
  var toggle = document.getElementById("theme-toggle");
  if (toggle) {
    label(toggle);
    toggle.addEventListener("click", function () {
      var next = current() === "dark" ? "light" : "dark";
      // Back to "follow the system" when the choice equals what the system says.
      if ((next === "dark") === systemDark()) {
        delete root.dataset.theme;
        try { localStorage.removeItem(KEY); } catch (e) { /* ignore */ }
      } else {
        root.dataset.theme = next;
        try { localStorage.setItem(KEY, next); } catch (e) { /* ignore */ }
      }
      label(toggle);
    });
  }

  // Parts of a page that are loaded after it ("Similar papers"): same-origin HTML fragments.
  var lazy = document.querySelectorAll("[data-load]");
  for (var l = 0; l < lazy.length; l++) {
    (function (box) {
      fetch(box.getAttribute("data-load"), { headers: { Accept: "text/html" } })
        .then(function (r) { return r.ok ? r.text() : Promise.reject(r.status); })
        .then(function (html) { box.innerHTML = html; })
        .catch(function () { /* the link stays */ });
    })(lazy[l]);
  }

  function typing(el) {
    if (!el) return false;
    var tag = el.tagName;
    return tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT" || el.isContentEditable;
  }
  var index = -1;
  function move(step) {
    var cards = document.querySelectorAll("main .card");
    if (!cards.length) return;
    var active = document.activeElement && document.activeElement.closest
      ? document.activeElement.closest(".card") : null;
    var at = active ? Array.prototype.indexOf.call(cards, active) : index;
    index = Math.max(0, Math.min(cards.length - 1, at + step));
    var card = cards[index];
    for (var i = 0; i < cards.length; i++) cards[i].classList.remove("current");
    card.classList.add("current");
    card.scrollIntoView({ block: "nearest" });
    var link = card.querySelector(".title a");
    (link || card).focus({ preventScroll: true });
  }
  document.addEventListener("keydown", function (ev) {
    if (ev.ctrlKey || ev.metaKey || ev.altKey || typing(ev.target)) return;
    if (ev.key === "/") {
      var q = document.getElementById("q");
      if (q) { ev.preventDefault(); q.focus(); q.select(); }
    } else if (ev.key === "j") {
      move(1);
    } else if (ev.key === "k") {
      move(-1);
    }
  });
})();
