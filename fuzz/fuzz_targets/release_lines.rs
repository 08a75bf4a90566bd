//! Release lines: any `--line` argument, vulnerable range and version answers without
//! panicking; a range that parses overlaps itself, overlap is symmetric, and an exclusive
//! upper bound excludes its own version.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lockstep_core::engine::lines::{Version, VersionRange, parse_line_arg};

fuzz_target!(|input: (&str, &str, &str)| {
    let (a, b, version) = input;
    let _ = parse_line_arg(a);
    let v = Version::parse(version);
    if let Ok(ra) = VersionRange::parse(a) {
        assert!(ra.overlaps(&ra));
        if let Some(v) = &v {
            let _ = ra.contains(v);
        }
        if let Some(u) = &ra.upper
            && !u.inclusive
        {
            assert!(!ra.contains(&u.version));
        }
        if let Ok(rb) = VersionRange::parse(b) {
            assert_eq!(ra.overlaps(&rb), rb.overlaps(&ra));
        }
    }
});
