// Chatbot settings, the live preview of the real widget (a framed page of our own origin,
// reloaded after each save) and the snippet to paste into a blog.

import { api, ApiError } from "./api.js";
import { el, say } from "./dom.js";
import { lang, t } from "./i18n.js";

export function settings(box) {
  box.append(el("h1", {}, t("settings")), el("p", { class: "muted" }, t("loading")));
  let current = null;

  api("/api/chatbots/mine").then(draw, (e) => box.replaceChildren(el("h1", {}, t("settings")), el("p", { class: "message", role: "alert" }, e.message)));

  function field(id, label, control, hint) {
    return el("div", { class: "field", "data-field": id },
      el("label", { for: `f-${id}` }, label), control,
      hint ? el("small", { class: "muted" }, hint) : null,
      el("small", { class: "field-error", id: `e-${id}`, hidden: true }));
  }

  function draw(bot) {
    current = bot;
    const slug = el("input", { id: "f-slug", name: "slug", value: bot.slug, required: true, spellcheck: "false" });
    const name = el("input", { id: "f-name", name: "name", value: bot.name || "", maxlength: "80" });
    const greeting = el("textarea", { id: "f-greeting", name: "greeting", rows: "2", maxlength: "500" });
    greeting.value = bot.greeting || "";
    const persona = el("textarea", { id: "f-persona", name: "persona", rows: "4", maxlength: "2000" });
    persona.value = bot.persona || "";
    const voice = (v, label) => el("label", { class: "inline" },
      el("input", { type: "radio", name: "voice", value: v, checked: bot.voice === v }), ` ${label}`);
    const origins = el("textarea", { id: "f-allowedOrigins", name: "allowedOrigins", rows: "3", spellcheck: "false" });
    origins.value = (bot.allowedOrigins || []).join("\n");
    const accent = el("input", { id: "f-theme", name: "accent", type: "color", value: (bot.theme && bot.theme.accent) || "#5b4cdb" });
    const talent = el("input", { id: "f-talentSearch", type: "checkbox", name: "talentSearch", checked: bot.talentSearch });
    const save = el("button", { type: "submit", class: "primary" }, t("save"));

    const form = el("form", { class: "settings", onsubmit: async (e) => {
      e.preventDefault();
      save.disabled = true;
      for (const x of form.querySelectorAll(".field-error")) x.hidden = true;
      const wanted = {
        slug: slug.value.trim(),
        name: name.value.trim(),
        greeting: greeting.value.trim(),
        persona: persona.value.trim(),
        voice: form.querySelector("input[name=voice]:checked")?.value || current.voice,
        allowedOrigins: origins.value.split(/\s+/).map((o) => o.trim()).filter(Boolean),
        theme: { accent: accent.value },
        talentSearch: talent.checked,
      };
      // Only what changed: a PATCH of the whole would re-validate untouched fields.
      const patch = {};
      for (const [k, v] of Object.entries(wanted)) {
        if (JSON.stringify(v) !== JSON.stringify(current[k])) patch[k] = v;
      }
      try {
        if (Object.keys(patch).length) draw(await api("/api/chatbots/mine", { method: "PATCH", body: patch }));
        say(box.querySelector(".message"), t("saved"));
      } catch (err) {
        const m = box.querySelector(".message");
        say(m, err.message, "error");
        if (err instanceof ApiError) {
          for (const [f, msg] of Object.entries(err.fields())) {
            const slot = form.querySelector(`#e-${CSS.escape(f.split(/[.[]/)[0])}`);
            if (slot) { slot.textContent = msg; slot.hidden = false; }
          }
        }
      } finally {
        save.disabled = false;
      }
    } },
    field("slug", t("slug"), slug),
    field("name", t("name"), name),
    field("greeting", t("greeting"), greeting),
    field("persona", t("persona"), persona, t("personaHint")),
    el("fieldset", { class: "field", "data-field": "voice" }, el("legend", {}, t("voice")),
      voice("first_person", t("firstPerson")), voice("third_person", t("thirdPerson")),
      el("small", { class: "field-error", id: "e-voice", hidden: true })),
    field("allowedOrigins", t("origins"), origins, t("originsHint")),
    field("theme", t("accent"), accent),
    el("div", { class: "field" }, el("label", { class: "inline", for: "f-talentSearch" }, talent, ` ${t("talentSearch")}`)),
    save);

    const snippetText = `<script src="${location.origin}/widget.js" data-chatbot="${bot.slug}" async></script>`;
    const snippet = el("textarea", { id: "snippet", readonly: true, rows: "3", spellcheck: "false", "aria-label": t("snippet") });
    snippet.value = snippetText;
    const copied = el("span", { class: "muted", role: "status" });
    const frame = el("iframe", {
      id: "preview", title: t("preview"), loading: "lazy",
      src: `/dashboard/preview?slug=${encodeURIComponent(bot.slug)}&lang=${lang}&at=${Date.now()}`,
    });

    // Unsaved edits show in the preview as they are typed.
    const live = () => frame.contentWindow && frame.contentWindow.postMessage({
      type: "protostar:preview", name: name.value, greeting: greeting.value, accent: accent.value,
    }, location.origin);
    for (const input of [name, greeting, accent]) input.addEventListener("input", live);

    box.replaceChildren(
      el("h1", {}, t("settings")),
      el("div", { class: "two" },
        el("div", {}, form, el("p", { class: "message", role: "status", hidden: true })),
        el("div", {},
          el("h2", {}, t("preview")), frame,
          el("h2", {}, t("snippet")), snippet,
          el("p", {}, el("button", { type: "button", onclick: async () => {
            try { await navigator.clipboard.writeText(snippetText); } catch { snippet.select(); }
            copied.textContent = t("copied");
          } }, t("copy")), " ", copied, " ",
          el("a", { href: `/c/${encodeURIComponent(bot.slug)}`, target: "_blank", rel: "noopener" }, t("openChatPage"))))),
    );
  }
  return null;
}
