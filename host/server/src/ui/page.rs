//! The shell every console page shares (head, inline style, navigation, who
//! is logged in), the error page, and formatting helpers.

use crate::auth::AuthError;
use crate::ui::session::Viewer;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{DOCTYPE, Markup, PreEscaped, html};

/// Nothing is loaded from anywhere: styles are inline, images are inline SVG.
const CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; \
                   form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:0;color:#222;background:#fafbfc}\
header{display:flex;align-items:center;gap:1.5em;background:#1d2733;color:#fff;padding:.6em 1.5em}\
header a{color:#dfe6ee;text-decoration:none}header a:hover{color:#fff}header .brand{font-weight:700;color:#fff}\
header .who{margin-left:auto;display:flex;gap:.8em;align-items:center;color:#b8c4d0;font-size:14px}\
header form{margin:0}header button{background:none;border:1px solid #6b7a8a;color:#dfe6ee;border-radius:4px;padding:.15em .6em;cursor:pointer}\
main{padding:1em 1.5em 3em;max-width:1500px}h1{font-size:1.5em;margin:.4em 0}h2{font-size:1.15em;margin-top:1.6em}\
table{border-collapse:collapse;font-variant-numeric:tabular-nums;background:#fff;margin:.4em 0}\
td,th{padding:.3em .7em;border-bottom:1px solid #e6e8eb;text-align:left;vertical-align:top}th{background:#f0f2f5;font-weight:600}\
td.num,th.num{text-align:right}code,.digest{font-family:ui-monospace,monospace;font-size:13px}\
.muted{color:#666;font-size:13px}.error{color:#b31b1b;font-weight:600}.ok{color:#2b7a3d}\
.badge{display:inline-block;border-radius:3px;padding:0 .4em;font-size:13px;background:#e8ecf0}\
.badge.stable{background:#d7ecdb}.badge.canary{background:#fde7c8}.badge.shadow{background:#e2ddf5}.badge.alert{background:#f8d4d4;color:#8a1010}\
.badge.retired{background:#ddd;color:#555}\
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(520px,1fr));gap:1em}\
figure{margin:0;border:1px solid #dde1e6;border-radius:6px;padding:.5em;background:#fff}\
figcaption{font-size:14px;margin:0 0 .3em .3em}svg text{font-size:12px;fill:#333}\
form.inline{display:inline}form.filters{display:flex;flex-wrap:wrap;gap:.6em;align-items:end;margin:.6em 0}\
form.filters label{display:flex;flex-direction:column;font-size:13px;color:#444}\
button.action{border:1px solid #888;border-radius:4px;background:#fff;padding:.15em .7em;cursor:pointer}\
button.danger{border-color:#b31b1b;color:#b31b1b}\
.flow{display:flex;flex-wrap:wrap;align-items:stretch;gap:.3em}.flow .node{border:1px solid #cdd3da;border-radius:6px;background:#fff;padding:.4em .6em;font-size:13px}\
.flow .arrow{align-self:center;color:#888}\
form.login{max-width:26em;margin:4em auto;background:#fff;border:1px solid #dde1e6;border-radius:8px;padding:1.5em;display:flex;flex-direction:column;gap:.6em}\
.notice{background:#eef6ee;border:1px solid #b9dcbc;padding:.5em .8em;border-radius:4px}";

/// A page with the navigation and the viewer's name (and logout).
pub fn shell(title: &str, viewer: &Viewer, refresh: Option<u32>, body: Markup) -> Response {
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                @if let Some(s) = refresh { meta http-equiv="refresh" content=(s); }
                title { (title) " · Keel" }
                style { (PreEscaped(STYLE)) }
            }
            body {
                header {
                    a.brand href="/ui" { "Keel" }
                    a href="/ui" { "Overview" }
                    a href="/ui/alerts" { "Alerts" }
                    a href="/ui/audit" { "Audit" }
                    a href="/ui/registry" { "Registry" }
                    span.who {
                        span #viewer { (viewer.caller.name) @if viewer.is_admin() { " (admin)" } }
                        @if viewer.session.is_some() {
                            form method="post" action="/ui/logout" {
                                input type="hidden" name="csrf" value=(viewer.csrf);
                                button type="submit" { "Log out" }
                            }
                        }
                    }
                }
                main { (body) }
            }
        }
    };
    respond(StatusCode::OK, markup)
}

/// A page without navigation (login, errors before a viewer is known).
pub fn bare(title: &str, body: Markup) -> Response {
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            head { meta charset="utf-8"; title { (title) " · Keel" } style { (PreEscaped(STYLE)) } }
            body { main { (body) } }
        }
    };
    respond(StatusCode::OK, markup)
}

fn respond(status: StatusCode, markup: Markup) -> Response {
    let mut r = (status, markup.into_string()).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    r
}

/// Why a console page could not be shown.
#[derive(Debug)]
pub enum UiError {
    /// No session: to the login page.
    Login,
    Page {
        status: StatusCode,
        message: String,
    },
}

impl UiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> UiError {
        UiError::Page {
            status,
            message: message.into(),
        }
    }
    pub fn internal(message: impl Into<String>) -> UiError {
        UiError::new(StatusCode::INTERNAL_SERVER_ERROR, message)
    }
    pub fn not_found(message: impl Into<String>) -> UiError {
        UiError::new(StatusCode::NOT_FOUND, message)
    }
    pub fn bad_request(message: impl Into<String>) -> UiError {
        UiError::new(StatusCode::BAD_REQUEST, message)
    }
    pub fn store(e: impl std::fmt::Display) -> UiError {
        UiError::internal(format!("store: {e}"))
    }
}

impl From<AuthError> for UiError {
    fn from(e: AuthError) -> UiError {
        match e {
            AuthError::Unauthenticated(_) => UiError::Login,
            AuthError::Forbidden { .. } => UiError::new(StatusCode::FORBIDDEN, e.to_string()),
        }
    }
}

impl From<crate::http::ApiError> for UiError {
    fn from(e: crate::http::ApiError) -> UiError {
        UiError::new(e.status, e.message)
    }
}

impl IntoResponse for UiError {
    fn into_response(self) -> Response {
        match self {
            UiError::Login => Redirect::to("/ui/login").into_response(),
            UiError::Page { status, message } => {
                let body = html! {
                    h1 { (status.as_u16()) " " (status.canonical_reason().unwrap_or("")) }
                    p.error #message { (message) }
                    p { a href="/ui" { "Back to the overview" } }
                };
                let mut r = bare("Error", body);
                *r.status_mut() = status;
                r
            }
        }
    }
}

/// A digest's first 12 hex digits, the whole in the tooltip.
pub fn digest(d: &str) -> Markup {
    let hex = d.strip_prefix("sha256:").unwrap_or(d);
    html! { span.digest title=(d) { (hex.get(..12).unwrap_or(hex)) } }
}

/// Seconds as µs / ms / s.
pub fn duration(seconds: Option<f64>) -> String {
    match seconds {
        None => "—".into(),
        Some(s) if s < 1e-3 => format!("{:.0} µs", s * 1e6),
        Some(s) if s < 1.0 => format!("{:.1} ms", s * 1e3),
        Some(s) => format!("{s:.2} s"),
    }
}

/// A share as a percentage.
pub fn percent(x: f64) -> String {
    if x == 0.0 {
        "0 %".into()
    } else if x < 0.001 {
        "<0.1 %".into()
    } else {
        format!("{:.1} %", x * 100.0)
    }
}

/// `path?k=v&…` with the non-empty pairs, each value percent-encoded.
pub fn link(path: &str, pairs: &[(&str, &str)]) -> String {
    let q: Vec<String> = pairs
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| format!("{k}={}", encode(v)))
        .collect();
    if q.is_empty() {
        path.to_string()
    } else {
        format!("{path}?{}", q.join("&"))
    }
}

/// Percent-encodes a path segment or query value.
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
