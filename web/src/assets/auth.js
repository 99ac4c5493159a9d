// The sign-in and sign-up form the pages share. Sign-up makes a stargazer (a recruiter's
// account); a protostar is a stargazer who redeemed an invite.

import { ApiError, signIn, signUp } from "./api.js";
import { el, say } from "./dom.js";
import { t } from "./i18n.js";

/**
 * Renders into `box`; `done(session)` runs once signed in. `allowSignUp` shows the second tab;
 * `heading` is `h1` where the form is the page's main content.
 */
export function authForm(box, done, { allowSignUp = true, startWith = "in", heading = "h2" } = {}) {
  let mode = startWith;
  const draw = () => {
    const message = el("p", { class: "message", role: "alert", hidden: true });
    const email = el("input", { type: "email", name: "email", autocomplete: "username", required: true, id: "auth-email" });
    const password = el("input", {
      type: "password", name: "password", required: true, id: "auth-password", minlength: mode === "up" ? "10" : null,
      autocomplete: mode === "up" ? "new-password" : "current-password",
    });
    const display = el("input", { type: "text", name: "displayName", maxlength: "80", id: "auth-name", autocomplete: "nickname" });
    const submit = el("button", { type: "submit", class: "primary" }, mode === "up" ? t("signUp") : t("signIn"));
    const form = el("form", {
      class: "auth", "aria-label": mode === "up" ? t("signUp") : t("signIn"),
      onsubmit: async (e) => {
        e.preventDefault();
        submit.disabled = true;
        say(message, "");
        try {
          const s = mode === "up"
            ? await signUp(email.value.trim(), password.value, display.value.trim())
            : await signIn(email.value.trim(), password.value);
          done(s);
        } catch (err) {
          const fields = err instanceof ApiError ? Object.values(err.fields()) : [];
          say(message, [err.message, ...fields].join(" "), "error");
          submit.disabled = false;
        }
      },
    },
    el(heading, {}, mode === "up" ? t("signUp") : t("signIn")),
    el("label", { for: "auth-email" }, t("email")), email,
    el("label", { for: "auth-password" }, t("password")), password,
    mode === "up" ? el("small", {}, t("passwordHint")) : null,
    mode === "up" ? [el("label", { for: "auth-name" }, `${t("displayName")} ${t("optional")}`), display] : null,
    message, submit,
    allowSignUp ? el("p", { class: "switch" }, mode === "up" ? t("haveAccount") : t("newHere"), " ",
      el("button", { type: "button", class: "link", onclick: () => { mode = mode === "up" ? "in" : "up"; draw(); } },
        mode === "up" ? t("signIn") : t("signUp"))) : null);
    box.replaceChildren(form);
  };
  draw();
}
