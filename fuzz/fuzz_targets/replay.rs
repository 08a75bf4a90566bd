//! An event log read back from storage: arbitrary JSON either fails to decode, fails to
//! replay with a typed error, or replays; it never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lockstep_core::{Case, Event};

fuzz_target!(|data: &[u8]| {
    if let Ok(events) = serde_json::from_slice::<Vec<Event>>(data) {
        if let Ok(case) = Case::replay(&events) {
            let _ = case.blockers();
            let _ = case.release_plan();
            let _ = case.next_deadline();
        }
    }
});
