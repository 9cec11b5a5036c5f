//! Tests that need a second process: SIGKILL crash consistency and the cross-process lock.
//!
//! The test binary re-executes itself: a `*_child` test does its work only
//! when its environment variable is set (by the parent), and otherwise
//! returns at once, so in a normal run it passes trivially.

// Test code: unwrap/panic are how a test fails (as in the workspace's other integration tests).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::{
    collections::BTreeMap,
    io::{BufRead, BufReader, Read, Write},
    path::Path,
    process::{Child, Command, Stdio},
    sync::mpsc,
    time::{Duration, Instant},
};

use common::record;
use keel_store::{Store, StoreError, StoreOptions};

const CRASH_ENV: &str = "KEEL_STORE_TEST_CRASH_WRITER";
const PROBE_ENV: &str = "KEEL_STORE_TEST_LOCK_PROBE";
/// Set (to anything) for a crash writer that commits through the audit write-ahead log.
const WAL_ENV: &str = "KEEL_STORE_TEST_WAL";

/// The text after `tag` in a child's output line. libtest prints `test NAME ... `
/// without a newline before the test's own output, so the tag may not start the line.
fn tagged<'a>(line: &'a str, tag: &str) -> Option<&'a str> {
    line.find(tag).map(|i| &line[i + tag.len()..])
}

/// libtest's name for `test` in this module: `process::NAME`, since the
/// crate's integration tests are modules of one binary (tests/all/main.rs).
fn test_path(test: &str) -> String {
    match module_path!().split_once("::") {
        Some((_, module)) => format!("{module}::{test}"),
        None => test.to_string(),
    }
}

fn spawn_child(test: &str, env: &str, dir: &Path) -> Child {
    spawn_child_with(test, env, dir, &[])
}

fn spawn_child_with(test: &str, env: &str, dir: &Path, extra: &[(&str, &str)]) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args([
            &test_path(test),
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(env, dir)
        .envs(extra.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// Child: appends records from 4 threads forever (20 s at most), printing
/// `ACK <seq> <id>` the moment each `append` returns, i.e. once durable.
#[test]
fn crash_writer_child() {
    let Some(dir) = std::env::var_os(CRASH_ENV) else {
        return;
    };
    let options = StoreOptions {
        audit_wal_bytes: std::env::var_os(WAL_ENV).map(|_| 1 << 20),
        ..Default::default()
    };
    let store = Store::open_with(Path::new(&dir), options).unwrap();
    println!("READY");
    let stop = Instant::now() + Duration::from_secs(20);
    let threads: Vec<_> = (0..4u64)
        .map(|t| {
            let store = store.clone();
            std::thread::spawn(move || {
                let mut i = 0;
                while Instant::now() < stop {
                    let mut r = record(&format!("writer-{t}"), i);
                    r.input_digest = store
                        .put_payload(format!("payload {t} {i} {:?}", Instant::now()).as_bytes())
                        .unwrap();
                    // Each record carries one prediction, named by the record's id.
                    r.id = keel_store::new_record_id();
                    let p = keel_store::NewPrediction {
                        id: r.id.clone(),
                        row: 0,
                        values: Default::default(),
                    };
                    let receipt = store
                        .append_batch_predicted(vec![(r, vec![p])])
                        .unwrap()
                        .remove(0);
                    let mut out = std::io::stdout().lock();
                    writeln!(out, "ACK {} {}", receipt.seq, receipt.id).unwrap();
                    out.flush().unwrap();
                    i += 1;
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}

#[test]
fn acknowledged_records_survive_sigkill_at_varied_points() {
    assert_eq!(
        sigkill_rounds(&[]),
        0,
        "no write-ahead log, nothing to recover"
    );
}

/// The same with group commits made durable by the write-ahead log (1 MiB,
/// so it wraps several times a round): what sled had not flushed is replayed.
#[test]
fn acknowledged_records_survive_sigkill_with_the_write_ahead_log() {
    let recovered = sigkill_rounds(&[(WAL_ENV, "1")]);
    // sled flushes on its own every 500 ms; kills come sooner than that, so
    // some acknowledged records must have been in the log alone.
    assert!(
        recovered > 0,
        "no record came back from the log: the test proves nothing"
    );
}

/// Kills a writer child repeatedly; checks every acknowledged record (and
/// its payload) after each reopen. Returns the records restored from the
/// write-ahead log over all reopens.
fn sigkill_rounds(extra_env: &[(&str, &str)]) -> usize {
    // One crash test at a time: a child spawned by one can briefly inherit
    // the other's store lock between fork and exec, which the other's next
    // child then sees as `Locked`.
    static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _serial = SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    const ROUNDS: usize = 20;
    // Delays after the child reports READY; a few rounds are killed without
    // waiting for READY, i.e. while the store is being opened and recovered.
    const DELAYS_MS: [u64; 10] = [0, 2, 5, 11, 23, 40, 75, 120, 180, 260];
    let dir = tempfile::tempdir().unwrap();
    let mut acked: BTreeMap<u64, String> = BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(240);
    let mut rounds = 0;
    let mut recovered = 0;
    for round in 0..ROUNDS {
        if Instant::now() > deadline {
            break;
        }
        rounds += 1;
        let mut child = spawn_child_with("crash_writer_child", CRASH_ENV, dir.path(), extra_env);
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut lines = Vec::new();
        let delay = Duration::from_millis(DELAYS_MS[round % DELAYS_MS.len()]);
        if round % 7 == 3 {
            std::thread::sleep(Duration::from_millis(3 * round as u64));
        } else {
            let ready_by = Instant::now() + Duration::from_secs(60);
            loop {
                let left = ready_by.saturating_duration_since(Instant::now());
                match rx.recv_timeout(left) {
                    Ok(l) if l.ends_with("READY") => break,
                    Ok(l) => lines.push(l),
                    Err(e) => {
                        let _ = child.kill();
                        panic!("round {round}: child never became ready: {e}");
                    }
                }
            }
            std::thread::sleep(delay);
        }
        child.kill().unwrap(); // SIGKILL on Unix
        let status = child.wait().unwrap();
        assert!(
            !status.success(),
            "round {round}: the writer should have been killed, not finish"
        );
        reader.join().unwrap();
        lines.extend(rx.try_iter());
        let mut this_round = 0;
        for l in &lines {
            if let Some(rest) = tagged(l, "ACK ") {
                let (seq, id) = rest.split_once(' ').unwrap();
                let seq: u64 = seq.parse().unwrap();
                if let Some(old) = acked.insert(seq, id.to_owned()) {
                    panic!("round {round}: seq {seq} acknowledged twice ({old}, {id})");
                }
                this_round += 1;
            }
        }

        let store =
            Store::open(dir.path()).unwrap_or_else(|e| panic!("round {round}: reopen: {e}"));
        recovered += store.recovered_from_wal();
        let report = store
            .verify()
            .unwrap_or_else(|e| panic!("round {round}: verify: {e}"));
        for (seq, id) in &acked {
            let r = store
                .audit_by_seq(*seq)
                .unwrap()
                .unwrap_or_else(|| panic!("round {round}: acknowledged seq {seq} is lost"));
            assert_eq!(&r.id, id, "round {round}: seq {seq} holds another record");
            assert!(
                store.payload(&r.input_digest).unwrap().is_some(),
                "round {round}: the input payload of acknowledged seq {seq} is lost"
            );
            let p = store
                .prediction(&r.pipeline.name, &r.pipeline.version, &r.id)
                .unwrap();
            assert_eq!(
                p.map(|p| (p.seq, p.record_hash)),
                Some((*seq, r.hash.clone())),
                "round {round}: the prediction of acknowledged seq {seq} is lost or wrong"
            );
        }
        let max_acked = acked.keys().next_back().map_or(0, |s| s + 1);
        assert!(
            report.records >= max_acked,
            "round {round}: {} records < {max_acked}",
            report.records
        );
        eprintln!(
            "round {round}: delay {delay:?}, {this_round} acked, {} records in store, {} from the log",
            report.records,
            store.recovered_from_wal()
        );
    }
    assert!(
        rounds >= 10,
        "only {rounds} rounds ran within the time bound"
    );
    assert!(
        acked.len() >= 50,
        "only {} records were acknowledged: the kills came too early to test anything",
        acked.len()
    );
    recovered
}

/// Child: tries to open the store and reports how that went and how long it took.
#[test]
fn lock_probe_child() {
    let Some(dir) = std::env::var_os(PROBE_ENV) else {
        return;
    };
    let started = Instant::now();
    let result = Store::open(Path::new(&dir));
    let ms = started.elapsed().as_millis();
    match result {
        Err(StoreError::Locked { .. }) => println!("PROBE locked {ms}"),
        Ok(_) => println!("PROBE opened {ms}"),
        Err(e) => println!("PROBE error {ms} {e}"),
    }
}

/// Runs the probe in another process, killing it if it hangs; returns (outcome, milliseconds).
fn probe(dir: &Path) -> (String, u64) {
    let mut child = spawn_child("lock_probe_child", PROBE_ENV, dir);
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the second process hung on a locked store");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    let line = out
        .lines()
        .find_map(|l| tagged(l, "PROBE "))
        .unwrap_or_else(|| panic!("no probe line in {out:?}"));
    let mut parts = line.splitn(3, ' ');
    let outcome = parts.next().unwrap().to_owned();
    let ms = parts.next().unwrap().parse().unwrap();
    assert_ne!(outcome, "error", "probe failed: {line}");
    (outcome, ms)
}

#[test]
fn a_second_process_gets_a_locked_error_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    store.append(record("credit", 0)).unwrap();
    let (outcome, ms) = probe(dir.path());
    assert_eq!(outcome, "locked");
    assert!(ms < 1000, "locked error took {ms} ms");
    drop(store);
    let (outcome, _) = probe(dir.path());
    assert_eq!(
        outcome, "opened",
        "the lock must be released when the store is dropped"
    );
}

#[test]
fn a_foreign_sled_handle_is_reported_as_locked_after_a_bounded_wait() {
    let dir = tempfile::tempdir().unwrap();
    drop(Store::open(dir.path()).unwrap());
    // Something other than keel-store holds sled's own lock (our LOCK file is free).
    let db = common::raw_db(dir.path());
    let (outcome, ms) = probe(dir.path());
    assert_eq!(outcome, "locked");
    assert!(ms < 10_000, "took {ms} ms");
    drop(db);
}
