// DOM helpers both apps use. Every piece of data becomes a text node or a
// property: nothing is ever parsed as HTML, so a name like
// `<img src=x onerror=alert(1)>` shows exactly those characters.

/**
 * Builds an element. `attrs`: attributes, except `on` (event listeners),
 * `text` (textContent) and `dataset`. Children: nodes, strings (as text) or
 * null (skipped).
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "on") {
      for (const [event, listener] of Object.entries(value)) el.addEventListener(event, listener);
    } else if (key === "text") {
      el.textContent = String(value);
    } else if (key === "dataset") {
      Object.assign(el.dataset, value);
    } else {
      el.setAttribute(key, value === true ? "" : String(value));
    }
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

let fieldCounter = 0;

/** A labelled form control: `<label for>` + `<input id>` (or select/textarea). */
export function field(label, attrs = {}, tag = "input", options = []) {
  const id = attrs.id || `f${++fieldCounter}`;
  const control = h(tag, { ...attrs, id }, ...options);
  return h("div", { class: "field" }, h("label", { for: id, text: label }), control);
}

/** A region that shows one error (the problem's `detail`) to screen readers too. */
export function errorBox() {
  const box = h("p", { class: "error", role: "alert", hidden: true });
  box.show = (err) => {
    box.textContent = err && err.message ? err.message : String(err);
    box.hidden = false;
  };
  box.clear = () => {
    box.textContent = "";
    box.hidden = true;
  };
  return box;
}

/** A polite status line for successes ("Booked."). */
export function statusLine() {
  const line = h("p", { class: "notice", role: "status", "aria-live": "polite" });
  line.say = (text) => {
    line.textContent = text;
  };
  return line;
}

/**
 * Runs `work` with `button` disabled and labelled `waiting` ("Saving…"),
 * showing any error in `errors`; restores the button afterwards.
 */
export async function busy(button, waiting, errors, work) {
  const label = button.textContent;
  button.disabled = true;
  button.textContent = waiting;
  button.setAttribute("aria-busy", "true");
  errors?.clear();
  try {
    return await work();
  } catch (err) {
    if (errors) errors.show(err);
    else throw err;
    return undefined;
  } finally {
    button.disabled = false;
    button.textContent = label;
    button.removeAttribute("aria-busy");
  }
}

/** `cents` (minor units) as money in `currency`. */
export function money(cents, currency) {
  try {
    return new Intl.NumberFormat(undefined, { style: "currency", currency }).format(cents / 100);
  } catch {
    return `${(cents / 100).toFixed(2)} ${currency}`;
  }
}

/** "1 night", "3 nights". */
export function plural(n, word) {
  return `${n} ${word}${n === 1 ? "" : "s"}`;
}

/** A status badge: PENDING, ACCEPTED, REJECTED, CANCELLED. */
export function statusBadge(status) {
  return h("span", { class: `badge badge-${String(status).toLowerCase()}`, text: status });
}

/** A date-time as the reader's locale writes it. */
export function when(iso) {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toLocaleString();
}

/** Replaces the children of `el`. */
export function show(el, ...children) {
  el.replaceChildren(...children.flat().filter((c) => c !== null && c !== undefined));
}

/**
 * Renders `data` into `el` with `render(data)` unless `el` already shows
 * exactly this data: a refresh that changed nothing keeps the elements,
 * and so the keyboard focus and anything being typed.
 */
export function showData(el, data, render) {
  const key = JSON.stringify(data);
  if (el.dataset.shown === key) return;
  el.dataset.shown = key;
  show(el, render(data));
}

/** The form's named controls as an object of trimmed strings. */
export function values(form) {
  const out = {};
  for (const [k, v] of new FormData(form).entries()) out[k] = String(v).trim();
  return out;
}
