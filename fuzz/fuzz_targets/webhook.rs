//! Webhook deliveries: any signature header and body is verified or refused without panicking,
//! and any body of the handled events (JSON or form-encoded), including a `reported`
//! delivery's advisory, parses or is refused.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lockstep_github::SecretString;
use lockstep_github::webhook::{parse_event, parse_reported, verify_signature};

fuzz_target!(|input: (u8, &str, &[u8])| {
    let (pick, signature, body) = input;
    let secret = SecretString::from("It's a Secret to Everybody".to_owned());
    // Only a correct HMAC is accepted; a random one practically never is.
    let _ = verify_signature(&secret, Some(signature), body);
    let event = ["repository_advisory", "release", "ping", "push"][usize::from(pick % 4)];
    let content_type = (pick & 4 != 0).then_some("application/x-www-form-urlencoded");
    let _ = parse_event(event, content_type, body);
    // A `reported` delivery's advisory (the private vulnerability report Lockstep records).
    let _ = parse_reported(content_type, body);
});
