//! `GET /openapi.json` and `GET /docs`: the document, and the same document
//! rendered as an HTML reference on the server.
//!
//! Rendered once, when the router is built, with no script at all: the page
//! works offline and under the apps' strict `Content-Security-Policy`, and
//! styles come from the embedded `/assets/docs.css`.

use std::{fmt::Write, sync::Arc};

use axum::{
    extract::State,
    http::header,
    response::{IntoResponse, Response},
    Json, Router,
};
use serde_json::Value;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::web::page_headers;

/// The document and its rendering, shared by the two routes.
#[derive(Clone)]
struct Docs {
    json: Arc<Value>,
    html: Arc<str>,
}

fn router() -> OpenApiRouter<Docs> {
    OpenApiRouter::new()
        .routes(routes!(openapi_json))
        .routes(routes!(reference))
}

/// The description of `/openapi.json` and `/docs` themselves.
pub(super) fn docs_openapi() -> utoipa::openapi::OpenApi {
    router().into_openapi()
}

/// `GET /openapi.json` and `GET /docs` serving `doc`, the `/docs` page with
/// the same security headers as the apps.
pub fn docs_routes(doc: Value) -> Router {
    let html = render_reference(&doc);
    let (routes, _) = router().split_for_parts();
    routes
        .with_state(Docs {
            json: Arc::new(doc),
            html: html.into(),
        })
        .layer(page_headers())
}

/// The service's OpenAPI 3.1 document, generated from its handlers.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "documentation",
    responses((status = 200, description = "the OpenAPI 3.1 document of this service", content_type = "application/json", body = Object))
)]
async fn openapi_json(State(docs): State<Docs>) -> Json<Value> {
    Json(docs.json.as_ref().clone())
}

/// The API reference for people: this document as an HTML page.
#[utoipa::path(
    get,
    path = "/docs",
    tag = "documentation",
    responses((status = 200, description = "the API reference as HTML", content_type = "text/html", body = String))
)]
async fn reference(State(docs): State<Docs>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        docs.html.to_string(),
    )
        .into_response()
}

/// Escapes text for HTML content and attribute values.
fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Text with `code` spans (Markdown backticks) as `<code>`; everything
/// else escaped.
fn inline(text: &str) -> String {
    text.split('`')
        .enumerate()
        .map(|(i, part)| {
            if i % 2 == 1 {
                format!("<code>{}</code>", esc(part))
            } else {
                esc(part)
            }
        })
        .collect()
}

/// The id of an operation's section: `get-/api/travelers/me` made safe.
fn anchor(method: &str, path: &str) -> String {
    let mut id = format!("{method}-");
    id.extend(
        path.chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' }),
    );
    id
}

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

/// The whole reference page of `doc`: the operations grouped by tag, each
/// with its parameters, body, security and responses (with examples), then
/// every schema.
pub fn render_reference(doc: &Value) -> String {
    let title = doc["info"]["title"].as_str().unwrap_or("API");
    let version = doc["info"]["version"].as_str().unwrap_or("");
    let mut html = String::new();
    let _ = write!(
        html,
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{t} API reference</title>\n<link rel=\"icon\" href=\"data:,\">\n\
         <link rel=\"stylesheet\" href=\"/assets/app.css\">\n\
         <link rel=\"stylesheet\" href=\"/assets/docs.css\">\n</head>\n<body>\n\
         <header class=\"top\"><h1>{t} API reference <small>{v}</small></h1>\
         <a href=\"/openapi.json\">openapi.json</a></header>\n<main class=\"docs\">\n",
        t = esc(title),
        v = esc(version),
    );
    if let Some(d) = doc["info"]["description"].as_str() {
        for para in d.split("\n\n") {
            let _ = writeln!(html, "<p>{}</p>", inline(para));
        }
    }

    // Operations by tag, in document order.
    let mut ops: Vec<(String, &str, &str, &Value)> = Vec::new();
    if let Some(paths) = doc["paths"].as_object() {
        for (path, item) in paths {
            for method in METHODS {
                if let Some(op) = item.get(method) {
                    let tag = op["tags"][0].as_str().unwrap_or("other").to_string();
                    ops.push((tag, method, path, op));
                }
            }
        }
    }
    ops.sort_by(|a, b| a.0.cmp(&b.0));
    html.push_str("<nav class=\"toc\" aria-label=\"Operations\"><ul>\n");
    for (_, method, path, op) in &ops {
        let _ = writeln!(
            html,
            "<li><a href=\"#{}\">{} {}</a> {s}</li>",
            anchor(method, path),
            method_badge(method),
            esc(path),
            s = esc(op["summary"].as_str().unwrap_or("")),
        );
    }
    html.push_str("<li><a href=\"#schemas\">Schemas</a></li></ul></nav>\n");

    let mut current_tag = None;
    for (tag, method, path, op) in &ops {
        if current_tag != Some(tag) {
            let _ = writeln!(html, "<h2>{}</h2>", esc(tag));
            current_tag = Some(tag);
        }
        operation(&mut html, method, path, op);
    }

    html.push_str("<h2 id=\"schemas\">Schemas</h2>\n");
    if let Some(schemas) = doc["components"]["schemas"].as_object() {
        for (name, schema) in schemas {
            let _ = writeln!(
                html,
                "<section class=\"card schema\" id=\"schema-{n}\"><h3>{n}</h3>",
                n = esc(name)
            );
            if let Some(d) = schema["description"].as_str() {
                let _ = writeln!(html, "<p>{}</p>", inline(d));
            }
            schema_body(&mut html, schema);
            example(&mut html, &schema["example"]);
            html.push_str("</section>\n");
        }
    }
    if let Some(schemes) = doc["components"]["securitySchemes"].as_object() {
        html.push_str("<h2 id=\"security\">Authentication</h2>\n<dl>\n");
        for (name, scheme) in schemes {
            let _ = writeln!(
                html,
                "<dt><code>{}</code> ({})</dt><dd>{}</dd>",
                esc(name),
                esc(&scheme_kind(scheme)),
                inline(scheme["description"].as_str().unwrap_or("")),
            );
        }
        html.push_str("</dl>\n");
    }
    html.push_str("</main>\n</body>\n</html>\n");
    html
}

fn scheme_kind(scheme: &Value) -> String {
    match scheme["type"].as_str() {
        Some("http") => format!("HTTP {}", scheme["scheme"].as_str().unwrap_or("")),
        Some("apiKey") => format!(
            "{} {}",
            scheme["in"].as_str().unwrap_or(""),
            scheme["name"].as_str().unwrap_or("")
        ),
        other => other.unwrap_or("").to_string(),
    }
}

/// `GET`, `POST`…, styled by its method: how the contents and each
/// operation's heading show an operation's method.
fn method_badge(method: &str) -> String {
    format!(
        "<span class=\"method {method}\">{}</span>",
        method.to_uppercase()
    )
}

fn operation(html: &mut String, method: &str, path: &str, op: &Value) {
    let _ = writeln!(
        html,
        "<section class=\"card op\" id=\"{}\"><h3>{} <code>{}</code></h3>",
        anchor(method, path),
        method_badge(method),
        esc(path),
    );
    if let Some(s) = op["summary"].as_str() {
        let _ = writeln!(html, "<p><strong>{}</strong></p>", inline(s));
    }
    if let Some(d) = op["description"].as_str() {
        for para in d.split("\n\n") {
            let _ = writeln!(html, "<p>{}</p>", inline(para));
        }
    }
    if let Some(security) = op["security"].as_array() {
        let names: Vec<String> = security
            .iter()
            .filter_map(|r| r.as_object())
            .flat_map(|r| r.keys().map(|k| format!("<code>{}</code>", esc(k))))
            .collect();
        let _ = writeln!(
            html,
            "<p class=\"auth\">Authentication: {} (<a href=\"#security\">one of</a>)</p>",
            names.join(" or ")
        );
    }
    if let Some(params) = op["parameters"].as_array().filter(|p| !p.is_empty()) {
        html.push_str("<h4>Parameters</h4>\n<table><thead><tr><th>name</th><th>in</th><th>type</th><th>description</th></tr></thead><tbody>\n");
        for p in params {
            let _ = writeln!(
                html,
                "<tr><td><code>{}</code>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(p["name"].as_str().unwrap_or("")),
                if p["required"].as_bool() == Some(true) {
                    " <span class=\"req\">required</span>"
                } else {
                    ""
                },
                esc(p["in"].as_str().unwrap_or("")),
                type_of(&p["schema"]),
                inline(p["description"].as_str().unwrap_or("")),
            );
        }
        html.push_str("</tbody></table>\n");
    }
    if let Some(body) = op.get("requestBody") {
        html.push_str("<h4>Request body</h4>\n");
        if let Some(d) = body["description"].as_str() {
            let _ = writeln!(html, "<p>{}</p>", inline(d));
        }
        content(html, &body["content"]);
    }
    if let Some(responses) = op["responses"].as_object() {
        html.push_str("<h4>Responses</h4>\n<dl class=\"responses\">\n");
        for (status, response) in responses {
            let _ = writeln!(
                html,
                "<dt class=\"status s{}\">{}</dt><dd><p>{}</p>",
                esc(&status[..1]),
                esc(status),
                inline(response["description"].as_str().unwrap_or("")),
            );
            content(html, &response["content"]);
            html.push_str("</dd>\n");
        }
        html.push_str("</dl>\n");
    }
    html.push_str("</section>\n");
}

/// Each media type of a body: its schema and example.
fn content(html: &mut String, content: &Value) {
    let Some(content) = content.as_object() else {
        return;
    };
    for (media, body) in content {
        let _ = writeln!(
            html,
            "<p class=\"media\"><code>{}</code>: {}</p>",
            esc(media),
            type_of(&body["schema"])
        );
        example(html, &body["example"]);
    }
}

fn example(html: &mut String, example: &Value) {
    if example.is_null() {
        return;
    }
    let text = serde_json::to_string_pretty(example).unwrap_or_default();
    let _ = writeln!(
        html,
        "<details><summary>Example</summary><pre>{}</pre></details>",
        esc(&text)
    );
}

/// A schema's fields as a table (an object), or its type in a line.
fn schema_body(html: &mut String, schema: &Value) {
    if let Some(parts) = schema["allOf"].as_array() {
        for part in parts {
            schema_body(html, part);
        }
        return;
    }
    let Some(props) = schema["properties"].as_object() else {
        let _ = writeln!(html, "<p>{}</p>", type_of(schema));
        return;
    };
    let required: Vec<&str> = schema["required"]
        .as_array()
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    html.push_str(
        "<table><thead><tr><th>field</th><th>type</th><th>description</th></tr></thead><tbody>\n",
    );
    for (name, prop) in props {
        let _ = writeln!(
            html,
            "<tr><td><code>{}</code>{}</td><td>{}</td><td>{}</td></tr>",
            esc(name),
            if required.contains(&name.as_str()) {
                " <span class=\"req\">required</span>"
            } else {
                ""
            },
            type_of(prop),
            inline(prop["description"].as_str().unwrap_or("")),
        );
    }
    html.push_str("</tbody></table>\n");
}

/// A short HTML rendering of a schema's type: a link for a reference,
/// `array of …`, `string (date)`, `a | b` for alternatives, enums listed.
fn type_of(schema: &Value) -> String {
    if let Some(r) = schema["$ref"].as_str() {
        let name = r.rsplit('/').next().unwrap_or(r);
        return format!("<a href=\"#schema-{n}\">{n}</a>", n = esc(name));
    }
    for key in ["oneOf", "anyOf", "allOf"] {
        if let Some(parts) = schema[key].as_array() {
            let sep = if key == "allOf" { " &amp; " } else { " | " };
            return parts.iter().map(type_of).collect::<Vec<_>>().join(sep);
        }
    }
    if let Some(values) = schema["enum"].as_array() {
        return values
            .iter()
            .map(|v| format!("<code>{}</code>", esc(&v.to_string())))
            .collect::<Vec<_>>()
            .join(" | ");
    }
    let types: Vec<String> = match &schema["type"] {
        Value::String(t) => vec![t.clone()],
        Value::Array(ts) => ts
            .iter()
            .filter_map(|t| t.as_str().map(String::from))
            .collect(),
        _ => vec![],
    };
    let mut rendered: Vec<String> = types
        .iter()
        .map(|t| match t.as_str() {
            "array" => format!("array of {}", type_of(&schema["items"])),
            other => match schema["format"].as_str() {
                Some(f) if other != "null" => format!("{} ({})", esc(other), esc(f)),
                _ => esc(other),
            },
        })
        .collect();
    if rendered.is_empty() {
        rendered.push("any".to_string());
    }
    rendered.join(" | ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn renders_operations_schemas_and_escapes_text() {
        let doc = json!({
            "info": {"title": "t<s>", "version": "1"},
            "paths": {"/x/{id}": {"get": {
                "tags": ["things"],
                "summary": "reads a `thing`",
                "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}],
                "responses": {"404": {"description": "none (`not_found`)",
                    "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}, "example": {"code": "not_found"}}}}}
            }}},
            "components": {"schemas": {"Problem": {"type": "object", "properties": {"code": {"type": "string"}}, "required": ["code"]}}}
        });
        let html = render_reference(&doc);
        assert!(html.contains("t&lt;s&gt; API reference"));
        assert!(html.contains("id=\"get--x--id-\""));
        assert!(html.contains(
            "<li><a href=\"#get--x--id-\"><span class=\"method get\">GET</span> /x/{id}</a> reads a `thing`</li>"
        ));
        assert!(html.contains(
            "<section class=\"card op\" id=\"get--x--id-\"><h3><span class=\"method get\">GET</span> <code>/x/{id}</code></h3>"
        ));
        assert!(html.contains("reads a <code>thing</code>"));
        assert!(html.contains("<a href=\"#schema-Problem\">Problem</a>"));
        assert!(html.contains("&quot;code&quot;: &quot;not_found&quot;"));
        assert!(html.contains("id=\"schema-Problem\""));
        assert!(
            !html.contains("<script"),
            "no script: the CSP allows none inline"
        );
        assert!(!html.contains(" style="));
    }

    #[test]
    fn types_read_as_text() {
        assert_eq!(
            type_of(&json!({"type": ["string", "null"], "format": "date"})),
            "string (date) | null"
        );
        assert_eq!(
            type_of(&json!({"type": "array", "items": {"$ref": "#/components/schemas/B"}})),
            "array of <a href=\"#schema-B\">B</a>"
        );
        assert_eq!(
            type_of(&json!({"enum": ["A", "B"]})),
            "<code>&quot;A&quot;</code> | <code>&quot;B&quot;</code>"
        );
    }
}
