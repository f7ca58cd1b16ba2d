// The traveler app: browse the catalog, see what a stay costs, book, follow
// and cancel one's bookings, and read notifications as they arrive.

import { startApp } from "./auth.js";
import { signedInShell } from "./shell.js";
import { busy, errorBox, field, h, money, plural, show, showData, statusBadge, statusLine, values } from "./ui.js";

startApp({ prefix: "travelers", title: "Booking — traveler", signedIn });

function signedIn(user, api, main) {
  const sections = [
    ["catalog", "Find a place"],
    ["bookings", "My bookings"],
  ];
  return signedInShell(api, main, sections, (name, id) => {
    if (name === "property" && id) return propertyView(api, decodeURIComponent(id));
    if (name === "bookings") return bookingsView(api);
    return catalogView(api);
  });
}

/** Search by city and guests; each result links to its property page. */
function catalogView(api) {
  const errors = errorBox();
  const results = h("ul", { id: "results", class: "cards" });
  const submit = h("button", { type: "submit", text: "Search" });
  const form = h(
    "form",
    { id: "search-form", class: "card inline", role: "search" },
    field("City", { name: "city", placeholder: "any city" }),
    field("Guests", { name: "guests", type: "number", min: 1, inputmode: "numeric" }),
    submit,
  );
  const search = () =>
    busy(submit, "Searching…", errors, async () => {
      const q = values(form);
      const params = new URLSearchParams();
      if (q.city) params.set("city", q.city);
      if (q.guests) params.set("guests", q.guests);
      const page = await api.get(`/properties?${params}`);
      show(
        results,
        page.properties.length
          ? page.properties.map((p) =>
              h(
                "li",
                { class: "card", dataset: { propertyId: p.id } },
                h("h3", {}, h("a", { href: `#property/${encodeURIComponent(p.id)}`, class: "property-name", text: p.name })),
                h("p", { text: `${p.city}, ${p.country} · up to ${p.max_guests} guests` }),
                h("p", {}, h("strong", { text: money(p.price_per_night_cents, p.currency) }), " a night"),
              ),
            )
          : [h("li", { class: "muted", text: "No place matches; try another city or fewer guests." })],
      );
    });
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    search();
  });
  search();
  return h("div", {}, h("h2", { text: "Find a place" }), form, errors, results);
}

const isoDay = (offset) => {
  const d = new Date();
  d.setDate(d.getDate() + offset);
  return d.toISOString().slice(0, 10);
};

/** A property, the price of the chosen stay (priced by the API), and booking it. */
function propertyView(api, id) {
  const wrap = h("div", { id: "property" }, h("p", { class: "muted", text: "Loading…" }));
  const errors = errorBox();
  api
    .get(`/properties/${encodeURIComponent(id)}`)
    .then(({ property: p }) => {
      const price = h("div", { id: "price", class: "price", "aria-live": "polite" });
      const done = statusLine();
      const submit = h("button", { type: "submit", text: "Book" });
      const form = h(
        "form",
        { id: "booking-form", class: "card" },
        h("h3", { text: "Book a stay" }),
        field("Check-in", { type: "date", name: "check_in", required: true, value: isoDay(7), min: isoDay(0) }),
        field("Check-out", { type: "date", name: "check_out", required: true, value: isoDay(9), min: isoDay(1) }),
        field("Guests", { type: "number", name: "guests", required: true, min: 1, max: p.max_guests, value: 1 }),
        price,
        errors,
        submit,
        done,
      );
      const stay = () => {
        const v = values(form);
        return { property_id: p.id, check_in: v.check_in, check_out: v.check_out, guests: Number(v.guests) };
      };
      const quote = async () => {
        const s = stay();
        if (!s.check_in || !s.check_out || !s.guests) return;
        const params = new URLSearchParams({ check_in: s.check_in, check_out: s.check_out, guests: s.guests });
        try {
          const { quote: q } = await api.get(`/properties/${encodeURIComponent(p.id)}/quote?${params}`);
          errors.clear();
          show(
            price,
            h(
              "dl",
              {},
              h("dt", { text: `${plural(q.nights, "night")} × ${money(q.price_per_night_cents, q.currency)}` }),
              h("dd", { text: money(q.nights_cents, q.currency) }),
              h("dt", { text: "Cleaning fee" }),
              h("dd", { text: money(q.cleaning_fee_cents, q.currency) }),
              h("dt", { text: "Service fee" }),
              h("dd", { text: money(q.service_fee_cents, q.currency) }),
              h("dt", { class: "total", text: "Total" }),
              h("dd", { class: "total", id: "total", text: money(q.total_price_cents, q.currency) }),
            ),
          );
        } catch (err) {
          show(price);
          errors.show(err);
        }
      };
      form.addEventListener("change", quote);
      form.addEventListener("submit", (e) => {
        e.preventDefault();
        busy(submit, "Booking…", errors, async () => {
          const key = crypto.randomUUID ? crypto.randomUUID() : `${Date.now()}-${Math.random()}`;
          const { booking } = await api.post("/bookings", stay(), { "Idempotency-Key": key });
          done.say(`Requested: ${money(booking.total_price_cents, booking.currency)}, waiting for the owner.`);
          location.hash = "#bookings";
        });
      });
      quote();
      show(
        wrap,
        h("p", {}, h("a", { href: "#catalog", text: "← Back to the search" })),
        h("h2", { class: "property-name", text: p.name }),
        h("p", { text: [p.address, p.city, p.country].filter(Boolean).join(", ") }),
        p.description ? h("p", { text: p.description }) : null,
        h(
          "ul",
          { class: "facts" },
          h("li", { text: `Up to ${p.max_guests} guests` }),
          p.bedrooms != null ? h("li", { text: `${p.bedrooms} bedrooms` }) : null,
          p.bathrooms != null ? h("li", { text: `${p.bathrooms} bathrooms` }) : null,
          ...p.amenities.map((a) => h("li", { text: a })),
        ),
        h("p", {}, h("strong", { text: money(p.price_per_night_cents, p.currency) }), " a night, plus ",
          money(p.cleaning_fee_cents, p.currency), " cleaning and ", money(p.service_fee_cents, p.currency), " service"),
        form,
      );
    })
    .catch((err) => {
      errors.show(err);
      show(wrap, errors);
    });
  return wrap;
}

/** The traveler's bookings with their live status; cancel one that is not final. */
function bookingsView(api) {
  const errors = errorBox();
  const list = h("ul", { id: "bookings", class: "cards" });
  const wrap = h("div", {}, h("h2", { text: "My bookings" }), errors, list);
  const row = (b) => {
    const cancellable = (b.status === "PENDING" || b.status === "ACCEPTED") && !b.cancellation_requested_at;
    const rowErrors = errorBox();
    const cancel = h("button", { type: "button", class: "danger", text: "Cancel booking" });
    cancel.addEventListener("click", () =>
      busy(cancel, "Cancelling…", rowErrors, async () => {
        await api.put(`/bookings/${encodeURIComponent(b.id)}/cancel`, {});
        await wrap.refresh();
      }),
    );
    return h(
      "li",
      { class: "card booking", dataset: { bookingId: b.id, status: b.status } },
      h("div", { class: "row" }, h("h3", { text: b.property_name }), statusBadge(b.status)),
      h("p", { text: `${b.check_in} → ${b.check_out} · ${plural(b.nights, "night")} · ${plural(b.guests, "guest")}` }),
      h("p", {}, "Total ", h("strong", { text: money(b.total_price_cents, b.currency) })),
      b.status_reason ? h("p", { class: "muted" }, "Reason: ", b.status_reason) : null,
      b.cancellation_requested_at && (b.status === "PENDING" || b.status === "ACCEPTED")
        ? h("p", { class: "muted", text: "Cancellation requested; waiting for the owner service." })
        : null,
      cancellable ? cancel : null,
      rowErrors,
    );
  };
  wrap.refresh = async () => {
    try {
      const page = await api.get("/bookings?limit=50");
      showData(list, page.bookings, (bookings) =>
        bookings.length ? bookings.map(row) : [h("li", { class: "muted", text: "No bookings yet." })],
      );
      errors.clear();
    } catch (err) {
      errors.show(err);
    }
  };
  wrap.refresh();
  return wrap;
}
