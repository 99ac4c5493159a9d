// Insights: what recruiters ask. Totals, questions per day (a small stacked SVG chart by who
// asked), clusters of similar questions, unanswered questions each with a one-click correction,
// and feedback with its comments.

import { api } from "./api.js";
import { date, el, say, svg } from "./dom.js";
import { lang, t } from "./i18n.js";

const ROLES = ["guest", "stargazer", "protostar", "admin"];
const DAYS = 30;

/** The last `n` days, oldest first, with zeros where nobody asked (the API lists active days). */
function everyDay(list, n) {
  const byDay = new Map(list.map((d) => [d.day, d]));
  const last = list.length ? new Date(`${list[list.length - 1].day}T00:00:00Z`) : new Date();
  const today = new Date(Math.max(Date.now(), last.getTime()));
  const out = [];
  for (let i = n - 1; i >= 0; i--) {
    const day = new Date(Date.UTC(today.getUTCFullYear(), today.getUTCMonth(), today.getUTCDate() - i)).toISOString().slice(0, 10);
    out.push(byDay.get(day) || { day });
  }
  // Days the API named outside the window (another time zone's today) are kept, not lost.
  for (const d of list) if (!out.some((o) => o.day === d.day)) out.push(d);
  return out.sort((a, b) => a.day.localeCompare(b.day));
}

export function insights(box) {
  box.append(el("h1", {}, t("insights")), el("p", { class: "muted" }, t("loading")));
  api(`/api/chatbots/mine/insights?days=${DAYS}`).then(draw, (e) =>
    box.replaceChildren(el("h1", {}, t("insights")), el("p", { class: "message", role: "alert" }, e.message)));

  function draw(data) {
    const totals = data.totals || {};
    const ratio = data.feedbackRatio == null ? "–" : `${Math.round(data.feedbackRatio * 100)}%`;
    box.replaceChildren(
      el("h1", {}, t("insights"), " ", el("small", { class: "muted" }, t("days"))),
      el("dl", { class: "totals" },
        stat(t("totalQuestions"), totals.questions), stat(t("unanswered"), totals.unanswered),
        stat(t("feedbackUp"), totals.feedbackUp), stat(t("feedbackDown"), totals.feedbackDown), stat(t("ratio"), ratio)),
      el("h2", {}, t("overTime")), chart(everyDay(data.overTime || [], DAYS)),
      el("h2", {}, t("clusters")), clusters(data.clusters || []),
      el("h2", {}, t("unansweredTitle")), unanswered(data.unanswered || []),
      el("h2", {}, t("feedbackTitle")), feedback(data.feedback || []),
    );
  }
  return null;
}

function stat(label, value) {
  return el("div", {}, el("dt", {}, label), el("dd", {}, value == null ? "0" : String(value)));
}

/** Stacked bars per day; the numbers are also in the bars' titles and a visually hidden table. */
function chart(days) {
  const W = 640, H = 160, pad = 24;
  const total = (d) => ROLES.reduce((s, r) => s + (d[r] || 0), 0);
  const max = Math.max(1, ...days.map(total));
  const bw = days.length ? (W - pad) / days.length : W;
  const bars = days.map((d, i) => {
    let y = H - pad;
    const parts = ROLES.filter((r) => d[r]).map((r) => {
      const h = ((d[r] || 0) / max) * (H - pad * 2);
      y -= h;
      return svg("rect", { x: pad + i * bw + 1, y, width: Math.max(1, bw - 2), height: h, class: `bar ${r}` },
        svg("title", {}, `${d.day}: ${d[r]} ${t(r)}`));
    });
    return svg("g", {}, parts);
  });
  const axis = [
    svg("line", { x1: pad, y1: H - pad, x2: W, y2: H - pad, class: "axis" }),
    svg("text", { x: 0, y: pad, class: "tick" }, String(max)),
    svg("text", { x: 0, y: H - pad, class: "tick" }, "0"),
    days.length ? svg("text", { x: pad, y: H - 6, class: "tick" }, days[0].day) : null,
    days.length > 1 ? svg("text", { x: W, y: H - 6, class: "tick end" }, days[days.length - 1].day) : null,
  ];
  const legend = el("p", { class: "legend" }, ROLES.map((r) => el("span", { class: `key ${r}` }, t(r))));
  // The numbers for screen readers (a table does not shrink to a visually hidden box: its wrapper does).
  const table = el("div", { class: "sr" }, el("table", {}, el("tr", {}, el("th", {}, "day"), ROLES.map((r) => el("th", {}, t(r)))),
    days.map((d) => el("tr", {}, el("td", {}, d.day), ROLES.map((r) => el("td", {}, String(d[r] || 0)))))));
  return el("figure", { class: "chart" },
    svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": t("overTime") }, axis, bars), legend, table);
}

function clusters(list) {
  if (!list.length) return el("p", { class: "muted" }, t("noClusters"));
  return el("ul", { class: "clusters" }, list.map((c) => el("li", {},
    el("details", {}, el("summary", {}, el("b", {}, c.label), " ", el("span", { class: "muted" }, t("asked", c.size, date(c.lastAskedAt, lang)))),
      el("ul", {}, (c.questions || []).map((q) => el("li", {}, q)))))));
}

function unanswered(list) {
  if (!list.length) return el("p", { class: "muted" }, t("noUnanswered"));
  return el("ul", { class: "unanswered" }, list.map((u) => {
    const item = el("li", { "data-answer": u.answerId }, el("p", {}, el("b", {}, u.question), " ", el("small", { class: "muted" }, date(u.askedAt, lang))));
    const message = el("p", { class: "message", role: "status", hidden: true });
    const open = el("button", { type: "button", onclick: () => {
      open.hidden = true;
      const text = el("textarea", { rows: "3", required: true, "aria-label": t("writeAnswer") });
      const form = el("form", { class: "correction", onsubmit: async (e) => {
        e.preventDefault();
        try {
          await api(`/api/answers/${encodeURIComponent(u.answerId)}/correction`, { method: "POST", body: { answer: text.value.trim() } });
          form.remove();
          say(message, t("correctionSaved"));
        } catch (err) { say(message, err.message, "error"); }
      } }, text, el("button", { type: "submit", class: "primary" }, t("save")));
      item.append(form);
      text.focus();
    } }, t("writeAnswer"));
    item.append(open, message);
    return item;
  }));
}

function feedback(list) {
  if (!list.length) return el("p", { class: "muted" }, t("noFeedback"));
  return el("ul", { class: "feedback" }, list.map((f) => el("li", {},
    el("span", { class: `badge ${f.rating === "up" ? "ready" : "failed"}` }, f.rating === "up" ? t("feedbackUp") : t("feedbackDown")), " ",
    el("b", {}, f.question), f.comment ? el("blockquote", {}, f.comment) : null,
    el("small", { class: "muted" }, date(f.at, lang)))));
}
