// Documents: drop several files at once (each uploaded with its own progress bar, through
// XMLHttpRequest because fetch cannot report upload progress), then watch each go
// queued → extracting → indexing → ready (or failed, with the reason). Re-index and delete.

import { api, token } from "./api.js";
import { bytes, date, el, say } from "./dom.js";
import { lang, t } from "./i18n.js";

const SETTLED = new Set(["ready", "failed"]);

export function documents(box) {
  const message = el("p", { class: "message", role: "status", hidden: true });
  const uploads = el("ul", { class: "uploads", "aria-label": t("uploading", "") });
  const input = el("input", { type: "file", multiple: true, id: "files", class: "sr" });
  const drop = el("label", { for: "files", class: "drop", tabindex: "-1" },
    el("strong", {}, t("dropHere")), el("span", { class: "muted" }, t("dropTypes")),
    el("span", { class: "button" }, t("choose")));
  const body = el("tbody");
  const table = el("table", { class: "docs" },
    el("thead", {}, el("tr", {}, [t("title"), t("size"), t("status"), t("chunks"), t("updated"), t("actions")].map((h) => el("th", { scope: "col" }, h)))),
    body);
  const empty = el("p", { class: "muted" }, t("noDocuments"));
  box.append(el("h1", {}, t("documents")), input, drop, uploads, message, table, empty);

  input.addEventListener("change", () => { upload([...input.files]); input.value = ""; });
  for (const ev of ["dragenter", "dragover"]) {
    drop.addEventListener(ev, (e) => { e.preventDefault(); drop.classList.add("over"); });
  }
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    upload([...(e.dataTransfer ? e.dataTransfer.files : [])]);
  });

  let timer = null;
  let alive = true;
  const rows = new Map();

  async function load() {
    clearTimeout(timer);
    try {
      const { documents: docs } = await api("/api/documents");
      draw(docs);
      // Poll while anything is still on its way to ready or failed.
      if (alive && docs.some((d) => !SETTLED.has(d.status))) timer = setTimeout(load, 1000);
    } catch (e) {
      say(message, e.message, "error");
      if (alive) timer = setTimeout(load, 5000);
    }
  }

  function draw(docs) {
    empty.hidden = docs.length > 0;
    table.hidden = docs.length === 0;
    const seen = new Set();
    for (const d of docs) {
      seen.add(d.id);
      const row = rows.get(d.id) || el("tr", { "data-id": d.id });
      row.dataset.status = d.status;
      row.replaceChildren(
        el("th", { scope: "row" }, el("span", { class: "doc-title" }, d.title), el("br"), el("small", { class: "muted" }, d.filename)),
        el("td", {}, bytes(d.sizeBytes)),
        el("td", {}, el("span", { class: `badge ${d.status}`, "data-status": d.status }, t(`st_${d.status}`)),
          d.status === "failed" && d.reason ? el("div", { class: "reason" }, d.reason) : null),
        el("td", {}, d.chunkCount == null ? "–" : String(d.chunkCount)),
        el("td", {}, date(d.updatedAt, lang)),
        el("td", { class: "actions" },
          el("button", { type: "button", disabled: !SETTLED.has(d.status), onclick: () => reindex(d) }, t("reindex")),
          el("button", { type: "button", class: "danger", onclick: () => remove(d) }, t("delete"))),
      );
      if (!rows.has(d.id)) { rows.set(d.id, row); body.append(row); }
    }
    for (const [id, row] of rows) {
      if (!seen.has(id)) { row.remove(); rows.delete(id); }
    }
  }

  async function reindex(d) {
    try {
      await api(`/api/documents/${d.id}/reindex`, { method: "POST" });
      load();
    } catch (e) { say(message, e.message, "error"); }
  }

  async function remove(d) {
    if (!confirm(t("confirmDelete", d.title))) return;
    try {
      await api(`/api/documents/${d.id}`, { method: "DELETE" });
      load();
    } catch (e) { say(message, e.message, "error"); }
  }

  async function upload(files) {
    const bearer = await token();
    await Promise.all(files.map((file) => new Promise((resolve) => {
      const bar = el("progress", { max: "100", value: "0", "aria-label": t("uploading", file.name) });
      const label = el("span", {}, t("uploading", file.name));
      const item = el("li", { "data-file": file.name }, label, bar);
      uploads.append(item);
      const form = new FormData();
      form.append("file", file, file.name);
      const xhr = new XMLHttpRequest();
      xhr.open("POST", "/api/documents");
      xhr.setRequestHeader("Authorization", `Bearer ${bearer}`);
      xhr.upload.addEventListener("progress", (e) => {
        if (e.lengthComputable) bar.value = Math.round((e.loaded / e.total) * 100);
      });
      xhr.addEventListener("load", () => {
        if (xhr.status === 202) {
          bar.value = 100;
          label.textContent = t("uploaded", file.name);
          setTimeout(() => item.remove(), 2500);
        } else {
          let why = `HTTP ${xhr.status}`;
          try { const p = JSON.parse(xhr.responseText); why = p.detail || p.title || why; } catch { /* keep the status */ }
          item.classList.add("failed");
          label.textContent = t("uploadFailed", file.name, why);
          bar.remove();
        }
        resolve();
        load();
      });
      xhr.addEventListener("error", () => {
        item.classList.add("failed");
        label.textContent = t("uploadFailed", file.name, t("error"));
        resolve();
      });
      xhr.send(form);
    })));
  }

  load();
  return () => { alive = false; clearTimeout(timer); };
}
