// The owner app: list, edit and delist properties; see booking requests as
// they arrive and approve, reject or cancel them; read notifications live.

import { startApp } from "./auth.js";
import { signedInShell } from "./shell.js";
import { busy, errorBox, field, h, money, plural, show, showData, statusBadge, statusLine, values } from "./ui.js";

startApp({ prefix: "owners", title: "Booking — owner", signedIn });

const STATUSES = ["PENDING", "ACCEPTED", "REJECTED", "CANCELLED"];

function signedIn(user, api, main) {
  const sections = [
    ["requests", "Booking requests"],
    ["properties", "My properties"],
  ];
  return signedInShell(api, main, sections, (name, id) => {
    if (name === "properties") return propertiesView(api);
    if (name === "edit" && id) return editView(api, decodeURIComponent(id));
    return requestsView(api);
  });
}

/** Property names by id, for labelling requests. */
async function propertyNames(api) {
  const page = await api.get("/properties?limit=200");
  return new Map(page.properties.map((p) => [p.id, p.name]));
}

/** Requests for the owner's properties, filtered by status, with the decisions. */
function requestsView(api) {
  const errors = errorBox();
  const list = h("ul", { id: "requests", class: "cards" });
  const filter = field(
    "Status",
    { name: "status", id: "status-filter" },
    "select",
    [h("option", { value: "", text: "All" }), ...STATUSES.map((s) => h("option", { value: s, text: s }))],
  );
  const wrap = h("div", {}, h("h2", { text: "Booking requests" }), h("form", { class: "inline" }, filter), errors, list);

  const decision = (b, action, label, waiting, needsReason) => {
    const reason = needsReason ? field("Reason", { name: "reason", maxlength: 500, required: action === "cancel" }) : null;
    const button = h("button", { type: "submit", class: action === "approve" ? "" : "danger", text: label });
    const rowErrors = errorBox();
    const form = h("form", { class: `decision decision-${action}` }, reason, button, rowErrors);
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      busy(button, waiting, rowErrors, async () => {
        const text = values(form).reason;
        await api.put(`/bookings/${encodeURIComponent(b.id)}/${action}`, text ? { reason: text } : {});
        await wrap.refresh();
      });
    });
    return form;
  };

  const row = (b, names) =>
    h(
      "li",
      { class: "card booking", dataset: { bookingId: b.id, status: b.status } },
      h("div", { class: "row" }, h("h3", { text: names.get(b.property_id) || b.property_id }), statusBadge(b.status)),
      h("p", { text: `${b.check_in} → ${b.check_out} · ${plural(b.nights, "night")} · ${plural(b.guests, "guest")}` }),
      h("p", {}, "Total ", h("strong", { text: money(b.total_price_cents, b.currency) })),
      b.status_reason ? h("p", { class: "muted" }, "Reason: ", b.status_reason) : null,
      b.status === "PENDING"
        ? h("div", { class: "actions" }, decision(b, "approve", "Approve", "Approving…", false), decision(b, "reject", "Reject", "Rejecting…", true))
        : null,
      b.status === "ACCEPTED" ? h("div", { class: "actions" }, decision(b, "cancel", "Cancel booking", "Cancelling…", true)) : null,
    );

  wrap.refresh = async () => {
    try {
      const status = filter.querySelector("select").value;
      const [names, page] = await Promise.all([
        propertyNames(api),
        api.get(`/bookings?limit=50${status ? `&status=${status}` : ""}`),
      ]);
      // Keep a row being edited (a reason being typed) as it is.
      if (list.contains(document.activeElement) && document.activeElement.tagName === "INPUT") return;
      showData(list, { bookings: page.bookings, names: [...names] }, ({ bookings }) =>
        bookings.length ? bookings.map((b) => row(b, names)) : [h("li", { class: "muted", text: "No requests with this status." })],
      );
      errors.clear();
    } catch (err) {
      errors.show(err);
    }
  };
  filter.querySelector("select").addEventListener("change", () => wrap.refresh());
  wrap.refresh();
  return wrap;
}

/** Property fields as a form; prices in major units, sent in cents. */
function propertyForm(p, submitLabel, onSubmit) {
  const cents = (v) => (v === undefined || v === null ? "" : (v / 100).toFixed(2));
  const errors = errorBox();
  const done = statusLine();
  const submit = h("button", { type: "submit", text: submitLabel });
  const form = h(
    "form",
    { id: "property-form", class: "card grid" },
    field("Name", { name: "name", required: true, maxlength: 200, value: p.name }),
    field("City", { name: "city", required: true, value: p.city }),
    field("Country", { name: "country", required: true, value: p.country }),
    field("Address", { name: "address", value: p.address }),
    field("Description", { name: "description", rows: 3 }, "textarea", p.description ? [p.description] : []),
    field("Price per night", { name: "price", type: "number", min: 0, step: "0.01", required: true, value: cents(p.price_per_night_cents) }),
    field("Cleaning fee", { name: "cleaning", type: "number", min: 0, step: "0.01", value: cents(p.cleaning_fee_cents) || "0.00" }),
    field("Service fee", { name: "service", type: "number", min: 0, step: "0.01", value: cents(p.service_fee_cents) || "0.00" }),
    field("Currency", { name: "currency", maxlength: 3, value: p.currency || "EUR" }),
    field("Max guests", { name: "max_guests", type: "number", min: 1, required: true, value: p.max_guests }),
    field("Amenities (comma-separated)", { name: "amenities", value: (p.amenities || []).join(", ") }),
    errors,
    submit,
    done,
  );
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const v = values(form);
    const body = {
      name: v.name,
      city: v.city,
      country: v.country,
      address: v.address || null,
      description: v.description || null,
      price_per_night_cents: Math.round(Number(v.price) * 100),
      cleaning_fee_cents: Math.round(Number(v.cleaning || 0) * 100),
      service_fee_cents: Math.round(Number(v.service || 0) * 100),
      currency: v.currency,
      max_guests: Number(v.max_guests),
      amenities: v.amenities ? v.amenities.split(",").map((a) => a.trim()).filter(Boolean) : [],
    };
    busy(submit, "Saving…", errors, async () => {
      await onSubmit(body);
      done.say("Saved.");
    });
  });
  return form;
}

/** The owner's properties, and a form to list a new one. */
function propertiesView(api) {
  const errors = errorBox();
  const list = h("ul", { id: "properties", class: "cards" });
  const wrap = h("div", {}, h("h2", { text: "My properties" }), errors, list);
  const create = propertyForm({}, "List property", async (body) => {
    await api.post("/properties", body);
    create.reset();
    await wrap.refresh();
  });
  wrap.append(h("h2", { text: "List a new property" }), create);
  wrap.refresh = async () => {
    try {
      const page = await api.get("/properties?limit=200");
      showData(list, page.properties, (properties) =>
        properties.length
          ? properties.map((p) =>
              h(
                "li",
                { class: "card", dataset: { propertyId: p.id } },
                h("div", { class: "row" }, h("h3", { class: "property-name", text: p.name }), p.active ? null : h("span", { class: "badge badge-cancelled", text: "DELISTED" })),
                h("p", { text: `${p.city}, ${p.country} · up to ${p.max_guests} guests · ${money(p.price_per_night_cents, p.currency)} a night` }),
                h("a", { href: `#edit/${encodeURIComponent(p.id)}`, text: "Edit" }),
              ),
            )
          : [h("li", { class: "muted", text: "No properties yet." })],
      );
      errors.clear();
    } catch (err) {
      errors.show(err);
    }
  };
  wrap.refresh();
  return wrap;
}

/** Edit one property, or delist it. */
function editView(api, id) {
  const wrap = h("div", {}, h("p", { class: "muted", text: "Loading…" }));
  const errors = errorBox();
  api
    .get(`/properties/${encodeURIComponent(id)}`)
    .then(({ property: p }) => {
      const form = propertyForm(p, "Save changes", (body) => api.put(`/properties/${encodeURIComponent(id)}`, body));
      const delist = h("button", { type: "button", class: "danger", id: "delist", text: "Delist property", disabled: !p.active });
      delist.addEventListener("click", () =>
        busy(delist, "Delisting…", errors, async () => {
          await api.del(`/properties/${encodeURIComponent(id)}`);
          location.hash = "#properties";
        }),
      );
      show(
        wrap,
        h("p", {}, h("a", { href: "#properties", text: "← Back to my properties" })),
        h("h2", { class: "property-name", text: p.name }),
        p.active ? null : h("p", { class: "muted", text: "Delisted: travelers no longer see it." }),
        form,
        errors,
        delist,
      );
    })
    .catch((err) => {
      errors.show(err);
      show(wrap, errors);
    });
  return wrap;
}
