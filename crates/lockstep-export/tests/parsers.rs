//! The stable counterpart of the `export_range` fuzz target: the vulnerable-range reader
//! answers any text without panicking, and reads GitHub's own forms exactly.
#![allow(clippy::unwrap_used)]

use lockstep_export::range::{OsvEvent, events, parse};
use proptest::prelude::*;

proptest! {
    #[test]
    fn any_text_reads_without_panicking(range in "\\PC{0,40}", patched in "\\PC{0,12}") {
        let _ = parse(&range);
        let (ev, _) = events(Some(&range), Some(patched.as_str()).filter(|p| !p.is_empty()));
        prop_assert!(matches!(ev.first(), Some(OsvEvent::Introduced(_))));
        prop_assert!(ev.len() <= 2);
    }

    #[test]
    fn github_forms_read_exactly(a in "[0-9]{1,3}(\\.[0-9]{1,3}){0,2}", b in "v?[0-9]{1,3}(\\.[0-9]{1,3}){0,2}(-rc\\.[0-9])?") {
        let (ev, ok) = events(Some(&format!(">= {a}, < {b}")), None);
        prop_assert!(ok);
        prop_assert_eq!(ev, vec![OsvEvent::Introduced(a.clone()), OsvEvent::Fixed(b.clone())]);
        let (ev, ok) = events(Some(&format!("<={b}")), None);
        prop_assert!(ok);
        prop_assert_eq!(ev, vec![OsvEvent::Introduced("0".into()), OsvEvent::LastAffected(b.clone())]);
        let (ev, _) = events(Some(&format!("< {b}")), Some(&a));
        prop_assert_eq!(ev, vec![OsvEvent::Introduced("0".into()), OsvEvent::Fixed(a)]);
    }
}
