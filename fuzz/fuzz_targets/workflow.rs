//! Workflow files: any text parses or fails with an error that names a position inside it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lockstep_core::Workflow;

fuzz_target!(|text: &str| {
    if let Err(e) = Workflow::parse("fuzz.toml", text) {
        assert!(e.line >= 1 && e.column >= 1);
        assert!(e.line <= text.lines().count().max(1) + 1);
    }
});
