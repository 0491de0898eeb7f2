// Applies the saved theme before the first paint (no flash). "auto" follows the system.
(function () {
  try {
    var t = localStorage.getItem("paperradar-theme");
    if (t === "light" || t === "dark") document.documentElement.dataset.theme = t;
  } catch (e) { /* storage blocked: follow the system */ }
})();
