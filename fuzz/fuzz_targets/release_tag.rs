//! The release-tag rule: any tag against any patched-versions text answers without panicking,
//! and a plain release version always releases itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lockstep_core::release_tag::releases;
use lockstep_core::vuln::PackageFix;

fuzz_target!(|input: (&str, &str)| {
    let (tag, patched) = input;
    let fix = |patched: &str| PackageFix {
        package: "pkg".into(),
        vulnerable_range: None,
        patched_versions: patched.into(),
    };
    let _ = releases(tag, &[fix(patched)]);
    if !tag.is_empty()
        && tag
            .split('.')
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
    {
        assert!(releases(tag, &[fix(tag)]));
        assert!(releases(tag, &[fix(&format!(">= {tag}"))]));
    }
});
