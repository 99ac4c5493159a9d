/*
 * Protostar's chat widget. A blog embeds it with one tag:
 *
 *   <script src="https://HOST/widget.js" data-chatbot="SLUG" async></script>
 *   optional: data-lang="ko|en", data-theme="light|dark|auto", data-open (start opened)
 *
 * It is one classic script (blogs load it with a plain <script>), with no dependencies and
 * no third-party requests. Everything it draws lives in a shadow root styled through a
 * constructed stylesheet, so that the blog's CSS cannot break it, it cannot break the blog,
 * and it runs under a strict host-page CSP (no inline script or style, connections to this
 * host only). The API host is the origin of the script's own URL.
 *
 * The chat page (/c/SLUG) uses the same script with data-mode="page": no launcher, the panel
 * fills data-target, and the page drives sign-in and history through the controller it gets
 * in the `protostar:widget` event.
 */
(() => {
  "use strict";
  const script = document.currentScript;
  if (!script || !script.dataset.chatbot) return;
  const api = new URL(script.src, location.href).origin;
  const slug = script.dataset.chatbot;
  const pageMode = script.dataset.mode === "page";
  const lang = (script.dataset.lang || document.documentElement.lang || navigator.language || "en")
    .toLowerCase().startsWith("ko") ? "ko" : "en";
  const theme = ["light", "dark"].includes(script.dataset.theme) ? script.dataset.theme : "auto";

  const STRINGS = {
    en: {
      launcher: "Ask me", open: "Open the chat", close: "Close the chat", title: "Chat",
      label: "Your question", placeholder: "Ask a question…", send: "Send",
      left: (n) => (n === 1 ? "1 question left" : `${n} questions left`),
      quota: (limit) => `You have used your ${limit} free questions.`,
      quotaDay: (limit) => `You have used today's ${limit} questions.`,
      resets: (t) => ` They come back ${t}.`,
      signIn: "Sign up or sign in to keep asking",
      refused: (o) => `This chatbot does not answer on this site (${o}). If it is yours, add this site to its allowed origins in the Protostar dashboard.`,
      offline: "The chatbot cannot be reached right now. Try again in a moment.",
      cut: "The answer was cut off. Ask again in a moment.",
      missing: "This chatbot does not exist.",
      busy: (s) => `Too many questions at once; try again in ${s} seconds.`,
      failed: "Something went wrong",
      sources: "Sources", unsupported: "No document supports an answer to this.",
      up: "Helpful", down: "Not helpful", comment: "What was wrong? (optional)",
      thanks: "Thanks for the feedback.", skip: "Send",
      thinking: "Thinking…", powered: "Protostar",
    },
    ko: {
      launcher: "질문하기", open: "채팅 열기", close: "채팅 닫기", title: "채팅",
      label: "질문", placeholder: "궁금한 점을 물어보세요…", send: "보내기",
      left: (n) => `남은 질문 ${n}개`,
      quota: (limit) => `무료 질문 ${limit}개를 모두 사용했습니다.`,
      quotaDay: (limit) => `오늘의 질문 ${limit}개를 모두 사용했습니다.`,
      resets: (t) => ` ${t}에 다시 채워집니다.`,
      signIn: "가입하거나 로그인하고 계속 질문하기",
      refused: (o) => `이 챗봇은 이 사이트(${o})에서 답하지 않습니다. 챗봇의 주인이라면 Protostar 대시보드에서 이 사이트를 허용된 출처에 추가하세요.`,
      offline: "지금은 챗봇에 연결할 수 없습니다. 잠시 후 다시 시도하세요.",
      cut: "답변이 중간에 끊겼습니다. 잠시 후 다시 물어보세요.",
      missing: "없는 챗봇입니다.",
      busy: (s) => `요청이 너무 많습니다. ${s}초 뒤에 다시 시도하세요.`,
      failed: "문제가 생겼습니다",
      sources: "출처", unsupported: "이 질문에 답할 근거가 되는 문서가 없습니다.",
      up: "도움이 됐어요", down: "도움이 안 됐어요", comment: "무엇이 틀렸나요? (선택)",
      thanks: "의견 고맙습니다.", skip: "보내기",
      thinking: "생각하는 중…", powered: "Protostar",
    },
  };
  const t = STRINGS[lang];

  const CSS = `
:host{all:initial;--accent:#5b4cdb;--bg:#fff;--fg:#1d1d28;--muted:#5d5d70;--line:#dcdce6;--bubble:#f1f1f7;
 font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Noto Sans KR","Apple SD Gothic Neo",sans-serif;color:var(--fg)}
:host([data-theme=dark]){--bg:#1b1b24;--fg:#ececf3;--muted:#a9a9bc;--line:#3a3a4a;--bubble:#2a2a37}
@media (prefers-color-scheme:dark){:host([data-theme=auto]){--bg:#1b1b24;--fg:#ececf3;--muted:#a9a9bc;--line:#3a3a4a;--bubble:#2a2a37}}
*{box-sizing:border-box}
[hidden]{display:none!important}
button,textarea,input{font:inherit;color:inherit}
:focus-visible{outline:3px solid var(--accent);outline-offset:2px}
.launcher{position:fixed;right:20px;bottom:20px;z-index:2147483646;display:flex;align-items:center;gap:8px;
 border:0;border-radius:999px;padding:12px 18px;background:var(--accent);color:#fff;cursor:pointer;
 box-shadow:0 4px 16px rgba(0,0,0,.25);font-weight:600}
.launcher svg{width:20px;height:20px;fill:currentColor}
.panel{position:fixed;right:20px;bottom:84px;z-index:2147483647;width:min(400px,calc(100vw - 24px));
 height:min(600px,calc(100vh - 110px));display:flex;flex-direction:column;background:var(--bg);
 border:1px solid var(--line);border-radius:14px;box-shadow:0 10px 40px rgba(0,0,0,.3);overflow:hidden}
.page .panel{position:static;width:100%;height:100%;border-radius:10px;box-shadow:none}
header{display:flex;align-items:center;gap:8px;padding:12px 14px;background:var(--accent);color:#fff}
h2{flex:1;margin:0;font-size:16px;font-weight:650;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
.x{border:0;background:transparent;color:#fff;font-size:22px;line-height:1;cursor:pointer;padding:2px 8px;border-radius:6px}
.log{flex:1;overflow-y:auto;padding:14px;display:flex;flex-direction:column;gap:10px}
.msg{max-width:88%;padding:9px 12px;border-radius:12px;white-space:pre-wrap;overflow-wrap:anywhere}
.me{align-self:flex-end;background:var(--accent);color:#fff;border-bottom-right-radius:4px}
.bot{align-self:flex-start;background:var(--bubble);border-bottom-left-radius:4px}
.bot.streaming .text:empty::after{content:attr(data-wait);color:var(--muted)}
.note{color:var(--muted);font-size:13px;margin:6px 0 0}
ol{margin:8px 0 0;padding:0;list-style:none;white-space:normal}
li{margin-top:4px;font-size:13px}
summary{cursor:pointer;color:var(--muted)}
summary b{color:var(--fg)}
blockquote{margin:6px 0 2px;padding:6px 10px;border-left:3px solid var(--accent);background:var(--bg);white-space:pre-wrap}
.fb{display:flex;gap:6px;margin-top:8px;white-space:normal;flex-wrap:wrap;align-items:center}
.fb button{border:1px solid var(--line);background:var(--bg);border-radius:8px;padding:3px 8px;cursor:pointer;line-height:0}
.fb svg{width:15px;height:15px;fill:var(--muted)}
.fb .down svg{transform:rotate(180deg)}
.fb button:not(.up):not(.down){line-height:1.4}
.fb button[aria-pressed=true]{border-color:var(--accent);background:var(--accent);color:#fff}
.fb input{flex:1;min-width:120px;border:1px solid var(--line);border-radius:8px;padding:3px 8px;background:var(--bg)}
.status{margin:0;padding:6px 14px;font-size:13px;color:var(--muted);border-top:1px solid var(--line)}
.status:empty{display:none}
.alert{margin:0 14px 10px;padding:10px 12px;border-radius:10px;background:#fff4e5;color:#5a3600;font-size:14px;white-space:normal}
.alert a{color:inherit;font-weight:650}
form{display:flex;gap:8px;padding:10px;border-top:1px solid var(--line)}
textarea{flex:1;resize:none;border:1px solid var(--line);border-radius:10px;padding:8px 10px;background:var(--bg);min-height:42px;max-height:120px}
.send{border:0;border-radius:10px;padding:0 14px;background:var(--accent);color:#fff;cursor:pointer;font-weight:600}
.send:disabled,textarea:disabled{opacity:.55;cursor:not-allowed}
.sr{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap}
.foot{margin:0;padding:0 14px 8px;font-size:11px;color:var(--muted);text-align:right}
@media (prefers-reduced-motion:no-preference){.panel{animation:in .16s ease-out}@keyframes in{from{opacity:0;transform:translateY(8px)}}}
`;

  /** A DOM element with attributes and children; text is always set as text, never markup. */
  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === false || v == null) continue;
      if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v === true ? "" : v);
    }
    e.append(...children.filter((c) => c != null && c !== false));
    return e;
  }

  const state = {
    name: "", greeting: "", conversationId: null, busy: false, blocked: false,
    tokenProvider: guestToken, profileLoaded: null, greeted: false,
  };

  // ---- the DOM: painted at once, before any request ---------------------------------------
  const host = document.createElement("protostar-chat");
  host.setAttribute("data-theme", theme);
  const root = host.attachShadow({ mode: "open" });
  try {
    const sheet = new CSSStyleSheet();
    sheet.replaceSync(CSS);
    root.adoptedStyleSheets = [sheet];
  } catch {
    // Browsers without constructable stylesheets (before 2023) get an unstyled but working widget.
  }
  const uid = Math.random().toString(36).slice(2, 8);
  /** A one-path icon (no emoji: not every system has a font for them). */
  function svgIcon(d) {
    const icon = document.createElementNS("http://www.w3.org/2000/svg", "svg");
    icon.setAttribute("viewBox", "0 0 24 24");
    icon.setAttribute("aria-hidden", "true");
    const path = document.createElementNS("http://www.w3.org/2000/svg", "path");
    path.setAttribute("d", d);
    icon.append(path);
    return icon;
  }
  const thumbIcon = () => svgIcon("M2 10h4v11H2zM8 21h9.3a2 2 0 0 0 2-1.6l1.4-7A2 2 0 0 0 18.7 10H14V5.5A2.5 2.5 0 0 0 11.5 3L8 10z");
  const icon = svgIcon("M4 4h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H9l-5 4v-4H4a2 2 0 0 1-2-2V6a2 2 0 0 1 2-2z");
  const launcherText = el("span", {}, t.launcher);
  const launcher = el("button", {
    // Its visible text is its name (speech users say what they see); aria-expanded says the rest.
    class: "launcher", type: "button", "aria-expanded": "false", "aria-controls": `p-${uid}`,
    title: t.open, onclick: () => (panel.hidden ? open() : close()),
  }, icon, launcherText);
  const title = el("h2", { id: `t-${uid}` }, t.title);
  const closeBtn = el("button", { class: "x", type: "button", "aria-label": t.close, onclick: () => close() }, "×");
  const log = el("div", { class: "log", role: "log", "aria-live": "polite", "aria-relevant": "additions text" });
  const status = el("p", { class: "status", role: "status" });
  const alertBox = el("div", { class: "alert", role: "alert", hidden: true });
  const input = el("textarea", {
    id: `q-${uid}`, rows: "2", maxlength: "2000", placeholder: t.placeholder, autocomplete: "off",
  });
  const sendBtn = el("button", { class: "send", type: "submit" }, t.send);
  const form = el("form", { onsubmit: (e) => { e.preventDefault(); ask(); } },
    el("label", { class: "sr", for: `q-${uid}` }, t.label), input, sendBtn);
  const panel = el("section", {
    class: "panel", id: `p-${uid}`, role: pageMode ? "region" : "dialog", "aria-labelledby": `t-${uid}`, hidden: !pageMode,
  }, el("header", {}, title, pageMode ? null : closeBtn), log, alertBox, status, form,
  el("p", { class: "foot" }, t.powered));
  const frame = el("div", { class: pageMode ? "page" : "float", lang });
  frame.append(...(pageMode ? [panel] : [launcher, panel]));
  root.append(frame);

  input.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) { e.preventDefault(); ask(); }
  });
  panel.addEventListener("keydown", (e) => {
    if (e.key === "Escape" && !pageMode) { e.stopPropagation(); close(); }
  });

  function mount() {
    const target = pageMode && script.dataset.target ? document.querySelector(script.dataset.target) : null;
    (target || document.body).append(host);
    if (pageMode) {
      host.style.display = "block";
      host.style.height = "100%";
    }
    setTimeout(loadProfile, 0);
    if (pageMode || script.hasAttribute("data-open")) open(false);
  }
  if (document.body) mount();
  else document.addEventListener("DOMContentLoaded", mount, { once: true });

  function open(focus = true) {
    panel.hidden = false;
    launcher.setAttribute("aria-expanded", "true");
    loadProfile();
    // On the chat page the page hands over its tokens first (setTokenProvider asks then).
    if (!state.started && !pageMode) {
      state.started = true;
      refreshQuota();
    }
    if (focus) input.focus();
  }

  function close() {
    panel.hidden = true;
    launcher.setAttribute("aria-expanded", "false");
    launcher.focus();
  }

  // ---- the API ------------------------------------------------------------------------------
  const storageKey = `protostar:guest:${api}`;
  let remembered = null;
  let minting = null;
  function stored() {
    try { return JSON.parse(localStorage.getItem(storageKey) || "null") || remembered; } catch { return remembered; }
  }

  /**
   * A guest token, kept in this site's localStorage (in memory where storage is refused) until
   * shortly before it expires. One at a time: two at once would be two guests, each with a share
   * of the questions.
   */
  function guestToken(renew) {
    const saved = stored();
    if (!renew && saved && saved.token && saved.exp > Date.now() + 30000) return Promise.resolve(saved.token);
    minting = minting || (async () => {
      const res = await request("/api/auth/guest", { method: "POST" }, false);
      const body = await res.json();
      remembered = { token: body.accessToken, exp: Date.now() + (body.expiresIn || 600) * 1000 };
      try { localStorage.setItem(storageKey, JSON.stringify(remembered)); } catch { /* private mode: memory only */ }
      return remembered.token;
    })().finally(() => { minting = null; });
    return minting;
  }

  class Refused extends Error {}
  class Failed extends Error {
    constructor(problem, status) { super(problem.detail || problem.title || String(status)); this.problem = problem; this.status = status; }
  }

  /** fetch against the API; a network failure or a CORS refusal becomes `Refused`, a problem `Failed`. */
  async function request(path, init = {}, auth = true, retried = false) {
    const headers = new Headers(init.headers || {});
    if (auth) headers.set("Authorization", `Bearer ${await state.tokenProvider(false)}`);
    let res;
    try {
      res = await fetch(api + path, { ...init, headers, credentials: "omit", mode: "cors" });
    } catch {
      throw new Refused();
    }
    if (res.status === 401 && auth && !retried) {
      await state.tokenProvider(true);
      return request(path, init, auth, true);
    }
    if (!res.ok) {
      let problem = {};
      try { problem = await res.json(); } catch { /* not a problem body */ }
      throw new Failed(problem, res.status);
    }
    return res;
  }

  async function loadProfile() {
    if (state.profileLoaded) return state.profileLoaded;
    state.profileLoaded = (async () => {
      try {
        const bot = await (await request(`/api/chatbots/${encodeURIComponent(slug)}`, {}, false)).json();
        state.name = bot.name || "";
        state.greeting = bot.greeting || "";
        title.textContent = state.name || t.title;
        launcherText.textContent = state.name ? `${t.launcher} · ${state.name}` : t.launcher;
        const accent = bot.theme && bot.theme.accent;
        if (typeof accent === "string" && /^#[0-9a-f]{3,8}$/i.test(accent)) host.style.setProperty("--accent", accent);
        greet();
      } catch (e) {
        state.profileLoaded = null;
        fail(e);
      }
    })();
    return state.profileLoaded;
  }

  function greet() {
    if (state.greeted || !state.greeting || log.childElementCount) return;
    state.greeted = true;
    log.append(el("div", { class: "msg bot greeting" }, el("span", { class: "text" }, state.greeting)));
  }

  async function refreshQuota() {
    try {
      const q = await (await request(`/api/chatbots/${encodeURIComponent(slug)}/quota`)).json();
      showQuota(q);
      // A visitor back with nothing left is told at once rather than after typing a question.
      if (q.remaining === 0) quotaSpent(q);
    } catch (e) {
      fail(e);
    }
  }

  function showQuota(q) {
    if (!q) return;
    if (q.period) state.period = q.period;
    status.textContent = typeof q.remaining === "number" ? t.left(q.remaining) : "";
  }

  function quotaSpent(p) {
    const limit = p.limit ?? 3;
    // A refusal that ends (a stargazer's day, a guest address's day) says when; a guest's total does not.
    const daily = Boolean(p.resetsAt) || (p.period || state.period) === "day";
    let text = daily ? t.quotaDay(limit) : t.quota(limit);
    if (p.resetsAt) {
      const when = new Date(p.resetsAt);
      if (!Number.isNaN(when.getTime())) text += t.resets(when.toLocaleString(lang === "ko" ? "ko-KR" : "en-US", { dateStyle: "medium", timeStyle: "short" }));
    }
    // Signing in helps a guest only; a signed-in visitor waits for the reset.
    const guest = state.tokenProvider === guestToken;
    const link = guest ? el("a", { href: `${api}/c/${encodeURIComponent(slug)}#sign-in`, target: pageMode ? null : "_blank", rel: "noopener" }, t.signIn) : null;
    showAlert(text, ...(link ? [" ", link] : []));
    block(true);
    status.textContent = t.left(0);
    host.dispatchEvent(new CustomEvent("protostar:quota", { bubbles: true, composed: true, detail: p }));
  }

  function block(on) {
    state.blocked = on;
    input.disabled = on;
    sendBtn.disabled = on;
  }

  function showAlert(...parts) {
    alertBox.replaceChildren(...parts);
    alertBox.hidden = false;
  }

  /** Every failure ends here, as a sentence the visitor can act on. */
  function fail(e) {
    // Once the chatbot has answered here, a failed call means the network, not a refusal.
    if (e instanceof Refused && state.name) return showAlert(t.offline);
    if (e instanceof TypeError) return showAlert(t.cut);
    if (e instanceof Refused || (e instanceof Failed && e.status === 403)) {
      showAlert(navigator.onLine === false ? t.offline : t.refused(location.origin));
      block(true);
      return;
    }
    if (!(e instanceof Failed)) {
      showAlert(`${t.failed}: ${e && e.message ? e.message : e}`);
      return;
    }
    const kind = String(e.problem.type || "").split("/").pop();
    if (kind === "quota-exceeded") return quotaSpent(e.problem);
    if (kind === "rate-limited") return showAlert(t.busy(e.problem.retryAfter || 5));
    if (e.status === 404 && !state.name) { block(true); return showAlert(t.missing); }
    showAlert(`${t.failed}: ${e.message}`);
  }

  // ---- asking -------------------------------------------------------------------------------
  async function ask() {
    const question = input.value.trim();
    if (!question || state.busy || state.blocked) return;
    state.busy = true;
    sendBtn.disabled = true;
    alertBox.hidden = true;
    input.value = "";
    greet();
    log.append(el("div", { class: "msg me" }, question));
    const turn = answerBubble();
    turn.box.classList.add("streaming");
    log.append(turn.box);
    log.setAttribute("aria-busy", "true");
    scroll();
    try {
      const body = { question };
      if (state.conversationId) body.conversationId = state.conversationId;
      const res = await request(`/api/chatbots/${encodeURIComponent(slug)}/ask`, {
        method: "POST",
        headers: { "Content-Type": "application/json", Accept: "text/event-stream" },
        body: JSON.stringify(body),
      });
      if ((res.headers.get("content-type") || "").includes("text/event-stream")) {
        let done = false;
        for await (const ev of events(res.body)) {
          let data;
          try { data = JSON.parse(ev.data); } catch { continue; }
          if (ev.event === "token") { turn.text.append(data.text || ""); scroll(); }
          else if (ev.event === "citation") turn.cite(data);
          else if (ev.event === "done") { done = true; finish(turn, data); }
          else if (ev.event === "error") throw new Failed(data, data.status || 500);
        }
        // The connection closed before the answer said it was complete.
        if (!done) showAlert(t.cut);
      } else {
        // A JSON answer (a proxy that does not stream): the same, all at once.
        const data = await res.json();
        turn.text.append(data.answer || "");
        (data.citations || []).forEach(turn.cite);
        finish(turn, data);
      }
    } catch (e) {
      if (!turn.text.textContent) turn.box.remove();
      if (!turn.text.textContent && log.lastElementChild && log.lastElementChild.classList.contains("me")) {
        input.value = question;
      }
      fail(e);
    } finally {
      turn.box.classList.remove("streaming");
      log.setAttribute("aria-busy", "false");
      state.busy = false;
      if (!state.blocked) sendBtn.disabled = false;
      scroll();
    }
  }

  function finish(turn, done) {
    if (done.conversationId) state.conversationId = done.conversationId;
    if (done.supported === false && !turn.count()) turn.box.append(el("p", { class: "note" }, t.unsupported));
    if (done.answerId) turn.feedback(done.answerId, null);
    if (done.quota) showQuota(done.quota);
    host.dispatchEvent(new CustomEvent("protostar:answered", {
      bubbles: true, composed: true, detail: { conversationId: state.conversationId, answerId: done.answerId },
    }));
  }

  function scroll() {
    log.scrollTop = log.scrollHeight;
  }

  /** Server-sent events from a fetch body: `{event, data}` for each block. */
  async function* events(body) {
    const reader = body.pipeThrough(new TextDecoderStream()).getReader();
    let buf = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += value;
      buf = buf.replace(/\r\n?/g, "\n");
      let end;
      while ((end = buf.indexOf("\n\n")) >= 0) {
        const block = buf.slice(0, end);
        buf = buf.slice(end + 2);
        let event = "message";
        const data = [];
        for (const line of block.split("\n")) {
          if (!line || line.startsWith(":")) continue;
          const colon = line.indexOf(":");
          const field = colon < 0 ? line : line.slice(0, colon);
          let value = colon < 0 ? "" : line.slice(colon + 1);
          if (value.startsWith(" ")) value = value.slice(1);
          if (field === "event") event = value;
          else if (field === "data") data.push(value);
        }
        if (data.length) yield { event, data: data.join("\n") };
      }
    }
  }

  /** One answer's bubble: its text, its citations (each expandable) and its feedback. */
  function answerBubble() {
    const text = el("span", { class: "text", "data-wait": t.thinking });
    const list = el("ol", { "aria-label": t.sources, hidden: true });
    const box = el("div", { class: "msg bot" }, text, list);
    return {
      box, text,
      count: () => list.childElementCount,
      cite(c) {
        if (!c || list.querySelector(`[data-n="${Number(c.n)}"]`)) return;
        list.hidden = false;
        const where = [c.documentTitle, c.location].filter(Boolean).join(" · ");
        list.append(el("li", { "data-n": String(Number(c.n)) }, el("details", {},
          el("summary", {}, el("b", {}, `[${c.n}] `), where),
          el("blockquote", {}, c.quote || ""))));
      },
      feedback(answerId, given) {
        const bar = el("div", { class: "fb" });
        const send = async (rating, comment) => {
          try {
            await request(`/api/answers/${encodeURIComponent(answerId)}/feedback`, {
              method: "POST", headers: { "Content-Type": "application/json" },
              body: JSON.stringify(comment ? { rating, comment } : { rating }),
            });
            bar.replaceChildren(el("span", { class: "note" }, t.thanks));
          } catch (e) { fail(e); }
        };
        const thumb = (rating, label) => el("button", {
          type: "button", "aria-label": label, title: label, "aria-pressed": given && given.rating === rating ? "true" : "false",
          onclick: () => {
            if (rating === "up") return send("up");
            const note = el("input", { type: "text", maxlength: "1000", "aria-label": t.comment, placeholder: t.comment });
            const go = el("button", { type: "button", onclick: () => send("down", note.value.trim()) }, t.skip);
            note.addEventListener("keydown", (e) => { if (e.key === "Enter") { e.preventDefault(); go.click(); } });
            bar.replaceChildren(note, go);
            note.focus();
          },
          class: rating,
        }, thumbIcon());
        if (given) bar.append(el("span", { class: "note" }, given.rating === "up" ? t.up : t.down, given.comment ? `: ${given.comment}` : ""));
        else bar.append(thumb("up", t.up), thumb("down", t.down));
        box.append(bar);
      },
    };
  }

  // ---- the chat page's controller ------------------------------------------------------------
  if (pageMode) {
    const controller = {
      /** `provider(renew)` resolves to an access token; `null` returns to guest tokens. */
      setTokenProvider(provider) {
        state.tokenProvider = provider || guestToken;
        alertBox.hidden = true;
        block(false);
        refreshQuota();
      },
      /** Shows a stored conversation and continues it. */
      show(conversation) {
        log.replaceChildren();
        alertBox.hidden = true;
        state.conversationId = conversation ? conversation.id : null;
        state.greeted = false;
        if (!conversation) return greet();
        state.greeted = true;
        for (const turn of conversation.turns || []) {
          log.append(el("div", { class: "msg me" }, turn.question));
          const b = answerBubble();
          b.text.append(turn.answer || "");
          (turn.citations || []).forEach(b.cite);
          if (turn.supported === false && !b.count()) b.box.append(el("p", { class: "note" }, t.unsupported));
          if (turn.answerId) b.feedback(turn.answerId, turn.feedback);
          log.append(b.box);
        }
        scroll();
      },
      focus: () => input.focus(),
    };
    const announce = () => document.dispatchEvent(new CustomEvent("protostar:widget", { detail: controller }));
    // The page may load after us or before us: answer its request too.
    document.addEventListener("protostar:widget-request", announce);
    announce();
  }
})();
