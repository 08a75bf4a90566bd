//! Typed identifiers and the UTC timestamp that the core uses in place of a clock.
//!
//! Every identifier validates on construction and serialises as its canonical string, so a
//! value read back from the event log is always well formed.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Why a string is not a valid identifier.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {kind} {value:?}: {why}")]
pub struct IdError {
    /// The kind of identifier, for example "repository".
    pub kind: &'static str,
    /// The rejected input (truncated to 80 characters).
    pub value: String,
    /// What is wrong with it.
    pub why: &'static str,
}

impl IdError {
    fn new(kind: &'static str, value: &str, why: &'static str) -> Self {
        let value = value.chars().take(80).collect();
        Self { kind, value, why }
    }
}

macro_rules! string_id {
    ($(#[$meta:meta])* $name:ident, $kind:literal, $validate:expr) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(String);

        impl $name {
            /// The canonical string form.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, IdError> {
                let validate: fn(&str) -> Result<String, &'static str> = $validate;
                validate(s).map(Self).map_err(|why| IdError::new($kind, s, why))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

fn github_login_part(s: &str, max: usize) -> Result<(), &'static str> {
    if s.is_empty() {
        return Err("is empty");
    }
    if s.len() > max {
        return Err("is too long");
    }
    if s.starts_with('-') || s.ends_with('-') {
        return Err("may not start or end with '-'");
    }
    if !s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
        return Err("may contain only ASCII letters, digits and '-'");
    }
    Ok(())
}

string_id!(
    /// A GitHub repository, `owner/name`, kept in lower case because GitHub compares them
    /// without regard to case.
    RepoId,
    "repository",
    |s| {
        let (owner, name) = s.split_once('/').ok_or("must be owner/name")?;
        github_login_part(owner, 39)?;
        if name.is_empty() || name.len() > 100 {
            return Err("has an empty or over-long name");
        }
        if name == "." || name == ".." {
            return Err("has a reserved name");
        }
        if !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        {
            return Err("name may contain only ASCII letters, digits, '-', '_' and '.'");
        }
        Ok(s.to_ascii_lowercase())
    }
);

impl RepoId {
    /// The owner part.
    pub fn owner(&self) -> &str {
        self.0.split_once('/').map_or("", |(o, _)| o)
    }

    /// The name part.
    pub fn name(&self) -> &str {
        self.0.split_once('/').map_or("", |(_, n)| n)
    }
}

string_id!(
    /// A GitHub login, in lower case. Apps appear as `name[bot]`.
    Login,
    "login",
    |s| {
        let base = s.strip_suffix("[bot]").unwrap_or(s);
        github_login_part(base, 39)?;
        Ok(s.to_ascii_lowercase())
    }
);

string_id!(
    /// A GitHub security advisory id, `GHSA-xxxx-xxxx-xxxx`.
    GhsaId,
    "GHSA id",
    |s| {
        let rest = s
            .strip_prefix("GHSA-")
            .or_else(|| s.strip_prefix("ghsa-"))
            .ok_or("must start with GHSA-")?;
        let groups: Vec<&str> = rest.split('-').collect();
        if groups.len() != 3
            || groups
                .iter()
                .any(|g| g.len() != 4 || !g.chars().all(|c| c.is_ascii_alphanumeric()))
        {
            return Err("must be GHSA- followed by three groups of four letters or digits");
        }
        Ok(format!("GHSA-{}", rest.to_ascii_lowercase()))
    }
);

string_id!(
    /// A CVE id, `CVE-YYYY-NNNN` with four or more digits in the sequence number.
    CveId,
    "CVE id",
    |s| {
        let rest = s.strip_prefix("CVE-").ok_or("must start with CVE-")?;
        let (year, seq) = rest.split_once('-').ok_or("must be CVE-YYYY-NNNN")?;
        if year.len() != 4 || !year.chars().all(|c| c.is_ascii_digit()) {
            return Err("year must be four digits");
        }
        if seq.len() < 4 || seq.len() > 19 || !seq.chars().all(|c| c.is_ascii_digit()) {
            return Err("sequence number must be four or more digits");
        }
        Ok(s.to_owned())
    }
);

string_id!(
    /// The id of a case. Chosen by the caller (the core draws no randomness).
    CaseId,
    "case id",
    |s| {
        if s.is_empty() || s.len() > 64 {
            return Err("must be 1 to 64 characters");
        }
        if !s
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        {
            return Err("may contain only ASCII letters, digits, '-', '_' and '.'");
        }
        // Not `.` or `..`, which a URL path would resolve away.
        if !s.starts_with(|c: char| c.is_ascii_alphanumeric()) {
            return Err("must start with a letter or a digit");
        }
        Ok(s.to_owned())
    }
);

string_id!(
    /// A CWE id, `CWE-N`.
    CweId,
    "CWE id",
    |s| {
        let digits = s
            .strip_prefix("CWE-")
            .or_else(|| s.strip_prefix("cwe-"))
            .ok_or("must be CWE-N")?;
        if digits.is_empty()
            || digits.len() > 7
            || digits.starts_with('0')
            || !digits.chars().all(|c| c.is_ascii_digit())
        {
            return Err("must be CWE- followed by a number");
        }
        Ok(format!("CWE-{digits}"))
    }
);

impl CaseId {
    /// A fresh id, `LS-YYYYMMDD-XXXXXX`, from the day of `now` and six characters of GHSA ids'
    /// alphabet drawn from `entropy` (the core draws no randomness; the caller passes it).
    pub fn generate(now: Timestamp, entropy: u64) -> CaseId {
        const ALPHABET: &[u8] = b"23456789CFGHJMPQRVWX";
        let day: String = now
            .to_string()
            .chars()
            .take(10)
            .filter(char::is_ascii_digit)
            .collect();
        let mut n = entropy;
        let suffix: String = (0..6)
            .map(|_| {
                let c = ALPHABET[(n % 20) as usize] as char;
                n /= 20;
                c
            })
            .collect();
        CaseId(format!("LS-{day}-{suffix}"))
    }
}

/// A point in time, UTC, with millisecond precision.
///
/// The core never reads a clock: every input carries its `now` as a `Timestamp`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

/// Milliseconds in one day.
pub const DAY_MS: i64 = 86_400_000;

impl Timestamp {
    /// The earliest representable instant this crate accepts (1970-01-01).
    pub const EPOCH: Timestamp = Timestamp(0);
    /// The latest instant this crate accepts (9999-12-31T23:59:59.999Z).
    pub const MAX: Timestamp = Timestamp(253_402_300_799_999);

    /// From milliseconds since the Unix epoch; `None` outside 1970..=9999.
    pub fn from_millis(ms: i64) -> Option<Self> {
        (Self::EPOCH.0..=Self::MAX.0)
            .contains(&ms)
            .then_some(Self(ms))
    }

    /// Milliseconds since the Unix epoch.
    pub fn millis(self) -> i64 {
        self.0
    }

    /// This instant plus `ms` milliseconds, clamped to the representable range.
    pub fn plus_millis(self, ms: i64) -> Self {
        Self(self.0.saturating_add(ms).clamp(Self::EPOCH.0, Self::MAX.0))
    }

    /// This instant plus whole days, clamped to the representable range.
    pub fn plus_days(self, days: u32) -> Self {
        self.plus_millis(i64::from(days) * DAY_MS)
    }

    fn to_chrono(self) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(self.0).unwrap_or(DateTime::UNIX_EPOCH)
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            &self
                .to_chrono()
                .to_rfc3339_opts(SecondsFormat::Millis, true),
        )
    }
}

impl FromStr for Timestamp {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, IdError> {
        let t = DateTime::parse_from_rfc3339(s)
            .map_err(|_| IdError::new("time", s, "must be RFC 3339, e.g. 2026-12-01T15:00:00Z"))?;
        Self::from_millis(t.timestamp_millis())
            .ok_or_else(|| IdError::new("time", s, "must lie between 1970 and 9999"))
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn repo_ids_are_case_insensitive_and_validated() {
        let r: RepoId = "ModelContextProtocol/TypeScript-SDK".parse().unwrap();
        assert_eq!(r.as_str(), "modelcontextprotocol/typescript-sdk");
        assert_eq!(r.owner(), "modelcontextprotocol");
        assert_eq!(r.name(), "typescript-sdk");
        for bad in [
            "", "noslash", "/x", "x/", "-a/b", "a/..", "a/b c", "a/b/c", "a b/c",
        ] {
            assert!(bad.parse::<RepoId>().is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn ghsa_cve_cwe_and_login_forms() {
        assert_eq!(
            "GHSA-AbCd-2345-wxyz".parse::<GhsaId>().unwrap().as_str(),
            "GHSA-abcd-2345-wxyz"
        );
        assert!("GHSA-abc-2345-wxyz".parse::<GhsaId>().is_err());
        assert!("CVE-2026-12345".parse::<CveId>().is_ok());
        assert!("CVE-26-1".parse::<CveId>().is_err());
        assert_eq!("cwe-79".parse::<CweId>().unwrap().as_str(), "CWE-79");
        for bad in ["CWE-", "CWE-07", "79", "CWE-7a"] {
            assert!(bad.parse::<CweId>().is_err(), "{bad:?} accepted");
        }
        assert!("dependabot[bot]".parse::<Login>().is_ok());
        assert!("-x".parse::<Login>().is_err());
        assert!("a".repeat(40).parse::<Login>().is_err());
    }

    #[test]
    fn case_ids_start_with_a_letter_or_digit() {
        for bad in [".", "..", "-x", "_x", ".hidden", "", "a/b", "a b"] {
            assert!(bad.parse::<CaseId>().is_err(), "{bad:?}");
        }
        for good in ["LS-1", "1.2", "a..b", "cve_2026"] {
            assert!(good.parse::<CaseId>().is_ok(), "{good:?}");
        }
    }

    #[test]
    fn generated_case_ids_are_valid_and_spread() {
        let now: Timestamp = "2026-11-21T13:00:00Z".parse().unwrap();
        let a = CaseId::generate(now, 0);
        assert_eq!(a.as_str(), "LS-20261121-222222");
        assert_eq!(a.as_str().parse::<CaseId>().unwrap(), a);
        assert_ne!(CaseId::generate(now, 1), CaseId::generate(now, 2));
    }

    #[test]
    fn timestamps_round_trip_and_reject_garbage() {
        let t: Timestamp = "2026-12-01T15:00:00+02:00".parse().unwrap();
        assert_eq!(t.to_string(), "2026-12-01T13:00:00.000Z");
        assert_eq!(t.to_string().parse::<Timestamp>().unwrap(), t);
        for bad in [
            "2026-13-01T00:00:00Z",
            "tomorrow",
            "1969-12-31T23:59:59Z",
            "",
        ] {
            assert!(bad.parse::<Timestamp>().is_err(), "{bad:?} accepted");
        }
        assert_eq!(Timestamp::MAX.plus_days(10), Timestamp::MAX);
    }
}
