// The dashboard's live preview (framed from the same origin): the real widget, opened, for the
// chatbot named in `?slug=`, as a visitor of a blog would see it.

const params = new URLSearchParams(location.search);
const slug = params.get("slug");
if (slug) {
  const s = document.createElement("script");
  s.src = "/widget.js";
  s.async = true;
  s.dataset.chatbot = slug;
  s.dataset.open = "";
  if (params.get("lang")) s.dataset.lang = params.get("lang");
  document.body.append(s);
}
