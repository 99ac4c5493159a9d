// Our own pages load the widget script themselves (the chat page in page mode, the
// dashboard's preview). They run under Trusted Types, so the script's URL goes through the one
// policy their CSP names, which accepts nothing but the widget's own address.

const WIDGET = "/widget.js";

const policy = window.trustedTypes
  ? window.trustedTypes.createPolicy("protostar-widget", {
    createScriptURL(url) {
      if (url !== WIDGET) throw new TypeError(`only ${WIDGET} may be loaded`);
      return url;
    },
  })
  : null;

/** Appends `<script src="/widget.js" data-...>` with the given data attributes. */
export function loadWidget(data) {
  const s = document.createElement("script");
  s.src = policy ? policy.createScriptURL(WIDGET) : WIDGET;
  s.async = true;
  for (const [k, v] of Object.entries(data)) {
    if (v != null) s.dataset[k] = v;
  }
  document.body.append(s);
  return s;
}
