/*! Klartext chat widget v1 — MIT. Plain modern JavaScript, no build step.
 *
 * Embed:  <script src="https://HOST/widget.js" data-klartext-url="https://HOST" async></script>
 * Docs:   docs/widget.md (data-* attributes, CSS custom properties, strings, events).
 *
 * Security notes: every piece of user/bot/agent text reaches the DOM through textContent or
 * createTextNode (the Markdown renderer builds elements with DOM APIs, never innerHTML); link
 * targets are limited to http(s), mailto and relative URLs. Styles live in a constructable
 * stylesheet adopted by the shadow root, so the widget works under `style-src 'self'`.
 */
(() => {
  "use strict";
  const VERSION = "1.0.0";
  const TAG = "klartext-chat";
  if (customElements.get(TAG)) return;
  const SCRIPT = document.currentScript;

  // ------------------------------------------------------------------ strings (i18n)
  const STRINGS = {
    en: {
      title: "Customer support",
      welcome: "Hi! I'm {bot}, the virtual assistant. Ask me anything about orders, delivery, returns or payment.",
      launcher_open: "Open chat",
      launcher_close: "Close chat",
      close: "Close",
      new_conversation: "New conversation",
      new_conversation_done: "New conversation started.",
      placeholder: "Type your question…",
      send: "Send",
      composer_label: "Your message",
      messages_label: "Conversation",
      talk_to_human: "Talk to a human",
      powered_by: "Powered by Klartext",
      you: "You",
      agent: "Support team",
      typing: "{bot} is typing…",
      sources: "Sources",
      suggestions: "Suggested questions",
      helpful: "Helpful",
      not_helpful: "Not helpful",
      feedback_thanks: "Thanks for your feedback!",
      answer_announce: "{bot} answered: {text}",
      agent_announce: "{agent} wrote: {text}",
      status_online: "Online · replies instantly",
      status_connecting: "Connecting…",
      status_offline: "Offline · reconnecting in {s} s",
      status_offline_now: "Offline · reconnecting…",
      status_blocked: "Chat is not available on this site",
      offline_banner: "You're offline. Messages will be sent when the connection is back.",
      pending: "Sending…",
      queued: "Queued — will be sent when online",
      failed: "Not sent",
      partial: "This answer was interrupted.",
      handoff_pending_human: "Connecting you with a human agent…",
      handoff_human: "A human agent has joined the conversation.",
      handoff_bot: "You're chatting with the assistant again.",
      handoff_closed: "The conversation was closed by the agent.",
      banner_pending_human: "Waiting for a human agent",
      banner_human: "You're chatting with a human agent",
      action_started: "Working on it…",
      action_ok: "Done",
      action_not_found: "Nothing found",
      action_error: "That didn't work",
      error_generic: "Something went wrong. Please try again.",
      error_rate_limited: "You're sending messages too fast. Please wait {s} s.",
      error_message_too_long: "That message is too long.",
      error_empty_message: "Please type a message first.",
      error_not_ready: "The assistant is starting up. Please try again in a moment.",
    },
    de: {
      title: "Kundenservice",
      welcome: "Hallo! Ich bin {bot}, der virtuelle Assistent. Fragen Sie mich alles zu Bestellung, Versand, Rückgabe oder Zahlung.",
      launcher_open: "Chat öffnen",
      launcher_close: "Chat schließen",
      close: "Schließen",
      new_conversation: "Neues Gespräch",
      new_conversation_done: "Neues Gespräch gestartet.",
      placeholder: "Ihre Frage…",
      send: "Senden",
      composer_label: "Ihre Nachricht",
      messages_label: "Gesprächsverlauf",
      talk_to_human: "Mit einem Menschen sprechen",
      powered_by: "Bereitgestellt von Klartext",
      you: "Sie",
      agent: "Kundenservice",
      typing: "{bot} schreibt…",
      sources: "Quellen",
      suggestions: "Vorgeschlagene Fragen",
      helpful: "Hilfreich",
      not_helpful: "Nicht hilfreich",
      feedback_thanks: "Danke für Ihr Feedback!",
      answer_announce: "{bot} antwortet: {text}",
      agent_announce: "{agent} schreibt: {text}",
      status_online: "Online · antwortet sofort",
      status_connecting: "Verbinde…",
      status_offline: "Offline · neuer Versuch in {s} s",
      status_offline_now: "Offline · verbinde neu…",
      status_blocked: "Der Chat ist auf dieser Seite nicht verfügbar",
      offline_banner: "Sie sind offline. Nachrichten werden gesendet, sobald die Verbindung wieder steht.",
      pending: "Wird gesendet…",
      queued: "Wartet — wird gesendet, sobald Sie online sind",
      failed: "Nicht gesendet",
      partial: "Diese Antwort wurde unterbrochen.",
      handoff_pending_human: "Wir verbinden Sie mit einer Mitarbeiterin oder einem Mitarbeiter…",
      handoff_human: "Ein Mensch aus dem Kundenservice ist jetzt im Gespräch.",
      handoff_bot: "Sie schreiben wieder mit dem Assistenten.",
      handoff_closed: "Das Gespräch wurde vom Kundenservice beendet.",
      banner_pending_human: "Warte auf den Kundenservice",
      banner_human: "Sie schreiben mit einem Menschen",
      action_started: "Einen Moment…",
      action_ok: "Erledigt",
      action_not_found: "Nichts gefunden",
      action_error: "Das hat nicht geklappt",
      error_generic: "Etwas ist schiefgelaufen. Bitte versuchen Sie es noch einmal.",
      error_rate_limited: "Sie senden zu schnell. Bitte warten Sie {s} s.",
      error_message_too_long: "Diese Nachricht ist zu lang.",
      error_empty_message: "Bitte geben Sie zuerst eine Nachricht ein.",
      error_not_ready: "Der Assistent startet gerade. Bitte gleich noch einmal versuchen.",
    },
  };

  const fmt = (s, vars) => String(s).replace(/\{(\w+)\}/g, (m, k) => (k in vars ? String(vars[k]) : m));

  // ------------------------------------------------------------------ safe Markdown
  const SCHEME = /^([a-z][a-z0-9+.-]*):/i;
  /** Returns a safe href (http(s), mailto or relative) or null. */
  function safeUrl(raw) {
    // eslint-disable-next-line no-control-regex
    const url = String(raw == null ? "" : raw).replace(/[\u0000-\u0020\u007f]+/g, "");
    if (!url) return null;
    const m = SCHEME.exec(url);
    if (!m) return url;
    return ["http", "https", "mailto"].includes(m[1].toLowerCase()) ? url : null;
  }

  function h(tag, cls, text) {
    const el = document.createElement(tag);
    if (cls) el.className = cls;
    if (text != null) el.textContent = text;
    return el;
  }

  function link(href, out) {
    const a = h("a");
    a.href = href;
    a.target = "_blank";
    a.rel = "noopener noreferrer";
    out.appendChild(a);
    return a;
  }

  const isWord = (c) => !!c && /[\p{L}\p{N}]/u.test(c);

  function findClose(text, from, delim) {
    for (let j = from + 1; j <= text.length - delim.length; j++) {
      if (text[j] === "\\") { j++; continue; }
      if (text[j] === "`") { const k = text.indexOf("`", j + 1); if (k > 0) { j = k; continue; } }
      if (!text.startsWith(delim, j) || /\s/.test(text[j - 1])) continue;
      if (delim.length === 1 && (text[j + 1] === delim || text[j - 1] === delim)) continue;
      if (delim[0] === "_" && isWord(text[j + delim.length])) continue;
      return j;
    }
    return -1;
  }

  const LINK_RE = /^\[([^\]\n]+)\]\(\s*<?([^)\s>]*)>?(?:\s+"[^"]*")?\s*\)/;
  const AUTO_RE = /^(?:https?:\/\/|mailto:)[^\s<>"]+/i;

  function inline(text, out) {
    let buf = "";
    const flush = () => { if (buf) { out.appendChild(document.createTextNode(buf)); buf = ""; } };
    let i = 0;
    while (i < text.length) {
      const c = text[i];
      if (c === "\\" && /[\\`*_[\]()#+\-.!<>~|{}]/.test(text[i + 1] || "")) { buf += text[i + 1]; i += 2; continue; }
      if (c === "`") {
        const j = text.indexOf("`", i + 1);
        if (j > i + 1) { flush(); out.appendChild(h("code", null, text.slice(i + 1, j))); i = j + 1; continue; }
      }
      if (c === "[") {
        const m = LINK_RE.exec(text.slice(i));
        if (m) {
          flush();
          const href = safeUrl(m[2]);
          if (href) inline(m[1], link(href, out));
          else inline(m[1], out);
          i += m[0].length;
          continue;
        }
      }
      if ((c === "h" || c === "H" || c === "m" || c === "M") && !isWord(text[i - 1])) {
        const m = AUTO_RE.exec(text.slice(i));
        if (m) {
          const url = m[0].replace(/[.,;:!?)\]'*_]+$/, "");
          if (url.length > 8) {
            flush();
            link(url, out).textContent = url.replace(/^mailto:/i, "");
            i += url.length;
            continue;
          }
        }
      }
      if ((c === "*" || c === "_") && !(c === "_" && isWord(text[i - 1]))) {
        const delim = text[i + 1] === c ? c + c : c;
        const start = i + delim.length;
        if (start < text.length && !/\s/.test(text[start])) {
          const j = findClose(text, start - 1, delim);
          if (j > start - 1 && j >= start) {
            flush();
            inline(text.slice(start, j), out.appendChild(h(delim.length === 2 ? "strong" : "em")));
            i = j + delim.length;
            continue;
          }
        }
      }
      buf += c;
      i++;
    }
    flush();
  }

  const FENCE_RE = /^\s{0,3}(```+|~~~+)\s*([\w+#.-]*)\s*$/;
  const LIST_RE = /^(\s*)([-*+•]|\d{1,9}[.)])\s+(.*)$/;
  const HEAD_RE = /^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$/;
  const QUOTE_RE = /^\s{0,3}>\s?(.*)$/;
  const HR_RE = /^\s{0,3}([-*_])(\s*\1){2,}\s*$/;

  function blocks(lines, out) {
    let para = [];
    const flushPara = () => {
      if (para.length) { inline(para.join(" "), out.appendChild(h("p"))); para = []; }
    };
    let i = 0;
    while (i < lines.length) {
      const line = lines[i];
      let m;
      if ((m = FENCE_RE.exec(line))) {
        flushPara();
        const body = [];
        i++;
        while (i < lines.length && !lines[i].trim().startsWith(m[1])) body.push(lines[i++]);
        i++;
        const pre = out.appendChild(h("pre"));
        const code = pre.appendChild(h("code", null, body.join("\n")));
        if (m[2]) code.dataset.lang = m[2];
        continue;
      }
      if (!line.trim()) { flushPara(); i++; continue; }
      if (HR_RE.test(line) && !para.length) { out.appendChild(h("hr")); i++; continue; }
      if ((m = HEAD_RE.exec(line))) {
        flushPara();
        inline(m[2], out.appendChild(h("p", "md-h md-h" + m[1].length)));
        i++;
        continue;
      }
      if (QUOTE_RE.test(line)) {
        flushPara();
        const body = [];
        while (i < lines.length && (m = QUOTE_RE.exec(lines[i]))) { body.push(m[1]); i++; }
        blocks(body, out.appendChild(h("blockquote")));
        continue;
      }
      if ((m = LIST_RE.exec(line)) && (!para.length || m[1].length === 0)) {
        flushPara();
        i = list(lines, i, out);
        continue;
      }
      para.push(line.trim());
      i++;
    }
    flushPara();
  }

  function list(lines, i, out) {
    const first = LIST_RE.exec(lines[i]);
    const indent = first[1].length;
    const ordered = /\d/.test(first[2]);
    const el = out.appendChild(h(ordered ? "ol" : "ul"));
    if (ordered && parseInt(first[2], 10) !== 1) el.start = parseInt(first[2], 10);
    let item = null;
    while (i < lines.length) {
      const line = lines[i];
      const m = LIST_RE.exec(line);
      if (m && m[1].length === indent && /\d/.test(m[2]) === ordered) {
        item = { li: el.appendChild(h("li")), lines: [m[3]] };
        i++;
        while (i < lines.length) {
          const next = lines[i];
          const nm = LIST_RE.exec(next);
          if (!next.trim()) {
            const after = lines[i + 1] || "";
            if (after.trim() && /^\s+/.test(after) && (after.match(/^\s*/)[0].length > indent)) { item.lines.push(""); i++; continue; }
            break;
          }
          if (nm && nm[1].length <= indent) break;
          if (!nm && !/^\s/.test(next) && FENCE_RE.test(next)) break;
          item.lines.push(next.replace(new RegExp("^\\s{0," + (indent + 4) + "}"), ""));
          i++;
        }
        const sub = item.lines;
        if (sub.length === 1) inline(sub[0], item.li);
        else blocks(sub, item.li);
        if (!sub.includes("")) {
          for (const p of [...item.li.children]) if (p.tagName === "P") p.replaceWith(...p.childNodes);
        }
        continue;
      }
      if (!line.trim() && LIST_RE.test(lines[i + 1] || "") && LIST_RE.exec(lines[i + 1])[1].length === indent) { i++; continue; }
      break;
    }
    return i;
  }

  /** Renders a Markdown subset into a DocumentFragment, using DOM APIs only. */
  function renderMarkdown(src) {
    const frag = document.createDocumentFragment();
    blocks(String(src == null ? "" : src).replace(/\r\n?/g, "\n").split("\n"), frag);
    return frag;
  }

  // ------------------------------------------------------------------ icons (SVG via DOM)
  const SVGNS = "http://www.w3.org/2000/svg";
  const ICONS = {
    chat: "M4 5.5A2.5 2.5 0 0 1 6.5 3h11A2.5 2.5 0 0 1 20 5.5v8a2.5 2.5 0 0 1-2.5 2.5H10l-4.2 3.6c-.5.4-1.3.1-1.3-.6V16.1A2.5 2.5 0 0 1 4 14.5z",
    close: "M6 6l12 12M18 6L6 18",
    down: "M6 9l6 6 6-6",
    send: "M4.5 12L20 4.5l-4 15.5-4.5-6.2zM11.5 13.8L20 4.5",
    refresh: "M20 11a8 8 0 1 0-2.3 5.7M20 4v7h-7",
    up: "M7 21H4.5a1.5 1.5 0 0 1-1.5-1.5v-7A1.5 1.5 0 0 1 4.5 11H7m0 10V11m0 10h9.6a2 2 0 0 0 2-1.6l1.3-7A2 2 0 0 0 17.9 10H14V5.5A2.5 2.5 0 0 0 11.5 3L7 11",
    dn: "M17 3h2.5A1.5 1.5 0 0 1 21 4.5v7a1.5 1.5 0 0 1-1.5 1.5H17m0-10v10m0-10H7.4a2 2 0 0 0-2 1.6l-1.3 7A2 2 0 0 0 6.1 14H10v4.5a2.5 2.5 0 0 0 2.5 2.5L17 13",
    doc: "M14 3H7a2 2 0 0 0-2 2v14a2 2 0 0 0 2 2h10a2 2 0 0 0 2-2V8zM14 3v5h5M9 13h6M9 17h4",
    person: "M12 12a4 4 0 1 0 0-8 4 4 0 0 0 0 8zM4.5 20.5c.8-3.7 3.9-6 7.5-6s6.7 2.3 7.5 6",
    headset: "M4 14v-2a8 8 0 0 1 16 0v2M4 14a2 2 0 0 1 2-2h1v6H6a2 2 0 0 1-2-2zM20 14a2 2 0 0 0-2-2h-1v6h1a2 2 0 0 0 2-2zM17 18c0 1.7-1.8 3-5 3",
    bolt: "M13 3L5 13.5h6L10 21l8-10.5h-6z",
    spark: "M11 3.5l1.9 5.1 5.1 1.9-5.1 1.9L11 17.5l-1.9-5.1L4 10.5l5.1-1.9zM18 15l.9 2.1 2.1.9-2.1.9-.9 2.1-.9-2.1-2.1-.9 2.1-.9z",
    clock: "M12 21a9 9 0 1 0 0-18 9 9 0 0 0 0 18zM12 7v5l3 2",
    alert: "M12 8v5M12 16.5v.5M10.3 3.9L2.4 17.5A2 2 0 0 0 4.1 20.5h15.8a2 2 0 0 0 1.7-3L13.7 3.9a2 2 0 0 0-3.4 0z",
  };
  function icon(name, cls) {
    const svg = document.createElementNS(SVGNS, "svg");
    svg.setAttribute("viewBox", "0 0 24 24");
    svg.setAttribute("aria-hidden", "true");
    svg.setAttribute("focusable", "false");
    svg.setAttribute("class", "ic" + (cls ? " " + cls : ""));
    const p = document.createElementNS(SVGNS, "path");
    p.setAttribute("d", ICONS[name]);
    svg.appendChild(p);
    return svg;
  }

  // ------------------------------------------------------------------ styles
  const CSS = `
:host{all:initial!important;display:block!important;position:fixed!important;inset:auto!important;width:0!important;height:0!important;
 margin:0!important;padding:0!important;border:0!important;transform:none!important;filter:none!important;opacity:1!important;
 visibility:visible!important;clip-path:none!important;contain:none!important;z-index:var(--kt-z-index,2147483000)!important;
 pointer-events:auto!important;overflow:visible!important}
:host{--kt-primary:#2f5bea;--kt-on-primary:#fff;--kt-bg:#fff;--kt-surface:#f2f4f7;--kt-text:#18202b;--kt-muted:#566171;
 --kt-border:#e2e6ec;--kt-agent-bg:#fff6e6;--kt-agent-border:#f0b44c;--kt-agent-text:#6b4100;--kt-radius:18px;
 --kt-font:Inter,ui-sans-serif,system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;
 --kt-width:384px;--kt-height:640px;--kt-offset-x:20px;--kt-offset-y:20px;--kt-launcher-size:60px}
*,*::before,*::after{box-sizing:border-box}
.root{font:400 14.5px/1.5 var(--kt-font);color:var(--kt-text);letter-spacing:normal;text-align:start;direction:ltr;
 -webkit-font-smoothing:antialiased;text-transform:none;word-spacing:normal;white-space:normal}
button{font:inherit;color:inherit;background:none;border:0;margin:0;padding:0;cursor:pointer;text-transform:none}
button:focus-visible,a:focus-visible,textarea:focus-visible,.messages:focus-visible{outline:2px solid var(--kt-link,var(--kt-primary));outline-offset:2px}
.ic{width:20px;height:20px;fill:none;stroke:currentColor;stroke-width:1.9;stroke-linecap:round;stroke-linejoin:round;flex:none}
.sr{position:absolute!important;width:1px;height:1px;margin:-1px;padding:0;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap;border:0}
.launcher{position:fixed;bottom:var(--kt-offset-y);right:var(--kt-offset-x);width:var(--kt-launcher-size);height:var(--kt-launcher-size);
 border-radius:50%;background:var(--kt-primary);color:var(--kt-on-primary);display:grid;place-items:center;
 box-shadow:0 10px 28px -6px rgba(16,24,40,.45),0 2px 6px rgba(16,24,40,.18);transition:transform .18s ease,box-shadow .18s ease}
.launcher:hover{transform:translateY(-2px) scale(1.04)}
.launcher .ic{width:28px;height:28px;grid-area:1/1;transition:transform .2s ease,opacity .2s ease}
.launcher .ic-down{opacity:0;transform:rotate(-90deg)}
.open .launcher .ic-chat{opacity:0;transform:rotate(90deg) scale(.6)}
.open .launcher .ic-down{opacity:1;transform:none}
.launcher:focus-visible{outline:3px solid var(--kt-link,var(--kt-primary));outline-offset:3px}
.badge{position:absolute;top:2px;right:2px;width:14px;height:14px;border-radius:50%;background:#e5484d;border:2px solid #fff;display:none}
.unread .badge{display:block}
.left .launcher{right:auto;left:var(--kt-offset-x)}
.panel{position:fixed;bottom:calc(var(--kt-offset-y) + var(--kt-launcher-size) + 16px);right:var(--kt-offset-x);
 width:var(--kt-width);height:min(var(--kt-height),calc(100vh - var(--kt-launcher-size) - var(--kt-offset-y) - 40px));
 background:var(--kt-bg);border-radius:var(--kt-radius);display:flex;flex-direction:column;overflow:hidden;
 box-shadow:0 28px 70px -14px rgba(16,24,40,.38),0 0 0 1px rgba(16,24,40,.07);
 transform-origin:bottom right;transition:opacity .2s ease,transform .22s cubic-bezier(.2,.8,.2,1),visibility 0s .22s;
 opacity:0;visibility:hidden;transform:translateY(12px) scale(.97)}
.left .panel{right:auto;left:var(--kt-offset-x);transform-origin:bottom left}
.open .panel{opacity:1;visibility:visible;transform:none;transition:opacity .2s ease,transform .22s cubic-bezier(.2,.8,.2,1)}
.head{background-color:var(--kt-primary);background-image:linear-gradient(135deg,var(--kt-primary),color-mix(in srgb,var(--kt-primary) 80%,#000));
 color:var(--kt-on-primary);padding:16px 12px 16px 18px;display:flex;align-items:center;gap:12px;flex:none}
.avatar{width:40px;height:40px;border-radius:50%;flex:none;display:grid;place-items:center;font-weight:700;font-size:15px;
 background:rgba(255,255,255,.2);color:inherit;overflow:hidden;box-shadow:0 0 0 2px rgba(255,255,255,.35)}
.avatar img{width:100%;height:100%;object-fit:cover}
.who{flex:1;min-width:0}
.title{font-weight:650;font-size:16px;line-height:1.25;margin:0;white-space:nowrap;overflow:hidden;text-overflow:ellipsis}
.status{font-size:12.5px;opacity:.92;display:flex;align-items:center;gap:6px;margin-top:2px}
.dot{width:8px;height:8px;border-radius:50%;background:#3ddc84;box-shadow:0 0 0 2px rgba(255,255,255,.25);flex:none}
.st-connecting .dot,.st-offline .dot{background:#ffc53d}
.st-blocked .dot{background:#ff6b6b}
.hbtn{width:36px;height:36px;border-radius:10px;display:grid;place-items:center;color:inherit;opacity:.9}
.hbtn:hover{background:rgba(255,255,255,.16);opacity:1}
.hbtn:focus-visible{outline:2px solid currentColor;outline-offset:-2px}
.banner{display:none;align-items:center;gap:8px;padding:9px 16px;font-size:13px;border-bottom:1px solid var(--kt-border);flex:none}
.banner .ic{width:17px;height:17px}
.banner.show{display:flex}
.banner.offline{background:#fff8e1;color:#6b4a00}
.banner.handoff{background:var(--kt-agent-bg);color:var(--kt-agent-text)}
.messages{flex:1;overflow-y:auto;padding:18px 16px 8px;display:flex;flex-direction:column;gap:12px;scroll-behavior:smooth;
 overscroll-behavior:contain;background:var(--kt-bg)}
.row{display:flex;gap:8px;align-items:flex-start;max-width:100%}
.row.user{justify-content:flex-end}
.mini{width:28px;height:28px;border-radius:50%;flex:none;display:grid;place-items:center;font-size:11.5px;font-weight:700;
 background:var(--kt-primary);color:var(--kt-on-primary);overflow:hidden;margin-top:2px}
.mini img{width:100%;height:100%;object-fit:cover}
.mini .ic{width:16px;height:16px}
.agent .mini{background:var(--kt-agent-border);color:#2b1a00}
.col{display:flex;flex-direction:column;gap:6px;min-width:0;max-width:84%}
.user .col{align-items:flex-end}
.bubble{padding:10px 14px;border-radius:16px;background:var(--kt-surface);overflow-wrap:anywhere;min-width:0}
.bot .bubble{border-bottom-left-radius:6px}
.user .bubble{background:var(--kt-primary);color:var(--kt-on-primary);border-bottom-right-radius:6px;white-space:pre-wrap}
.agent .bubble{background:var(--kt-agent-bg);border:1px solid var(--kt-agent-border);color:var(--kt-text);border-bottom-left-radius:6px}
.by{font-size:12px;color:var(--kt-agent-text);font-weight:600;display:flex;gap:6px;align-items:center}
.by span{font-weight:500;background:var(--kt-agent-border);color:#2b1a00;border-radius:99px;padding:0 7px;font-size:11px}
.meta{font-size:11.5px;color:var(--kt-muted);display:flex;align-items:center;gap:4px}
.meta .ic{width:13px;height:13px}
.user.pending .bubble{opacity:.72}
.user.failed .bubble{background:#fde8e8;color:#8a1c1c}
.bubble>:first-child{margin-top:0}.bubble>:last-child{margin-bottom:0}
.bubble p{margin:0 0 8px}
.bubble ul,.bubble ol{margin:4px 0 8px;padding-left:20px}
.bubble li{margin:2px 0}
.bubble li>ul,.bubble li>ol{margin:2px 0}
.bubble a{color:var(--kt-link,var(--kt-primary));text-decoration:underline;text-underline-offset:2px}
.user .bubble a{color:inherit}
.bubble strong{font-weight:650}
.bubble code{font:12.5px/1.4 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;background:rgba(16,24,40,.07);border-radius:5px;padding:1px 5px}
.bubble pre{background:#1d2330;color:#e8ebf1;border-radius:10px;padding:10px 12px;overflow-x:auto;margin:6px 0 8px}
.bubble pre code{background:none;padding:0;color:inherit;white-space:pre}
.bubble blockquote{margin:4px 0 8px;padding-left:10px;border-left:3px solid var(--kt-border);color:var(--kt-muted)}
.bubble hr{border:0;border-top:1px solid var(--kt-border);margin:8px 0}
.md-h{font-weight:650}
.streaming>:last-child::after{content:"";display:inline-block;width:7px;height:14px;margin-left:2px;vertical-align:-2px;
 background:currentColor;opacity:.55;border-radius:1px;animation:kt-blink 1s steps(2) infinite}
@keyframes kt-blink{50%{opacity:0}}
.partial{font-size:12px;color:var(--kt-muted);font-style:italic}
.cites{display:flex;flex-wrap:wrap;gap:6px;align-items:center}
.cites-label{font-size:11.5px;color:var(--kt-muted);font-weight:600;text-transform:uppercase;letter-spacing:.04em;margin-right:2px}
.chip{display:inline-flex;align-items:center;gap:5px;max-width:100%;padding:4px 10px 4px 6px;border-radius:99px;font-size:12.5px;
 line-height:1.3;color:var(--kt-text);background:var(--kt-bg);border:1px solid var(--kt-border);text-decoration:none;transition:border-color .15s,background .15s}
a.chip:hover{border-color:var(--kt-link,var(--kt-primary));background:color-mix(in srgb,var(--kt-primary) 8%,var(--kt-bg))}
.chip .n{display:grid;place-items:center;min-width:18px;height:18px;border-radius:99px;background:var(--kt-primary);color:var(--kt-on-primary);font-size:10.5px;font-weight:700;padding:0 4px}
.chip .t{overflow:hidden;text-overflow:ellipsis;white-space:nowrap;max-width:210px}
.fb{display:flex;align-items:center;gap:2px;min-height:28px}
.fb button{width:28px;height:28px;border-radius:8px;display:grid;place-items:center;color:var(--kt-muted)}
.fb button:hover{background:var(--kt-surface);color:var(--kt-text)}
.fb button[aria-pressed=true]{color:var(--kt-link,var(--kt-primary));background:color-mix(in srgb,var(--kt-primary) 12%,var(--kt-bg))}
.fb .ic{width:16px;height:16px}
.fb .thanks{font-size:12px;color:var(--kt-muted);margin-left:4px}
.notice{align-self:center;text-align:center;font-size:12.5px;color:var(--kt-muted);background:var(--kt-surface);border-radius:99px;
 padding:5px 12px;display:inline-flex;gap:6px;align-items:center;max-width:92%}
.notice .ic{width:15px;height:15px}
.notice.handoff{background:var(--kt-agent-bg);color:var(--kt-agent-text)}
.notice.error{background:#fdecec;color:#8a1c1c}
.action{font-size:12.5px;color:var(--kt-muted);display:inline-flex;gap:6px;align-items:center}
.typing{display:flex;gap:4px;padding:14px 16px}
.typing i{width:7px;height:7px;border-radius:50%;background:var(--kt-muted);opacity:.5;animation:kt-bounce 1.2s infinite ease-in-out}
.typing i:nth-child(2){animation-delay:.15s}.typing i:nth-child(3){animation-delay:.3s}
@keyframes kt-bounce{0%,60%,100%{transform:none;opacity:.4}30%{transform:translateY(-4px);opacity:.9}}
.sugs{display:flex;flex-wrap:wrap;gap:6px;padding:4px 16px 10px;flex:none}
.sugs:empty{display:none}
.sug{border:1px solid color-mix(in srgb,var(--kt-link,var(--kt-primary)) 45%,var(--kt-bg));color:var(--kt-link,var(--kt-primary));background:var(--kt-bg);border-radius:99px;
 padding:6px 12px;font-size:13px;line-height:1.3;text-align:start;transition:background .15s}
.sug:hover{background:color-mix(in srgb,var(--kt-primary) 10%,var(--kt-bg))}
.foot{border-top:1px solid var(--kt-border);padding:10px 12px 8px;flex:none;background:var(--kt-bg)}
.composer{display:flex;align-items:flex-end;gap:8px;background:var(--kt-surface);border-radius:14px;padding:6px 6px 6px 14px;border:1px solid transparent;transition:border-color .15s,background .15s}
.composer:focus-within{border-color:var(--kt-link,var(--kt-primary));background:var(--kt-bg)}
textarea{flex:1;resize:none;border:0;outline:0;background:transparent;font:inherit;color:var(--kt-text);max-height:120px;min-height:24px;padding:5px 0;margin:0;line-height:1.45}
textarea:focus-visible{outline:0}
textarea::placeholder{color:var(--kt-muted);opacity:1}
.sendbtn{width:36px;height:36px;border-radius:10px;background:var(--kt-primary);color:var(--kt-on-primary);display:grid;place-items:center;flex:none;transition:opacity .15s}
.sendbtn:disabled{opacity:.4;cursor:default}
.sendbtn .ic{width:18px;height:18px}
.sub{display:flex;justify-content:space-between;align-items:center;margin-top:6px;font-size:12px;color:var(--kt-muted);padding:0 2px}
.human{display:inline-flex;align-items:center;gap:5px;color:var(--kt-link,var(--kt-primary));font-weight:550;padding:3px 4px;border-radius:6px}
.human:hover{text-decoration:underline}
.human .ic{width:15px;height:15px}
.human[hidden]{display:none}
.powered{margin-left:auto}
.dark{--kt-bg:#161a21;--kt-surface:#232a35;--kt-text:#e9edf3;--kt-muted:#a3aebd;--kt-border:#313a47;
 --kt-agent-bg:#3a2d14;--kt-agent-border:#b9853a;--kt-agent-text:#ffd99e;--kt-link:color-mix(in srgb,var(--kt-primary) 45%,#fff)}
.dark .panel{box-shadow:0 28px 70px -14px rgba(0,0,0,.7),0 0 0 1px rgba(255,255,255,.08)}
.dark .bubble code{background:rgba(255,255,255,.1)}
.dark .banner.offline{background:#3b3112;color:#ffe08a}
.dark .notice.error,.dark .user.failed .bubble{background:#45191b;color:#ffc9c9}
@media (max-width:480px){
 .panel{inset:0;width:100%;height:100%;max-height:none;border-radius:0;bottom:0;right:0}
 .left .panel{left:0}
 .open .launcher{display:none}
 .head{padding-top:max(16px,env(safe-area-inset-top))}
 .foot{padding-bottom:max(8px,env(safe-area-inset-bottom))}
}
@media (prefers-reduced-motion:reduce){*,*::before,*::after{animation:none!important;transition:none!important;scroll-behavior:auto!important}}
`;

  // ------------------------------------------------------------------ helpers
  const uuid = () =>
    crypto.randomUUID
      ? crypto.randomUUID()
      : "10000000-1000-4000-8000-100000000000".replace(/[018]/g, (c) =>
          (c ^ (crypto.getRandomValues(new Uint8Array(1))[0] & (15 >> (c / 4)))).toString(16));

  function parseJSON(s) {
    if (!s) return undefined;
    try { return JSON.parse(s); } catch (e) { return undefined; }
  }

  /** Theme variables derived from a primary colour: readable text on it, and a link/focus colour
   * that keeps >= 4.5:1 contrast on white (light primaries get a darkened variant). */
  function derive(color) {
    const c = document.createElement("canvas").getContext("2d");
    const out = { on: "#fff", link: color };
    if (!c) return out;
    c.fillStyle = "#000";
    c.fillStyle = color;
    const m = /^#([0-9a-f]{6})$/i.exec(String(c.fillStyle));
    if (!m) return out;
    const lin = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
    const n = parseInt(m[1], 16);
    const L = 0.2126 * lin(n >> 16) + 0.7152 * lin((n >> 8) & 255) + 0.0722 * lin(n & 255);
    if ((L + 0.05) / 0.05 > 1.05 / (L + 0.05)) out.on = "#111418";
    if (1.05 / (L + 0.05) < 4.5) out.link = "color-mix(in srgb," + color + " " + (L > 0.4 ? 35 : 55) + "%,#000)";
    return out;
  }

  const cssValue = (v) => String(v).replace(/[;{}<>\\]/g, "");

  // ------------------------------------------------------------------ the element
  const BACKOFF_BASE = 500;
  const BACKOFF_CAP = 15000;
  const KEEPALIVE_MS = 25000;
  const STALE_MS = 45000;

  class KlartextChat extends HTMLElement {
    constructor() {
      super();
      this._root = this.attachShadow({ mode: "open" });
      this._ws = null;
      this._state = "idle"; // idle | connecting | online | offline | blocked
      this._attempt = 0;
      this._retryAt = 0;
      this._timers = {};
      this._turns = new Map();
      this._msgs = new Map();
      this._lastSeq = 0;
      this._handoff = "bot";
      this._limits = null;
      this._isOpen = false;
      this._built = false;
      this._awaiting = null;
    }

    // ---- config
    _cfg(name, fallback) {
      const attr = this.getAttribute("data-" + name);
      if (attr != null) return attr;
      const g = window.KlartextConfig || {};
      const key = name.replace(/-([a-z])/g, (m, c) => c.toUpperCase());
      return g[key] != null ? g[key] : fallback;
    }

    _setupConfig() {
      let lang = String(this._cfg("lang", "") || navigator.language || "en").toLowerCase().slice(0, 2);
      if (!STRINGS[lang]) lang = "en";
      this.lang_ = lang;
      // Built-in < KlartextConfig.strings < data-strings; each flat or per language.
      const g = (window.KlartextConfig || {}).strings;
      const a = parseJSON(this.getAttribute("data-strings"));
      this._s = Object.assign({}, STRINGS.en, STRINGS[lang]);
      for (const o of [g, a]) {
        if (!o || typeof o !== "object") continue;
        Object.assign(this._s, Object.fromEntries(Object.entries(o).filter(([, v]) => typeof v === "string")),
          o[lang] && typeof o[lang] === "object" ? o[lang] : {});
      }
      const base = this._cfg("klartext-url", "") || (SCRIPT && SCRIPT.src ? new URL(SCRIPT.src, location.href).origin : location.origin);
      const abs = new URL(base || location.origin, location.href);
      this._wsUrl = this._cfg("ws-url", "") || abs.origin.replace(/^http/, "ws") + abs.pathname.replace(/\/+$/, "") + "/ws/chat";
      this._key = "klartext:v1:" + this._wsUrl;
      const sug = this._cfg("suggestions");
      const starters = Array.isArray(sug) || (sug && typeof sug === "object") ? sug : parseJSON(sug) || [];
      this._starters = Array.isArray(starters) ? starters : starters[lang] || [];
      this._botName = this._cfg("bot-name", "") || "";
    }

    _t(key, vars) {
      return fmt(this._s[key] != null ? this._s[key] : key, Object.assign({ bot: this._botName || "Klartext" }, vars || {}));
    }

    // ---- persistence
    _load() {
      try { return parseJSON(localStorage.getItem(this._key)) || {}; } catch (e) { return {}; } // storage blocked
    }
    _save(patch) {
      try { localStorage.setItem(this._key, JSON.stringify(Object.assign(this._load(), patch))); } catch (e) { /* private mode */ }
    }

    connectedCallback() {
      if (this._built) return;
      this._built = true;
      this._setupConfig();
      this._build();
      const st = this._load();
      this._cid = st.cid || null;
      this._token = st.token || null;
      this._outbox = Array.isArray(st.outbox) ? st.outbox : [];
      this._ratings = st.ratings || {};
      this._renderWelcome();
      for (const m of this._outbox) this._userBubble(m.message_id, m.text, "pending");
      this._onStorage = (e) => { if (e.key === this._key) this._syncFromStorage(); };
      this._onOnline = () => { if (this._state === "offline") this._reconnectNow(); };
      this._onVisible = () => {
        if (document.visibilityState === "visible" && (this._load().seq || 0) > this._lastSeq && this._state === "online" && !this._streaming()) this._resync();
      };
      window.addEventListener("storage", this._onStorage);
      window.addEventListener("online", this._onOnline);
      document.addEventListener("visibilitychange", this._onVisible);
      const openAttr = this._cfg("open", "");
      if (st.open || openAttr === "true" || openAttr === true) this.open({ focus: false });
      else if (this._outbox.length) this._connect();
    }

    disconnectedCallback() {
      window.removeEventListener("storage", this._onStorage);
      window.removeEventListener("online", this._onOnline);
      document.removeEventListener("visibilitychange", this._onVisible);
      this._stop();
      this._built = false;
      this._root.replaceChildren();
    }

    // ---- DOM
    _build() {
      const sheet = new CSSStyleSheet();
      sheet.replaceSync(CSS);
      const theme = new CSSStyleSheet();
      const primary = this._cfg("primary-color", "");
      const rules = [];
      if (primary) {
        const d = derive(cssValue(primary));
        rules.push("--kt-primary:" + cssValue(primary), "--kt-on-primary:" + d.on, "--kt-link:" + d.link);
      }
      theme.replaceSync(rules.length ? ":host{" + rules.join(";") + "}" : "");
      this._root.adoptedStyleSheets = [sheet, theme];

      const root = h("div", "root");
      if (this._cfg("position", "right") === "left") root.classList.add("left");
      const mode = this._cfg("theme", "light");
      if (mode === "dark") root.classList.add("dark");
      else if (mode === "auto" && window.matchMedia) {
        const mq = window.matchMedia("(prefers-color-scheme: dark)");
        root.classList.toggle("dark", mq.matches);
        mq.addEventListener("change", (e) => root.classList.toggle("dark", e.matches));
      }
      this._el = { root };
      const panelId = "kt-panel";

      const panel = h("section", "panel");
      panel.id = panelId;
      panel.setAttribute("role", "dialog");
      panel.setAttribute("aria-modal", "false");
      panel.setAttribute("aria-hidden", "true");
      panel.inert = true;

      const head = h("header", "head st-idle");
      const avatar = this._avatar("avatar");
      const who = h("div", "who");
      const title = h("h2", "title", this._cfg("title", "") || this._botName || this._t("title"));
      title.id = "kt-title";
      panel.setAttribute("aria-labelledby", "kt-title");
      const status = h("div", "status");
      status.append(h("span", "dot"), h("span", "stxt", this._t("status_connecting")));
      who.append(title, status);
      const newBtn = this._iconButton("refresh", this._t("new_conversation"), "hbtn new");
      newBtn.addEventListener("click", () => this.newConversation());
      const closeBtn = this._iconButton("close", this._t("close"), "hbtn close");
      closeBtn.addEventListener("click", () => this.close());
      head.append(avatar, who, newBtn, closeBtn);

      const offline = h("div", "banner offline");
      offline.append(icon("alert"), h("span", null, this._t("offline_banner")));
      const handoff = h("div", "banner handoff");
      handoff.append(icon("headset"), h("span", "htxt"));
      handoff.setAttribute("role", "status");

      const messages = h("div", "messages");
      messages.setAttribute("role", "log");
      messages.setAttribute("aria-live", "off");
      messages.setAttribute("aria-label", this._t("messages_label"));
      messages.tabIndex = 0;

      const sugs = h("div", "sugs");
      sugs.setAttribute("role", "group");
      sugs.setAttribute("aria-label", this._t("suggestions"));

      const foot = h("div", "foot");
      const composer = h("form", "composer");
      composer.noValidate = true;
      const input = h("textarea");
      input.rows = 1;
      input.placeholder = this._t("placeholder");
      input.setAttribute("aria-label", this._t("composer_label"));
      input.setAttribute("enterkeyhint", "send");
      const send = this._iconButton("send", this._t("send"), "sendbtn");
      send.type = "submit";
      send.disabled = true;
      composer.append(input, send);
      const sub = h("div", "sub");
      const human = h("button", "human");
      human.type = "button";
      human.append(icon("headset"), h("span", null, this._t("talk_to_human")));
      human.addEventListener("click", () => this.requestHuman());
      sub.append(human, h("span", "powered", this._t("powered_by")));
      foot.append(composer, sub);

      const live = h("div", "sr live");
      live.setAttribute("aria-live", "polite");
      live.setAttribute("aria-atomic", "true");

      panel.append(head, offline, handoff, messages, sugs, foot);

      const launcher = h("button", "launcher");
      launcher.type = "button";
      launcher.setAttribute("aria-controls", panelId);
      launcher.setAttribute("aria-expanded", "false");
      launcher.setAttribute("aria-label", this._t("launcher_open"));
      launcher.append(icon("chat", "ic-chat"), icon("down", "ic-down"), h("span", "badge"));
      launcher.addEventListener("click", () => this.toggle());

      root.append(panel, launcher, live);
      this._root.appendChild(root);
      Object.assign(this._el, { panel, head, title, status, offline, handoff, messages, sugs, input, send, human, launcher, live, composer });

      input.addEventListener("input", () => this._autosize());
      input.addEventListener("keydown", (e) => {
        if (e.key === "Enter" && !e.shiftKey && !e.isComposing) { e.preventDefault(); this._submit(); }
      });
      composer.addEventListener("submit", (e) => { e.preventDefault(); this._submit(); });
      root.addEventListener("keydown", (e) => {
        if (e.key === "Escape" && this._isOpen) { e.preventDefault(); e.stopPropagation(); this.close(); }
      });
      this._renderStarters();
    }

    _iconButton(name, label, cls) {
      const b = h("button", cls);
      b.type = "button";
      b.setAttribute("aria-label", label);
      b.title = label;
      b.appendChild(icon(name));
      return b;
    }

    _avatar(cls) {
      const el = h("div", cls);
      el.setAttribute("aria-hidden", "true");
      const src = this._cfg("avatar", "");
      const href = src && safeUrl(src);
      if (href) {
        const img = h("img");
        img.alt = "";
        img.src = href;
        el.appendChild(img);
      } else {
        el.appendChild(icon("spark"));
      }
      return el;
    }

    _autosize() {
      const i = this._el.input;
      i.style.height = "auto";
      i.style.height = Math.min(i.scrollHeight, 120) + "px";
      this._el.send.disabled = !i.value.trim();
      if (this._state === "online" && Date.now() - (this._typingAt || 0) > 3000) {
        this._typingAt = Date.now();
        this._sendFrame({ type: "typing" });
      }
    }

    // ---- public API
    open(opts) {
      if (this._isOpen) return;
      this._isOpen = true;
      const { panel, launcher, root, input } = this._el;
      root.classList.add("open");
      root.classList.remove("unread");
      panel.inert = false;
      panel.setAttribute("aria-hidden", "false");
      launcher.setAttribute("aria-expanded", "true");
      launcher.setAttribute("aria-label", this._t("launcher_close"));
      this._save({ open: true });
      this._connect();
      this._keepalive();
      if (!opts || opts.focus !== false) setTimeout(() => input.focus(), 30);
      this._scroll(true);
      this._emit("open");
    }

    close() {
      if (!this._isOpen) return;
      this._isOpen = false;
      const { panel, launcher, root } = this._el;
      const hadFocus = this._root.activeElement && panel.contains(this._root.activeElement);
      root.classList.remove("open");
      panel.inert = true;
      panel.setAttribute("aria-hidden", "true");
      launcher.setAttribute("aria-expanded", "false");
      launcher.setAttribute("aria-label", this._t("launcher_open"));
      this._save({ open: false });
      if (hadFocus || !this._root.activeElement || this._root.activeElement === launcher) launcher.focus();
      this._keepalive();
      this._emit("close");
    }

    toggle() { if (this._isOpen) this.close(); else this.open(); }

    send(text) {
      const t = String(text == null ? "" : text).trim();
      if (!t) return null;
      const max = this._limits && this._limits.max_message_chars;
      if (max && t.length > max) { this._notice(this._t("error_message_too_long"), "error"); return null; }
      const item = { message_id: uuid(), text: t };
      this._outbox.push(item);
      this._save({ outbox: this._outbox });
      this._userBubble(item.message_id, t, this._state === "online" ? "pending" : "queued");
      this._el.sugs.replaceChildren();
      this._emit("message", { message_id: item.message_id, text: t });
      if (this._state === "online") this._sendFrame({ type: "message", message_id: item.message_id, text: t });
      else this._connect();
      this._updateTyping();
      this._scroll(true);
      return item.message_id;
    }

    requestHuman() {
      const frame = { type: "request_human", message_id: uuid() };
      this._pendingHuman = frame;
      if (this._state === "online") this._sendFrame(frame);
      else this._connect();
      this._el.human.hidden = true;
    }

    newConversation() {
      this._stop();
      this._cid = this._token = null;
      this._outbox = [];
      this._ratings = {};
      this._save({ cid: null, token: null, seq: 0, outbox: [], ratings: {} });
      this._resetTranscript();
      this._notice(this._t("new_conversation_done"));
      this._emit("newconversation");
      this._connect();
      if (this._isOpen) this._el.input.focus();
    }

    get conversationId() { return this._cid; }
    get connectionState() { return this._state; }

    // ---- transcript rendering
    _resetTranscript() {
      this._turns.clear();
      this._msgs.clear();
      this._lastSeq = 0;
      this._awaiting = null;
      this._handoff = "bot";
      this._pendingHuman = null;
      this._pendingHumanSent = false;
      this._el.messages.replaceChildren();
      this._el.sugs.replaceChildren();
      this._typingEl = null;
      this._renderWelcome();
      this._renderHandoff();
      this._renderStarters();
      for (const m of this._outbox) this._userBubble(m.message_id, m.text, "pending");
    }

    _renderWelcome() {
      const text = this._cfg("welcome", "") || this._t("welcome");
      if (!text) return;
      const { row, bubble } = this._botRow("bot welcome");
      bubble.appendChild(renderMarkdown(text));
      this._append(row);
    }

    _renderStarters() {
      if (this._turns.size || this._msgs.size) return;
      this._renderSuggestions(this._starters);
    }

    _renderSuggestions(items) {
      const box = this._el.sugs;
      box.replaceChildren();
      for (const text of (items || []).slice(0, 6)) {
        if (typeof text !== "string" || !text.trim()) continue;
        const b = h("button", "sug", text);
        b.type = "button";
        b.addEventListener("click", () => { this.send(text); this._el.input.focus(); });
        box.appendChild(b);
      }
    }

    _botRow(cls, agent) {
      const row = h("div", "row " + cls);
      const mini = h("div", "mini");
      mini.setAttribute("aria-hidden", "true");
      if (agent) mini.appendChild(icon("person"));
      else {
        const av = this._avatar("x");
        mini.replaceChildren(...av.childNodes);
      }
      const col = h("div", "col");
      const bubble = h("div", "bubble");
      if (!agent) col.appendChild(h("span", "sr", (this._botName || this._t("title")) + ":"));
      col.appendChild(bubble);
      row.append(mini, col);
      return { row, col, bubble };
    }

    _append(el) {
      const list = this._el.messages;
      if (this._typingEl && this._typingEl.parentNode === list) list.insertBefore(el, this._typingEl);
      else list.appendChild(el);
      this._scroll();
    }

    _scroll(force) {
      const list = this._el.messages;
      const near = list.scrollHeight - list.scrollTop - list.clientHeight < 120;
      if (force || near) requestAnimationFrame(() => { list.scrollTop = list.scrollHeight; });
    }

    _userBubble(id, text, state) {
      let m = this._msgs.get(id);
      if (!m) {
        const row = h("div", "row user");
        const col = h("div", "col");
        const bubble = h("div", "bubble", text);
        const meta = h("div", "meta");
        col.append(h("span", "sr", this._t("you") + ":"), bubble, meta);
        row.appendChild(col);
        m = { row, meta };
        this._msgs.set(id, m);
        this._append(row);
      }
      m.row.classList.remove("pending", "queued", "failed");
      m.meta.replaceChildren();
      if (state) {
        m.row.classList.add(state);
        m.meta.append(icon(state === "failed" ? "alert" : "clock"), h("span", null, this._t(state)));
      }
    }

    _turn(id, create) {
      let t = this._turns.get(id);
      if (!t && create !== false) {
        const { row, col, bubble } = this._botRow("bot");
        bubble.classList.add("streaming");
        t = { id, row, col, bubble, text: "", done: false, raf: 0 };
        this._turns.set(id, t);
        this._append(row);
      }
      return t;
    }

    _paint(t) {
      if (t.raf) return;
      t.raf = requestAnimationFrame(() => {
        t.raf = 0;
        t.bubble.replaceChildren(renderMarkdown(t.text));
        this._scroll();
      });
    }

    _notice(text, kind, ic) {
      const prev = this._typingEl ? this._typingEl.previousElementSibling : this._el.messages.lastElementChild;
      if (kind === "error" && prev && prev.classList.contains("notice") && prev.textContent === text) return prev;
      const n = h("div", "notice" + (kind ? " " + kind : ""));
      if (ic || kind === "error") n.appendChild(icon(ic || "alert"));
      n.appendChild(h("span", null, text));
      this._append(n);
      return n;
    }

    _announce(text) {
      const live = this._el.live;
      live.textContent = "";
      setTimeout(() => { live.textContent = text; }, 60);
    }

    _updateTyping() {
      const inflight = this._state === "online" && this._outbox.length > 0;
      const a = this._awaiting && this._turns.get(this._awaiting);
      const waiting = this._awaiting && (!a || (!a.text && !a.done));
      const show = (inflight || waiting) && this._handoff !== "human" && this._handoff !== "pending_human";
      if (show && !this._typingEl) {
        const { row, bubble } = this._botRow("bot typing-row");
        bubble.classList.add("typing");
        bubble.setAttribute("aria-label", this._t("typing"));
        bubble.setAttribute("role", "status");
        bubble.append(h("i"), h("i"), h("i"));
        this._el.messages.appendChild(row);
        this._typingEl = row;
        this._scroll();
      } else if (!show && this._typingEl) {
        this._typingEl.remove();
        this._typingEl = null;
      }
    }

    _renderHandoff() {
      const st = this._handoff;
      const show = st === "pending_human" || st === "human";
      this._el.handoff.classList.toggle("show", show);
      this._el.handoff.querySelector(".htxt").textContent = show ? this._t("banner_" + st) : "";
      this._el.human.hidden = st === "pending_human" || st === "human" || !!this._pendingHumanSent;
    }

    _finish(t, ev, replay) {
      t.done = true;
      t.bubble.classList.remove("streaming");
      if (t.raf) { cancelAnimationFrame(t.raf); t.raf = 0; }
      if (!t.text) {
        if (!t.col.querySelector(".cites,.action")) t.row.remove();
        return;
      }
      t.bubble.replaceChildren(renderMarkdown(t.text));
      if (ev.partial) t.col.appendChild(h("div", "partial", this._t("partial")));
      const fb = h("div", "fb");
      const rated = this._ratings[t.id];
      for (const [rating, ic, label] of [["up", "up", "helpful"], ["down", "dn", "not_helpful"]]) {
        const b = this._iconButton(ic, this._t(label), "");
        b.dataset.rating = rating;
        b.setAttribute("aria-pressed", String(rated === rating));
        b.addEventListener("click", () => this._rate(t, rating, fb));
        fb.appendChild(b);
      }
      t.col.appendChild(fb);
      if (!replay) {
        this._announce(this._t("answer_announce", { text: t.bubble.textContent }));
        if (!this._isOpen) this._el.root.classList.add("unread");
        this._emit("answer", { turn_id: t.id, text: t.text, mode: ev.mode, answered: ev.answered, lang: ev.lang });
      }
      this._scroll();
    }

    _rate(t, rating, fb) {
      if (this._ratings[t.id] === rating) return;
      this._ratings[t.id] = rating;
      this._save({ ratings: this._ratings });
      for (const b of fb.querySelectorAll("button")) b.setAttribute("aria-pressed", String(b.dataset.rating === rating));
      let thanks = fb.querySelector(".thanks");
      if (!thanks) {
        thanks = fb.appendChild(h("span", "thanks"));
        thanks.setAttribute("role", "status");
      }
      thanks.textContent = this._t("feedback_thanks");
      this._sendFrame({ type: "feedback", turn_id: t.id, rating });
      this._emit("feedback", { turn_id: t.id, rating });
    }

    _sources(t, items) {
      t.col.querySelector(".cites")?.remove();
      const valid = (items || []).filter((s) => s && s.title);
      if (!valid.length) return;
      const box = h("div", "cites");
      box.setAttribute("role", "list");
      box.setAttribute("aria-label", this._t("sources"));
      box.appendChild(h("span", "cites-label", this._t("sources")));
      valid.slice(0, 4).forEach((s, i) => {
        const href = s.url ? safeUrl(s.url) : null;
        const chip = href ? link(href, box) : box.appendChild(h("span"));
        chip.className = "chip";
        chip.setAttribute("role", "listitem");
        chip.append(h("span", "n", String(i + 1)), h("span", "t", s.title));
        chip.title = s.title;
      });
      const fb = t.col.querySelector(".fb");
      t.col.insertBefore(box, fb && fb.parentNode === t.col ? fb : null);
    }

    // ---- protocol: events
    _onFrame(f) {
      if (!f || typeof f !== "object") return;
      switch (f.type) {
        case "welcome": return this._onWelcome(f);
        case "history":
          this._replaying = true;
          try { for (const ev of f.events || []) this._onEvent(ev, true); } finally { this._replaying = false; }
          this._afterHistory();
          return;
        case "pong": return;
        case "error":
          if (typeof f.seq === "number") return this._onEvent(f, false);
          return this._onError(f);
        default:
          if (typeof f.seq === "number") return this._onEvent(f, false);
      }
    }

    _onWelcome(f) {
      if (this._cid && f.conversation_id !== this._cid) this._resetTranscript();
      else if (!f.resumed && this._lastSeq) this._resetTranscript();
      this._cid = f.conversation_id;
      this._token = f.token;
      this._limits = f.limits || null;
      if (this._limits && this._limits.max_message_chars) this._el.input.maxLength = this._limits.max_message_chars;
      if (f.bot_name && !this._cfg("bot-name", "")) {
        this._botName = f.bot_name;
        if (!this._cfg("title", "")) this._el.title.textContent = f.bot_name;
      }
      this._handoff = f.handoff_state || "bot";
      this._renderHandoff();
      const st = this._load();
      if (st.cid !== this._cid || st.token !== this._token) this._save({ cid: this._cid, token: this._token });
      this._attempt = 0;
      this._setState("online");
      this._keepalive();
      this._welcomed = true;
      this._historyTimer = setTimeout(() => this._afterHistory(), 1500);
    }

    _afterHistory() {
      clearTimeout(this._historyTimer);
      if (!this._welcomed) return;
      this._welcomed = false;
      const last = [...this._turns.values()].pop();
      if (last && !last.done) this._awaiting = last.id;
      for (const m of this._outbox) this._sendFrame({ type: "message", message_id: m.message_id, text: m.text });
      for (const m of this._outbox) {
        this._userBubble(m.message_id, m.text, "pending");
        this._append(this._msgs.get(m.message_id).row); // after the replayed history
      }
      if (this._pendingHuman) this._sendFrame(this._pendingHuman);
      this._updateTyping();
      this._watchStale();
      this._renderStarters();
      this._scroll(true);
    }

    _onEvent(ev, replay) {
      if (typeof ev.seq !== "number" || ev.seq <= this._lastSeq) return;
      this._lastSeq = ev.seq;
      if (ev.type !== "token" && (this._load().seq || 0) < ev.seq) this._save({ seq: ev.seq });
      const tid = ev.turn_id;
      switch (ev.type) {
        case "user_message": {
          const idx = this._outbox.findIndex((m) => m.message_id === ev.message_id);
          if (idx >= 0) { this._outbox.splice(idx, 1); this._save({ outbox: this._outbox }); }
          this._userBubble(ev.message_id, ev.text, null);
          if (tid && this._handoff !== "human" && this._handoff !== "pending_human") this._awaiting = tid; // agents answer in their own time
          this._el.sugs.replaceChildren();
          break;
        }
        case "token": {
          const t = this._turn(tid);
          t.text += ev.text || "";
          if (replay) t.bubble.replaceChildren(renderMarkdown(t.text));
          else this._paint(t);
          break;
        }
        case "sources": this._sources(this._turn(tid), ev.items); break;
        case "suggestions": this._renderSuggestions(ev.items); break;
        case "action": {
          const t = this._turn(tid);
          let a = t.col.querySelector(".action");
          if (!a) { a = h("div", "action"); t.col.insertBefore(a, t.col.children[1] || null); }
          a.replaceChildren(icon(ev.status === "started" ? "clock" : "bolt"), h("span", null, this._t("action_" + ev.status)));
          break;
        }
        case "handoff": {
          if (ev.state) this._handoff = ev.state;
          else this._handoff = "pending_human";
          this._pendingHuman = null;
          this._pendingHumanSent = false;
          if (this._handoff !== "bot") this._el.sugs.replaceChildren();
          this._renderHandoff();
          const msg = this._t("handoff_" + this._handoff);
          this._notice(msg, "handoff", "headset");
          if (!replay) { this._announce(msg); this._emit("handoff", { state: this._handoff, reason: ev.reason }); }
          if (tid === this._awaiting) this._awaiting = null;
          break;
        }
        case "agent_message": {
          const { row, col, bubble } = this._botRow("agent", true);
          const by = h("div", "by", ev.agent_name || this._t("agent"));
          by.appendChild(h("span", null, this._t("agent")));
          col.insertBefore(by, bubble);
          bubble.appendChild(renderMarkdown(ev.text));
          this._append(row);
          if (this._handoff === "pending_human") { this._handoff = "human"; this._renderHandoff(); }
          if (!replay) {
            this._announce(this._t("agent_announce", { agent: ev.agent_name || this._t("agent"), text: bubble.textContent }));
            if (!this._isOpen) this._el.root.classList.add("unread");
            this._emit("agentmessage", { text: ev.text, agent_name: ev.agent_name });
          }
          break;
        }
        case "done": {
          const t = this._turn(tid, !!this._turns.get(tid));
          if (t) this._finish(t, ev, replay);
          if (tid === this._awaiting) this._awaiting = null;
          break;
        }
        case "error": {
          const t = tid && this._turns.get(tid);
          const n = this._errorText(ev);
          if (t) { t.col.appendChild(h("div", "partial", n)); }
          else this._notice(n, "error");
          if (tid === this._awaiting) this._awaiting = null;
          break;
        }
        default: break;
      }
      this._updateTyping();
      this._watchStale();
    }

    /** A turn that gets no event for STALE_MS while online (its server task died) stops its
     * caret and is marked as interrupted, so the transcript never looks stuck. */
    _watchStale() {
      clearTimeout(this._timers.stale);
      if (![...this._turns.values()].some((t) => !t.done)) return;
      this._timers.stale = setTimeout(() => {
        if (this._state !== "online") { this._watchStale(); return; }
        for (const t of this._turns.values()) if (!t.done) this._finish(t, { partial: true }, true);
        this._awaiting = null;
        this._updateTyping();
      }, STALE_MS);
    }

    _errorText(f) {
      const key = "error_" + f.code;
      return this._s[key] ? this._t(key, { s: f.retry_after || 1 }) : this._t("error_generic");
    }

    _onError(f) {
      if (f.code === "bad_token") { this._cid = this._token = null; return; }
      if (f.code === "origin_not_allowed") { this._setState("blocked"); return; }
      if (f.code === "rate_limited" || f.code === "not_ready") {
        this._notice(this._errorText(f), "error");
        clearTimeout(this._timers.flush);
        this._timers.flush = setTimeout(() => this._afterHistoryFlush(), (f.retry_after || (f.code === "not_ready" ? 5 : 2)) * 1000);
      } else if (f.code === "message_too_long" || f.code === "empty_message") {
        const i = Math.max(0, this._outbox.findIndex((o) => o.message_id === f.message_id));
        const m = this._outbox.splice(i, 1)[0];
        this._save({ outbox: this._outbox });
        if (m) this._userBubble(m.message_id, m.text, "failed");
        this._notice(this._errorText(f), "error");
      } else if (f.code !== "hello_required") {
        this._notice(this._errorText(f), "error");
      }
      this._updateTyping();
      this._emit("error", { code: f.code, message: f.message });
    }

    _afterHistoryFlush() {
      if (this._state !== "online") return;
      for (const m of this._outbox) this._sendFrame({ type: "message", message_id: m.message_id, text: m.text });
    }

    _submit() {
      const i = this._el.input;
      if (!i.value.trim()) return;
      if (this.send(i.value)) {
        i.value = "";
        this._autosize();
      }
    }

    _streaming() { return [...this._turns.values()].some((t) => !t.done) || this._outbox.length > 0; }

    // ---- connection
    _setState(s, retryIn) {
      this._state = s;
      const { head, status, offline } = this._el;
      head.className = "head st-" + s;
      const txt = status.querySelector(".stxt");
      txt.textContent = s === "online" ? this._t("status_online")
        : s === "offline" ? (retryIn ? this._t("status_offline", { s: Math.ceil(retryIn / 1000) }) : this._t("status_offline_now"))
        : s === "blocked" ? this._t("status_blocked") : this._t("status_connecting");
      offline.classList.toggle("show", s === "offline" || (s === "connecting" && this._attempt > 0));
      for (const m of this._outbox) this._userBubble(m.message_id, m.text, s === "online" ? "pending" : "queued");
      this._updateTyping();
      this._emit("connection", { state: s });
    }

    _connect() {
      if (this._ws || this._state === "blocked") return;
      clearTimeout(this._timers.retry);
      clearInterval(this._timers.tick);
      this._setState("connecting");
      let ws;
      try { ws = new WebSocket(this._wsUrl); } catch (e) { this._scheduleRetry(); return; }
      this._ws = ws;
      ws.onopen = () => {
        const hello = { type: "hello", v: 1, widget_version: VERSION, last_seq: this._lastSeq, lang: this.lang_ };
        if (this._cid && this._token) { hello.conversation_id = this._cid; hello.token = this._token; }
        ws.send(JSON.stringify(hello));
      };
      ws.onmessage = (e) => {
        if (ws !== this._ws) return;
        this._onFrame(parseJSON(typeof e.data === "string" ? e.data : ""));
      };
      ws.onclose = () => {
        if (ws !== this._ws) return;
        this._ws = null;
        this._welcomed = false;
        for (const t of this._turns.values()) if (t.raf) { cancelAnimationFrame(t.raf); t.raf = 0; t.bubble.replaceChildren(renderMarkdown(t.text)); }
        if (this._state === "blocked") return;
        if (this._wantConnection()) this._scheduleRetry();
        else this._setState("idle");
      };
    }

    _wantConnection() {
      return this._isOpen || this._outbox.length > 0 || this._streaming() || this._handoff !== "bot" || !!this._pendingHuman;
    }

    _scheduleRetry() {
      const exp = Math.min(BACKOFF_CAP, BACKOFF_BASE * Math.pow(2, this._attempt++));
      const delay = Math.round(exp / 2 + Math.random() * exp / 2);
      this._retryAt = Date.now() + delay;
      this._setState("offline", delay);
      clearInterval(this._timers.tick);
      this._timers.tick = setInterval(() => {
        const left = this._retryAt - Date.now();
        if (left > 0 && this._state === "offline") this._setState("offline", left);
      }, 1000);
      this._timers.retry = setTimeout(() => { clearInterval(this._timers.tick); this._connect(); }, delay);
    }

    _reconnectNow() {
      clearTimeout(this._timers.retry);
      clearInterval(this._timers.tick);
      this._connect();
    }

    _resync() {
      const ws = this._ws;
      this._ws = null;
      if (ws) { ws.onclose = null; ws.close(1000); }
      this._connect();
    }

    _stop() {
      const ws = this._ws;
      this._ws = null;
      if (ws) { ws.onclose = null; ws.close(1000); }
      for (const k of Object.keys(this._timers)) { clearTimeout(this._timers[k]); clearInterval(this._timers[k]); }
      this._attempt = 0;
      if (this._el) this._setState("idle");
    }

    _keepalive() {
      clearInterval(this._timers.ping);
      this._timers.ping = setInterval(() => {
        if (this._isOpen || this._handoff !== "bot" || this._streaming()) this._sendFrame({ type: "ping" });
      }, KEEPALIVE_MS);
    }

    _sendFrame(obj) {
      const ws = this._ws;
      if (!ws || ws.readyState !== 1) return false;
      ws.send(JSON.stringify(obj));
      if (obj.type === "request_human") this._pendingHumanSent = true;
      return true;
    }

    /** Another tab changed the conversation: adopt its id; after a "new conversation" there,
     * wait briefly for that tab's new id instead of racing it with a second new conversation. */
    _syncFromStorage() {
      const st = this._load();
      if ((st.cid || null) === this._cid) return;
      this._stop();
      this._cid = st.cid || null;
      this._token = st.token || null;
      this._outbox = Array.isArray(st.outbox) ? st.outbox : [];
      this._ratings = st.ratings || {};
      this._resetTranscript();
      clearTimeout(this._timers.adopt);
      if (this._cid) { if (this._isOpen) this._connect(); }
      else this._timers.adopt = setTimeout(() => { if (this._isOpen) this._connect(); }, 1500);
    }

    _emit(name, detail) {
      this.dispatchEvent(new CustomEvent("klartext:" + name, { detail: detail || {}, bubbles: true, composed: true }));
    }
  }

  customElements.define(TAG, KlartextChat);
  window.Klartext = Object.freeze({
    version: VERSION,
    renderMarkdown,
    safeUrl,
    get element() { return document.querySelector(TAG); },
  });

  // ------------------------------------------------------------------ auto-mount from the <script> tag
  function mount() {
    if (document.querySelector(TAG) || (SCRIPT && SCRIPT.hasAttribute("data-no-mount"))) return;
    const el = document.createElement(TAG);
    if (SCRIPT) {
      for (const a of SCRIPT.attributes) if (a.name.startsWith("data-")) el.setAttribute(a.name, a.value);
    }
    document.body.appendChild(el);
  }
  if (document.body) mount();
  else document.addEventListener("DOMContentLoaded", mount);
})();
