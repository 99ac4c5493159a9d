// The dashboard's live preview (framed from the same origin): the real widget, opened, for the
// chatbot named in `?slug=`, as a visitor of a blog would see it. While the owner types, the
// dashboard posts the unsaved name, greeting and accent here and they are shown at once; a
// save reloads the frame with what the API now says.

import { loadWidget } from "./widget-loader.js";

const params = new URLSearchParams(location.search);
const slug = params.get("slug");
if (slug) loadWidget({ chatbot: slug, open: "", lang: params.get("lang") });

addEventListener("message", (e) => {
  // Only the dashboard framing us (same origin) may change what the preview shows.
  if (e.origin !== location.origin || !e.data || e.data.type !== "protostar:preview") return;
  const host = document.querySelector("protostar-chat");
  const root = host && host.shadowRoot;
  if (!root) return;
  const { name, greeting, accent } = e.data;
  if (typeof name === "string") {
    const title = root.querySelector("h2");
    if (title) title.textContent = name;
  }
  if (typeof greeting === "string") {
    const text = root.querySelector(".greeting .text");
    if (text) text.textContent = greeting;
  }
  if (typeof accent === "string" && /^#[0-9a-f]{6}$/i.test(accent)) host.style.setProperty("--accent", accent);
});
