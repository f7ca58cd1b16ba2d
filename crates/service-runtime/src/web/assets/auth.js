// The app shell both apps share: who is signed in (GET /me), the sign-up and
// login forms for everyone else, the header with "Log out". An app supplies
// what to show once a user is signed in.

import { apiClient, onSessionEnded } from "./api.js";
import { busy, errorBox, field, h, show, values } from "./ui.js";

/**
 * Starts an app in `#app`. `app.prefix`: "travelers" or "owners";
 * `app.title`; `app.signedIn(user, api, main)` renders the signed-in app into
 * `main` and returns a function that stops it (live streams) on logout.
 */
export async function startApp(app) {
  const api = apiClient(app.prefix);
  const root = document.getElementById("app");
  let stop = null;

  const signedOut = () => {
    if (stop) stop();
    stop = null;
    if (location.hash !== "#login" && location.hash !== "#signup") location.hash = "#login";
    show(root, header(app.title, null), authForms(api, app, signedIn));
  };

  const signedIn = (user) => {
    if (stop) stop();
    const main = h("main", { id: "main", tabindex: "-1" });
    const logout = h("button", { type: "button", class: "secondary", id: "logout", text: "Log out" });
    const errors = errorBox();
    logout.addEventListener("click", () =>
      busy(logout, "Logging out…", errors, async () => {
        await api.post("/logout");
        signedOut();
      }),
    );
    const who = h("span", { class: "who" }, "Signed in as ", h("strong", { text: user.name }));
    show(root, header(app.title, h("div", { class: "session" }, who, logout)), errors, main);
    if (location.hash === "#login" || location.hash === "#signup") location.hash = "";
    stop = app.signedIn(user, api, main);
  };

  onSessionEnded(signedOut);
  try {
    const me = await api.get("/me");
    signedIn(me.user);
  } catch {
    signedOut();
  }
}

function header(title, right) {
  return h("header", { class: "top" }, h("h1", { text: title }), right);
}

/** The login form, and the sign-up form behind a toggle. */
function authForms(api, app, signedIn) {
  const wrap = h("main", { id: "main", class: "auth" });
  const render = () => {
    const signup = location.hash === "#signup";
    show(wrap, credentialsForm(api, signedIn, signup ? "signup" : "login"));
  };
  window.addEventListener("hashchange", render);
  render();
  return wrap;
}

/**
 * The email field of both forms: an account is found by the address it
 * signed up with, so both ask for it the same way.
 */
function emailField() {
  return field("Email", { type: "email", name: "email", required: true, autocomplete: "email" });
}

/**
 * The two ways in, by the id that names each form, its heading and the
 * endpoint it posts its fields to. `fields` and `other` build the form's
 * elements afresh for each render.
 */
const WAYS_IN = {
  login: {
    title: "Log in",
    busy: "Logging in…",
    fields: () => [
      emailField(),
      field("Password", { type: "password", name: "password", required: true, autocomplete: "current-password" }),
    ],
    other: () => h("p", {}, "No account yet? ", h("a", { href: "#signup", text: "Sign up" })),
  },
  signup: {
    title: "Sign up",
    busy: "Signing up…",
    fields: () => [
      field("Name", { name: "name", required: true, autocomplete: "name", maxlength: 100 }),
      emailField(),
      field("Password (at least 8 characters)", {
        type: "password",
        name: "password",
        required: true,
        minlength: 8,
        autocomplete: "new-password",
      }),
    ],
    other: () => h("p", {}, "Have an account? ", h("a", { href: "#login", text: "Log in" })),
  },
};

/**
 * The form both ways in share: `id` ("login" or "signup", see `WAYS_IN`)
 * names the form, its heading and the endpoint it posts its fields to; the
 * answer's user is signed in, a problem is shown above the button.
 */
function credentialsForm(api, signedIn, id) {
  const form = { id, ...WAYS_IN[id] };
  const errors = errorBox();
  const submit = h("button", { type: "submit", text: form.title });
  const el = h(
    "form",
    { id: `${form.id}-form`, class: "card", "aria-labelledby": `${form.id}-title` },
    h("h2", { id: `${form.id}-title`, text: form.title }),
    form.fields(),
    errors,
    submit,
    form.other(),
  );
  el.addEventListener("submit", (e) => {
    e.preventDefault();
    busy(submit, form.busy, errors, async () => {
      const { user } = await api.post(`/${form.id}`, values(el));
      signedIn(user);
    });
  });
  return el;
}
