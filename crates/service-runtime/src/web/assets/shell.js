// The signed-in page both apps share: links to the app's sections, the
// section the URL's hash names, the notifications panel beside it, and the
// live stream that refreshes both.

import { follow } from "./live.js";
import { notificationsPanel } from "./notifications.js";
import { h, show } from "./ui.js";

/**
 * Shows the signed-in page in `main`. `sections` lists `[hash, label]`, the
 * first being the default; `viewFor(name, id)` builds the view for the hash
 * `#name/id` (a view may have a `refresh()` that live updates call).
 * Returns a function that stops it (at logout).
 */
export function signedInShell(api, main, sections, viewFor) {
  const view = h("section", { id: "view", class: "view" });
  const notifications = notificationsPanel(api);
  const nav = h(
    "nav",
    { "aria-label": "Sections" },
    ...sections.map(([hash, text]) => h("a", { href: `#${hash}`, text })),
  );
  show(main, nav, h("div", { class: "layout" }, view, notifications));

  let current = null;
  const route = () => {
    const [name, id] = location.hash.replace(/^#/, "").split("/");
    const selected = `#${name || sections[0][0]}`;
    nav.querySelectorAll("a").forEach((a) => a.toggleAttribute("aria-current", a.hash === selected));
    current = viewFor(name, id);
    show(view, current);
  };
  window.addEventListener("hashchange", route);
  route();
  notifications.refresh();

  const stop = follow(`${api.base}/notifications/stream`, (n) => {
    if (n) notifications.add(n);
    else notifications.refresh();
    if (current && current.refresh) current.refresh();
  });
  return () => {
    stop();
    window.removeEventListener("hashchange", route);
  };
}
