// The account: profile, export of everything it owns, deletion; and, for a stargazer, the
// invite redemption that makes them a protostar.

import { api, refresh, session, token } from "./api.js";
import { el, say } from "./dom.js";
import { t } from "./i18n.js";

/** The profile comes from the sign-up's event: right after signing up it may lag a moment. */
export async function patiently(call, tries = 10) {
  for (let i = 1; ; i++) {
    try {
      return await call();
    } catch (e) {
      if (e.status !== 404 || i >= tries) throw e;
      await new Promise((r) => setTimeout(r, 300));
    }
  }
}

export function account(box) {
  const message = el("p", { class: "message", role: "status", hidden: true });
  box.append(el("h1", {}, t("account")), message);
  patiently(() => api("/api/users/me")).then((me) => {
    const name = el("input", { id: "display-name", value: me.displayName || "", maxlength: "80" });
    const profile = el("form", { class: "card", onsubmit: async (e) => {
      e.preventDefault();
      try {
        await api("/api/users/me", { method: "PATCH", body: { displayName: name.value.trim() } });
        say(message, t("saved"));
      } catch (err) { say(message, err.message, "error"); }
    } },
    el("h2", {}, t("profile")),
    el("p", {}, `${t("email")}: ${me.email || ""} · ${t("role")}: ${t(me.role)}`),
    el("label", { for: "display-name" }, t("displayName")), name,
    el("button", { type: "submit", class: "primary" }, t("save")));

    const exportBtn = el("button", { type: "button", onclick: async () => {
      try {
        const res = await fetch("/api/users/me/export", { headers: { Authorization: `Bearer ${await token()}` } });
        if (!res.ok) throw new Error(`HTTP ${res.status}`);
        const url = URL.createObjectURL(await res.blob());
        const a = el("a", { href: url, download: "protostar-export.json" });
        document.body.append(a);
        a.click();
        a.remove();
        setTimeout(() => URL.revokeObjectURL(url), 10000);
      } catch (err) { say(message, err.message, "error"); }
    } }, t("export"));

    const confirmText = el("input", { id: "confirm-delete", autocomplete: "off" });
    const del = el("form", { class: "card danger-zone", onsubmit: async (e) => {
      e.preventDefault();
      if (confirmText.value.trim() !== "DELETE") { confirmText.focus(); return; }
      try {
        await api("/api/users/me", { method: "DELETE" });
        session.clear();
        box.replaceChildren(el("p", { role: "status" }, t("deleted")));
      } catch (err) { say(message, err.message, "error"); }
    } },
    el("h2", {}, t("deleteAccount")), el("p", { class: "muted" }, t("deleteHint")),
    el("label", { for: "confirm-delete" }, t("typeDelete")), confirmText,
    el("button", { type: "submit", class: "danger" }, t("deleteAccount")));

    box.append(profile,
      el("section", { class: "card" }, el("h2", {}, t("export")), el("p", { class: "muted" }, t("exportHint")), exportBtn),
      del);
  }, (e) => say(message, e.message, "error"));
  return null;
}

/** The invite code form; `redeemed()` runs once the session's token carries the new role. */
export function redeemCard(redeemed) {
  const message = el("p", { class: "message", role: "status", hidden: true });
  const code = el("input", { id: "invite-code", required: true, autocomplete: "off", spellcheck: "false" });
  return el("form", { class: "card", id: "redeem", onsubmit: async (e) => {
    e.preventDefault();
    try {
      await patiently(() => api("/api/users/me"));
      await api("/api/invites/redeem", { method: "POST", body: { code: code.value.trim() } });
      say(message, t("redeemed"));
      // The new role is in the next access token; the refresh may lag the redemption briefly.
      for (let i = 0; i < 20; i++) {
        await refresh();
        if (["protostar", "admin"].includes(session.get()?.role)) return redeemed();
        await new Promise((r) => setTimeout(r, 500));
      }
    } catch (err) { say(message, err.message, "error"); }
  } },
  el("h2", {}, t("redeemTitle")), el("p", { class: "muted" }, t("redeemHint")),
  el("label", { for: "invite-code" }, t("code")), code, message,
  el("button", { type: "submit", class: "primary" }, t("redeem")));
}
