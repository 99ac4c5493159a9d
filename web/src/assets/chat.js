// The chat page, /c/SLUG: the chatbot's public profile, the chat itself (the widget in page
// mode, so both behave the same), sign-up and sign-in, and the signed-in visitor's history.
// `?conversation=ID` opens one of the visitor's own conversations (a link its owner can share
// with themselves across devices).

import { api, ApiError, session, signOut, token, refresh } from "./api.js";
import { authForm } from "./auth.js";
import { $, date, el } from "./dom.js";
import { lang, t, toggleLang } from "./i18n.js";
import { loadWidget } from "./widget-loader.js";

const slug = decodeURIComponent(location.pathname.replace(/^\/c\//, "").replace(/\/$/, ""));
const params = new URLSearchParams(location.search);
let widget = null;
let bot = null;

function start() {
  document.addEventListener("protostar:widget", (e) => {
    if (widget) return;
    widget = e.detail;
    signedInChanged();
  });
  document.addEventListener("protostar:answered", () => loadHistory());
  document.addEventListener("protostar:quota", () => {
    if (!session.get()) showAuth("up");
  });
  loadWidget({ chatbot: slug, mode: "page", target: "#chat", lang });
  loadProfile();
  drawAccount();
  if (location.hash === "#sign-in" && !session.get()) showAuth("up");
}

async function loadProfile() {
  const box = $("#profile");
  try {
    bot = await api(`/api/chatbots/${encodeURIComponent(slug)}`, { auth: false });
    document.title = `${bot.name} · Protostar`;
    box.replaceChildren(
      el("h1", {}, bot.name),
      bot.owner && bot.owner.displayName ? el("p", { class: "muted" }, t("by", bot.owner.displayName)) : null,
      bot.greeting ? el("p", { class: "greeting" }, bot.greeting) : null,
    );
  } catch (e) {
    box.replaceChildren(el("h1", {}, slug), el("p", { class: "muted" }, e instanceof ApiError && e.status === 404 ? t("notFound") : e.message));
  }
}

function drawAccount() {
  const nav = $("#account");
  const s = session.get();
  const langBtn = el("button", { type: "button", class: "link", onclick: toggleLang }, t("language"));
  if (!s) {
    nav.replaceChildren(langBtn, el("button", { type: "button", class: "link", onclick: () => showAuth("in") }, t("signIn")));
    return;
  }
  nav.replaceChildren(...[
    langBtn,
    s.role === "protostar" || s.role === "admin" ? el("a", { href: "/dashboard" }, t("dashboard")) : null,
    el("button", {
      type: "button", class: "link",
      onclick: async () => { await signOut(); signedInChanged(); },
    }, t("signOut")),
  ].filter(Boolean));
}

function showAuth(mode) {
  const box = $("#auth");
  box.hidden = false;
  authForm(box, () => {
    box.hidden = true;
    history.replaceState(null, "", location.pathname + location.search);
    signedInChanged();
  }, { startWith: mode });
  box.prepend(el("p", { class: "muted" }, t("signInToKeep")));
  $("input", box).focus();
}

/** The session changed (or the widget just arrived): give the widget the right tokens. */
async function signedInChanged() {
  drawAccount();
  if (!widget) return;
  if (session.get()) {
    $("#auth").hidden = true;
    widget.setTokenProvider(async (renew) => (renew ? (await refresh()).accessToken : token()));
    await loadHistory();
    const id = params.get("conversation");
    if (id) openConversation(id);
  } else {
    widget.setTokenProvider(null);
    widget.show(null);
    $("#history").hidden = true;
  }
}

async function loadHistory() {
  if (!session.get()) return;
  const box = $("#history");
  box.hidden = false;
  let list = [];
  try {
    list = (await api("/api/conversations")).conversations || [];
  } catch (e) {
    box.replaceChildren(el("p", { class: "muted" }, e.message));
    return;
  }
  const mine = list.filter((c) => !c.chatbot || c.chatbot.slug === slug);
  box.replaceChildren(
    el("h2", {}, t("conversations")),
    el("button", { type: "button", onclick: () => { openConversation(null); } }, t("newConversation")),
    mine.length
      ? el("ul", { class: "conversations" }, mine.map((c) => el("li", {},
        el("a", {
          href: `?conversation=${encodeURIComponent(c.id)}`,
          onclick: (e) => { e.preventDefault(); openConversation(c.id); },
        }, c.firstQuestion || c.id),
        el("small", { class: "muted" }, ` ${t("questions", c.questionCount || 0)} · ${date(c.lastAskedAt || c.startedAt, lang)}`))))
      : el("p", { class: "muted" }, t("noConversations")),
  );
}

async function openConversation(id) {
  const url = id ? `${location.pathname}?conversation=${encodeURIComponent(id)}` : location.pathname;
  history.replaceState(null, "", url);
  if (!id) {
    widget.show(null);
    widget.focus();
    return;
  }
  try {
    const conversation = await api(`/api/conversations/${encodeURIComponent(id)}`);
    widget.show(conversation);
  } catch (e) {
    widget.show(null);
    const box = $("#history");
    box.prepend(el("p", { class: "message", role: "alert" }, e.status === 404 ? t("notYours") : e.message));
  }
}

start();
