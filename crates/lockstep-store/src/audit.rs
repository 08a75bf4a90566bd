//! The tamper-evident audit trail: the canonical hash encoding, the verifier, signed
//! checkpoints and key files. See the crate README for the exact byte layout.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use ed25519_dalek::{Signature, Signer as _, SigningKey, Verifier as _, VerifyingKey};
use lockstep_core::Event;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::Error;

/// The hash before the first entry: 32 zero bytes.
/// The `case_id` prefix of an audit entry that records a report decision (no events).
pub(crate) const REPORT_PREFIX: &[u8] = b"report:";

pub(crate) const ZERO_HASH: [u8; 32] = [0; 32];

const ENTRY_DOMAIN: &[u8] = b"lockstep-audit-entry-v1\0";
const EVENTS_DOMAIN: &[u8] = b"lockstep-audit-events-v1\0";

fn put_int(h: &mut Sha256, v: i64) {
    h.update(v.to_be_bytes());
}

fn put_str(h: &mut Sha256, s: &[u8]) {
    // usize -> u64 is lossless on every supported target.
    h.update((s.len() as u64).to_be_bytes());
    h.update(s);
}

/// One event row as read by the verifier: the text columns as the exact bytes stored (a
/// tampered row may hold bytes that are not UTF-8).
#[derive(Debug, Clone)]
pub(crate) struct EventRow {
    pub(crate) audit_id: i64,
    pub(crate) case_id: Vec<u8>,
    pub(crate) seq: i64,
    pub(crate) body: Vec<u8>,
}

/// `events_hash = SHA-256("lockstep-audit-events-v1\0" ‖ i64(n) ‖ for each event in seq order:
/// str(case_id) ‖ i64(seq) ‖ str(body))`.
pub(crate) fn events_hash<'a>(
    events: impl ExactSizeIterator<Item = (&'a [u8], i64, &'a [u8])>,
) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(EVENTS_DOMAIN);
    put_int(&mut h, events.len() as i64);
    for (case_id, seq, body) in events {
        put_str(&mut h, case_id);
        put_int(&mut h, seq);
        put_str(&mut h, body);
    }
    h.finalize().into()
}

/// One audit entry as stored. The writer holds its text columns as `String`s; the verifier
/// reads them as the exact bytes stored (`Vec<u8>`), which a tampered row may not hold as
/// UTF-8.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AuditRow<T = String> {
    pub(crate) id: i64,
    pub(crate) at: i64,
    pub(crate) case_id: T,
    pub(crate) actor: T,
    pub(crate) authority: T,
    pub(crate) input: T,
    pub(crate) seq_from: i64,
    pub(crate) seq_to: i64,
    pub(crate) events_hash: T,
    pub(crate) prev_hash: T,
    pub(crate) hash: T,
}

/// `hash = SHA-256("lockstep-audit-entry-v1\0" ‖ i64(id) ‖ prev_hash[32] ‖ i64(at) ‖
/// str(case_id) ‖ str(actor) ‖ str(authority) ‖ str(input) ‖ i64(seq_from) ‖ i64(seq_to) ‖
/// str(events_hash_hex))`.
pub(crate) fn entry_hash<T: AsRef<[u8]>>(prev: &[u8; 32], row: &AuditRow<T>) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(ENTRY_DOMAIN);
    put_int(&mut h, row.id);
    h.update(prev);
    put_int(&mut h, row.at);
    put_str(&mut h, row.case_id.as_ref());
    put_str(&mut h, row.actor.as_ref());
    put_str(&mut h, row.authority.as_ref());
    put_str(&mut h, row.input.as_ref());
    put_int(&mut h, row.seq_from);
    put_int(&mut h, row.seq_to);
    put_str(&mut h, row.events_hash.as_ref());
    h.finalize().into()
}

/// Bytes shown in a message (invalid UTF-8 replaced).
fn shown(bytes: &[u8]) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(bytes)
}

pub(crate) fn parse_hash(hex_str: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(hex_str, &mut out).ok()?;
    Some(out)
}

/// What `verify` found wrong: the first bad entry, event or checkpoint mismatch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VerifyFailure {
    /// An audit entry is missing, out of place, or does not match its contents or events.
    Entry {
        /// The entry's number (for a missing entry, the number that was expected).
        id: u64,
        /// What is wrong.
        problem: String,
    },
    /// An event row is not covered by the audit entry it names, or the log does not fold.
    Event {
        /// The case.
        case: String,
        /// The sequence number.
        seq: i64,
        /// What is wrong.
        problem: String,
    },
    /// A case's summary row disagrees with its log.
    Case {
        /// The case.
        case: String,
        /// What is wrong.
        problem: String,
    },
    /// The log disagrees with a checkpoint: truncated or rewritten.
    Checkpoint {
        /// What is wrong.
        problem: String,
    },
}

impl fmt::Display for VerifyFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Entry { id, problem } => write!(f, "audit entry {id}: {problem}"),
            Self::Event { case, seq, problem } => write!(f, "event {case}#{seq}: {problem}"),
            Self::Case { case, problem } => write!(f, "case {case}: {problem}"),
            Self::Checkpoint { problem } => write!(f, "checkpoint: {problem}"),
        }
    }
}

impl VerifyFailure {
    fn entry(id: i64, problem: impl Into<String>) -> Error {
        Error::Tampered(Self::Entry {
            id: u64::try_from(id).unwrap_or(0),
            problem: problem.into(),
        })
    }

    pub(crate) fn event(row: &EventRow, problem: impl Into<String>) -> Error {
        Error::Tampered(Self::Event {
            case: shown(&row.case_id).into_owned(),
            seq: row.seq,
            problem: problem.into(),
        })
    }
}

/// The result of a successful verification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VerifyReport {
    /// The number of audit entries (the tree size a checkpoint would commit to).
    pub entries: u64,
    /// The number of events, all covered by entries.
    pub events: u64,
    /// The number of cases.
    pub cases: u64,
    /// The last entry's hash, hex (the zero hash for an empty trail).
    pub head: String,
    /// The size of the checkpoint verified against, if one was given.
    pub checkpoint_size: Option<u64>,
}

/// Recomputes the chain entry by entry. The backend feeds it entries in id order, each with
/// the event rows that name it.
pub(crate) struct Verifier<'c> {
    expected_id: i64,
    prev: [u8; 32],
    case_seq: HashMap<Vec<u8>, i64>,
    events: u64,
    checkpoint: Option<&'c Checkpoint>,
}

impl<'c> Verifier<'c> {
    pub(crate) fn new(checkpoint: Option<&'c Checkpoint>) -> Self {
        Self {
            expected_id: 1,
            prev: ZERO_HASH,
            case_seq: HashMap::new(),
            events: 0,
            checkpoint,
        }
    }

    /// Checks that `a` is the next entry (no entry missing, none out of order).
    pub(crate) fn position(&self, a: &AuditRow<Vec<u8>>) -> Result<(), Error> {
        let id = self.expected_id;
        if a.id > id {
            return Err(VerifyFailure::entry(
                id,
                format!(
                    "missing (the next entry is {}): an entry was deleted or renumbered",
                    a.id
                ),
            ));
        }
        if a.id < id {
            return Err(VerifyFailure::entry(a.id, "out of order or repeated"));
        }
        Ok(())
    }

    /// Checks one entry against the chain so far and the events that name it.
    pub(crate) fn entry(
        &mut self,
        a: &AuditRow<Vec<u8>>,
        events: &[EventRow],
    ) -> Result<(), Error> {
        let id = self.expected_id;
        if a.id > id {
            return Err(VerifyFailure::entry(
                id,
                format!(
                    "missing (the next entry is {}): an entry was deleted or renumbered",
                    a.id
                ),
            ));
        }
        if a.id < id {
            return Err(VerifyFailure::entry(a.id, "out of order or repeated"));
        }
        if a.prev_hash != hex::encode(self.prev).as_bytes() {
            return Err(VerifyFailure::entry(
                id,
                "prev_hash does not match the previous entry's hash: the chain is broken (entries edited, deleted or reordered)",
            ));
        }
        // The events this entry committed: exactly its case's seq_from..=seq_to.
        let case = shown(&a.case_id);
        let last = self.case_seq.get(&a.case_id).copied().unwrap_or(0);
        if a.seq_from != last + 1 {
            return Err(VerifyFailure::entry(
                id,
                format!(
                    "covers {case}#{}..={} but the case's previous entry ended at #{last}",
                    a.seq_from, a.seq_to
                ),
            ));
        }
        let count = a.seq_to - a.seq_from + 1;
        if count < 0 || usize::try_from(count).ok() != Some(events.len()) {
            return Err(VerifyFailure::entry(
                id,
                format!(
                    "covers {case}#{}..={} but {} event rows name it (event rows deleted, added or moved)",
                    a.seq_from,
                    a.seq_to,
                    events.len()
                ),
            ));
        }
        for (i, e) in events.iter().enumerate() {
            let want = a.seq_from + i as i64;
            if e.case_id != a.case_id || e.seq != want {
                return Err(VerifyFailure::entry(
                    id,
                    format!(
                        "expected event {case}#{want}, found row {}#{} (an event row's case_id or seq was changed)",
                        shown(&e.case_id),
                        e.seq
                    ),
                ));
            }
        }
        let computed = events_hash(
            events
                .iter()
                .map(|e| (e.case_id.as_slice(), e.seq, e.body.as_slice())),
        );
        if a.events_hash != hex::encode(computed).as_bytes() {
            return Err(VerifyFailure::entry(
                id,
                format!(
                    "events_hash does not match event rows {case}#{}..={}: an event row or the entry was changed",
                    a.seq_from, a.seq_to
                ),
            ));
        }
        let hash = entry_hash(&self.prev, a);
        if a.hash != hex::encode(hash).as_bytes() {
            return Err(VerifyFailure::entry(
                id,
                "hash does not match the entry's contents: the entry was changed",
            ));
        }
        // The hashes match; the bodies must still decode (a bug, not tampering, if they don't).
        for e in events {
            match serde_json::from_slice::<Event>(&e.body) {
                Ok(ev) if i64::try_from(ev.seq).ok() == Some(e.seq) => {}
                Ok(ev) => {
                    return Err(VerifyFailure::event(
                        e,
                        format!("the body says seq {}", ev.seq),
                    ));
                }
                Err(err) => {
                    return Err(VerifyFailure::event(
                        e,
                        format!("the body is not an event: {err}"),
                    ));
                }
            }
        }
        if let Some(cp) = self.checkpoint
            && u64::try_from(id).ok() == Some(cp.size)
            && hash != cp.head
        {
            return Err(Error::Tampered(VerifyFailure::Checkpoint {
                problem: format!(
                    "entry {id}'s hash {} differs from the checkpoint's head {}: the history was rewritten",
                    hex::encode(hash),
                    hex::encode(cp.head)
                ),
            }));
        }
        if count > 0 {
            self.case_seq.insert(a.case_id.clone(), a.seq_to);
        } else if !a.case_id.starts_with(REPORT_PREFIX) {
            // A report decision (`report:OWNER/REPO/GHSA-…`) has no events and no case row.
            self.case_seq.entry(a.case_id.clone()).or_insert(last);
        }
        self.events += events.len() as u64;
        self.prev = hash;
        self.expected_id += 1;
        Ok(())
    }

    /// Checks the end of the trail: the checkpoint's size and the case rows.
    pub(crate) fn finish(self, cases: &[(Vec<u8>, i64)]) -> Result<VerifyReport, Error> {
        let entries = self.expected_id - 1;
        if let Some(cp) = self.checkpoint
            && u64::try_from(entries).unwrap_or(0) < cp.size
        {
            return Err(Error::Tampered(VerifyFailure::Checkpoint {
                problem: format!(
                    "the trail has {entries} entries but the checkpoint commits to {}: the trail was truncated",
                    cp.size
                ),
            }));
        }
        let mut seen = 0usize;
        for (case, version) in cases {
            let logged = self.case_seq.get(case).copied().unwrap_or(0);
            if logged != *version {
                return Err(Error::Tampered(VerifyFailure::Case {
                    case: shown(case).into_owned(),
                    problem: format!(
                        "the cases row says version {version} but the audited log ends at #{logged}"
                    ),
                }));
            }
            seen += 1;
        }
        if seen != self.case_seq.len()
            && let Some(case) = self
                .case_seq
                .keys()
                .find(|c| !cases.iter().any(|(k, _)| k == *c))
        {
            return Err(Error::Tampered(VerifyFailure::Case {
                case: shown(case).into_owned(),
                problem: "audited events exist but the cases row is missing".into(),
            }));
        }
        Ok(VerifyReport {
            entries: u64::try_from(entries).unwrap_or(0),
            events: self.events,
            cases: cases.len() as u64,
            head: hex::encode(self.prev),
            checkpoint_size: self.checkpoint.map(|c| c.size),
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Checkpoints and keys.

/// The origin line of every Lockstep checkpoint.
pub const CHECKPOINT_ORIGIN: &str = "lockstep-audit";
/// The key name in signature lines and verifier keys.
pub const KEY_NAME: &str = "lockstep";

/// A signed statement of the audit trail's size and head hash, meant to be kept outside the
/// database (a git repository, an object-lock bucket, an email).
///
/// Text form, a C2SP signed note:
///
/// ```text
/// lockstep-audit
/// <size, decimal>
/// <head hash, base64>
/// time <database time, RFC 3339>
/// key <verifier key: lockstep+<key hash, 8 hex>+<base64(0x01 ‖ ed25519 public key)>>
///
/// — lockstep <base64(key hash[4] ‖ ed25519 signature[64])>
/// ```
///
/// The signature covers every line above the blank line, each ending in `\n`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// The number of entries.
    pub size: u64,
    /// The hash of entry `size` (the zero hash when `size` is 0).
    pub head: [u8; 32],
    /// When it was made (database clock).
    pub time: lockstep_core::Timestamp,
    /// The key that signed it.
    pub key: VerifyingKey,
    signature: Signature,
}

/// The 4-byte key hash of C2SP signed notes: SHA-256(name ‖ "\n" ‖ 0x01 ‖ public key)[..4].
fn key_hash(key: &VerifyingKey) -> [u8; 4] {
    let mut h = Sha256::new();
    h.update(KEY_NAME.as_bytes());
    h.update(b"\n");
    h.update([0x01]);
    h.update(key.as_bytes());
    let d = h.finalize();
    [d[0], d[1], d[2], d[3]]
}

/// The verifier key string of a public key: `lockstep+<hash hex>+<base64(0x01 ‖ key)>`.
pub fn verifier_key(key: &VerifyingKey) -> String {
    let mut raw = vec![0x01];
    raw.extend_from_slice(key.as_bytes());
    format!(
        "{KEY_NAME}+{}+{}",
        hex::encode(key_hash(key)),
        B64.encode(raw)
    )
}

/// Parses a verifier key string made by [`verifier_key`]: `lockstep+<hash>+<key>` as
/// `lockstep audit checkpoint` prints it, also as written in a checkpoint's key line
/// (`key lockstep+…`) or in a key file's comment line (`# lockstep+…`).
pub fn parse_verifier_key(s: &str) -> Result<VerifyingKey, Error> {
    let bad = |why: &str| Error::Checkpoint(format!("verifier key {s:?}: {why}"));
    let t = s.trim();
    let t = t
        .strip_prefix("key ")
        .or_else(|| t.strip_prefix('#'))
        .unwrap_or(t)
        .trim();
    let mut parts = t.splitn(3, '+');
    let (Some(name), Some(hash), Some(raw)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(bad("expected name+hash+key"));
    };
    if name != KEY_NAME {
        return Err(bad("unknown key name"));
    }
    let raw = B64.decode(raw).map_err(|_| bad("the key is not base64"))?;
    let Some((&0x01, pk)) = raw.split_first() else {
        return Err(bad("not an Ed25519 key"));
    };
    let pk: [u8; 32] = pk
        .try_into()
        .map_err(|_| bad("an Ed25519 key is 32 bytes"))?;
    let key = VerifyingKey::from_bytes(&pk).map_err(|_| bad("not a valid Ed25519 point"))?;
    if hash != hex::encode(key_hash(&key)) {
        return Err(bad("the key hash does not match the key"));
    }
    Ok(key)
}

impl Checkpoint {
    fn body(
        size: u64,
        head: &[u8; 32],
        time: lockstep_core::Timestamp,
        key: &VerifyingKey,
    ) -> String {
        format!(
            "{CHECKPOINT_ORIGIN}\n{size}\n{}\ntime {time}\nkey {}\n",
            B64.encode(head),
            verifier_key(key)
        )
    }

    /// Signs a checkpoint of `size` entries ending in `head`.
    pub fn sign(
        size: u64,
        head: [u8; 32],
        time: lockstep_core::Timestamp,
        key: &SigningKey,
    ) -> Self {
        let vk = key.verifying_key();
        let signature = key.sign(Self::body(size, &head, time, &vk).as_bytes());
        Self {
            size,
            head,
            time,
            key: vk,
            signature,
        }
    }

    /// The head hash, hex.
    pub fn head_hex(&self) -> String {
        hex::encode(self.head)
    }

    /// Parses the text form and checks its signature against the key it names. Use
    /// [`Checkpoint::check_key`] to insist on a key you trust.
    pub fn parse(text: &str) -> Result<Self, Error> {
        let bad = |why: &str| Error::Checkpoint(why.to_owned());
        let (body, sigs) = text
            .split_once("\n\n")
            .ok_or_else(|| bad("no blank line between the note and its signature"))?;
        let body = format!("{body}\n");
        let lines: Vec<&str> = body.lines().collect();
        let [origin, size, head, time, key] = lines.as_slice() else {
            return Err(bad("expected 5 lines: origin, size, head hash, time, key"));
        };
        if *origin != CHECKPOINT_ORIGIN {
            return Err(bad("not a Lockstep audit checkpoint (wrong origin line)"));
        }
        let size: u64 = size.parse().map_err(|_| bad("the size is not a number"))?;
        let head: [u8; 32] = B64
            .decode(head)
            .ok()
            .and_then(|h| h.try_into().ok())
            .ok_or_else(|| bad("the head is not a base64 SHA-256 hash"))?;
        let time = time
            .strip_prefix("time ")
            .and_then(|t| t.parse().ok())
            .ok_or_else(|| bad("bad time line"))?;
        let key = parse_verifier_key(
            key.strip_prefix("key ")
                .ok_or_else(|| bad("bad key line"))?,
        )?;
        let sig_line = sigs
            .lines()
            .find_map(|l| l.strip_prefix("\u{2014} "))
            .ok_or_else(|| bad("no signature line"))?;
        let (name, sig) = sig_line
            .split_once(' ')
            .ok_or_else(|| bad("bad signature line"))?;
        if name != KEY_NAME {
            return Err(bad("the signature is by an unknown key name"));
        }
        let sig = B64
            .decode(sig.trim())
            .map_err(|_| bad("the signature is not base64"))?;
        if sig.len() != 68 || sig[..4] != key_hash(&key) {
            return Err(bad("the signature is not by the named key"));
        }
        let signature = Signature::from_slice(&sig[4..]).map_err(|_| bad("malformed signature"))?;
        key.verify(body.as_bytes(), &signature)
            .map_err(|_| bad("the signature does not verify: the checkpoint was altered"))?;
        Ok(Self {
            size,
            head,
            time,
            key,
            signature,
        })
    }

    /// Fails unless the checkpoint was signed by `trusted`.
    pub fn check_key(&self, trusted: &VerifyingKey) -> Result<(), Error> {
        if &self.key == trusted {
            Ok(())
        } else {
            Err(Error::Checkpoint(format!(
                "signed by {}, not by the trusted key {}",
                verifier_key(&self.key),
                verifier_key(trusted)
            )))
        }
    }
}

impl fmt::Display for Checkpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut sig = key_hash(&self.key).to_vec();
        sig.extend_from_slice(&self.signature.to_bytes());
        write!(
            f,
            "{}\n\u{2014} {KEY_NAME} {}\n",
            Self::body(self.size, &self.head, self.time, &self.key),
            B64.encode(sig)
        )
    }
}

/// What a checkpoint says, as JSON (for the CLI's `--json` output).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CheckpointInfo {
    /// Entries.
    pub size: u64,
    /// Head hash, hex.
    pub head: String,
    /// When.
    pub time: lockstep_core::Timestamp,
    /// Verifier key.
    pub key: String,
}

impl From<&Checkpoint> for CheckpointInfo {
    fn from(c: &Checkpoint) -> Self {
        Self {
            size: c.size,
            head: c.head_hex(),
            time: c.time,
            key: verifier_key(&c.key),
        }
    }
}

/// Key file format: one line holding the 32-byte Ed25519 seed as 64 lowercase hex digits.
/// Lines starting with `#` and blank lines are ignored.
pub fn generate_key_file(path: &Path) -> Result<SigningKey, Error> {
    use std::io::Write as _;
    let io = |source| Error::Io {
        path: path.display().to_string(),
        source,
    };
    let mut seed = [0u8; 32];
    rand::fill(&mut seed);
    let key = SigningKey::from_bytes(&seed);
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        opts.mode(0o600);
    }
    let mut f = opts.open(path).map_err(io)?;
    writeln!(
        f,
        "# Lockstep audit checkpoint signing key (Ed25519 seed, hex). Keep it away from the database.\n# {}\n{}",
        verifier_key(&key.verifying_key()),
        hex::encode(seed)
    )
    .map_err(io)?;
    f.sync_all().map_err(io)?;
    Ok(key)
}

/// Reads a key file written by [`generate_key_file`].
pub fn load_key_file(path: &Path) -> Result<SigningKey, Error> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
        path: path.display().to_string(),
        source,
    })?;
    parse_key_text(&text).map_err(|why| Error::Key {
        path: path.display().to_string(),
        why: why.into(),
    })
}

/// Parses a key file's text (see [`generate_key_file`]), saying what is wrong with it.
pub fn parse_key_text(text: &str) -> Result<SigningKey, &'static str> {
    let mut lines = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'));
    let line = lines.next().ok_or("no key line")?;
    if lines.next().is_some() {
        return Err("more than one key line");
    }
    let mut seed = [0u8; 32];
    hex::decode_to_slice(line, &mut seed).map_err(|_| "the key line is not 64 hex digits")?;
    Ok(SigningKey::from_bytes(&seed))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn checkpoint_round_trips_and_detects_edits() {
        let key = SigningKey::from_bytes(&[7; 32]);
        let cp = Checkpoint::sign(
            42,
            [9; 32],
            lockstep_core::Timestamp::from_millis(1000).unwrap(),
            &key,
        );
        let text = cp.to_string();
        let back = Checkpoint::parse(&text).unwrap();
        assert_eq!(back, cp);
        back.check_key(&key.verifying_key()).unwrap();
        assert!(
            back.check_key(&SigningKey::from_bytes(&[8; 32]).verifying_key())
                .is_err()
        );
        let edited = text.replacen("\n42\n", "\n43\n", 1);
        assert!(Checkpoint::parse(&edited).is_err());
        assert_eq!(parse_verifier_key(&verifier_key(&cp.key)).unwrap(), cp.key);
        // As the checkpoint writes it, and as the key file's comment line has it.
        let line = text.lines().find(|l| l.starts_with("key ")).unwrap();
        assert_eq!(parse_verifier_key(line).unwrap(), cp.key);
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("k");
        let k = generate_key_file(&p).unwrap();
        let comment = std::fs::read_to_string(&p)
            .unwrap()
            .lines()
            .find(|l| l.starts_with("# lockstep+"))
            .unwrap()
            .to_owned();
        assert_eq!(parse_verifier_key(&comment).unwrap(), k.verifying_key());
        assert!(parse_verifier_key("key lockstep+00000000+AAAA").is_err());
    }

    #[test]
    fn key_files() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("k");
        let k = generate_key_file(&p).unwrap();
        assert_eq!(load_key_file(&p).unwrap().to_bytes(), k.to_bytes());
        assert!(generate_key_file(&p).is_err(), "never overwrites");
        std::fs::write(&p, "zz").unwrap();
        assert!(matches!(load_key_file(&p), Err(Error::Key { .. })));
    }
}
