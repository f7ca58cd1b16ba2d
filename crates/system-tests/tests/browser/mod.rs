//! A headless Chromium driven over WebDriver, for `web_app.rs`.
//!
//! A thin client of the W3C WebDriver protocol (JSON over HTTP to
//! `chromedriver`) on the `reqwest` the tests already use. The well-kept
//! crates (fantoccini, thirtyfour) were considered: fantoccini 0.22 depends
//! on Mozilla's `webdriver` crate, whose MPL-2.0 license `deny.toml` does
//! not allow, and the handful of commands these tests need fit here.
//!
//! Chromium and chromedriver come from Debian (`scripts/install-browser.sh`,
//! run by `scripts/test.sh`). With `CI` set and either missing, [`Driver::start`]
//! panics: the test fails rather than skips.

#![allow(dead_code)]

use std::{
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::Duration,
};

use base64::Engine;
use serde_json::{json, Value};
use test_support::{eventually, is_ci};

/// How long a page may take to show what a step waits for.
pub const UI_TIMEOUT: Duration = Duration::from_secs(30);

/// The W3C key of an element reference in WebDriver answers.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A running chromedriver; killed on drop.
pub struct Driver {
    url: String,
    child: Child,
    chromium: PathBuf,
    http: reqwest::Client,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `name` from the environment variable `var`, else from PATH.
fn tool(var: &str, names: &[&str]) -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(var).filter(|p| !p.is_empty()) {
        return Some(path.into());
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| names.iter().map(move |n| dir.join(n)))
        .find(|p| p.is_file())
}

impl Driver {
    /// Starts chromedriver on a free port, or `None` (with a loud SKIPPED
    /// line) when Chromium or chromedriver is not installed outside CI.
    ///
    /// # Panics
    /// Under CI when either is missing.
    pub async fn start(test: &str) -> Option<Self> {
        let chromedriver = tool("CHROMEDRIVER_BIN", &["chromedriver"]);
        let chromium = tool("CHROMIUM_BIN", &["chromium", "chromium-browser"]);
        let (Some(chromedriver), Some(chromium)) = (chromedriver, chromium) else {
            assert!(
                !is_ci(),
                "{test}: chromium and chromedriver are required under CI \
                 (scripts/install-browser.sh installs them; scripts/test.sh runs it)"
            );
            use std::io::Write;
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED {test}: chromium/chromedriver not installed; run scripts/install-browser.sh"
            );
            return None;
        };
        let port = crate::support::free_port();
        let child = Command::new(&chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", chromedriver.display()));
        let driver = Self {
            url: format!("http://127.0.0.1:{port}"),
            child,
            chromium,
            http: crate::support::http_client(Duration::from_secs(60)),
        };
        let status = format!("{}/status", driver.url);
        eventually("chromedriver ready", Duration::from_secs(30), || {
            let (http, status) = (driver.http.clone(), status.clone());
            async move {
                let r = http.get(&status).send().await.ok()?;
                let body: Value = r.json().await.ok()?;
                (body["value"]["ready"] == true).then_some(())
            }
        })
        .await;
        Some(driver)
    }

    /// A new headless browser window of `width` × `height` CSS pixels, with
    /// its own profile (so its own cookies).
    /// Below 500 px wide (headless Chromium's smallest window) the page is
    /// laid out as on a phone of that size (device emulation).
    pub async fn browser(&self, width: u32, height: u32) -> Browser {
        let mut options = json!({
            "binary": self.chromium,
            "args": ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                     "--disable-gpu", "--lang=en-US",
                     format!("--window-size={},{height}", width.max(500))],
        });
        if width < 500 {
            options["mobileEmulation"] = json!({"deviceMetrics": {
                "width": width, "height": height, "pixelRatio": 2, "touch": true,
            }});
        }
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": options,
        }}});
        let answer = call(
            &self.http,
            reqwest::Method::POST,
            &format!("{}/session", self.url),
            Some(caps),
        )
        .await
        .unwrap_or_else(|e| panic!("cannot open a browser session: {e}"));
        let id = answer["sessionId"]
            .as_str()
            .expect("a session id")
            .to_string();
        Browser {
            session: format!("{}/session/{id}", self.url),
            http: self.http.clone(),
        }
    }
}

/// A WebDriver command; `Err` carries the WebDriver error (`no such
/// element`, `no such alert`, ...) and message.
async fn call(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: &str,
    body: Option<Value>,
) -> Result<Value, String> {
    let mut req = http.request(method, url);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let res = req.send().await.map_err(|e| format!("{url}: {e}"))?;
    let status = res.status();
    let body: Value = res.json().await.map_err(|e| format!("{url}: {e}"))?;
    let value = body["value"].clone();
    if status.is_success() {
        Ok(value)
    } else {
        Err(format!("{}: {}", value["error"], value["message"]))
    }
}

/// One browser window (a WebDriver session).
pub struct Browser {
    session: String,
    http: reqwest::Client,
}

/// An element of the page.
#[derive(Debug, Clone)]
pub struct Element(String);

impl Browser {
    async fn cmd(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, String> {
        call(&self.http, method, &format!("{}{path}", self.session), body).await
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        self.cmd(reqwest::Method::POST, path, Some(body))
            .await
            .unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    /// Loads `url` (a navigation: the page is loaded anew).
    pub async fn goto(&self, url: &str) {
        self.post("/url", json!({"url": url})).await;
    }

    /// Runs `script` (a function body; `arguments[i]` are `args`) in the page.
    pub async fn js(&self, script: &str, args: Value) -> Value {
        self.post("/execute/sync", json!({"script": script, "args": args}))
            .await
    }

    /// [`Browser::js`] without arguments.
    pub async fn eval(&self, script: &str) -> Value {
        self.js(script, json!([])).await
    }

    /// The element `css` matches, waiting until there is one.
    pub async fn find(&self, css: &str) -> Element {
        eventually(&format!("an element {css}"), UI_TIMEOUT, || async {
            self.cmd(
                reqwest::Method::POST,
                "/element",
                Some(json!({"using": "css selector", "value": css})),
            )
            .await
            .ok()
            .and_then(|v| v[ELEMENT_KEY].as_str().map(|id| Element(id.to_string())))
        })
        .await
    }

    /// Whether `css` matches anything now.
    pub async fn exists(&self, css: &str) -> bool {
        self.js(
            "return document.querySelector(arguments[0]) !== null;",
            json!([css]),
        )
        .await
            == true
    }

    /// The text of the first element `css` matches, once it exists.
    pub async fn text(&self, css: &str) -> String {
        self.wait_value(
            &format!("text of {css}"),
            "const e = document.querySelector(arguments[0]); return e ? e.textContent : null;",
            json!([css]),
            |v| v.as_str().map(str::to_string),
        )
        .await
    }

    /// Waits until `script` returns a value `accept` takes.
    pub async fn wait_value<T>(
        &self,
        what: &str,
        script: &str,
        args: Value,
        accept: impl Fn(&Value) -> Option<T>,
    ) -> T {
        eventually(what, UI_TIMEOUT, || async {
            accept(&self.js(script, args.clone()).await)
        })
        .await
    }

    /// Clicks `element` as a user would.
    pub async fn click(&self, element: &Element) {
        self.post(&format!("/element/{}/click", element.0), json!({}))
            .await;
    }

    /// Replaces the value of the input `css` by typing `text` into it.
    pub async fn type_into(&self, css: &str, text: &str) {
        let element = self.find(css).await;
        self.post(&format!("/element/{}/clear", element.0), json!({}))
            .await;
        self.post(
            &format!("/element/{}/value", element.0),
            json!({"text": text}),
        )
        .await;
    }

    /// Clicks the element `css` matches; found again if the page replaced
    /// it between finding and clicking (a list refreshed meanwhile).
    pub async fn click_on(&self, css: &str) {
        eventually(&format!("a click on {css}"), UI_TIMEOUT, || async {
            let element = self.find(css).await;
            match self
                .cmd(
                    reqwest::Method::POST,
                    &format!("/element/{}/click", element.0),
                    Some(json!({})),
                )
                .await
            {
                Ok(_) => Some(()),
                Err(e) if e.contains("stale element") => None,
                Err(e) => panic!("click on {css}: {e}"),
            }
        })
        .await
    }

    /// The text of an open `alert`/`confirm` dialog, if one is open.
    pub async fn open_dialog(&self) -> Option<String> {
        self.cmd(reqwest::Method::GET, "/alert/text", None)
            .await
            .ok()
            .map(|v| v.as_str().unwrap_or_default().to_string())
    }

    /// A PNG of the window.
    pub async fn screenshot(&self) -> Vec<u8> {
        let data = self
            .cmd(reqwest::Method::GET, "/screenshot", None)
            .await
            .expect("screenshot");
        base64::engine::general_purpose::STANDARD
            .decode(data.as_str().expect("base64 PNG"))
            .expect("valid base64")
    }

    /// Closes the window.
    pub async fn quit(self) {
        let _ = self.cmd(reqwest::Method::DELETE, "", None).await;
    }
}
