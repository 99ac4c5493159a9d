// Building the DOM from data. Text is always set as text (`textContent`), never parsed as
// markup: the pages run under Trusted Types with no policy, so `innerHTML` would throw anyway.

/** `el("button", {class: "x", onclick: f}, "text", child)`; false/null attributes are left out. */
export function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === false || v == null) continue;
    if (k.startsWith("on") && typeof v === "function") e.addEventListener(k.slice(2), v);
    else if (k === "value") e.value = v;
    else if (k === "checked") e.checked = Boolean(v);
    else e.setAttribute(k, v === true ? "" : String(v));
  }
  e.append(...children.flat().filter((c) => c != null && c !== false));
  return e;
}

/** An SVG element (the insights chart). */
export function svg(tag, attrs = {}, ...children) {
  const e = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  e.append(...children.flat().filter((c) => c != null && c !== false));
  return e;
}

export const $ = (selector, root = document) => root.querySelector(selector);

export function date(value, lang, withTime = true) {
  if (!value) return "";
  const d = new Date(value);
  if (Number.isNaN(d.getTime())) return String(value);
  return d.toLocaleString(lang === "ko" ? "ko-KR" : "en-US", withTime
    ? { dateStyle: "medium", timeStyle: "short" } : { dateStyle: "medium" });
}

export function bytes(n) {
  if (n == null) return "";
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KB`;
  return `${(n / 1024 / 1024).toFixed(1)} MB`;
}

/** Shows a message in a live region (role=status or alert) of the page. */
export function say(region, text, kind = "info") {
  region.textContent = text;
  region.dataset.kind = kind;
  region.hidden = !text;
}
