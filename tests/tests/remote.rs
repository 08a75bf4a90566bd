//! The CLI as a client of a shared `lockstep serve`: its errors (one line, with their exit
//! codes), that it needs and creates no database, where its token comes from, the commands
//! added with it (scope, threat), and that identities are looked up once per TTL.
#![allow(clippy::unwrap_used)]

use lockstep_e2e::cli::{Mode, World, days_from_now, one_line_error, repo_state};
use serde_json::Value;

/// A directory that holds nothing, to run commands in.
fn empty_dir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn remote_errors_are_one_line_with_their_exit_codes() {
    let w = World::in_mode(Mode::Remote).await;
    let case = w.open(&[]);

    // The server unreachable: the line names the URL.
    let mut c = w.as_("alice");
    c.env("LOCKSTEP_SERVER_URL", "http://127.0.0.1:9")
        .args(["case", "list"]);
    one_line_error(
        &mut c,
        1,
        "cannot reach the Lockstep server at http://127.0.0.1:9",
    );
    // --server wins over the environment.
    let mut c = w.as_("alice");
    c.args(["--server", "http://127.0.0.1:9", "case", "show", &case]);
    one_line_error(&mut c, 1, "http://127.0.0.1:9");
    // A token GitHub refuses.
    one_line_error(
        w.as_("mallory").args(["case", "show", &case]),
        1,
        "cannot identify the caller: GitHub refused the token",
    );
    // A refused action: exit 3, the core's own words.
    one_line_error(
        w.as_("bob").args(["disclose-now", &case, "--reason", "x"]),
        3,
        "only a coordinator",
    );
    one_line_error(
        w.as_("bob").args([
            "scope",
            "remove",
            &case,
            "--repo",
            "org/extra",
            "--reason",
            "x",
        ]),
        3,
        "refused",
    );
    // An unknown case.
    one_line_error(
        w.as_("alice").args(["case", "show", "LS-NOPE"]),
        1,
        "unknown case LS-NOPE",
    );
    // Plain http:// to a host that is not loopback: refused before anything is sent.
    let mut c = w.as_("alice");
    c.env("LOCKSTEP_SERVER_URL", "http://lockstep.example.org:8080")
        .args(["case", "list"]);
    one_line_error(&mut c, 1, "would send your GitHub token in clear");
    // The server's own error text reaches the user: a server that takes no inline workflow.
    let plain = lockstep_e2e::cli::serve_logging(&w, "whsec", "info");
    let mut c = w.as_("alice");
    c.args([
        "--server",
        &plain.url,
        "case",
        "open",
        "--workflow",
        "w.toml",
        "--summary",
        "s",
        "--description-file",
        "desc.md",
        "--severity",
        "low",
    ]);
    one_line_error(&mut c, 3, "does not accept inline workflows");
    // … which opens a case by the name of one of its workflows.
    let mut c = w.as_("alice");
    c.args([
        "--server",
        &plain.url,
        "case",
        "open",
        "--workflow-name",
        "w",
        "--summary",
        "s",
        "--description-file",
        "desc.md",
        "--severity",
        "low",
    ]);
    let out = c.assert().success().get_output().stdout.clone();
    assert!(String::from_utf8(out).unwrap().starts_with("LS-"));
}

#[tokio::test(flavor = "multi_thread")]
async fn remote_mode_needs_and_creates_no_database() {
    let w = World::in_mode(Mode::Remote).await;
    let case = w.open(&[]);
    let dir = empty_dir();
    for args in [
        vec!["case", "list"],
        vec!["case", "show", case.as_str()],
        vec!["plan", case.as_str()],
        vec![
            "assess",
            case.as_str(),
            "--repo",
            "org/core",
            "--investigating",
            "--reason",
            "looking",
        ],
    ] {
        let mut c = w.as_("alice");
        c.current_dir(dir.path())
            .env_remove("LOCKSTEP_DATABASE_URL")
            .args(&args)
            .assert()
            .success();
    }
    // Even a database URL that cannot be opened is never touched.
    let mut c = w.as_("alice");
    c.current_dir(dir.path())
        .env("LOCKSTEP_DATABASE_URL", "sqlite:///nonexistent-dir/x.db")
        .args(["case", "show", &case])
        .assert()
        .success();
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert!(left.is_empty(), "remote commands wrote {left:?}");
}

/// Writes an executable `gh` into `dir` that prints `token` for `gh auth token`.
fn stub_gh(dir: &std::path::Path, token: &str) {
    use std::os::unix::fs::PermissionsExt as _;
    let path = dir.join("gh");
    std::fs::write(
        &path,
        format!(
            "#!/bin/sh\nif [ \"$1 $2\" = \"auth token\" ]; then echo {token}; exit 0; fi\nexit 1\n"
        ),
    )
    .unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn the_token_comes_from_gh_when_no_variable_holds_one() {
    let w = World::in_mode(Mode::Remote).await;
    let case = w.open(&[]);
    let bin = empty_dir();
    stub_gh(bin.path(), "tok-bob");
    let path = format!(
        "{}:{}",
        bin.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = w
        .as_("ignored")
        .env_remove("GITHUB_TOKEN")
        .env_remove("GH_TOKEN")
        .env("PATH", &path)
        .env("RUST_LOG", "lockstep=debug")
        .args(["case", "show", &case, "--json"])
        .assert()
        .success()
        .get_output()
        .clone();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("gh auth token"), "{stderr}");
    assert!(
        !stderr.contains("tok-bob"),
        "the token was printed: {stderr}"
    );
    let show: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(show["case_id"], case.as_str());
    // GH_TOKEN comes before gh.
    w.as_("ignored")
        .env_remove("GITHUB_TOKEN")
        .env("GH_TOKEN", "tok-eve")
        .env("PATH", &path)
        .args(["case", "show", &case])
        .assert()
        .code(3);
    // No variable and no gh: one line saying what to do.
    let nothing = empty_dir();
    let mut c = w.as_("ignored");
    c.env_remove("GITHUB_TOKEN")
        .env_remove("GH_TOKEN")
        .env("PATH", nothing.path())
        .args(["case", "list"]);
    one_line_error(&mut c, 1, "no GitHub token");
}

#[tokio::test(flavor = "multi_thread")]
async fn scope_and_threat_from_the_cli_in_both_modes() {
    for mode in [Mode::Local, Mode::Remote] {
        let w = World::in_mode(mode).await;
        let case = w.open(&["--repo", "org/core", "--repo", "org/plugin"]);
        w.run_once();
        // The late vendor: only a coordinator brings it in.
        one_line_error(
            w.as_("bob")
                .args(["scope", "add", &case, "--repo", "org/extra"]),
            3,
            "refused",
        );
        w.as_("alice")
            .args(["scope", "add", &case, "--repo", "org/extra"])
            .assert()
            .success();
        w.run_once();
        let show = w.show(&case);
        let ghsa = |repo: &str| {
            repo_state(&show, repo)["ghsa_id"]
                .as_str()
                .unwrap()
                .to_owned()
        };
        // Its draft links both siblings, and theirs now link it.
        for (repo, others) in [
            ("org/extra", ["org/core", "org/plugin"]),
            ("org/core", ["org/extra", "org/plugin"]),
            ("org/plugin", ["org/core", "org/extra"]),
        ] {
            let advisories = w.sim.advisories(repo).unwrap();
            let text = advisories[0]["description"].as_str().unwrap();
            for other in others {
                assert!(
                    text.contains(&ghsa(other)),
                    "{repo}'s draft does not link {other} ({mode:?}): {text}"
                );
            }
        }
        one_line_error(
            w.as_("alice")
                .args(["scope", "add", &case, "--repo", "org/extra"]),
            1,
            "org/extra",
        );
        w.as_("alice")
            .args([
                "scope",
                "remove",
                &case,
                "--repo",
                "org/extra",
                "--reason",
                "not shipped",
            ])
            .assert()
            .success()
            .stdout(predicates::str::contains(
                "org/extra removed; 2 repositories",
            ));
        // A public exploit ends the embargo; recording one is a coordinator's call.
        one_line_error(
            w.as_("bob").args([
                "threat",
                &case,
                "--exploit-public",
                "--reason",
                "PoC on a blog",
            ]),
            3,
            "may not record a threat",
        );
        w.as_("alice")
            .args([
                "threat",
                &case,
                "--exploit-public",
                "--reason",
                "PoC on a blog",
            ])
            .assert()
            .success()
            .stdout(predicates::str::contains("the embargo has ended"));
        let show = w.show(&case);
        assert_eq!(show["embargo"]["exit"]["cause"], "threat", "{show}");
        w.as_("alice")
            .args(["threat", &case, "--attacks", "--public", "--reason", "x"])
            .assert()
            .code(2);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_remote_command_costs_no_github_lookup_within_the_ttl() {
    let w = World::in_mode(Mode::Remote).await;
    let case = w.open(&[]);
    let user_lookups = || {
        w.sim
            .ledger()
            .iter()
            .filter(|e| e.path == "/user" && e.actor.as_deref() == Some("bob"))
            .count()
    };
    w.as_("bob")
        .args(["case", "show", &case])
        .assert()
        .success();
    let before = user_lookups();
    assert!(before > 0, "the ledger records the first lookup");
    for _ in 0..3 {
        w.as_("bob")
            .args(["case", "show", &case])
            .assert()
            .success();
        w.as_("bob").args(["plan", &case]).assert().success();
    }
    assert_eq!(
        user_lookups(),
        before,
        "GitHub was asked again within the TTL"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_maintainer_asks_for_more_time_in_both_modes() {
    for mode in [Mode::Local, Mode::Remote] {
        let w = World::in_mode(mode).await;
        let case = w.open(&[]);
        let later = days_from_now(45);
        // bob maintains org/core; eve maintains nothing.
        one_line_error(
            w.as_("eve").args([
                "embargo", "request", &case, "--until", &later, "--reason", "x",
            ]),
            3,
            "neither a coordinator nor a maintainer",
        );
        w.as_("bob")
            .args([
                "embargo", "request", &case, "--until", &later, "--reason", "backport",
            ])
            .assert()
            .success()
            .stdout(predicates::str::contains(
                "asked the coordinators for an embargo until",
            ));
        w.as_("alice")
            .args(["case", "show", &case])
            .assert()
            .success()
            .stdout(predicates::str::contains(
                "request bob asks for an embargo until",
            ));
        let plan: Value = serde_json::from_slice(
            &w.as_("dave")
                .args(["plan", &case, "--json"])
                .assert()
                .success()
                .get_output()
                .stdout,
        )
        .unwrap();
        assert_eq!(plan["embargo_request"]["reason"], "backport", "{plan}");
        // Only a coordinator answers.
        one_line_error(
            w.as_("bob")
                .args(["embargo", "decline", &case, "--reason", "no"]),
            3,
            "only a coordinator",
        );
        w.as_("alice")
            .args([
                "embargo",
                "decline",
                &case,
                "--reason",
                "the others are ready",
            ])
            .assert()
            .success()
            .stdout(predicates::str::contains("declined"));
        assert!(w.show(&case)["embargo"].get("request").is_none());
        one_line_error(
            w.as_("alice")
                .args(["embargo", "decline", &case, "--reason", "again"]),
            1,
            "no embargo extension request is pending",
        );
        // Asked again, and granted by setting the embargo.
        w.as_("bob")
            .args([
                "embargo", "request", &case, "--until", &later, "--reason", "still",
            ])
            .assert()
            .success();
        w.as_("alice")
            .args(["embargo", &case, "--until", &later, "--reason", "granted"])
            .assert()
            .success();
        let show = w.show(&case);
        assert!(show["embargo"].get("request").is_none(), "{show}");
        assert_eq!(
            show["embargo"]["until"].as_str().unwrap()[..10],
            later[..10]
        );
    }
}

/// A loopback HTTP endpoint that records each request (method, path, JSON body) and answers
/// 404 with a JSON error, so that the CLI stops after its first request.
/// Requests seen by [`capture_server`]: method, path and JSON body.
type Captured = std::sync::Arc<std::sync::Mutex<Vec<(String, String, Value)>>>;

fn capture_server() -> (String, Captured) {
    use std::io::{BufRead as _, Read as _, Write as _};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = std::io::BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            let mut parts = line.split_whitespace();
            let method = parts.next().unwrap_or_default().to_owned();
            let path = parts.next().unwrap_or_default().to_owned();
            let mut length = 0;
            loop {
                let mut header = String::new();
                reader.read_line(&mut header).unwrap();
                if header.trim().is_empty() {
                    break;
                }
                if let Some((k, v)) = header.split_once(':')
                    && k.eq_ignore_ascii_case("content-length")
                {
                    length = v.trim().parse().unwrap();
                }
            }
            let mut body = vec![0; length];
            reader.read_exact(&mut body).unwrap();
            let body = serde_json::from_slice(&body).unwrap_or(Value::Null);
            sink.lock().unwrap().push((method, path, body));
            let answer = r#"{"error":"captured"}"#;
            let _ = write!(
                stream,
                "HTTP/1.1 404 Not Found\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{answer}",
                answer.len()
            );
        }
    });
    (url, seen)
}

/// The path of the OpenAPI description that `path` matches (`{id}` matches one segment).
fn described<'a>(doc: &'a Value, path: &str) -> Option<(&'a String, &'a Value)> {
    let segments: Vec<&str> = path.split('/').collect();
    doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .find(|(template, _)| {
            let t: Vec<&str> = template.split('/').collect();
            t.len() == segments.len()
                && t.iter()
                    .zip(&segments)
                    .all(|(a, b)| a == b || (a.starts_with('{') && !b.is_empty()))
        })
}

#[tokio::test(flavor = "multi_thread")]
async fn the_cli_s_requests_validate_against_the_served_openapi_description() {
    let w = World::in_mode(Mode::Remote).await;
    let doc: Value = reqwest::get(format!("{}/api/openapi.json", w.server_url().unwrap()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let (url, seen) = capture_server();
    let case = "LS-20260101-ABC123";
    let later = days_from_now(40);
    let commands: Vec<Vec<&str>> = vec![
        vec![
            "case",
            "open",
            "--workflow",
            "w.toml",
            "--summary",
            "s",
            "--description-file",
            "desc.md",
            "--cvss",
            "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
            "--cwe",
            "CWE-79",
            "--credit",
            "finder1:finder",
            "--repo",
            "org/core",
            "--embargo-until",
            &later,
        ],
        vec![
            "case",
            "open",
            "--workflow-name",
            "w",
            "--summary",
            "s",
            "--description-file",
            "desc.md",
            "--severity",
            "low",
        ],
        vec!["case", "list"],
        vec!["case", "show", case],
        vec!["case", "close", case, "--reason", "x"],
        vec!["plan", case],
        vec![
            "assess",
            case,
            "--repo",
            "org/core",
            "--affected",
            "--reason",
            "x",
        ],
        vec![
            "assess",
            case,
            "--repo",
            "org/core",
            "--not-affected",
            "--reason",
            "x",
        ],
        vec![
            "assess",
            case,
            "--repo",
            "org/core",
            "--investigating",
            "--reason",
            "x",
        ],
        vec![
            "fix-ready",
            case,
            "--repo",
            "org/core",
            "--patched-versions",
            "1.0.1",
        ],
        vec![
            "fix-ready",
            case,
            "--repo",
            "org/core",
            "--patched-versions",
            "1.0.1",
            "--vulnerable-range",
            "< 1.0.1",
            "--package",
            "core",
            "--prepared",
        ],
        vec!["fix-revoke", case, "--repo", "org/core", "--reason", "x"],
        vec!["embargo", case, "--until", &later, "--reason", "x"],
        vec![
            "embargo", "request", case, "--until", &later, "--reason", "x",
        ],
        vec!["embargo", "decline", case, "--reason", "x"],
        vec!["disclose-now", case, "--reason", "x"],
        vec!["scope", "add", case, "--repo", "org/extra"],
        vec![
            "scope",
            "remove",
            case,
            "--repo",
            "org/extra",
            "--reason",
            "x",
        ],
        vec!["threat", case, "--public", "--reason", "x"],
        vec!["threat", case, "--exploit-public", "--reason", "x"],
        vec!["threat", case, "--attacks", "--reason", "x"],
    ];
    for args in &commands {
        let mut c = w.as_("alice");
        c.args(["--server", url.as_str()]).args(args);
        one_line_error(&mut c, 1, "captured");
    }
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), commands.len());
    for (method, target, body) in &seen {
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        let (template, item) =
            described(&doc, path).unwrap_or_else(|| panic!("{path} is not described"));
        let op = &item[method.to_lowercase()];
        assert!(op.is_object(), "{method} {template} is not described");
        // Every query parameter the CLI sends is one the operation describes.
        for name in query.split('&').filter(|q| !q.is_empty()) {
            let name = name.split('=').next().unwrap();
            let described = op["parameters"]
                .as_array()
                .is_some_and(|ps| ps.iter().any(|p| p["in"] == "query" && p["name"] == name));
            assert!(
                described,
                "{method} {template}: query parameter {name} is not described"
            );
        }
        if method == "POST" {
            let mut schema = op["requestBody"]["content"]["application/json"]["schema"].clone();
            schema["components"] = doc["components"].clone();
            let validator = jsonschema::validator_for(&schema).unwrap();
            let errors: Vec<String> = validator.iter_errors(body).map(|e| e.to_string()).collect();
            assert!(errors.is_empty(), "{method} {path} {body}: {errors:?}");
        }
    }
}
