//! The audit files a user hands to `lockstep audit`: checkpoints, verifier keys and signing key
//! files. Nothing panics; whatever parses prints back to text that parses to the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lockstep_store::{Checkpoint, parse_key_text, parse_verifier_key, verifier_key};

fuzz_target!(|s: &str| {
    if let Ok(cp) = Checkpoint::parse(s) {
        let again = Checkpoint::parse(&cp.to_string()).expect("a parsed checkpoint re-parses");
        assert_eq!(again, cp);
        assert!(cp.check_key(&cp.key).is_ok());
    }
    if let Ok(key) = parse_verifier_key(s) {
        assert_eq!(parse_verifier_key(&verifier_key(&key)).ok(), Some(key));
    }
    let _ = parse_key_text(s);
});
