//! Each stage's, validator's and monitor's config checked against its
//! plugin's own JSON Schema (every plugin exports one in its metadata) when
//! the spec loads, before any data is read: a typo such as `stratgy` is named
//! by spec file, entry and key, instead of coming back from the plugin as a
//! position in JSON the user never wrote.

use serde_json::Value;

/// The first thing wrong with `config` under `schema`: the key (a dotted
/// path under the entry's `config`, `[i]` for array items; empty for the
/// config as a whole) and what is wrong. A schema the validator cannot
/// compile is left to the plugin to judge, as before.
#[cfg(feature = "config-schema")]
pub(super) fn check(schema: &Value, config: &str) -> Result<(), (String, String)> {
    use jsonschema::error::ValidationErrorKind;
    let Ok(config) = serde_json::from_str::<Value>(config) else {
        return Ok(());
    };
    let Ok(validator) = jsonschema::validator_for(schema) else {
        return Ok(());
    };
    // An unknown key first: a typo also leaves the key it meant missing,
    // and the typo is the news.
    let errors: Vec<_> = validator.iter_errors(&config).collect();
    let Some(error) = errors
        .iter()
        .find(|e| matches!(e.kind(), ValidationErrorKind::AdditionalProperties { .. }))
        .or(errors.first())
    else {
        return Ok(());
    };
    let at = key(error.instance_path().as_str());
    Err(match error.kind() {
        ValidationErrorKind::AdditionalProperties { unexpected } => {
            let allowed = allowed_keys(schema, error.instance_path().as_str());
            let key = join(&at, unexpected.first().map_or("", String::as_str));
            let message = if allowed.is_empty() {
                "unknown key".to_string()
            } else {
                format!("unknown key (allowed: {})", allowed.join(", "))
            };
            (key, message)
        }
        ValidationErrorKind::Required { property } => {
            let name = property
                .as_str()
                .map_or_else(|| property.to_string(), str::to_string);
            (
                join(&at, &name),
                "missing: this plugin requires it".to_string(),
            )
        }
        _ => (at, error.to_string()),
    })
}

#[cfg(not(feature = "config-schema"))]
pub(super) fn check(_schema: &Value, _config: &str) -> Result<(), (String, String)> {
    Ok(())
}

/// A JSON pointer (`/columns/0/min`) as a key path (`columns[0].min`).
#[cfg_attr(not(feature = "config-schema"), allow(dead_code))]
fn key(pointer: &str) -> String {
    let mut out = String::new();
    for part in pointer.split('/').skip(1) {
        let part = part.replace("~1", "/").replace("~0", "~");
        if !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()) {
            out.push_str(&format!("[{part}]"));
        } else {
            out = join(&out, &part);
        }
    }
    out
}

#[cfg_attr(not(feature = "config-schema"), allow(dead_code))]
fn join(path: &str, key: &str) -> String {
    match (path.is_empty(), key.is_empty()) {
        (true, _) => key.to_string(),
        (false, true) => path.to_string(),
        (false, false) => format!("{path}.{key}"),
    }
}

/// The property names the schema allows at `pointer` in the config, when
/// they can be read off plain `properties` (the top level, or nested
/// objects); an empty list when not.
#[cfg_attr(not(feature = "config-schema"), allow(dead_code))]
fn allowed_keys(schema: &Value, pointer: &str) -> Vec<String> {
    let mut at = schema;
    for part in pointer.split('/').skip(1) {
        let next = if part.bytes().all(|b| b.is_ascii_digit()) {
            at.get("items")
        } else {
            at.get("properties").and_then(|p| p.get(part))
        };
        match next {
            Some(n) => at = n,
            None => return Vec::new(),
        }
    }
    at.get("properties")
        .and_then(Value::as_object)
        .map(|p| p.keys().cloned().collect())
        .unwrap_or_default()
}

#[cfg(all(test, feature = "config-schema"))]
mod tests {
    use super::*;

    #[test]
    fn names_the_key_and_what_is_allowed() {
        let schema = serde_json::json!({
            "type": "object", "additionalProperties": false,
            "required": ["strategy"],
            "properties": {
                "strategy": {"enum": ["mean", "median"]},
                "columns": {"type": "array", "items": {"type": "object", "additionalProperties": false,
                    "properties": {"name": {"type": "string"}}}}
            }
        });
        let (k, m) = check(&schema, r#"{"stratgy": "median"}"#).unwrap_err();
        assert_eq!(k, "stratgy");
        assert_eq!(m, "unknown key (allowed: columns, strategy)");
        let (k, m) = check(
            &schema,
            r#"{"strategy": "median", "columns": [{"nme": "a"}]}"#,
        )
        .unwrap_err();
        assert_eq!(
            (k.as_str(), m.as_str()),
            ("columns[0].nme", "unknown key (allowed: name)")
        );
        let (k, m) = check(&schema, r#"{}"#).unwrap_err();
        assert_eq!(
            (k.as_str(), m.as_str()),
            ("strategy", "missing: this plugin requires it")
        );
        let (k, m) = check(&schema, r#"{"strategy": "mode"}"#).unwrap_err();
        assert_eq!(k, "strategy");
        assert!(m.contains("mean"), "{m}");
        assert!(check(&schema, r#"{"strategy": "mean"}"#).is_ok());
    }
}
