//! No input panics: arbitrary and mutated text at every parser, and corrupted event logs at
//! replay. (The fuzz targets in `fuzz/` push the same checks further with libFuzzer.)
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use lockstep_core::input::Verdict;
use lockstep_core::vuln::{Credit, CvssVector, Ecosystem, Severity};
use lockstep_core::*;
use proptest::prelude::*;

const MCP: &str = include_str!("../../../workflows/mcp-sdks.toml");

fn round_trip<T: std::str::FromStr + std::fmt::Display + PartialEq + std::fmt::Debug>(s: &str) {
    if let Ok(v) = s.parse::<T>() {
        let again: T = v
            .to_string()
            .parse()
            .unwrap_or_else(|_| panic!("{v} does not re-parse"));
        assert_eq!(again, v);
    }
}

fn log() -> Vec<Event> {
    let (mut case, d) = open_with("publish-ready", &[]);
    let mut events = d.events;
    for input in [
        assess("org/core", Verdict::Affected),
        released("org/extra", "extra"),
        Input::Command(Command::SetEmbargo {
            until: t(40),
            reason: "backport".into(),
        }),
    ] {
        events.extend(case.handle(&user("alice"), input, t(1)).unwrap().events);
    }
    events
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(
        std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(256)
    ))]

    #[test]
    fn identifiers_times_and_ratings(s in "\\PC{0,40}|CVSS:3\\.1/[A-Z:/]{0,50}|GHSA(-[a-z0-9]{0,5}){0,4}|[a-z-]{1,10}/[a-z.]{0,10}|[0-9T:Z+.-]{0,30}") {
        round_trip::<RepoId>(&s);
        round_trip::<Login>(&s);
        round_trip::<GhsaId>(&s);
        round_trip::<CveId>(&s);
        round_trip::<CweId>(&s);
        round_trip::<CaseId>(&s);
        round_trip::<Timestamp>(&s);
        round_trip::<Ecosystem>(&s);
        if let Ok(v) = s.parse::<CvssVector>() {
            let _ = v.severity();
        }
        let _ = s.parse::<Credit>();
        let _ = s.parse::<Severity>();
    }

    /// Any tag against any patched-versions text answers, and a release version of any length
    /// releases itself.
    #[test]
    fn release_tags_against_patched_versions(
        tag in "(v|[a-z@/]{0,8}@v?)?[0-9]{1,25}(\\.[0-9]{1,25}){0,3}(-rc\\.[0-9])?|\\PC{0,20}",
        patched in "((>=|>|=|\\^|~| )*v?[0-9]{1,3}(\\.[0-9]{1,3}){0,3}[ ,|]*){0,3}|\\PC{0,20}",
    ) {
        let fix = |patched: &str| vuln::PackageFix {
            package: "pkg".into(),
            vulnerable_range: None,
            patched_versions: patched.into(),
        };
        let _ = release_tag::releases(&tag, &[fix(&patched)]);
        // A release version releases itself, exactly and as a lower bound.
        // (A tag naming a package names another one than `pkg`, or none the rule accepts.)
        let version = match tag.rfind('@') {
            Some(i) if i > 0 => &tag[..0],
            _ => tag.as_str(),
        };
        let version = version.strip_prefix('v').unwrap_or(version);
        if !version.is_empty() && version.split('.').all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit())) {
            prop_assert!(release_tag::releases(&tag, &[fix(version)]), "{tag} vs {version}");
            let at_least = format!(">= {version}");
            prop_assert!(release_tag::releases(&tag, &[fix(&at_least)]), "{tag} vs {at_least}");
        }
    }

    /// Release versions are totally ordered: `a >= b` or `b > a`, never both.
    #[test]
    fn release_versions_are_ordered(
        a in "[0-9]{1,22}(\\.0?[0-9]{1,3}){0,3}",
        b in "[0-9]{1,22}(\\.0?[0-9]{1,3}){0,3}",
    ) {
        let fix = |patched: String| [vuln::PackageFix {
            package: "pkg".into(),
            vulnerable_range: None,
            patched_versions: patched,
        }];
        let a_at_least_b = release_tag::releases(&a, &fix(format!(">= {b}")));
        let b_above_a = release_tag::releases(&b, &fix(format!("> {a}")));
        prop_assert!(a_at_least_b != b_above_a, "{a} vs {b}");
    }

    /// Any text at the vulnerable-range and version parsers answers; what parses behaves as
    /// a range: an upper bound excludes itself when exclusive, overlap is symmetric, and a
    /// range overlaps itself.
    #[test]
    fn version_ranges(
        text in "((>=|>|<=|<|=) ?v?[0-9]{1,3}(\\.[0-9]{1,3}){0,2}(-rc[0-9])?,? ?){1,3}|\\PC{0,30}",
        other in "(>=|>|<=|<|=) ?[0-9]{1,2}(\\.[0-9]{1,2}){0,2}(, (<|<=) ?[0-9]{1,2}(\\.[0-9]{1,2}){0,2})?",
        version in "v?[0-9]{1,3}(\\.[0-9]{1,3}){0,3}(-?rc[0-9])?|\\PC{0,12}",
    ) {
        use lockstep_core::engine::lines::{Version, VersionRange, parse_line_arg};
        let _ = parse_line_arg(&text);
        let v = Version::parse(&version);
        if let Ok(r) = VersionRange::parse(&text) {
            prop_assert!(r.overlaps(&r), "{text}");
            if let Ok(o) = VersionRange::parse(&other) {
                prop_assert_eq!(r.overlaps(&o), o.overlaps(&r), "{} vs {}", text, other);
            }
            if let Some(v) = &v {
                let _ = r.contains(v);
            }
            if let Some(u) = &r.upper && !u.inclusive {
                prop_assert!(!r.contains(&u.version));
            }
        }
    }

    /// Random edits of a real workflow file either parse or fail with a position inside it.
    #[test]
    fn mutated_workflows(edits in proptest::collection::vec((any::<usize>(), 0u8..3, "\\PC{0,6}"), 1..6)) {
        let mut text = MCP.to_owned();
        for (at, kind, piece) in edits {
            let mut at = at % (text.len() + 1);
            while !text.is_char_boundary(at) {
                at -= 1;
            }
            match kind {
                0 => text.insert_str(at, &piece),
                1 => {
                    let mut end = (at + piece.len() + 1).min(text.len());
                    while !text.is_char_boundary(end) {
                        end -= 1;
                    }
                    text.replace_range(at..end, "");
                }
                _ => text.replace_range(at..at, "\n[[repo]]\n"),
            }
        }
        if let Err(e) = Workflow::parse("m.toml", &text) {
            prop_assert!(e.line >= 1 && e.column >= 1);
            prop_assert!(e.line <= text.lines().count() + 1, "{e}");
        }
    }

    /// A corrupted log (dropped, repeated, reordered or re-numbered events) replays or fails
    /// with a typed error; it never panics.
    #[test]
    fn corrupted_logs(ops in proptest::collection::vec((any::<usize>(), any::<usize>(), 0u8..4), 1..4)) {
        let mut events = log();
        for (i, j, op) in ops {
            let n = events.len();
            let (i, j) = (i % n, j % n);
            match op {
                0 => { events.remove(i); }
                1 => { let e = events[i].clone(); events.insert(j, e); }
                2 => events.swap(i, j),
                _ => events[i].seq = events[j].seq,
            }
            if events.is_empty() {
                break;
            }
        }
        if let Ok(case) = Case::replay(&events) {
            let _ = case.blockers();
            let _ = case.release_plan();
        }
    }
}
