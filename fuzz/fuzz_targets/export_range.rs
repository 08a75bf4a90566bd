//! The exports' reading of a maintainer's vulnerable range: any text against any patched
//! version answers without panicking, and the OSV events always open with `introduced`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lockstep_export::range::{OsvEvent, events, parse};

fuzz_target!(|input: (&str, &str)| {
    let (range, patched) = input;
    let _ = parse(range);
    let (ev, _) = events(Some(range), Some(patched).filter(|p| !p.is_empty()));
    assert!(matches!(ev.first(), Some(OsvEvent::Introduced(_))));
    assert!(ev.len() <= 2);
});
