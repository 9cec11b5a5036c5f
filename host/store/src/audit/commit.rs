//! The audit log's writer: one committer thread that makes groups of records durable.
//!
//! Group commit: appenders queue their records to one committer thread. It
//! takes everything queued, assigns seqs and hashes in queue order, writes
//! them in one transaction, flushes once and then answers every appender.
//! While it flushes, new records queue up and form the next group, so N
//! concurrent appenders cost about one flush per group, not one per record.
//! With the audit write-ahead log on ([`crate::StoreOptions::audit_wal_bytes`]),
//! a group is made durable by one frame of that log instead of sled's flush
//! (see [`crate::wal`]); sled is flushed only when the log wraps.

use std::{
    collections::HashSet,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
        mpsc,
    },
    thread::JoinHandle,
};

use super::{AuditRecord, AuditStats, Receipt};
use crate::{
    Durability, Store, Trees,
    chain::{Head, chain_hash, join_value, read_head},
    error::{Result, StoreError},
    id::{new_record_id, validate_id},
    layout::{self, seq_key},
    predictions::{self, Encoded, NewPrediction},
    time::{now_rfc3339, parse_rfc3339},
    usage::bump,
    wal::{Frame, Row, Wal},
};

/// A group is capped so that one transaction stays a reasonable size; the
/// rest of the queue simply forms the next group.
const MAX_GROUP_RECORDS: usize = 4096;

struct Request {
    records: Vec<AuditRecord>,
    /// Each record's predictions (empty, or one list per record).
    predictions: Vec<Vec<Encoded>>,
    reply: Reply,
}

/// Where a request's outcome goes: a caller blocked on a channel, or a
/// callback run on the committer thread (for async callers, which must not
/// hold a thread while the group is flushed).
enum Reply {
    Channel(mpsc::SyncSender<Result<Vec<Receipt>>>),
    Callback(Box<dyn FnOnce(Result<Vec<Receipt>>) + Send>),
}

impl Reply {
    fn send(self, r: Result<Vec<Receipt>>) {
        match self {
            Reply::Channel(tx) => {
                let _ = tx.send(r);
            }
            Reply::Callback(f) => f(r),
        }
    }
}

#[derive(Default)]
struct Counters {
    records: AtomicU64,
    flushes: AtomicU64,
}

/// What the committer runs after each group it made durable, once every
/// appender of the group has its answer. The store passes the audit cap's
/// enforcement, which sits above this module.
pub(crate) type AfterGroup = Box<dyn FnMut() + Send>;

/// Handle on the committer thread; dropping it drains the queue and joins the thread.
pub(crate) struct Committer {
    tx: Option<mpsc::Sender<Request>>,
    handle: Option<JoinHandle<()>>,
    counters: Arc<Counters>,
}

impl Committer {
    pub(crate) fn start(
        trees: Trees,
        durability: Durability,
        wal: Option<Wal>,
        after_group: AfterGroup,
    ) -> Result<Committer> {
        let head = read_head(&trees.meta, layout::AUDIT_HEAD_KEY)?.unwrap_or_else(Head::genesis);
        let counters = Arc::new(Counters::default());
        let worker = Worker {
            trees,
            durability,
            wal,
            next_seq: head.next_seq,
            head_hash: head.hash,
            counters: counters.clone(),
            after_group,
        };
        let (tx, rx) = mpsc::channel();
        let handle = std::thread::Builder::new()
            .name("keel-audit-commit".into())
            .spawn(move || worker.run(rx))
            .map_err(|source| StoreError::Io {
                path: "<audit committer thread>".into(),
                source,
            })?;
        Ok(Committer {
            tx: Some(tx),
            handle: Some(handle),
            counters,
        })
    }

    fn submit(
        &self,
        records: Vec<AuditRecord>,
        predictions: Vec<Vec<Encoded>>,
    ) -> Result<Vec<Receipt>> {
        let tx = self.tx.as_ref().ok_or(StoreError::CommitterGone)?;
        let (reply, answer) = mpsc::sync_channel(1);
        tx.send(Request {
            records,
            predictions,
            reply: Reply::Channel(reply),
        })
        .map_err(|_| StoreError::CommitterGone)?;
        answer.recv().map_err(|_| StoreError::CommitterGone)?
    }

    fn submit_with(
        &self,
        records: Vec<AuditRecord>,
        predictions: Vec<Vec<Encoded>>,
        done: Box<dyn FnOnce(Result<Vec<Receipt>>) + Send>,
    ) {
        let request = Request {
            records,
            predictions,
            reply: Reply::Callback(done),
        };
        match self.tx.as_ref() {
            Some(tx) => {
                if let Err(mpsc::SendError(r)) = tx.send(request) {
                    r.reply.send(Err(StoreError::CommitterGone));
                }
            }
            None => request.reply.send(Err(StoreError::CommitterGone)),
        }
    }

    fn stats(&self) -> AuditStats {
        AuditStats {
            records: self.counters.records.load(Ordering::Relaxed),
            flushes: self.counters.flushes.load(Ordering::Relaxed),
        }
    }
}

impl Drop for Committer {
    fn drop(&mut self) {
        // Closing the queue ends the worker's loop once it has drained it.
        drop(self.tx.take());
        if let Some(handle) = self.handle.take()
            && handle.join().is_err()
        {
            tracing::error!("the audit committer thread panicked");
        }
    }
}

/// The committer thread's state: the only writer of the audit trees.
struct Worker {
    trees: Trees,
    durability: Durability,
    wal: Option<Wal>,
    next_seq: u64,
    head_hash: String,
    counters: Arc<Counters>,
    after_group: AfterGroup,
}

/// Records of one request, ready to write.
struct Prepared {
    rows: Vec<Row>,
    predictions: Vec<Encoded>,
    receipts: Vec<Receipt>,
}

impl Worker {
    fn run(mut self, rx: mpsc::Receiver<Request>) {
        while let Ok(first) = rx.recv() {
            let mut queued = first.records.len();
            let mut group = vec![first];
            while queued < MAX_GROUP_RECORDS {
                match rx.try_recv() {
                    Ok(next) => {
                        queued += next.records.len();
                        group.push(next);
                    }
                    Err(_) => break,
                }
            }
            self.commit(group);
        }
    }

    fn commit(&mut self, group: Vec<Request>) {
        let (mut seq, mut prev) = (self.next_seq, self.head_hash.clone());
        let mut ids_in_group = HashSet::new();
        let mut accepted = Vec::with_capacity(group.len());
        let mut rows = Vec::new();
        let mut predictions = Vec::new();
        for req in group {
            // A request is all-or-nothing: a bad record fails its own request only.
            match self.prepare(req.records, req.predictions, seq, &prev, &mut ids_in_group) {
                Ok(p) => {
                    if let Some(last) = p.receipts.last() {
                        seq = last.seq + 1;
                        prev.clone_from(&last.hash);
                    }
                    rows.extend(p.rows);
                    predictions.extend(p.predictions);
                    accepted.push((req.reply, p.receipts));
                }
                Err(e) => req.reply.send(Err(e)),
            }
        }
        if rows.is_empty() {
            return;
        }
        let n = rows.len() as u64;
        let head = Head {
            next_seq: seq,
            hash: prev,
        };
        let result = match write_rows(&self.trees, &rows, &predictions, &head) {
            Ok(()) => {
                // The rows are in the trees now, durable or not: later groups chain onto them.
                self.next_seq = head.next_seq;
                self.head_hash.clone_from(&head.hash);
                self.make_durable(rows, predictions, head)
            }
            Err(e) => Err(e),
        };
        match result {
            Ok(()) => {
                self.counters.flushes.fetch_add(1, Ordering::Relaxed);
                self.counters.records.fetch_add(n, Ordering::Relaxed);
                for (reply, receipts) in accepted {
                    reply.send(Ok(receipts));
                }
                // After the answers: retention must not delay an acknowledgement.
                (self.after_group)();
            }
            Err(e) => {
                tracing::error!(error = %e, records = n, "audit group commit failed");
                let e = Arc::new(e);
                for (reply, _) in accepted {
                    reply.send(Err(StoreError::CommitFailed(e.clone())));
                }
            }
        }
    }

    fn prepare(
        &self,
        records: Vec<AuditRecord>,
        mut predictions: Vec<Vec<Encoded>>,
        mut seq: u64,
        prev: &str,
        ids_in_group: &mut HashSet<String>,
    ) -> Result<Prepared> {
        let mut prev = prev.to_owned();
        let mut new_ids = HashSet::new();
        let mut out = Prepared {
            rows: Vec::with_capacity(records.len()),
            predictions: Vec::new(),
            receipts: Vec::with_capacity(records.len()),
        };
        predictions.resize_with(records.len(), Vec::new);
        for (mut rec, mut preds) in records.into_iter().zip(predictions) {
            if rec.id.is_empty() {
                rec.id = new_record_id();
            }
            validate_id(&rec.id)?;
            if ids_in_group.contains(&rec.id)
                || new_ids.contains(&rec.id)
                || self.trees.audit_ids.contains_key(rec.id.as_bytes())?
            {
                return Err(StoreError::DuplicateId(rec.id));
            }
            if rec.time.is_empty() {
                rec.time = now_rfc3339();
            } else {
                parse_rfc3339(&rec.time)?;
            }
            rec.seq = seq;
            rec.prev_hash = prev;
            rec.hash = String::new();
            let body = serde_json::to_vec(&rec)?;
            let hash = chain_hash(&rec.prev_hash, &body);
            let value = join_value(&hash, &body);
            new_ids.insert(rec.id.clone());
            for p in &mut preds {
                p.stamp(seq, &hash);
            }
            out.predictions.extend(preds);
            out.rows.push((seq, rec.id.clone(), value));
            out.receipts.push(Receipt {
                seq,
                id: rec.id,
                hash: hash.clone(),
            });
            prev = hash;
            seq += 1;
        }
        ids_in_group.extend(new_ids);
        Ok(out)
    }

    /// Makes a group written to the trees durable: a frame of the
    /// write-ahead log when there is one and it has room, else sled's flush.
    fn make_durable(
        &mut self,
        rows: Vec<Row>,
        predictions: Vec<Encoded>,
        head: Head,
    ) -> Result<()> {
        let Some(wal) = self.wal.as_mut() else {
            return self.durability.sync();
        };
        let (payloads, overflow) = self.durability.take_unlogged();
        let logged = if overflow {
            Ok(false)
        } else {
            wal.append(&Frame {
                rows,
                next_seq: head.next_seq,
                head_hash: head.hash,
                payloads,
                predictions: predictions.into_iter().map(|p| (p.key, p.value)).collect(),
            })
        };
        match logged {
            Ok(true) => Ok(()),
            Ok(false) => {
                // Full, or payloads too big to log: flush sled, which makes
                // everything so far durable, and start the log over.
                self.durability.sync()?;
                wal.wrap()
            }
            Err(e) => {
                // The payloads taken for this frame are not durable: the
                // next group flushes sled instead of trusting the log.
                self.durability.mark_unlogged();
                Err(e)
            }
        }
    }
}

/// Writes audit rows, their predictions and the new head in one sled transaction.
pub(crate) fn write_rows(
    trees: &Trees,
    rows: &[Row],
    predictions: &[Encoded],
    head: &Head,
) -> Result<()> {
    use sled::transaction::{ConflictableTransactionError, Transactional};
    let head = serde_json::to_vec(head)?;
    let bytes: usize = rows.iter().map(|(_, _, v)| v.len()).sum();
    let bytes = i64::try_from(bytes).unwrap_or(i64::MAX);
    (
        &trees.audit,
        &trees.audit_ids,
        &trees.meta,
        &trees.predictions,
        &trees.prediction_seqs,
    )
        .transaction(|(audit, ids, meta, preds, pred_seqs)| {
            for (seq, id, value) in rows {
                audit.insert(&seq_key(*seq), value.as_slice())?;
                ids.insert(id.as_bytes(), &seq_key(*seq))?;
            }
            meta.insert(layout::AUDIT_HEAD_KEY, head.as_slice())?;
            bump(meta, layout::USAGE_AUDIT_KEY, bytes)?;
            if !predictions.is_empty() {
                let delta = predictions::write_in(preds, pred_seqs, predictions)?;
                bump(meta, layout::USAGE_PREDICTIONS_KEY, delta)?;
            }
            Ok::<(), ConflictableTransactionError<StoreError>>(())
        })?;
    Ok(())
}

/// Encodes a record's predictions on the caller's thread, giving the record
/// its id and time first (the predictions name both).
fn encode_for(record: &mut AuditRecord, rows: Vec<NewPrediction>) -> Result<Vec<Encoded>> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    if record.id.is_empty() {
        record.id = new_record_id();
    }
    if record.time.is_empty() {
        record.time = now_rfc3339();
    }
    predictions::encode(
        &record.pipeline.name,
        &record.pipeline.version,
        &record.id,
        &record.time,
        rows,
    )
}

impl Store {
    /// Appends one record and returns once it is durable (flushed to disk).
    pub fn append(&self, record: AuditRecord) -> Result<Receipt> {
        self.append_batch(vec![record])?
            .pop()
            .ok_or(StoreError::CommitterGone)
    }

    /// Appends one record without waiting: `done` runs (on the committer
    /// thread; keep it short) once the record is durable or has failed. For
    /// async callers: a thread is not held while the group is flushed, so
    /// more requests can join the group.
    pub fn append_with(
        &self,
        record: AuditRecord,
        done: impl FnOnce(Result<Receipt>) + Send + 'static,
    ) {
        self.append_predicted_with(record, Vec::new(), done);
    }

    /// [`Store::append_with`] with the record's predictions, written in the
    /// same transaction (see [`crate::Prediction`]). Predictions that cannot
    /// be encoded (a bad id) fail the append at once.
    pub fn append_predicted_with(
        &self,
        mut record: AuditRecord,
        rows: Vec<NewPrediction>,
        done: impl FnOnce(Result<Receipt>) + Send + 'static,
    ) {
        let encoded = match encode_for(&mut record, rows) {
            Ok(e) => e,
            Err(e) => return done(Err(e)),
        };
        self.committer().submit_with(
            vec![record],
            vec![encoded],
            Box::new(move |r| done(r.and_then(|mut v| v.pop().ok_or(StoreError::CommitterGone)))),
        );
    }

    /// Appends records atomically (all or none), with consecutive seqs, and
    /// returns once they are durable.
    pub fn append_batch(&self, records: Vec<AuditRecord>) -> Result<Vec<Receipt>> {
        if records.is_empty() {
            return Ok(Vec::new());
        }
        self.committer().submit(records, Vec::new())
    }

    /// [`Store::append_batch`] with each record's predictions, written in the
    /// same transaction.
    pub fn append_batch_predicted(
        &self,
        batch: Vec<(AuditRecord, Vec<NewPrediction>)>,
    ) -> Result<Vec<Receipt>> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        let mut records = Vec::with_capacity(batch.len());
        let mut encoded = Vec::with_capacity(batch.len());
        for (mut record, rows) in batch {
            encoded.push(encode_for(&mut record, rows)?);
            records.push(record);
        }
        self.committer().submit(records, encoded)
    }

    /// Group-commit counters since this store was opened.
    pub fn audit_stats(&self) -> AuditStats {
        self.committer().stats()
    }
}
