//! Headless Chromium for the HTML reports: load a page from a file, read back
//! the DOM it built and a screenshot. One file for every crate whose tests
//! look at a page (keel-report's, and the `keel` binary's through
//! `#[path]`: test crates cannot depend on each other's test code).
//! Chromium must be installed (`cargo xtask test` and `.ci/run` install it);
//! without it the tests that use it fail, they are never skipped.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Long enough for a cold start on a busy 2-core machine; a hung browser
/// fails the test instead of hanging it.
const TIMEOUT: Duration = Duration::from_secs(90);

/// Runs Chromium headless on `url` with `args` and returns its stdout; fails
/// after [`TIMEOUT`] or on a non-zero exit, quoting its stderr.
pub fn chromium(dir: &Path, name: &str, args: &[String], url: &str) -> Vec<u8> {
    let out = dir.join(format!("{name}.out"));
    let err = dir.join(format!("{name}.err"));
    let spawned = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--hide-scrollbars",
        ])
        .arg(format!(
            "--user-data-dir={}",
            dir.join(format!("{name}-profile")).display()
        ))
        .args(args)
        .arg(url)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn();
    let mut child = match spawned {
        Ok(child) => child,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
            "`chromium` is not on PATH: the HTML report tests need it. Install it with \
             `apt-get update && apt-get install -y --no-install-recommends chromium` \
             (`cargo xtask test` does this itself when run as root)"
        ),
        Err(e) => panic!("starting chromium: {e}"),
    };
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "chromium {name} did not finish in {TIMEOUT:?}; stderr:\n{}",
                std::fs::read_to_string(&err).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(
        status.success(),
        "chromium {name} failed with {status}; stderr:\n{}",
        std::fs::read_to_string(&err).unwrap_or_default()
    );
    std::fs::read(&out).unwrap()
}

/// A screenshot of `url` at `width`×`height`: asserts a PNG of that size
/// bigger than `min_bytes` (a blank page compresses to almost nothing) and
/// returns it.
pub fn screenshot(dir: &Path, url: &str, (width, height): (u32, u32), min_bytes: usize) -> Vec<u8> {
    let shot = dir.join("screenshot.png");
    chromium(
        dir,
        "shot",
        &[
            format!("--screenshot={}", shot.display()),
            format!("--window-size={width},{height}"),
        ],
        url,
    );
    let png = std::fs::read(&shot).expect("chromium wrote no screenshot");
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "not a PNG");
    let w = u32::from_be_bytes(png[16..20].try_into().unwrap());
    let h = u32::from_be_bytes(png[20..24].try_into().unwrap());
    assert_eq!((w, h), (width, height));
    assert!(
        png.len() > min_bytes,
        "screenshot looks blank: {} bytes",
        png.len()
    );
    png
}

/// One start tag: its name, its attributes (entities decoded), and where its
/// content starts.
#[derive(Debug)]
pub struct Tag {
    pub name: String,
    pub attrs: HashMap<String, String>,
    pub end: usize,
}

impl Tag {
    pub fn attr(&self, key: &str) -> Option<&str> {
        self.attrs.get(key).map(String::as_str)
    }

    /// Whether the tag has every one of `classes`.
    pub fn has_class(&self, classes: &[&str]) -> bool {
        let Some(class) = self.attrs.get("class") else {
            return false;
        };
        let have: Vec<&str> = class.split_whitespace().collect();
        classes.iter().all(|c| have.contains(c))
    }
}

/// The start tags of serialized HTML, in order. Enough for the DOM Chromium
/// serializes (quoted attributes, no comments in our pages).
pub fn start_tags(html: &str) -> Vec<Tag> {
    let mut tags = Vec::new();
    let mut rest = 0;
    while let Some(at) = html[rest..].find('<') {
        let start = rest + at + 1;
        let Some(len) = html[start..].find('>') else {
            break;
        };
        let inner = &html[start..start + len];
        rest = start + len + 1;
        if inner.starts_with('/') || inner.starts_with('!') {
            continue;
        }
        let name_end = inner
            .find(|c: char| c.is_whitespace() || c == '/')
            .unwrap_or(inner.len());
        let mut attrs = HashMap::new();
        let mut s = &inner[name_end..];
        while let Some(eq) = s.find("=\"") {
            let key = s[..eq].trim().to_string();
            let value_end = s[eq + 2..].find('"').unwrap();
            attrs.insert(key, decode(&s[eq + 2..eq + 2 + value_end]));
            s = &s[eq + 2 + value_end + 1..];
        }
        tags.push(Tag {
            name: inner[..name_end].to_string(),
            attrs,
            end: rest,
        });
    }
    tags
}

fn decode(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&nbsp;", "\u{a0}")
        .replace("&amp;", "&")
}
