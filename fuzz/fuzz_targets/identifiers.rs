//! Every string parser a user reaches: identifiers, times, CVSS vectors, credits, severities.
//! Whatever parses prints back to a form that parses to the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lockstep_core::vuln::{Credit, CvssVector, Ecosystem, Severity};
use lockstep_core::*;

fn round_trip<T: std::str::FromStr + std::fmt::Display + PartialEq + std::fmt::Debug>(s: &str) {
    if let Ok(v) = s.parse::<T>() {
        let again: T = v
            .to_string()
            .parse()
            .unwrap_or_else(|_| panic!("{v} does not re-parse"));
        assert_eq!(again, v);
    }
}

fuzz_target!(|s: &str| {
    round_trip::<RepoId>(s);
    round_trip::<Login>(s);
    round_trip::<GhsaId>(s);
    round_trip::<CveId>(s);
    round_trip::<CweId>(s);
    round_trip::<CaseId>(s);
    round_trip::<Timestamp>(s);
    round_trip::<Ecosystem>(s);
    if let Ok(v) = s.parse::<CvssVector>() {
        let _ = v.severity();
    }
    let _ = s.parse::<Credit>();
    let _ = s.parse::<Severity>();
});
