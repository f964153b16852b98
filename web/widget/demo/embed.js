// Loads the widget from the "other" loopback origin (localhost <-> 127.0.0.1), like a customer
// site embedding https://support.example.com/widget.js.
(() => {
  const other = location.hostname === "localhost" ? "127.0.0.1" : "localhost";
  const base = location.protocol + "//" + other + (location.port ? ":" + location.port : "");
  const s = document.createElement("script");
  s.src = base + "/widget.js";
  s.async = true;
  s.dataset.klartextUrl = base;
  s.dataset.primaryColor = "#b5562f";
  document.body.appendChild(s);
})();
