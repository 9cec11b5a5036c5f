//! The registry: plugin components by digest, immutable `name@version` tags with a lifecycle,
//! and immutable pipeline versions whose digest covers their spec and every plugin they use.

use std::cmp::Ordering;

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::{
    Store,
    digest::{Digest, update_field},
    error::{Result, StoreError, decode},
    id::validate_name,
    layout::{self, ref_key},
    lifecycle::State,
    time::now_rfc3339,
};

/// What a plugin says about itself (from its `metadata` export), kept with its tag.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PluginMeta {
    /// `transform`, `model`, `validator` or `monitor`.
    pub kind: String,
    /// One line for humans.
    #[serde(default)]
    pub description: String,
    /// The contract it was built against, e.g. `keel:plugin@0.1.0`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contract: Option<String>,
    /// Its configuration schema, as the plugin reports it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_schema: Option<String>,
}

/// A `name@version` tag as listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PluginTag {
    /// Plugin name.
    pub name: String,
    /// Plugin version.
    pub version: String,
    /// The component it names.
    pub digest: Digest,
    /// Lifecycle state.
    pub state: State,
    /// When the tag was created (RFC 3339 UTC).
    pub added_at: String,
    /// Self-description.
    pub meta: PluginMeta,
}

/// A resolved `name@version`: its tag and the component bytes.
#[derive(Debug, Clone)]
pub struct ResolvedPlugin {
    /// The tag, with digest and state.
    pub tag: PluginTag,
    /// The component.
    pub bytes: Vec<u8>,
}

/// Why a plugin is being resolved; decides whether a retired version is acceptable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// Building or running a new pipeline version: retired versions are refused.
    NewPipeline,
    /// Replaying recorded invocations: the exact version that ran is needed, retired or not.
    Replay,
}

/// What is stored under a tag key (the name and version are the key).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct TagValue {
    digest: Digest,
    state: State,
    added_at: String,
    meta: PluginMeta,
}

/// One plugin a pipeline version references, under the role or stage that uses it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PipelinePlugin {
    /// Stage name or role (`validator:range`, …), as the caller chose.
    pub role: String,
    /// The component's digest.
    pub digest: Digest,
}

/// A deployed pipeline version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PipelineRecord {
    /// Pipeline name.
    pub name: String,
    /// Pipeline version.
    pub version: String,
    /// sha256 over the spec text and the sorted plugin references (see [`Store::put_pipeline`]).
    pub digest: Digest,
    /// The spec as deployed (TOML).
    pub spec_toml: String,
    /// The plugins it references, sorted by role then digest.
    pub plugins: Vec<PipelinePlugin>,
    /// When it was deployed (RFC 3339 UTC).
    pub added_at: String,
    /// Lifecycle: a retired version is no longer served (records written
    /// before this field existed read as active). Not part of the digest.
    #[serde(default)]
    pub state: State,
}

/// Splits `name@version` at its last `@` and validates both halves.
pub fn split_reference(reference: &str) -> Result<(&str, &str)> {
    let (name, version) = reference
        .rsplit_once('@')
        .ok_or_else(|| StoreError::BadReference(reference.to_owned()))?;
    validate_name("name", name).map_err(|_| StoreError::BadReference(reference.to_owned()))?;
    validate_name("version", version)
        .map_err(|_| StoreError::BadReference(reference.to_owned()))?;
    Ok((name, version))
}

/// Orders versions "semver-ish": the release part is compared component by
/// component (dot-separated; numeric components numerically, others as
/// text, missing ones as 0), a pre-release (`-rc.1`) sorts before its
/// release, build metadata (`+…`) is ignored, and the raw text breaks ties so
/// the order is total. `1.10.0 > 1.9.2`, `2.0.0-rc.1 < 2.0.0`.
pub fn compare_versions(a: &str, b: &str) -> Ordering {
    fn split(v: &str) -> (&str, Option<&str>) {
        let v = v.split_once('+').map_or(v, |(v, _)| v);
        match v.split_once('-') {
            Some((rel, pre)) => (rel, Some(pre)),
            None => (v, None),
        }
    }
    fn cmp_dotted(a: &str, b: &str) -> Ordering {
        let mut ia = a.trim_start_matches(['v', 'V']).split('.');
        let mut ib = b.trim_start_matches(['v', 'V']).split('.');
        loop {
            let (x, y) = match (ia.next(), ib.next()) {
                (None, None) => return Ordering::Equal,
                (x, y) => (x.unwrap_or("0"), y.unwrap_or("0")),
            };
            let o = match (x.parse::<u64>(), y.parse::<u64>()) {
                (Ok(x), Ok(y)) => x.cmp(&y),
                // Numeric identifiers sort before alphanumeric ones, as in semver.
                (Ok(_), Err(_)) => Ordering::Less,
                (Err(_), Ok(_)) => Ordering::Greater,
                (Err(_), Err(_)) => x.cmp(y),
            };
            if o != Ordering::Equal {
                return o;
            }
        }
    }
    let ((ra, pa), (rb, pb)) = (split(a), split(b));
    cmp_dotted(ra, rb)
        .then_with(|| match (pa, pb) {
            (None, None) => Ordering::Equal,
            (None, Some(_)) => Ordering::Greater,
            (Some(_), None) => Ordering::Less,
            (Some(x), Some(y)) => cmp_dotted(x, y),
        })
        .then_with(|| a.cmp(b))
}

/// The pipeline digest: sha256 over a length-prefixed encoding of a domain
/// tag, the spec text, and the plugin references sorted by (role, digest).
/// Sorting makes the digest independent of the order the caller lists them in.
pub(crate) fn pipeline_digest(spec_toml: &str, plugins: &[PipelinePlugin]) -> Digest {
    let mut h = Sha256::new();
    update_field(&mut h, b"keel-pipeline-v1");
    update_field(&mut h, spec_toml.as_bytes());
    h.update((plugins.len() as u64).to_be_bytes());
    for p in plugins {
        update_field(&mut h, p.role.as_bytes());
        update_field(&mut h, p.digest.as_str().as_bytes());
    }
    Digest::from_hash(h.finalize().into())
}

fn sorted_plugins(plugin_digests: &[(String, Digest)]) -> Vec<PipelinePlugin> {
    let mut plugins: Vec<PipelinePlugin> = plugin_digests
        .iter()
        .map(|(role, digest)| PipelinePlugin {
            role: role.clone(),
            digest: digest.clone(),
        })
        .collect();
    plugins.sort();
    plugins
}

/// The digest [`Store::put_pipeline`] gives this spec and these plugins; a
/// pipeline run from a file without being deployed is recorded under it, so
/// deploying the same spec later names the same version of the code.
pub fn digest_pipeline(spec_toml: &str, plugin_digests: &[(String, Digest)]) -> Digest {
    pipeline_digest(spec_toml, &sorted_plugins(plugin_digests))
}

/// The two kinds of versioned artifact the registry keeps: plugin components
/// and model files. Both are content-addressed bytes with immutable
/// `name@version` tags and the same lifecycle; only their trees and the
/// words in their errors differ, so one implementation serves both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Artifact {
    Plugin,
    Model,
}

impl Artifact {
    fn blobs(self, store: &Store) -> &sled::Tree {
        match self {
            Artifact::Plugin => &store.trees().plugins,
            Artifact::Model => &store.trees().models,
        }
    }
    fn tags(self, store: &Store) -> &sled::Tree {
        match self {
            Artifact::Plugin => &store.trees().tags,
            Artifact::Model => &store.trees().model_tags,
        }
    }
    fn tags_tree(self) -> &'static str {
        match self {
            Artifact::Plugin => layout::TAGS,
            Artifact::Model => layout::MODEL_TAGS,
        }
    }
    fn noun(self) -> &'static str {
        match self {
            Artifact::Plugin => "plugin",
            Artifact::Model => "model",
        }
    }
    fn unknown(self, name: &str, version: &str) -> StoreError {
        let (name, version) = (name.to_owned(), version.to_owned());
        match self {
            Artifact::Plugin => StoreError::UnknownPlugin { name, version },
            Artifact::Model => StoreError::UnknownModel { name, version },
        }
    }
    fn unknown_digest(self, digest: &Digest) -> StoreError {
        match self {
            Artifact::Plugin => StoreError::UnknownDigest(digest.clone()),
            Artifact::Model => StoreError::UnknownModelDigest(digest.clone()),
        }
    }
    fn immutable(
        self,
        name: &str,
        version: &str,
        existing: Digest,
        requested: Digest,
    ) -> StoreError {
        let (name, version) = (name.to_owned(), version.to_owned());
        match self {
            Artifact::Plugin => StoreError::TagImmutable {
                name,
                version,
                existing,
                requested,
            },
            Artifact::Model => StoreError::ModelTagImmutable {
                name,
                version,
                existing,
                requested,
            },
        }
    }
    fn retired(self, name: &str, version: &str) -> StoreError {
        let (name, version) = (name.to_owned(), version.to_owned());
        match self {
            Artifact::Plugin => StoreError::Retired { name, version },
            Artifact::Model => StoreError::ModelRetired { name, version },
        }
    }
    fn retired_is_final(self, name: &str, version: &str, requested: State) -> StoreError {
        let (name, version) = (name.to_owned(), version.to_owned());
        match self {
            Artifact::Plugin => StoreError::RetiredIsFinal {
                name,
                version,
                requested,
            },
            Artifact::Model => StoreError::ModelRetiredIsFinal {
                name,
                version,
                requested,
            },
        }
    }
}

impl Store {
    pub(crate) fn put_artifact(&self, kind: Artifact, bytes: &[u8]) -> Result<Digest> {
        let digest = Digest::of(bytes);
        // compare_and_swap from "absent" writes once and never rewrites a large value.
        if kind
            .blobs(self)
            .compare_and_swap(digest.as_str(), None::<&[u8]>, Some(bytes))?
            .is_ok()
        {
            self.durability().sync()?;
            tracing::info!(%digest, size = bytes.len(), kind = kind.noun(), "artifact stored");
        }
        Ok(digest)
    }

    pub(crate) fn artifact_bytes(
        &self,
        kind: Artifact,
        digest: &Digest,
    ) -> Result<Option<Vec<u8>>> {
        Ok(kind.blobs(self).get(digest.as_str())?.map(|v| v.to_vec()))
    }

    pub(crate) fn tag_artifact(
        &self,
        kind: Artifact,
        name: &str,
        version: &str,
        digest: &Digest,
        meta: PluginMeta,
    ) -> Result<()> {
        let (what_name, what_version) = match kind {
            Artifact::Plugin => ("plugin name", "plugin version"),
            Artifact::Model => ("model name", "model version"),
        };
        validate_name(what_name, name)?;
        validate_name(what_version, version)?;
        if !kind.blobs(self).contains_key(digest.as_str())? {
            return Err(kind.unknown_digest(digest));
        }
        let value = TagValue {
            digest: digest.clone(),
            state: State::Staged,
            added_at: now_rfc3339(),
            meta,
        };
        let key = ref_key(name, version);
        let cas = kind.tags(self).compare_and_swap(
            &key,
            None::<&[u8]>,
            Some(serde_json::to_vec(&value)?),
        )?;
        match cas {
            Ok(()) => {
                self.durability().sync()?;
                tracing::info!(artifact = %key, kind = kind.noun(), %digest, "tagged");
                Ok(())
            }
            Err(current) => {
                let existing: TagValue = match current.current {
                    Some(v) => decode(kind.tags_tree(), &v)?,
                    None => {
                        return Err(StoreError::Corrupt {
                            tree: kind.tags_tree(),
                            reason: "tag vanished".into(),
                        });
                    }
                };
                if existing.digest == *digest {
                    Ok(())
                } else {
                    Err(kind.immutable(name, version, existing.digest, digest.clone()))
                }
            }
        }
    }

    pub(crate) fn artifact_tag(
        &self,
        kind: Artifact,
        name: &str,
        version: &str,
    ) -> Result<Option<PluginTag>> {
        let Some(v) = kind.tags(self).get(ref_key(name, version))? else {
            return Ok(None);
        };
        let t: TagValue = decode(kind.tags_tree(), &v)?;
        Ok(Some(PluginTag {
            name: name.to_owned(),
            version: version.to_owned(),
            digest: t.digest,
            state: t.state,
            added_at: t.added_at,
            meta: t.meta,
        }))
    }

    pub(crate) fn set_artifact_state(
        &self,
        kind: Artifact,
        name: &str,
        version: &str,
        state: State,
    ) -> Result<()> {
        let key = ref_key(name, version);
        let tags = kind.tags(self);
        // Compare-and-swap loop: a concurrent retire must not be overwritten.
        loop {
            let Some(old) = tags.get(&key)? else {
                return Err(kind.unknown(name, version));
            };
            let mut t: TagValue = decode(kind.tags_tree(), &old)?;
            if t.state == state {
                return Ok(());
            }
            if t.state == State::Retired {
                return Err(kind.retired_is_final(name, version, state));
            }
            let from = t.state;
            t.state = state;
            if tags
                .compare_and_swap(&key, Some(old), Some(serde_json::to_vec(&t)?))?
                .is_ok()
            {
                self.durability().sync()?;
                tracing::info!(artifact = %key, kind = kind.noun(), %from, to = %state, "lifecycle changed");
                return Ok(());
            }
        }
    }

    pub(crate) fn list_artifacts(&self, kind: Artifact) -> Result<Vec<PluginTag>> {
        let mut out = Vec::new();
        for entry in kind.tags(self).iter() {
            let (k, v) = entry?;
            let key = String::from_utf8_lossy(&k);
            let (name, version) = key.rsplit_once('@').ok_or_else(|| StoreError::Corrupt {
                tree: kind.tags_tree(),
                reason: format!("key {key:?} is not name@version"),
            })?;
            let t: TagValue = decode(kind.tags_tree(), &v)?;
            out.push(PluginTag {
                name: name.to_owned(),
                version: version.to_owned(),
                digest: t.digest,
                state: t.state,
                added_at: t.added_at,
                meta: t.meta,
            });
        }
        out.sort_by(|a, b| {
            a.name
                .cmp(&b.name)
                .then_with(|| compare_versions(&a.version, &b.version))
        });
        Ok(out)
    }

    pub(crate) fn resolve_artifact(
        &self,
        kind: Artifact,
        reference: &str,
        purpose: Purpose,
    ) -> Result<ResolvedPlugin> {
        let (name, version) = split_reference(reference)?;
        let tag = self
            .artifact_tag(kind, name, version)?
            .ok_or_else(|| kind.unknown(name, version))?;
        if tag.state == State::Retired && purpose == Purpose::NewPipeline {
            return Err(kind.retired(name, version));
        }
        let bytes = self
            .artifact_bytes(kind, &tag.digest)?
            .ok_or_else(|| kind.unknown_digest(&tag.digest))?;
        Ok(ResolvedPlugin { tag, bytes })
    }

    /// Stores a component and returns its digest; storing the same bytes again is a no-op.
    pub fn put_plugin(&self, bytes: &[u8]) -> Result<Digest> {
        self.put_artifact(Artifact::Plugin, bytes)
    }

    /// The component stored under `digest`, if any.
    pub fn plugin_bytes(&self, digest: &Digest) -> Result<Option<Vec<u8>>> {
        self.artifact_bytes(Artifact::Plugin, digest)
    }

    /// Points `name@version` at `digest` (which must be stored), in state
    /// [`State::Staged`]. Tags are immutable: repeating the same call is a
    /// no-op, pointing an existing tag elsewhere is [`StoreError::TagImmutable`].
    pub fn tag_plugin(
        &self,
        name: &str,
        version: &str,
        digest: &Digest,
        meta: PluginMeta,
    ) -> Result<()> {
        self.tag_artifact(Artifact::Plugin, name, version, digest, meta)
    }

    /// The tag `name@version`, if it exists.
    pub fn plugin_tag(&self, name: &str, version: &str) -> Result<Option<PluginTag>> {
        self.artifact_tag(Artifact::Plugin, name, version)
    }

    /// The lifecycle state of `name@version`.
    pub fn lifecycle(&self, name: &str, version: &str) -> Result<State> {
        self.plugin_tag(name, version)?
            .map(|t| t.state)
            .ok_or_else(|| Artifact::Plugin.unknown(name, version))
    }

    /// Moves `name@version` to `state`. Any move is allowed except out of
    /// [`State::Retired`] ([`StoreError::RetiredIsFinal`]); setting the current state is a no-op.
    pub fn set_state(&self, name: &str, version: &str, state: State) -> Result<()> {
        self.set_artifact_state(Artifact::Plugin, name, version, state)
    }

    /// Every tag, sorted by name then version order.
    pub fn list_plugins(&self) -> Result<Vec<PluginTag>> {
        self.list_artifacts(Artifact::Plugin)
    }

    /// Resolves `name@version` to its tag and bytes. For
    /// [`Purpose::NewPipeline`] a retired version is [`StoreError::Retired`];
    /// for [`Purpose::Replay`] it is returned.
    pub fn resolve_plugin(&self, reference: &str, purpose: Purpose) -> Result<ResolvedPlugin> {
        self.resolve_artifact(Artifact::Plugin, reference, purpose)
    }

    /// [`Store::resolve_plugin`] for a new pipeline version: refuses retired versions.
    pub fn resolve_for_new_pipeline(&self, reference: &str) -> Result<ResolvedPlugin> {
        self.resolve_plugin(reference, Purpose::NewPipeline)
    }

    /// [`Store::resolve_plugin`] for replaying records: accepts retired versions.
    pub fn resolve_for_replay(&self, reference: &str) -> Result<ResolvedPlugin> {
        self.resolve_plugin(reference, Purpose::Replay)
    }

    // Models: the same registry over their own trees (`models`, `model_tags`).
    // The tag's `meta.kind` is the model format (`onnx`) and its description
    // the model's signature, as the caller chose.

    /// Stores a model file and returns its digest; the same bytes again is a no-op.
    pub fn put_model(&self, bytes: &[u8]) -> Result<Digest> {
        self.put_artifact(Artifact::Model, bytes)
    }

    /// The model file stored under `digest`, if any.
    pub fn model_bytes(&self, digest: &Digest) -> Result<Option<Vec<u8>>> {
        self.artifact_bytes(Artifact::Model, digest)
    }

    /// Points model `name@version` at `digest` (staged); tags are immutable
    /// ([`StoreError::ModelTagImmutable`]).
    pub fn tag_model(
        &self,
        name: &str,
        version: &str,
        digest: &Digest,
        meta: PluginMeta,
    ) -> Result<()> {
        self.tag_artifact(Artifact::Model, name, version, digest, meta)
    }

    /// The model tag `name@version`, if it exists.
    pub fn model_tag(&self, name: &str, version: &str) -> Result<Option<PluginTag>> {
        self.artifact_tag(Artifact::Model, name, version)
    }

    /// Moves model `name@version` to `state`; retired is final.
    pub fn set_model_state(&self, name: &str, version: &str, state: State) -> Result<()> {
        self.set_artifact_state(Artifact::Model, name, version, state)
    }

    /// Every model tag, sorted by name then version order.
    pub fn list_models(&self) -> Result<Vec<PluginTag>> {
        self.list_artifacts(Artifact::Model)
    }

    /// Resolves model `name@version` to its tag and bytes (a retired version
    /// only for [`Purpose::Replay`]).
    pub fn resolve_model(&self, reference: &str, purpose: Purpose) -> Result<ResolvedPlugin> {
        self.resolve_artifact(Artifact::Model, reference, purpose)
    }

    /// Deploys pipeline `name@version` and returns its digest: sha256 over a
    /// canonical encoding of the spec text and the (role, plugin digest) pairs
    /// sorted. Every plugin must be stored, and a plugin whose only tags are
    /// retired is refused ([`StoreError::Retired`]). Versions are immutable:
    /// the same digest again is a no-op (the stored record, its `added_at` and
    /// its `state` included: a retired version stays retired), another is
    /// [`StoreError::PipelineImmutable`]. A new version starts [`State::Active`].
    pub fn put_pipeline(
        &self,
        name: &str,
        version: &str,
        spec_toml: &str,
        plugin_digests: &[(String, Digest)],
    ) -> Result<Digest> {
        validate_name("pipeline name", name)?;
        validate_name("pipeline version", version)?;
        let plugins = sorted_plugins(plugin_digests);
        let digest = pipeline_digest(spec_toml, &plugins);
        let key = ref_key(name, version);
        if let Some(existing) = self.trees().pipelines.get(&key)? {
            return self.same_pipeline(name, version, &existing, digest);
        }
        self.check_plugins_usable(&plugins)?;
        let record = PipelineRecord {
            name: name.to_owned(),
            version: version.to_owned(),
            digest: digest.clone(),
            spec_toml: spec_toml.to_owned(),
            plugins,
            added_at: now_rfc3339(),
            state: State::Active,
        };
        let cas = self.trees().pipelines.compare_and_swap(
            &key,
            None::<&[u8]>,
            Some(serde_json::to_vec(&record)?),
        )?;
        match cas {
            Ok(()) => {
                self.durability().sync()?;
                tracing::info!(pipeline = %key, %digest, "pipeline deployed");
                Ok(digest)
            }
            Err(e) => match e.current {
                Some(existing) => self.same_pipeline(name, version, &existing, digest),
                None => Err(StoreError::Corrupt {
                    tree: layout::PIPELINES,
                    reason: "pipeline vanished".into(),
                }),
            },
        }
    }

    fn same_pipeline(
        &self,
        name: &str,
        version: &str,
        existing: &[u8],
        digest: Digest,
    ) -> Result<Digest> {
        let existing: PipelineRecord = decode(layout::PIPELINES, existing)?;
        if existing.digest == digest {
            Ok(digest)
        } else {
            Err(StoreError::PipelineImmutable {
                name: name.to_owned(),
                version: version.to_owned(),
                existing: existing.digest,
                requested: digest,
            })
        }
    }

    fn check_plugins_usable(&self, plugins: &[PipelinePlugin]) -> Result<()> {
        let tags = self.list_plugins()?;
        for p in plugins {
            if !self.trees().plugins.contains_key(p.digest.as_str())? {
                return Err(StoreError::UnknownDigest(p.digest.clone()));
            }
            let mut tagged = tags.iter().filter(|t| t.digest == p.digest).peekable();
            let first = tagged.peek().cloned();
            if let Some(first) = first
                && tagged.all(|t| t.state == State::Retired)
            {
                return Err(StoreError::Retired {
                    name: first.name.clone(),
                    version: first.version.clone(),
                });
            }
        }
        Ok(())
    }

    /// Pipeline `name@version`, or its latest version (by [`compare_versions`]) when `version` is `None`.
    pub fn get_pipeline(
        &self,
        name: &str,
        version: Option<&str>,
    ) -> Result<Option<PipelineRecord>> {
        match version {
            Some(v) => match self.trees().pipelines.get(ref_key(name, v))? {
                Some(bytes) => Ok(Some(decode(layout::PIPELINES, &bytes)?)),
                None => Ok(None),
            },
            None => {
                let mut latest: Option<PipelineRecord> = None;
                for entry in self.trees().pipelines.scan_prefix(format!("{name}@")) {
                    let (_, v) = entry?;
                    let r: PipelineRecord = decode(layout::PIPELINES, &v)?;
                    if latest.as_ref().is_none_or(|l| {
                        compare_versions(&r.version, &l.version) == Ordering::Greater
                    }) {
                        latest = Some(r);
                    }
                }
                Ok(latest)
            }
        }
    }

    /// Sets the lifecycle state of pipeline `name@version`; durable on
    /// return. The digest is unchanged (the state is not part of it). An
    /// unknown version is [`StoreError::UnknownPipeline`]; setting the current
    /// state is a no-op. Retired is final, as for plugins
    /// ([`StoreError::PipelineRetiredIsFinal`]): a record may still name that
    /// version, so it is never quietly brought back; redeploying it (same
    /// digest) is a no-op that leaves it retired, and serving it again takes a
    /// new version.
    pub fn set_pipeline_state(&self, name: &str, version: &str, state: State) -> Result<()> {
        let key = ref_key(name, version);
        let tree = &self.trees().pipelines;
        loop {
            let Some(old) = tree.get(&key)? else {
                return Err(StoreError::UnknownPipeline(format!("{name}@{version}")));
            };
            let mut r: PipelineRecord = decode(layout::PIPELINES, &old)?;
            if r.state == state {
                return Ok(());
            }
            if r.state == State::Retired {
                return Err(StoreError::PipelineRetiredIsFinal {
                    name: name.to_owned(),
                    version: version.to_owned(),
                    requested: state,
                });
            }
            let from = r.state;
            r.state = state;
            if tree
                .compare_and_swap(&key, Some(old), Some(serde_json::to_vec(&r)?))?
                .is_ok()
            {
                self.durability().sync()?;
                tracing::info!(pipeline = %key, %from, to = %state, "pipeline lifecycle changed");
                return Ok(());
            }
        }
    }

    /// Every pipeline version, sorted by name then version order.
    pub fn list_pipelines(&self) -> Result<Vec<PipelineRecord>> {
        let mut out = Vec::new();
        for entry in self.trees().pipelines.iter() {
            let (_, v) = entry?;
            out.push(decode::<PipelineRecord>(layout::PIPELINES, &v)?);
        }
        out.sort_by(|a, b| {
            a.name
                .cmp(&b.name)
                .then_with(|| compare_versions(&a.version, &b.version))
        });
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_order() {
        let mut v = vec![
            "1.10.0",
            "1.9.2",
            "2.0.0",
            "2.0.0-rc.1",
            "0.1",
            "1.9.10",
            "v1.9.3",
            "2.0.0-rc.10",
            "2.0.0-rc.2",
        ];
        v.sort_by(|a, b| compare_versions(a, b));
        assert_eq!(
            v,
            [
                "0.1",
                "1.9.2",
                "v1.9.3",
                "1.9.10",
                "1.10.0",
                "2.0.0-rc.1",
                "2.0.0-rc.2",
                "2.0.0-rc.10",
                "2.0.0"
            ]
        );
        assert_eq!(compare_versions("1.0", "1.0.0"), Ordering::Less); // tie broken by text, total order
    }

    #[test]
    fn references() {
        assert_eq!(
            split_reference("scaler@1.2.0").unwrap(),
            ("scaler", "1.2.0")
        );
        for bad in ["scaler", "@1", "scaler@", "a b@1", "x@@1"] {
            assert!(split_reference(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn pipeline_digest_ignores_plugin_order_but_not_content() {
        let a = PipelinePlugin {
            role: "a".into(),
            digest: Digest::of(b"1"),
        };
        let b = PipelinePlugin {
            role: "b".into(),
            digest: Digest::of(b"2"),
        };
        let mut fwd = vec![a.clone(), b.clone()];
        let mut rev = vec![b.clone(), a.clone()];
        fwd.sort();
        rev.sort();
        assert_eq!(pipeline_digest("spec", &fwd), pipeline_digest("spec", &rev));
        assert_ne!(
            pipeline_digest("spec", &fwd),
            pipeline_digest("spec ", &fwd)
        );
        let swapped = vec![
            PipelinePlugin {
                role: "a".into(),
                digest: b.digest.clone(),
            },
            PipelinePlugin {
                role: "b".into(),
                digest: a.digest.clone(),
            },
        ];
        assert_ne!(
            pipeline_digest("spec", &fwd),
            pipeline_digest("spec", &swapped)
        );
    }
}
