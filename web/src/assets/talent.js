// Talent search, for recruiters (and protostars): protostars who opted in, ranked by how well
// their documents match the requirement, each with the passages that say so.

import { api } from "./api.js";
import { el, say } from "./dom.js";
import { t } from "./i18n.js";

export function talent(box) {
  const message = el("p", { class: "message", role: "status", hidden: true });
  const q = el("input", { id: "talent-q", type: "search", required: true, maxlength: "500", placeholder: t("talentHint") });
  const results = el("div", { "aria-live": "polite" });
  const form = el("form", { class: "card", role: "search", onsubmit: async (e) => {
    e.preventDefault();
    say(message, "");
    try {
      const res = await api(`/api/talent/search?q=${encodeURIComponent(q.value.trim())}`);
      results.replaceChildren(res.results.length
        ? el("ol", { class: "clusters talent" }, res.results.map((c) => el("li", {},
          el("p", {}, el("a", { href: `/c/${encodeURIComponent(c.slug)}` }, el("b", {}, c.candidate || c.name)), " ",
            el("small", { class: "muted" }, [c.name !== c.candidate ? c.name : null, `${Math.round(c.score * 100)}%`].filter(Boolean).join(" · "))),
          (c.evidence || []).map((ev) => el("details", {},
            el("summary", {}, [ev.documentTitle, ev.location].filter(Boolean).join(" · ")),
            el("blockquote", {}, ev.quote))))))
        : el("p", { class: "muted" }, t("noTalent")));
    } catch (err) { say(message, err.message, "error"); }
  } },
  el("h1", {}, t("talent")), el("label", { for: "talent-q" }, t("talentLabel")), q,
  el("button", { type: "submit", class: "primary" }, t("search")));
  box.append(form, message, results);
  return null;
}
