// The notification list both apps show beside their main view: loaded from
// GET /notifications, then kept current by the live stream.

import { errorBox, h, showData, statusBadge, when } from "./ui.js";

/** The panel; `panel.refresh()` reloads it, `panel.add(n)` shows one that just arrived. */
export function notificationsPanel(api) {
  const list = h("ol", { id: "notifications", class: "notifications", "aria-live": "polite" });
  const errors = errorBox();
  const empty = h("p", { class: "muted", text: "No notifications yet." });
  const panel = h(
    "aside",
    { class: "card panel", "aria-labelledby": "notifications-title" },
    h("h2", { id: "notifications-title", text: "Notifications" }),
    errors,
    empty,
    list,
  );
  const seen = new Set();

  const item = (n) =>
    h(
      "li",
      { dataset: { notificationId: n.id } },
      h("div", { class: "row" }, statusBadge(n.status), h("time", { datetime: n.created_at, text: when(n.created_at) })),
      h("p", { text: n.message }),
      n.reason ? h("p", { class: "muted" }, "Reason: ", n.reason) : null,
    );

  panel.refresh = async () => {
    try {
      const page = await api.get("/notifications?limit=20");
      seen.clear();
      page.notifications.forEach((n) => seen.add(n.id));
      showData(list, page.notifications, (ns) => ns.map(item));
      empty.hidden = page.notifications.length > 0;
      errors.clear();
    } catch (err) {
      errors.show(err);
    }
  };
  panel.add = (n) => {
    if (seen.has(n.id)) return;
    seen.add(n.id);
    list.prepend(item(n));
    empty.hidden = true;
  };
  return panel;
}
