// Theming demo: rebuilds the <klartext-chat> element whenever an option changes.
(() => {
  const form = document.getElementById("options");
  const snippet = document.getElementById("snippet");
  const last = document.getElementById("last-event");
  const EVENTS = ["open", "close", "message", "answer", "handoff", "feedback", "connection", "newconversation"];

  function attrs() {
    const out = [["data-klartext-url", ""]];
    for (const el of form.elements) {
      if (!el.name) continue;
      if (el.type === "checkbox") { if (el.checked) out.push(["data-" + el.name, el.value]); continue; }
      if (el.value.trim()) out.push(["data-" + el.name, el.value.trim()]);
    }
    return out;
  }

  function rebuild(open) {
    const old = document.querySelector("klartext-chat");
    const wasOpen = old ? old.shadowRoot.querySelector(".root.open") !== null : open;
    if (old) old.remove();
    const el = document.createElement("klartext-chat");
    for (const [k, v] of attrs()) el.setAttribute(k, v);
    if (wasOpen) el.setAttribute("data-open", "true");
    for (const name of EVENTS) {
      el.addEventListener("klartext:" + name, (e) => {
        last.textContent = "klartext:" + name + " " + JSON.stringify(e.detail).slice(0, 120);
      });
    }
    document.body.appendChild(el);
    const tag = ['<script src="' + location.origin + '/widget.js"'];
    for (const [k, v] of attrs()) {
      tag.push("  " + k + '="' + (k === "data-klartext-url" ? location.origin : v.replace(/"/g, "&quot;").replace(/\n/g, " ")) + '"');
    }
    snippet.textContent = tag.join("\n") + "\n  async></" + "script>";
  }

  form.addEventListener("change", () => rebuild(false));
  for (const b of document.querySelectorAll(".sw")) {
    b.addEventListener("click", () => { form.elements["primary-color"].value = b.dataset.color; rebuild(false); });
  }
  customElements.whenDefined("klartext-chat").then(() => rebuild(false));
})();
