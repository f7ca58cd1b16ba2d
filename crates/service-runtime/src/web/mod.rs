//! The web apps: the traveler app on traveler-service's `/`, the owner app
//! on owner-service's `/`.
//!
//! Plain ES modules and CSS, compiled into the binary with `include_str!`:
//! no JavaScript toolchain, nothing fetched from another host, so the apps
//! work offline, in the embedded `cargo run` mode, and from the same image
//! as the API. What both apps share (the API client, problem display, the
//! sign-up / login forms, the live notification list) is one file served by
//! both services; each app adds its own script to one page template.
//!
//! Every response carries a strict `Content-Security-Policy` (scripts and
//! styles only from this origin, no inline code, no framing) and
//! `X-Content-Type-Options: nosniff`.

use axum::{
    body::{Body, Bytes},
    extract::Path,
    http::{header, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
    routing::get,
    Router,
};
use tower_http::set_header::SetResponseHeaderLayer;

use crate::http::ApiError;

/// Which app a service serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum App {
    Traveler,
    Owner,
}

/// The policy every page and asset is served with: nothing but this
/// origin's own files, no inline script or style, no plugins, no framing.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
style-src 'self'; img-src 'self' data:; connect-src 'self'; object-src 'none'; \
frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// One embedded file.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static str,
}

/// The [`Asset`] of the file `assets/$name`, served under that same name:
/// the name is written once, so what a page asks for and what is embedded
/// cannot drift apart.
macro_rules! embedded {
    ($name:literal, $content_type:expr) => {
        Asset {
            name: $name,
            content_type: $content_type,
            body: include_str!(concat!("assets/", $name)),
        }
    };
}

const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

/// What both apps load.
const SHARED: &[Asset] = &[
    embedded!("app.css", CSS),
    embedded!("docs.css", CSS),
    embedded!("api.js", JS),
    embedded!("ui.js", JS),
    embedded!("auth.js", JS),
    embedded!("live.js", JS),
    embedded!("notifications.js", JS),
    embedded!("shell.js", JS),
];

impl App {
    /// The name the app's page and script go by.
    fn name(self) -> &'static str {
        match self {
            App::Traveler => "traveler",
            App::Owner => "owner",
        }
    }

    /// The app's page: one template for both apps, which differ only in
    /// their title and their own script.
    fn page(self) -> String {
        include_str!("assets/app.html").replace("{app}", self.name())
    }

    /// The app's own script.
    fn script(self) -> Asset {
        match self {
            App::Traveler => embedded!("traveler.js", JS),
            App::Owner => embedded!("owner.js", JS),
        }
    }

    fn asset(self, name: &str) -> Option<Asset> {
        let own = self.script();
        if own.name == name {
            return Some(own);
        }
        SHARED
            .iter()
            .find(|a| a.name == name)
            .map(|a| Asset { ..*a })
    }
}

/// `GET /` (the app's page) and `GET /assets/{name}`, with the security
/// headers. Stateless: merge it into a service's finished router.
pub fn routes(app: App) -> Router {
    // The page is filled in once, here; each load shares its bytes.
    let page = Bytes::from(app.page());
    Router::new()
        .route(
            "/",
            get(move || async move { served("text/html; charset=utf-8", page) }),
        )
        .route(
            "/assets/{name}",
            get(move |Path(name): Path<String>| async move { asset(app, &name) }),
        )
        .layer(page_headers())
}

/// The security headers of every page served to a browser (the apps and
/// the API reference at `/docs`): the strict [`CONTENT_SECURITY_POLICY`],
/// no MIME sniffing, no referrer. One layer, so no page can miss one.
pub fn page_headers() -> (
    SetResponseHeaderLayer<HeaderValue>,
    SetResponseHeaderLayer<HeaderValue>,
    SetResponseHeaderLayer<HeaderValue>,
) {
    (
        SetResponseHeaderLayer::overriding(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        ),
        SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
        SetResponseHeaderLayer::overriding(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ),
    )
}

fn asset(app: App, name: &str) -> Response {
    match app.asset(name) {
        Some(a) => served(a.content_type, a.body),
        None => ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such asset").into_response(),
    }
}

/// `body` as `content_type`, revalidated on every load: the files change
/// with the binary, and are small.
fn served(content_type: &'static str, body: impl Into<Body>) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body.into(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The pages load only what exists, and nothing inline that the policy
    /// would block.
    #[test]
    fn pages_reference_only_embedded_assets_and_nothing_inline() {
        for app in [App::Traveler, App::Owner] {
            let page = app.page();
            assert!(!page.contains("{app}"), "{app:?} page not filled in");
            for part in page.split("/assets/").skip(1) {
                let name = part.split('"').next().unwrap();
                assert!(
                    app.asset(name).is_some(),
                    "{app:?} page loads missing {name}"
                );
            }
            assert!(!page.contains("<script>"), "inline script in {app:?}");
            assert!(!page.contains(" style="), "inline style in {app:?}");
            let handler = page.split(" on").skip(1).find(|rest| {
                let name_len = rest.chars().take_while(char::is_ascii_alphabetic).count();
                name_len > 0 && rest[name_len..].starts_with('=')
            });
            assert!(
                handler.is_none(),
                "inline handler in {app:?}: on{handler:?}"
            );
        }
    }

    /// Every module import names an embedded file.
    #[test]
    fn scripts_import_only_embedded_modules() {
        for app in [App::Traveler, App::Owner] {
            let own = app.script();
            for asset in SHARED.iter().chain(std::iter::once(&own)) {
                for line in asset.body.lines().filter(|l| l.starts_with("import ")) {
                    let name = line
                        .rsplit("\"./")
                        .next()
                        .and_then(|s| s.split('"').next())
                        .unwrap_or_else(|| panic!("{}: {line}", asset.name));
                    assert!(app.asset(name).is_some(), "{} imports {name}", asset.name);
                }
                assert!(
                    !asset.body.contains("innerHTML"),
                    "{} must render text with textContent",
                    asset.name
                );
            }
        }
    }
}
