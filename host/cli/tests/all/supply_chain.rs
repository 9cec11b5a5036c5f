//! Supply chain: `keel plugin keygen|sign|verify` and the trust policy that
//! refuses unsigned, tampered or wrongly signed plugins at add and deploy.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;
use common::*;
use std::path::{Path, PathBuf};
use std::process::Output;

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn ok(o: &Output) -> String {
    assert!(o.status.success(), "{}{}", stdout(o), stderr(o));
    stdout(o)
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A copy of a built plugin in `dir`.
fn plugin_copy(dir: &Path, plugin: &str, as_name: &str) -> PathBuf {
    let to = dir.join(as_name);
    std::fs::copy(
        guest_dir("KEEL_PLUGIN_DIR", "plugins").join(format!("{plugin}.wasm")),
        &to,
    )
    .unwrap();
    to
}

/// Appends a custom section: the component still loads and behaves the same,
/// so only the signature can tell the bytes were changed.
fn tamper(path: &Path) {
    let mut bytes = std::fs::read(path).unwrap();
    bytes.extend_from_slice(&[0x00, 0x06, 0x05, b'e', b'v', b'i', b'l', b'!']);
    std::fs::write(path, bytes).unwrap();
}

fn keygen(store: &Path, out: &Path) {
    ok(&keel_in(store, &["plugin", "keygen", "--out", s(out)]));
}

#[test]
fn keygen_sign_verify_and_tampering() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let key = d.join("release.key");
    let out = ok(&keel(&["plugin", "keygen", "--out", s(&key)]));
    assert!(out.starts_with("ed25519:"), "{out}");
    let public = d.join("release.key.pub");
    assert!(public.is_file());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "secret key mode {mode:o}");
    }
    // An existing key is never overwritten by accident.
    fails_with(
        &keel(&["plugin", "keygen", "--out", s(&key)]),
        1,
        "exists; pass --force",
    );

    let wasm = plugin_copy(d, "standard-scaler", "scaler.wasm");
    let out = ok(&keel(&["plugin", "sign", s(&wasm), "--key", s(&key)]));
    assert!(out.contains("sha256:"), "{out}");
    assert!(d.join("scaler.wasm.sig").is_file());
    let out = ok(&keel(&[
        "plugin",
        "verify",
        s(&wasm),
        "--pubkey",
        s(&public),
    ]));
    assert!(out.contains("good signature by ed25519:"), "{out}");

    // The same signature over changed bytes: exit 5, saying so.
    let changed = d.join("changed.wasm");
    std::fs::copy(&wasm, &changed).unwrap();
    tamper(&changed);
    let sig = d.join("scaler.wasm.sig");
    let o = keel(&[
        "plugin",
        "verify",
        s(&changed),
        "--pubkey",
        s(&public),
        "--sig",
        s(&sig),
    ]);
    fails_with(&o, 5, "changed after it was signed");

    // Another key's public half does not accept it.
    let other = d.join("other.key");
    keygen(d, &other);
    let o = keel(&[
        "plugin",
        "verify",
        s(&wasm),
        "--pubkey",
        &format!("{}.pub", s(&other)),
    ]);
    fails_with(&o, 5, "which is not trusted");

    // A forged signature (one hex digit changed) is caught.
    let text = std::fs::read_to_string(&sig).unwrap();
    let line = text.lines().find(|l| l.starts_with("signature ")).unwrap();
    let mut forged_line = line.to_string();
    let last = forged_line.pop().unwrap();
    forged_line.push(if last == '0' { '1' } else { '0' });
    let forged = d.join("forged.sig");
    std::fs::write(&forged, text.replace(line, &forged_line)).unwrap();
    let o = keel(&[
        "plugin",
        "verify",
        s(&wasm),
        "--pubkey",
        s(&public),
        "--sig",
        s(&forged),
    ]);
    fails_with(&o, 5, "does not verify");

    // A malformed signature file is a usage error naming file and line.
    let junk = d.join("junk.sig");
    let key_line = text.lines().nth(1).unwrap();
    std::fs::write(&junk, text.replace(key_line, "key nope")).unwrap();
    let o = keel(&[
        "plugin",
        "verify",
        s(&wasm),
        "--pubkey",
        s(&public),
        "--sig",
        s(&junk),
    ]);
    fails_with(&o, 2, "junk.sig:2: key `nope`");
}

fn add(store: &Path, file: &Path, name: &str) -> Output {
    keel_in(
        store,
        &[
            "plugin",
            "add",
            s(file),
            "--name",
            name,
            "--version",
            "1.0.0",
        ],
    )
}

#[test]
fn the_trust_policy_refuses_unsigned_tampered_and_foreign_plugins() {
    let store = tempfile::tempdir().unwrap();
    let st = store.path();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let key = d.join("k");
    keygen(st, &key);
    let stranger = d.join("stranger");
    keygen(st, &stranger);

    // No policy: an unsigned plugin is added as before.
    let minmax = plugin_copy(d, "one-hot-encoder", "onehot.wasm");
    ok(&add(st, &minmax, "minmax"));
    assert!(ok(&keel_in(st, &["plugin", "trust", "ls"])).contains("no trusted keys"));

    let out = ok(&keel_in(
        st,
        &[
            "plugin",
            "trust",
            "add",
            &format!("{}.pub", s(&key)),
            "--label",
            "release team",
        ],
    ));
    assert!(
        out.contains("trusted") && out.contains("1 trusted key"),
        "{out}"
    );
    let ls = ok(&keel_in(st, &["plugin", "trust", "ls"]));
    assert!(ls.contains("release team"), "{ls}");

    // Unsigned: refused, naming the plugin and why.
    let scaler = plugin_copy(d, "standard-scaler", "scaler.wasm");
    let o = add(st, &scaler, "scaler");
    fails_with(&o, 4, "plugin scaler@1.0.0 (sha256:");
    fails_with(
        &o,
        4,
        "refused by the trust policy (1 trusted key): it is not signed",
    );
    // Signed by a key the store does not trust: refused.
    ok(&keel_in(
        st,
        &["plugin", "sign", s(&scaler), "--key", s(&stranger)],
    ));
    fails_with(&add(st, &scaler, "scaler"), 4, "which is not trusted");
    // Signed by the trusted key, then one custom section appended: refused.
    ok(&keel_in(
        st,
        &["plugin", "sign", s(&scaler), "--key", s(&key)],
    ));
    let tampered = d.join("tampered.wasm");
    std::fs::copy(&scaler, &tampered).unwrap();
    tamper(&tampered);
    std::fs::copy(d.join("scaler.wasm.sig"), d.join("tampered.wasm.sig")).unwrap();
    fails_with(
        &add(st, &tampered, "scaler"),
        4,
        "changed after it was signed",
    );
    // Nothing refused was stored.
    let ls = ok(&keel_in(st, &["plugin", "ls"]));
    assert!(!ls.lines().any(|l| l.starts_with("scaler ")), "{ls}");
    // Signed by the trusted key: added.
    ok(&add(st, &scaler, "scaler"));
    // The tampered bytes are a valid component: without the policy they load.
    let o = keel(&["plugin", "inspect", s(&tampered)]);
    assert!(o.status.success(), "{}", stderr(&o));

    // Removing the last key turns the policy off.
    let out = ok(&keel_in(
        st,
        &["plugin", "trust", "rm", &format!("{}.pub", s(&key))],
    ));
    assert!(out.contains("policy is off"), "{out}");
    ok(&add(st, &tampered, "tampered"));
    fails_with(
        &keel_in(st, &["plugin", "trust", "rm", "ed25519:0000000000000000"]),
        1,
        "is not trusted",
    );
}

fn spec(dir: &Path, file: &str, plugin: &str) -> PathBuf {
    let p = dir.join(file);
    std::fs::write(
        &p,
        format!(
            "name = \"{file}\"\nversion = \"1.0.0\"\n[[stages]]\nname = \"scale\"\nplugin = \"{plugin}\"\n[stages.config]\ncolumns = [\"body_mass_g\"]\nmean = [4000.0]\nstd = [800.0]\n"
        ),
    )
    .unwrap();
    p
}

#[test]
fn deploy_under_the_trust_policy() {
    let store = tempfile::tempdir().unwrap();
    let st = store.path();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let key = d.join("k");
    keygen(st, &key);
    ok(&keel_in(
        st,
        &["plugin", "trust", "add", &format!("{}.pub", s(&key))],
    ));

    // An unsigned plugin file: the deploy is refused and stores nothing.
    let scaler = plugin_copy(d, "standard-scaler", "scaler.wasm");
    let unsigned = spec(d, "a.toml", "scaler.wasm");
    let o = keel_in(st, &["pipeline", "deploy", s(&unsigned)]);
    fails_with(&o, 2, "scaler.wasm (sha256:");
    fails_with(&o, 2, "it is not signed");
    assert!(ok(&keel_in(st, &["pipeline", "ls"])).contains("no pipelines deployed"));
    // Running the spec file is held to the policy too, before any plugin runs.
    let input = example("current.csv");
    let o = keel_in(st, &["run", s(&unsigned), "-i", &input]);
    fails_with(&o, 2, "it is not signed");
    assert!(!stderr(&o).contains("audit: record"), "{}", stderr(&o));

    // Signed: the .sig next to the file is found and checked.
    ok(&keel_in(
        st,
        &["plugin", "sign", s(&scaler), "--key", s(&key)],
    ));
    ok(&keel_in(st, &["run", s(&unsigned), "-i", &input]));
    // A bundle carries the signatures: it runs under the same policy on
    // another box (a store of its own, trusting the key), and not without them.
    let bundle = d.join("bundle");
    ok(&keel_in(
        st,
        &["compile", s(&unsigned), "--out", s(&bundle)],
    ));
    let edge = tempfile::tempdir().unwrap();
    let st = edge.path();
    ok(&keel_in(
        st,
        &["plugin", "trust", "add", &format!("{}.pub", s(&key))],
    ));
    let bundled_spec = bundle.join("pipeline.toml");
    ok(&keel_in(st, &["run", s(&bundled_spec), "-i", &input]));
    for e in std::fs::read_dir(bundle.join("plugins")).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "sig") {
            std::fs::remove_file(p).unwrap();
        }
    }
    let fresh = tempfile::tempdir().unwrap();
    ok(&keel_in(
        fresh.path(),
        &["plugin", "trust", "add", &format!("{}.pub", s(&key))],
    ));
    fails_with(
        &keel_in(fresh.path(), &["run", s(&bundled_spec), "-i", &input]),
        2,
        "it is not signed",
    );
    let st = store.path();
    let out = ok(&keel_in(st, &["pipeline", "deploy", s(&unsigned)]));
    assert!(out.starts_with("a.toml@1.0.0 sha256:"), "{out}");
    ok(&keel_in(
        st,
        &["run", "a.toml@1.0.0", "-i", &example("current.csv")],
    ));

    // Tampered after signing, with the old .sig beside it: refused.
    let tampered = d.join("t.wasm");
    std::fs::copy(&scaler, &tampered).unwrap();
    tamper(&tampered);
    std::fs::copy(d.join("scaler.wasm.sig"), d.join("t.wasm.sig")).unwrap();
    let o = keel_in(st, &["pipeline", "deploy", s(&spec(d, "b.toml", "t.wasm"))]);
    fails_with(&o, 2, "changed after it was signed");

    // A plugin added with its signature deploys by name: the store kept the signature.
    let minmax = plugin_copy(d, "one-hot-encoder", "onehot.wasm");
    ok(&keel_in(
        st,
        &["plugin", "sign", s(&minmax), "--key", s(&key)],
    ));
    ok(&add(st, &minmax, "minmax"));
    std::fs::remove_file(d.join("onehot.wasm.sig")).unwrap();
    let p = d.join("c.toml");
    std::fs::write(
        &p,
        "name = \"c\"\nversion = \"1.0.0\"\n[[stages]]\nname = \"scale\"\nplugin = \"minmax@1.0.0\"\n[stages.config]\ncolumns = [\"island\"]\n[stages.config.categories]\nisland = [\"Biscoe\", \"Dream\", \"Torgersen\"]\n",
    )
    .unwrap();
    ok(&keel_in(st, &["pipeline", "deploy", s(&p)]));
    ok(&keel_in(
        st,
        &["run", "c@1.0.0", "-i", &example("current.csv")],
    ));
}

/// `keel serve` on `store` (loopback, no tokens: every role); its address.
struct Daemon(std::process::Child, String);

impl Daemon {
    fn start(store: &Path) -> Daemon {
        use std::io::BufRead;
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_keel"))
            .args(["serve", "--listen", "127.0.0.1:0"])
            .env("KEEL_STORE", store)
            .env(
                "KEEL_CACHE_DIR",
                workspace().join("target").join("keel-test-cache"),
            )
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let addr = line
            .trim()
            .strip_prefix("keel serve: listening on ")
            .unwrap_or_else(|| panic!("keel serve did not start: {line:?}"))
            .to_string();
        Daemon(child, addr)
    }

    fn upload(&self, name: &str, bytes: &[u8], signature: Option<&str>) -> (u16, String) {
        use base64::Engine;
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        let mut r = agent.post(&format!(
            "{}/admin/plugins?name={name}&version=1.0.0",
            self.1
        ));
        if let Some(sig) = signature {
            r = r.header(
                "keel-signature",
                &base64::engine::general_purpose::STANDARD.encode(sig),
            );
        }
        let mut resp = r
            .header("content-type", "application/wasm")
            .send(bytes)
            .unwrap();
        let status = resp.status().as_u16();
        (status, resp.body_mut().read_to_string().unwrap_or_default())
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn the_daemon_upload_obeys_the_trust_policy() {
    let store = tempfile::tempdir().unwrap();
    let st = store.path();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let key = d.join("k");
    keygen(st, &key);
    ok(&keel_in(
        st,
        &["plugin", "trust", "add", &format!("{}.pub", s(&key))],
    ));
    let scaler = plugin_copy(d, "standard-scaler", "scaler.wasm");
    ok(&keel_in(
        st,
        &["plugin", "sign", s(&scaler), "--key", s(&key)],
    ));
    let bytes = std::fs::read(&scaler).unwrap();
    let sig = std::fs::read_to_string(d.join("scaler.wasm.sig")).unwrap();
    let mut tampered = bytes.clone();
    tampered.extend_from_slice(&[0x00, 0x02, 0x01, b'x']);

    let daemon = Daemon::start(st);
    let (status, body) = daemon.upload("scaler", &bytes, None);
    assert_eq!(status, 400, "{body}");
    assert!(
        body.contains("refused by the trust policy") && body.contains("not signed"),
        "{body}"
    );
    let (status, body) = daemon.upload("scaler", &tampered, Some(&sig));
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("changed after it was signed"), "{body}");
    let (status, body) = daemon.upload("scaler", &bytes, Some("not a signature"));
    assert_eq!(status, 400, "{body}");
    let (status, body) = daemon.upload("scaler", &bytes, Some(&sig));
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("sha256:"), "{body}");
}
