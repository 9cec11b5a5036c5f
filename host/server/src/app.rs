//! The daemon's state: the store, the runtime, the loaded pipeline versions
//! with their traffic (stable, canary share, shadow), tokens and limits — an
//! immutable snapshot swapped whole on reload, so a request in flight keeps
//! the versions it started with and none is dropped.

use crate::auth::Tokens;
use crate::config::ServerConfig;
use crate::metrics::Metrics;
use crate::serving::{LoadFailure, Version};
use keel_runtime::Runtime;
use keel_store::{State, Store, compare_versions};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

/// A canary: a share of a pipeline's unpinned requests go to `version`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Canary {
    pub version: String,
    /// In (0, 1].
    pub share: f64,
}

/// A pipeline's traffic, kept in the store (tree `serving`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Traffic {
    /// The version unpinned requests go to; unset: the latest loaded.
    #[serde(default)]
    pub stable: Option<String>,
    #[serde(default)]
    pub canary: Option<Canary>,
    /// Receives a copy of every unpinned request; its answer is recorded
    /// and compared, never returned.
    #[serde(default)]
    pub shadow: Option<String>,
    /// Earlier stable versions, most recent last (what rollback returns to).
    #[serde(default)]
    pub history: Vec<String>,
    #[serde(default)]
    pub updated_at: String,
}

/// How a request reached its version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    Stable,
    Canary,
    /// The URL named the version.
    Pinned,
    Shadow,
}

impl Route {
    pub fn as_str(self) -> &'static str {
        match self {
            Route::Stable => "stable",
            Route::Canary => "canary",
            Route::Pinned => "pinned",
            Route::Shadow => "shadow",
        }
    }
}

/// A deployed pipeline as served: its loaded versions and traffic.
pub struct Model {
    pub name: String,
    /// Loaded versions by version string.
    pub versions: BTreeMap<String, Arc<Version>>,
    pub traffic: Traffic,
    /// Counts unpinned requests for the canary split.
    counter: Arc<AtomicU64>,
}

impl Model {
    /// The version unpinned requests go to when no canary takes them.
    pub fn stable(&self) -> Option<&Arc<Version>> {
        if let Some(v) = self
            .traffic
            .stable
            .as_ref()
            .and_then(|s| self.versions.get(s))
        {
            return Some(v);
        }
        self.versions
            .values()
            .max_by(|a, b| compare_versions(&a.version, &b.version))
    }

    /// Picks the version of an unpinned request. The split is by count, not
    /// by coin: request n goes to the canary when ⌊(n+1)·share⌋ > ⌊n·share⌋,
    /// so over any run of requests the canary's share is exact to within one.
    pub fn route(&self) -> Option<(Arc<Version>, Route)> {
        if let Some(c) = &self.traffic.canary
            && let Some(v) = self.versions.get(&c.version)
        {
            let n = self.counter.fetch_add(1, Ordering::Relaxed) as f64;
            if ((n + 1.0) * c.share).floor() > (n * c.share).floor() {
                return Some((v.clone(), Route::Canary));
            }
        }
        self.stable().map(|v| (v.clone(), Route::Stable))
    }

    /// The shadow version, if one is set, loaded, and not `serving`.
    pub fn shadow_for(&self, serving: &str) -> Option<Arc<Version>> {
        let s = self.traffic.shadow.as_ref()?;
        if s == serving {
            return None;
        }
        self.versions.get(s).cloned()
    }

    /// Versions sorted by version order.
    pub fn sorted_versions(&self) -> Vec<&Arc<Version>> {
        let mut v: Vec<&Arc<Version>> = self.versions.values().collect();
        v.sort_by(|a, b| compare_versions(&a.version, &b.version));
        v
    }
}

/// Everything a request reads, swapped whole on reload.
pub struct Snapshot {
    pub config: ServerConfig,
    pub tokens: Tokens,
    pub models: BTreeMap<String, Model>,
    /// Versions that failed to load (reported by the admin API and at start).
    pub failures: Vec<LoadFailure>,
}

/// The daemon.
pub struct App {
    pub store: Store,
    pub rt: Arc<Runtime>,
    pub metrics: Arc<Metrics>,
    snapshot: RwLock<Arc<Snapshot>>,
    /// Serialises reloads and admin changes (they read, change, then swap).
    pub changes: tokio::sync::Mutex<()>,
    /// Shadow requests in flight across pipelines.
    pub shadow_slots: Arc<tokio::sync::Semaphore>,
    /// The console's browser sessions.
    pub console: crate::sessions::Sessions,
}

impl App {
    /// Loads every deployed, non-retired version.
    pub fn start(store: Store, rt: Arc<Runtime>, config: ServerConfig) -> Result<App, String> {
        let metrics = Arc::new(Metrics::new());
        let shadow_slots = Arc::new(tokio::sync::Semaphore::new(
            config.limits.shadow_queue.max(1),
        ));
        let snapshot = build(&store, &rt, &metrics, config, None)?;
        metrics
            .versions_loaded
            .set(count_versions(&snapshot) as i64);
        Ok(App {
            store,
            rt,
            metrics,
            snapshot: RwLock::new(Arc::new(snapshot)),
            changes: tokio::sync::Mutex::new(()),
            shadow_slots,
            console: Default::default(),
        })
    }

    /// The current snapshot.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        match self.snapshot.read() {
            Ok(s) => s.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Rebuilds the snapshot from the store with `config` (the current one
    /// when `None`), reusing loaded versions whose digest and limits did not
    /// change, and swaps it in. Blocking (it may compile plugins).
    pub fn reload(&self, config: Option<ServerConfig>) -> Result<ReloadReport, String> {
        let current = self.snapshot();
        let config = config.unwrap_or_else(|| current.config.clone());
        let next = build(&self.store, &self.rt, &self.metrics, config, Some(&current))?;
        let report = ReloadReport {
            versions: next
                .models
                .values()
                .flat_map(|m| {
                    m.versions
                        .values()
                        .map(|v| format!("{}@{}", v.name, v.version))
                })
                .collect(),
            failures: next.failures.iter().map(|f| f.to_string()).collect(),
        };
        self.metrics
            .versions_loaded
            .set(count_versions(&next) as i64);
        let next = Arc::new(next);
        match self.snapshot.write() {
            Ok(mut s) => *s = next,
            Err(poisoned) => *poisoned.into_inner() = next,
        }
        // Versions no longer served close when their last request lets go
        // of them (Version's Drop saves monitor state).
        Ok(report)
    }

    /// Stops every version's monitors (saving their state) and flushes the store.
    pub fn shutdown(&self) {
        let snap = self.snapshot();
        for m in snap.models.values() {
            for v in m.versions.values() {
                v.close();
            }
        }
        if let Err(e) = self.store.flush() {
            tracing::error!(error = %e, "flushing the store at shutdown");
        }
    }

    /// The saved traffic of `pipeline` (default if none).
    pub fn traffic(&self, pipeline: &str) -> Result<Traffic, String> {
        read_traffic(&self.store, pipeline)
    }

    /// Saves the traffic of `pipeline` (durable on return).
    pub fn put_traffic(&self, pipeline: &str, mut t: Traffic) -> Result<(), String> {
        t.updated_at = keel_store::now_rfc3339();
        let bytes = serde_json::to_vec(&t).map_err(|e| e.to_string())?;
        self.store
            .put_serving(pipeline, &bytes)
            .map_err(|e| e.to_string())
    }
}

/// What a reload loaded.
#[derive(Debug, Clone, Serialize)]
pub struct ReloadReport {
    pub versions: Vec<String>,
    pub failures: Vec<String>,
}

fn count_versions(s: &Snapshot) -> usize {
    s.models.values().map(|m| m.versions.len()).sum()
}

fn read_traffic(store: &Store, pipeline: &str) -> Result<Traffic, String> {
    match store.serving(pipeline).map_err(|e| e.to_string())? {
        Some(bytes) => serde_json::from_slice(&bytes)
            .map_err(|e| format!("traffic of `{pipeline}` in the store is unreadable: {e}")),
        None => Ok(Traffic::default()),
    }
}

fn build(
    store: &Store,
    rt: &Arc<Runtime>,
    metrics: &Arc<Metrics>,
    config: ServerConfig,
    previous: Option<&Snapshot>,
) -> Result<Snapshot, String> {
    let tokens = Tokens::from_config(&config)?;
    let mut models: BTreeMap<String, Model> = BTreeMap::new();
    let mut failures = Vec::new();
    let records = store.list_pipelines().map_err(|e| e.to_string())?;
    for r in records {
        if r.state == State::Retired {
            continue;
        }
        let limits = config.limits_for(&r.name);
        let reused = previous
            .and_then(|p| p.models.get(&r.name))
            .and_then(|m| m.versions.get(&r.version))
            .filter(|v| v.digest == r.digest && limits_equal(&v.limits, &limits))
            .cloned();
        let version = match reused {
            Some(v) => v,
            None => match Version::load(rt, store, metrics, &r.name, &r.version, limits) {
                Ok(v) => {
                    tracing::info!(pipeline = %r.name, version = %r.version, "loaded");
                    v
                }
                Err(e) => {
                    tracing::error!(error = %e, "cannot load a deployed pipeline version");
                    failures.push(e);
                    continue;
                }
            },
        };
        let model = match models.entry(r.name.clone()) {
            std::collections::btree_map::Entry::Occupied(o) => o.into_mut(),
            std::collections::btree_map::Entry::Vacant(v) => {
                let counter = previous
                    .and_then(|p| p.models.get(&r.name))
                    .map(|m| m.counter.clone())
                    .unwrap_or_default();
                v.insert(Model {
                    name: r.name.clone(),
                    versions: BTreeMap::new(),
                    traffic: read_traffic(store, &r.name)?,
                    counter,
                })
            }
        };
        model.versions.insert(r.version.clone(), version);
    }
    Ok(Snapshot {
        config,
        tokens,
        models,
        failures,
    })
}

fn limits_equal(a: &crate::config::Limits, b: &crate::config::Limits) -> bool {
    a.concurrency == b.concurrency
        && a.queue == b.queue
        && a.request_timeout_ms == b.request_timeout_ms
        && a.monitor_queue == b.monitor_queue
        && a.default_window_rows == b.default_window_rows
}
