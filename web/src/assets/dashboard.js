// The protostar's dashboard: documents, chatbot settings (with a live preview and the snippet),
// insights, and the account. A stargazer sees the invite redemption instead; a visitor who is
// not signed in, the sign-in form. Sections are tabs addressed by the URL hash.

import { session, signOut } from "./api.js";
import { authForm } from "./auth.js";
import { $, el } from "./dom.js";
import { t, toggleLang } from "./i18n.js";
import { documents } from "./documents.js";
import { settings } from "./settings.js";
import { insights } from "./insights.js";
import { account, redeemCard } from "./account.js";
import { talent } from "./talent.js";

const SECTIONS = { documents, chatbot: settings, insights, talent, account };
let stop = null;

function route() {
  if (stop) stop();
  stop = null;
  const main = $("#main");
  const s = session.get();
  drawNav(s);
  if (!s) {
    main.replaceChildren(el("section", { class: "card narrow", id: "sign-in" }));
    authForm($("#sign-in"), () => route(), { startWith: "in", heading: "h1" });
    return;
  }
  if (s.role !== "protostar" && s.role !== "admin") {
    main.replaceChildren(
      el("p", { class: "muted" }, t("stargazerNote")),
      el("section", { id: "talent-box" }),
      redeemCard(route),
      el("section", { id: "account-box" }),
    );
    talent($("#talent-box"));
    account($("#account-box"));
    return;
  }
  const name = (location.hash.slice(1) in SECTIONS) ? location.hash.slice(1) : "documents";
  for (const a of document.querySelectorAll("#tabs a")) {
    if (a.hash === `#${name}`) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  const box = el("section", { id: `section-${name}`, "aria-labelledby": `tab-${name}` });
  main.replaceChildren(box);
  stop = SECTIONS[name](box) || null;
}

function drawNav(s) {
  const tabs = $("#tabs");
  const pro = s && (s.role === "protostar" || s.role === "admin");
  tabs.replaceChildren(...(pro ? Object.keys(SECTIONS).map((k) =>
    el("a", { href: `#${k}`, id: `tab-${k}` }, t(k))) : []));
  $("#account").replaceChildren(
    el("button", { type: "button", class: "link", onclick: toggleLang }, t("language")),
    s ? el("button", { type: "button", class: "link", onclick: async () => { await signOut(); route(); } }, t("signOut")) : null,
  );
}

addEventListener("hashchange", route);
route();

// A token that no longer works (the account was deleted, the family revoked) signs out here.
addEventListener("unhandledrejection", (e) => {
  if (e.reason && e.reason.status === 401) {
    session.clear();
    route();
  }
});

