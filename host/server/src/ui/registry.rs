//! The registry: pipeline versions with their lifecycle state and traffic,
//! plugins and models with versions, state, digest and signatures. An admin
//! sees promote, roll back and retire; each asks for a confirmation on a
//! page of its own (no script), posts with the session's CSRF token, and
//! runs through the admin API's own functions, so it lands in the admin log
//! like a `curl` would. Anyone else sees no buttons and gets 403 behind them.

use crate::admin;
use crate::app::App;
use crate::ui::overview::roles;
use crate::ui::page::{self, UiError, digest, link};
use crate::ui::session::{Viewer, viewer};
use axum::extract::{Form, Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use keel_store::{PipelineRecord, PluginTag, State as Lifecycle};
use maud::{Markup, html};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::sync::Arc;

/// An action the console offers.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Action {
    Promote,
    Rollback,
    Retire,
}

impl Action {
    fn parse(s: &str) -> Result<Action, UiError> {
        match s {
            "promote" => Ok(Action::Promote),
            "rollback" => Ok(Action::Rollback),
            "retire" => Ok(Action::Retire),
            other => Err(UiError::not_found(format!(
                "no console action `{other}` (promote, rollback, retire)"
            ))),
        }
    }
    fn as_str(self) -> &'static str {
        match self {
            Action::Promote => "promote",
            Action::Rollback => "rollback",
            Action::Retire => "retire",
        }
    }
    fn question(self, pipeline: &str, version: &str) -> String {
        match self {
            Action::Promote => format!(
                "Make {pipeline}@{version} the stable version of `{pipeline}`? The current stable version goes to the roll-back history."
            ),
            Action::Rollback => format!(
                "Roll `{pipeline}` back? A canary or shadow is stopped; without one, the previous stable version serves again."
            ),
            Action::Retire => format!(
                "Retire {pipeline}@{version}? It stops serving and cannot be deployed again; its records stay."
            ),
        }
    }
}

#[derive(Deserialize, Default)]
pub struct Done {
    #[serde(default)]
    done: String,
}

/// `GET /ui/registry`.
pub async fn page(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Query(d): Query<Done>,
) -> Result<Response, UiError> {
    let viewer = viewer(&app, &headers)?;
    let mut pipelines: BTreeMap<String, Vec<PipelineRecord>> = BTreeMap::new();
    for r in app.store.list_pipelines().map_err(UiError::store)? {
        pipelines.entry(r.name.clone()).or_default().push(r);
    }
    let plugins = app.store.list_plugins().map_err(UiError::store)?;
    let models = app.store.list_models().map_err(UiError::store)?;
    let mut signed = BTreeMap::new();
    for p in &plugins {
        let n = app
            .store
            .signatures(&p.digest)
            .map_err(UiError::store)?
            .len();
        signed.insert(p.digest.to_string(), n);
    }
    let body = html! {
        h1 { "Registry" }
        @if !d.done.is_empty() { p.notice #done { (d.done) } }
        h2 { "Pipelines" }
        @for (name, versions) in &pipelines { (pipeline(&app, &viewer, name, versions)?) }
        h2 { "Plugins" }
        (tags_table("plugins", &plugins, Some(&signed)))
        h2 { "Models" }
        @if models.is_empty() { p.muted { "No model in the store." } } @else { (tags_table("models", &models, None)) }
    };
    Ok(page::shell("Registry", &viewer, None, body))
}

fn pipeline(
    app: &App,
    viewer: &Viewer,
    name: &str,
    versions: &[PipelineRecord],
) -> Result<Markup, UiError> {
    let snap = app.snapshot();
    let model = snap.models.get(name);
    let traffic = match model {
        Some(m) => m.traffic.clone(),
        None => app.traffic(name).map_err(UiError::internal)?,
    };
    let serving = model.and_then(|m| m.stable().map(|v| v.version.clone()));
    let can_roll_back =
        traffic.canary.is_some() || traffic.shadow.is_some() || !traffic.history.is_empty();
    Ok(html! {
        section.registry-pipeline data-pipeline=(name) {
            h3 { (name)
                @if viewer.is_admin() && can_roll_back {
                    " " a.action href=(link("/ui/registry/confirm", &[("action", "rollback"), ("pipeline", name)])) { button.action.danger type="button" { "Roll back…" } }
                }
            }
            table {
                tr { th { "version" } th { "state" } th { "traffic" } th { "deployed" } th { "digest" } @if viewer.is_admin() { th { "actions" } } }
                @for r in versions {
                    @let is_stable = serving.as_deref() == Some(r.version.as_str());
                    @let loaded = model.is_some_and(|m| m.versions.contains_key(&r.version));
                    tr data-version=(r.version) {
                        td { (r.version) }
                        td { span.badge.retired[r.state == Lifecycle::Retired] { (r.state.to_string()) } }
                        td.traffic { @for (t, c) in roles(&traffic, serving.as_deref(), &r.version) { span class={ "badge " (c) } { (t) } " " } }
                        td { (r.added_at) }
                        td { (digest(r.digest.as_str())) }
                        @if viewer.is_admin() {
                            td {
                                @if loaded && !is_stable {
                                    a.action href=(link("/ui/registry/confirm", &[("action", "promote"), ("pipeline", name), ("version", &r.version)])) { button.action type="button" { "Promote…" } } " "
                                }
                                @if !is_stable && r.state != Lifecycle::Retired {
                                    a.action href=(link("/ui/registry/confirm", &[("action", "retire"), ("pipeline", name), ("version", &r.version)])) { button.action.danger type="button" { "Retire…" } }
                                }
                            }
                        }
                    }
                }
            }
        }
    })
}

fn tags_table(class: &str, tags: &[PluginTag], signed: Option<&BTreeMap<String, usize>>) -> Markup {
    html! {
        table class=(class) {
            tr { th { "name" } th { "version" } th { "kind" } th { "state" } th { "digest" } @if signed.is_some() { th { "signatures" } } th { "added" } }
            @for t in tags {
                tr {
                    td { (t.name) } td { (t.version) } td { (t.meta.kind) }
                    td { span.badge.retired[t.state == Lifecycle::Retired] { (t.state.to_string()) } }
                    td { (digest(t.digest.as_str())) }
                    @if let Some(s) = signed {
                        td { @match s.get(t.digest.as_str()).copied().unwrap_or(0) { 0 => span.muted { "unsigned" }, n => span.ok { (n) " signed" } } }
                    }
                    td { (t.added_at) }
                }
            }
        }
    }
}

#[derive(Deserialize)]
pub struct Target {
    action: String,
    pipeline: String,
    #[serde(default)]
    version: String,
}

/// `GET /ui/registry/confirm?action=&pipeline=&version=`: the question and
/// the form that does it (admin only).
pub async fn confirm(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Query(t): Query<Target>,
) -> Result<Response, UiError> {
    let viewer = viewer(&app, &headers)?;
    viewer.require_admin()?;
    let action = Action::parse(&t.action)?;
    let body = html! {
        h1 { "Confirm: " (action.as_str()) }
        p #question { (action.question(&t.pipeline, &t.version)) }
        form.confirm method="post" action={ "/ui/registry/" (action.as_str()) } {
            input type="hidden" name="csrf" value=(viewer.csrf);
            input type="hidden" name="pipeline" value=(t.pipeline);
            input type="hidden" name="version" value=(t.version);
            button.action.danger type="submit" { "Yes, " (action.as_str()) }
            " " a href="/ui/registry" { "Cancel" }
        }
    };
    Ok(page::shell("Confirm", &viewer, None, body))
}

#[derive(Deserialize)]
pub struct ActForm {
    #[serde(default)]
    csrf: String,
    pipeline: String,
    #[serde(default)]
    version: String,
}

/// `POST /ui/registry/{action}`: CSRF, admin, then the admin API's function.
pub async fn act(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Path(action): Path<String>,
    Form(f): Form<ActForm>,
) -> Result<Response, UiError> {
    let viewer = viewer(&app, &headers)?;
    viewer.check_csrf(&f.csrf)?;
    viewer.require_admin()?;
    let action = Action::parse(&action)?;
    let caller = viewer.caller.clone();
    let (name, version) = (f.pipeline, f.version);
    let done = match action {
        Action::Promote => {
            admin::promote_as(&app, &caller, name.clone(), Some(version.clone())).await?;
            format!("{name}@{version} is now stable.")
        }
        Action::Rollback => {
            admin::rollback_as(&app, &caller, name.clone()).await?;
            format!("`{name}` rolled back.")
        }
        Action::Retire => {
            admin::retire_as(&app, &caller, name.clone(), version.clone()).await?;
            format!("{name}@{version} retired.")
        }
    };
    Ok(Redirect::to(&link("/ui/registry", &[("done", &done)])).into_response())
}
