//! Browser auth for the console. A bearer token is entered once on the login
//! page; the daemon answers with a random session id in an `HttpOnly`,
//! `SameSite=Strict` cookie (`Secure` under TLS) and keeps, in memory only
//! (`crate::sessions`), what the id stands for: the token's name and roles, a
//! CSRF token, and when it expires. Every form that changes something carries the CSRF token and
//! is refused without it. With no tokens configured the daemon listens on
//! loopback only (see `listen`) and the console needs no login; its forms
//! still carry a CSRF token (one per daemon run), so another site open in the
//! same browser cannot post to them.

use crate::app::App;
use crate::auth::Caller;
use crate::config::Role;
use crate::sessions::LIFETIME;
use crate::ui::page::{self, UiError};
use axum::extract::{Form, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;
use serde::Deserialize;
use std::sync::Arc;
use subtle::ConstantTimeEq;

/// The cookie's name.
pub const COOKIE: &str = "keel_session";

/// Who is looking at a page.
pub struct Viewer {
    pub caller: Caller,
    /// What this viewer's forms must carry.
    pub csrf: String,
    /// `None` when the console is open (no tokens): no logout then.
    pub session: Option<String>,
}

impl Viewer {
    pub fn is_admin(&self) -> bool {
        self.caller.has(Role::Admin)
    }

    /// Refuses a form whose CSRF token is not this viewer's (403).
    pub fn check_csrf(&self, presented: &str) -> Result<(), UiError> {
        let ok = !self.csrf.is_empty()
            && presented.len() == self.csrf.len()
            && bool::from(presented.as_bytes().ct_eq(self.csrf.as_bytes()));
        if ok {
            Ok(())
        } else {
            Err(UiError::new(
                StatusCode::FORBIDDEN,
                "the form's CSRF token is missing or stale: reload the page and try again",
            ))
        }
    }

    /// 403 unless the viewer holds the admin role.
    pub fn require_admin(&self) -> Result<(), UiError> {
        if self.is_admin() {
            Ok(())
        } else {
            Err(UiError::new(
                StatusCode::FORBIDDEN,
                format!("token `{}` lacks the `admin` role", self.caller.name),
            ))
        }
    }
}

fn cookie_value<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// The viewer of a page that needs `read`: anonymous with every role when no
/// tokens are configured, else the session's; without a session, a redirect
/// to the login page.
pub fn viewer(app: &App, headers: &HeaderMap) -> Result<Viewer, UiError> {
    let snap = app.snapshot();
    let viewer = if snap.tokens.is_open() {
        Viewer {
            caller: snap.tokens.identify(None).map_err(UiError::from)?,
            csrf: app.console.open_csrf.clone(),
            session: None,
        }
    } else {
        let id = cookie_value(headers, COOKIE).ok_or(UiError::Login)?;
        let (caller, csrf) = app.console.find(id).ok_or(UiError::Login)?;
        Viewer {
            caller,
            csrf,
            session: Some(id.to_string()),
        }
    };
    if !viewer.caller.has(Role::Read) {
        return Err(UiError::new(
            StatusCode::FORBIDDEN,
            format!(
                "token `{}` lacks the `read` role the console needs",
                viewer.caller.name
            ),
        ));
    }
    Ok(viewer)
}

/// `GET /ui/login`.
pub async fn login_page(State(app): State<Arc<App>>) -> Response {
    if app.snapshot().tokens.is_open() {
        return Redirect::to("/ui").into_response();
    }
    login_form(StatusCode::OK, None)
}

fn login_form(status: StatusCode, error: Option<&str>) -> Response {
    let body = html! {
        form.login method="post" action="/ui/login" {
            h1 { "Keel console" }
            @if let Some(e) = error { p.error { (e) } }
            label for="token" { "Token" }
            input #token type="password" name="token" autocomplete="current-password" required autofocus;
            button type="submit" { "Log in" }
            p.muted { "A bearer token from the daemon's config with the " code { "read" } " role (" code { "admin" } " for actions). It is sent once; the browser keeps only a session cookie." }
        }
    };
    (status, page::bare("Log in", body)).into_response()
}

#[derive(Deserialize)]
pub struct LoginForm {
    token: String,
}

/// `POST /ui/login`: a known token with `read` gets a session.
pub async fn login(
    State(app): State<Arc<App>>,
    Form(f): Form<LoginForm>,
) -> Result<Response, UiError> {
    let snap = app.snapshot();
    if snap.tokens.is_open() {
        return Ok(Redirect::to("/ui").into_response());
    }
    let presented = format!("Bearer {}", f.token.trim());
    let caller = match snap.tokens.identify(Some(presented.as_bytes())) {
        Ok(c) => c,
        Err(_) => {
            app.metrics.refuse("", "unauthorized");
            return Ok(login_form(StatusCode::UNAUTHORIZED, Some("unknown token")));
        }
    };
    if !caller.has(Role::Read) {
        app.metrics.refuse("", "forbidden");
        let msg = format!("token `{}` lacks the `read` role", caller.name);
        return Ok(login_form(StatusCode::FORBIDDEN, Some(&msg)));
    }
    let (id, _) = app.console.create(caller).map_err(UiError::internal)?;
    let secure = if snap.config.tls.is_some() {
        "; Secure"
    } else {
        ""
    };
    let cookie = format!(
        "{COOKIE}={id}; Path=/ui; HttpOnly; SameSite=Strict; Max-Age={}{secure}",
        LIFETIME.as_secs()
    );
    let mut r = Redirect::to("/ui").into_response();
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    Ok(r)
}

#[derive(Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

/// `POST /ui/logout`: forgets the session and clears the cookie.
pub async fn logout(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Form(f): Form<CsrfForm>,
) -> Result<Response, UiError> {
    let v = viewer(&app, &headers)?;
    v.check_csrf(&f.csrf)?;
    if let Some(id) = &v.session {
        app.console.remove(id);
    }
    let mut r = Redirect::to("/ui/login").into_response();
    r.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("keel_session=; Path=/ui; HttpOnly; SameSite=Strict; Max-Age=0"),
    );
    Ok(r)
}
