// The admin pages, on the admin listener only: invites, users and roles, dead letters and the
// gateway's health. They sign in through the admin listener too (`/admin/api/auth/login`), so
// they keep working while the public side is flooded.

import { api, session, signOut, useAuthBase } from "./api.js";
import { authForm } from "./auth.js";
import { $, date, el, say } from "./dom.js";
import { lang, t, toggleLang } from "./i18n.js";

useAuthBase("/admin/api/auth");

const SCHEMAS = ["auth", "users", "chat", "ai", "noti", "audit"];
const SECTIONS = { invites, users, "dead-letters": deadLetters, health };
const LABELS = { invites: "invites", users: "users", "dead-letters": "deadLetters", health: "health" };

function route() {
  const main = $("#main");
  const s = session.get();
  $("#tabs").replaceChildren(...(s ? Object.keys(SECTIONS).map((k) => el("a", { href: `#${k}`, id: `tab-${k}` }, t(LABELS[k]))) : []));
  $("#account").replaceChildren(
    el("button", { type: "button", class: "link", onclick: toggleLang }, t("language")),
    s ? el("button", { type: "button", class: "link", onclick: async () => { await signOut(); route(); } }, t("signOut")) : null);
  if (!s) {
    main.replaceChildren(el("section", { class: "card narrow", id: "sign-in" }));
    authForm($("#sign-in"), () => route(), { allowSignUp: false, heading: "h1" });
    return;
  }
  if (s.role !== "admin") {
    main.replaceChildren(el("p", { class: "message", role: "alert" }, t("adminOnly")));
    return;
  }
  const name = location.hash.slice(1) in SECTIONS ? location.hash.slice(1) : "invites";
  for (const a of document.querySelectorAll("#tabs a")) {
    if (a.hash === `#${name}`) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  const box = el("section", { id: `section-${name}` }, el("h1", {}, t(LABELS[name])));
  main.replaceChildren(box);
  SECTIONS[name](box);
}

function table(headers, rows) {
  return el("table", {}, el("thead", {}, el("tr", {}, headers.map((h) => el("th", { scope: "col" }, h)))), el("tbody", {}, rows));
}

function invites(box) {
  const message = el("p", { class: "message", role: "status", hidden: true });
  const count = el("input", { id: "inv-count", type: "number", min: "1", max: "100", value: "1" });
  const uses = el("input", { id: "inv-uses", type: "number", min: "1", max: "1000", value: "1" });
  const days = el("input", { id: "inv-days", type: "number", min: "1", max: "365", value: "14" });
  const created = el("div", { id: "created" });
  const list = el("div");
  const form = el("form", { class: "card inline-form", onsubmit: async (e) => {
    e.preventDefault();
    try {
      const res = await api("/admin/api/invites", { method: "POST", body: { count: Number(count.value), uses: Number(uses.value), expiresInDays: Number(days.value) } });
      created.replaceChildren(el("p", {}, t("created")), el("ul", { class: "codes" }, res.invites.map((i) =>
        el("li", {}, el("code", {}, i.code), " ", el("small", { class: "muted" }, `${t("uses")}: ${i.uses} · ${t("expiresAt")}: ${date(i.expiresAt, lang)}`)))));
      load();
    } catch (err) { say(message, err.message, "error"); }
  } },
  el("label", { for: "inv-count" }, t("count")), count, el("label", { for: "inv-uses" }, t("uses")), uses,
  el("label", { for: "inv-days" }, t("expiresInDays")), days, el("button", { type: "submit", class: "primary" }, t("create")));
  box.append(form, message, created, list);
  async function load() {
    try {
      const { invites: all } = await api("/admin/api/invites");
      list.replaceChildren(table([t("createdAt"), t("expiresAt"), t("uses"), t("usesLeft"), t("status"), ""], all.map((i) => {
        const state = inviteState(i);
        return el("tr", { "data-id": i.id, "data-state": state }, el("td", {}, date(i.createdAt, lang)), el("td", {}, date(i.expiresAt, lang)),
          el("td", {}, String(i.maxUses)), el("td", {}, String(i.usesLeft)),
          el("td", {}, el("span", { class: `badge ${state}` }, t(`inv_${state}`)),
            state === "revoked" ? el("small", { class: "muted" }, ` ${date(i.revokedAt, lang)}`) : null),
          el("td", {}, state === "active" ? el("button", { type: "button", class: "danger", "aria-label": `${t("revoke")} ${date(i.createdAt, lang)}`, onclick: () => revoke(i) }, t("revoke")) : null));
      })));
    } catch (err) { say(message, err.message, "error"); }
  }
  async function revoke(i) {
    if (!confirm(t("confirmRevoke", date(i.createdAt, lang), i.usesLeft))) return;
    try {
      await api(`/admin/api/invites/${encodeURIComponent(i.id)}`, { method: "DELETE" });
      say(message, t("revokedDone"));
      load();
    } catch (err) { say(message, err.message, "error"); }
  }
  load();
}

/** What an invite is now: revoked, expired, used up, or active (redeemable). */
function inviteState(i) {
  if (i.revokedAt) return "revoked";
  if (new Date(i.expiresAt) <= new Date()) return "expired";
  if (i.usesLeft <= 0) return "used-up";
  return "active";
}

function users(box) {
  const message = el("p", { class: "message", role: "status", hidden: true });
  const list = el("div");
  box.append(message, list);
  async function load(after) {
    try {
      const page = await api(`/admin/api/users?limit=50${after ? `&after=${encodeURIComponent(after)}` : ""}`);
      list.replaceChildren(table([t("email"), t("role"), t("createdAt"), ""], page.users.map((u) => {
        const role = el("select", { "aria-label": `${t("role")} ${u.email}` }, ["stargazer", "protostar", "admin"].map((r) =>
          el("option", { value: r, selected: u.role === r }, r)));
        if (!["stargazer", "protostar", "admin"].includes(u.role)) role.prepend(el("option", { value: u.role, selected: true, disabled: true }, u.role));
        return el("tr", {}, el("td", {}, u.email), el("td", {}, role), el("td", {}, date(u.createdAt, lang)),
          el("td", {}, el("button", { type: "button", onclick: async () => {
            try {
              await api(`/admin/api/users/${encodeURIComponent(u.id)}`, { method: "PATCH", body: { role: role.value } });
              say(message, t("saved"));
            } catch (err) { say(message, err.message, "error"); }
          } }, t("change"))));
      })), page.next ? el("button", { type: "button", onclick: () => load(page.next) }, t("next")) : null);
    } catch (err) { say(message, err.message, "error"); }
  }
  load();
}

function deadLetters(box) {
  const message = el("p", { class: "message", role: "status", hidden: true });
  const schema = el("select", { id: "dl-schema" }, SCHEMAS.map((s) => el("option", { value: s }, s)));
  const list = el("div");
  schema.addEventListener("change", load);
  box.append(el("p", {}, el("label", { for: "dl-schema" }, `${t("schema")} `), schema, " ",
    el("button", { type: "button", onclick: load }, t("refresh"))), message, list);
  async function load() {
    try {
      const items = await api(`/admin/api/dead-letters/${schema.value}`);
      list.replaceChildren(items.length ? table([t("consumer"), t("event"), t("reason"), t("attempts"), t("parkedAt"), ""], items.map((d) =>
        el("tr", {}, el("td", {}, d.consumer), el("td", {}, d.eventType || ""), el("td", {}, el("details", {}, el("summary", {}, d.reason), el("pre", {}, d.payload))),
          el("td", {}, String(d.attempts)), el("td", {}, date(d.parkedAt, lang), d.retriedAt ? el("br") : null, d.retriedAt ? el("small", {}, `${t("retried")} ${date(d.retriedAt, lang)}`) : null),
          el("td", {}, el("button", { type: "button", onclick: async () => {
            try {
              await api(`/admin/api/dead-letters/${schema.value}/${encodeURIComponent(d.id)}/retry`, { method: "POST" });
              say(message, t("retried"));
              load();
            } catch (err) { say(message, err.message, "error"); }
          } }, t("retry")))))) : el("p", { class: "muted" }, t("noDeadLetters")));
    } catch (err) { say(message, err.message, "error"); }
  }
  load();
}

function health(box) {
  const list = el("div");
  box.append(el("button", { type: "button", onclick: load }, t("refresh")), list);
  async function load() {
    let h;
    try {
      h = await api("/admin/api/health");
    } catch (err) {
      // 503 still carries the report when something is not ready.
      h = err.problem && err.problem.targets ? err.problem : null;
      if (!h) { list.replaceChildren(el("p", { class: "message", role: "alert" }, err.message)); return; }
    }
    list.replaceChildren(
      el("p", {}, `${t("version")}: ${h.version} · ${t("ready")}: ${h.ready ? t("yes") : t("no")} · ${t("rateLimits")}: ${h.rate_limits}`),
      table([t("target"), t("placement"), t("ready"), t("detail")], h.targets.map((x) =>
        el("tr", { "data-ready": String(x.ready) }, el("td", {}, x.target), el("td", {}, x.placement),
          el("td", {}, el("span", { class: `badge ${x.ready ? "ready" : x.placement === "not-deployed" ? "queued" : "failed"}` }, x.ready ? t("yes") : t("no"))),
          el("td", {}, x.detail == null ? "" : el("details", {}, el("summary", {}, t("detail")), el("pre", {}, JSON.stringify(x.detail, null, 2))))))));
  }
  load();
}

addEventListener("hashchange", route);
route();
