//! What the adapter reads from configuration and from GitHub's headers: the API base URL,
//! `Link` headers and redirect targets, and repository names. Nothing panics, and no target
//! the adapter agrees to follow leaves the configured host (the token goes with the request).
#![no_main]

use libfuzzer_sys::fuzz_target;
use lockstep_github::{ApiBase, RepoName, next_link};
use url::Url;

fuzz_target!(|input: (&str, &str, &str)| {
    let (base, link, current) = input;
    if let Ok(name) = RepoName::parse(link) {
        assert_eq!(RepoName::parse(&name.to_string()).ok(), Some(name));
    }
    let Ok(api) = ApiBase::parse(base, &[]) else {
        return;
    };
    let base_url = Url::parse(api.as_str()).expect("a parsed base is a URL");
    let target = next_link(link).unwrap_or(link);
    for current in [None, Some(current)] {
        let Some(path) = api.relativize(target, current) else {
            continue;
        };
        assert!(path.starts_with('/'), "{path:?} is not a path");
        let followed =
            Url::parse(&format!("{}{path}", api.as_str())).expect("base and path make a URL");
        assert_eq!(
            followed.host_str(),
            base_url.host_str(),
            "{target:?} left the host"
        );
        assert_eq!(
            followed.port_or_known_default(),
            base_url.port_or_known_default()
        );
    }
});
