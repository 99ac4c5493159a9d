// The dashboard's live preview (framed from the same origin): the real widget, opened, for the
// chatbot named in `?slug=`, as a visitor of a blog would see it.

import { loadWidget } from "./widget-loader.js";

const params = new URLSearchParams(location.search);
const slug = params.get("slug");
if (slug) loadWidget({ chatbot: slug, open: "", lang: params.get("lang") });
