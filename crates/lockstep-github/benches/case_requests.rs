//! Requests one ten-repository case needs against the simulator, driven in the core's
//! order and with the core's writes, compared with the lower bound of 3N+A−1
//! content-creating requests, where A of the N repositories are affected: N creates, N−1 link
//! updates, A CVE requests (the workflow's default `cve = "on-affected"`: none for a
//! repository assessed not affected), and at release A publishes and N−A draft closes.
//!
//! The engine makes one more: collaborators cannot be set when a draft is created, so they
//! ride on the N−1 link updates, and the last draft (created already linked, so it gets no
//! link update) needs one collaborator update of its own. This benchmark makes the same writes
//! and reports them as they are, with every request counted from the simulator's ledger.
#![allow(clippy::unwrap_used, clippy::print_stdout)]

use std::time::{Duration, Instant};

use lockstep_github::{
    AdvisoryUpdate, ApiBase, Attempt, Credentials, Ecosystem, GithubClient, GithubConfig,
    NewAdvisory, PacingConfig, Rating, RepoName, SecretString, Severity, Vulnerability, WaveItem,
};
use lockstep_sim::{Permission, SecondaryLimits, SimConfig, Simulator, Via, spawn_local};

const N: usize = 10;
/// Affected repositories: the first A; the other N−A are assessed not affected.
const A: usize = 7;
const TOKEN: &str = "ghp_BenchTokenLockstep0123456789abcdefgh";

fn vuln(patched: Option<&str>) -> Vulnerability {
    Vulnerability {
        ecosystem: Ecosystem::Npm,
        name: "sdk".into(),
        vulnerable_version_range: Some("< 2.0.0".into()),
        patched_versions: patched.map(str::to_owned),
        vulnerable_functions: vec![],
    }
}

fn description(case: &str, repo: &str, links: &[(String, String)]) -> String {
    let mut d = String::from("Embargoed description.\n\nCoordinated with:\n");
    for (r, g) in links {
        d.push_str(&format!("- {r}: {g}\n"));
    }
    d.push_str(&format!("\n<!-- lockstep:{case}:{repo} -->"));
    d
}

/// The simulator with `N` repositories `mcp/sdk-{i}` the bot administers (and a user who may
/// report), served, and the adapter on it with GitHub's budget (80/min, 500/h) but no 1 s
/// spacing, so the benchmark runs quickly.
async fn setup() -> (
    Simulator,
    lockstep_sim::RunningSim,
    Vec<String>,
    GithubClient,
) {
    let sim = Simulator::new(SimConfig {
        secondary: SecondaryLimits::default(),
        ..SimConfig::default()
    });
    sim.add_user("lockstep-bot", TOKEN);
    sim.add_user("reporter", "tok-reporter");
    let repos: Vec<String> = (0..N).map(|i| format!("mcp/sdk-{i}")).collect();
    for r in &repos {
        sim.add_repo(r).unwrap();
        sim.grant(r, "lockstep-bot", Permission::Admin).unwrap();
    }
    let running = spawn_local(sim.clone()).await.unwrap();
    let mut cfg = GithubConfig::new(
        ApiBase::parse(&running.base_url, &[]).unwrap(),
        Credentials::Token(SecretString::from(TOKEN.to_owned())),
    );
    cfg.pacing = PacingConfig {
        min_spacing: Duration::ZERO,
        ..PacingConfig::default()
    };
    (sim, running, repos, GithubClient::new(cfg).unwrap())
}

async fn run() {
    let (sim, _running, repos, c) = setup().await;
    let case = "case-bench";
    let names: Vec<RepoName> = repos.iter().map(|r| RepoName::parse(r).unwrap()).collect();
    let t0 = Instant::now();

    // Preflight: who are we.
    c.authenticated_user().await.unwrap();

    // N−1 drafts, then the last one with every link.
    let mut ghsas: Vec<String> = Vec::new();
    for (i, r) in names.iter().enumerate() {
        let links: Vec<(String, String)> = if i == N - 1 {
            repos[..N - 1]
                .iter()
                .cloned()
                .zip(ghsas.iter().cloned())
                .collect()
        } else {
            Vec::new()
        };
        let marker = format!("<!-- lockstep:{case}:{r} -->");
        let draft = NewAdvisory {
            summary: "Path traversal in the SDK".into(),
            description: description(case, &r.to_string(), &links),
            rating: Some(Rating::Severity(Severity::High)),
            cve_id: None,
            cwe_ids: vec!["CWE-22".into()],
            credits: vec![],
            vulnerabilities: vec![vuln(None)],
            start_private_fork: false,
        };
        let (a, _) = c
            .create_draft(r, &draft, &marker, Attempt::First)
            .await
            .unwrap();
        ghsas.push(a.ghsa_id);
    }
    // N−1 link PATCHes, collaborators folded in.
    for (i, r) in names.iter().enumerate().take(N - 1) {
        let links: Vec<(String, String)> = repos
            .iter()
            .cloned()
            .zip(ghsas.iter().cloned())
            .enumerate()
            .filter(|(j, _)| *j != i)
            .map(|(_, x)| x)
            .collect();
        c.link_siblings(
            r,
            &ghsas[i],
            &description(case, &r.to_string(), &links),
            Some(&["reporter".to_owned()]),
        )
        .await
        .unwrap();
    }
    // The last draft was created with its links, so it has no link update to carry its
    // collaborators: one PATCH of its own, as the engine's add-collaborators effect.
    c.set_collaborators(&names[N - 1], &ghsas[N - 1], &["reporter".to_owned()])
        .await
        .unwrap();
    // A CVE requests, one per repository assessed affected.
    for (r, g) in names.iter().zip(&ghsas).take(A) {
        c.request_cve(r, g).await.unwrap();
    }
    let before_release = sim.ledger().len();
    // Release: one wave, A concurrent PATCHes with the final content; the N−A drafts of
    // repositories not affected are closed.
    let content = AdvisoryUpdate {
        vulnerabilities: Some(vec![vuln(Some("2.0.0"))]),
        ..AdvisoryUpdate::default()
    };
    let items: Vec<WaveItem> = names
        .iter()
        .zip(&ghsas)
        .take(A)
        .map(|(r, g)| WaveItem {
            repo: r.clone(),
            ghsa: g.clone(),
            content: Some(content.clone()),
            attempt: Attempt::First,
        })
        .collect();
    let results = c.publish_wave(&items).await;
    assert!(results.iter().all(Result::is_ok));
    for (r, g) in names.iter().zip(&ghsas).skip(A) {
        c.close(r, g, Attempt::First).await.unwrap();
    }
    let elapsed = t0.elapsed();

    // Later polling: conditional GETs answered 304 are free against the primary limit.
    for (r, g) in names.iter().zip(&ghsas).take(A) {
        c.poll_advisory(r, g).await.unwrap();
    }
    for (r, g) in names.iter().zip(&ghsas).take(A) {
        c.poll_advisory(r, g).await.unwrap();
    }

    let ledger = sim.ledger();
    let http: Vec<_> = ledger[..before_release + N]
        .iter()
        .filter(|e| e.via == Via::Http)
        .collect();
    let writes = http.iter().filter(|e| e.write).count();
    let reads = http.len() - writes;
    let bound = 3 * N + A - 1;
    let count = |op: &str| http.iter().filter(|e| e.op == op).count();
    let publishes: Vec<_> = ledger
        .iter()
        .filter(|e| e.is_publish())
        .map(|e| e.at)
        .collect();
    // PATCHes that are neither publications nor closes: N−1 link updates (carrying
    // collaborators) and the last draft's collaborator update.
    let updates = http
        .iter()
        .filter(|e| e.op == "update" && e.state_to.is_none())
        .count();
    let closes = http
        .iter()
        .filter(|e| e.op == "update" && e.state_to.is_some() && !e.is_publish())
        .count();
    let leak = (*publishes.iter().max().unwrap() - *publishes.iter().min().unwrap())
        .to_std()
        .unwrap_or_default();
    let polls = &ledger[before_release + N..];
    let not_modified = polls.iter().filter(|e| e.status == 304).count();
    println!("one case, N = {N} repositories (simulator, zero latency)");
    println!(
        "requests: {} = {writes} content-creating writes + {reads} read(s) (GET /user)",
        http.len()
    );
    println!(
        "content-creating writes: {writes} = {} creates + {} link updates carrying collaborators + {} collaborator update (last draft) + {} CVE requests + {} publishes + {closes} draft closes",
        count("create"),
        updates - 1,
        1,
        count("request_cve"),
        publishes.len()
    );
    println!(
        "lower bound 3N+A-1 = {bound} with A = {A} affected (N creates, N-1 link updates, A CVE requests, A publishes, N-A closes); writes / bound = {writes}/{bound} = {:.3}",
        writes as f64 / bound as f64
    );
    assert_eq!(count("request_cve"), A, "CVEs only for the affected");
    assert_eq!(writes, bound + 1, "the engine's 3N+A writes");
    assert_eq!(updates, N, "N-1 link updates and one collaborator update");
    println!(
        "release wave: {A} PATCHes in one burst, leak window (first to last publish) {:.1} ms; case wall time {:.0} ms",
        leak.as_secs_f64() * 1e3,
        elapsed.as_secs_f64() * 1e3
    );
    println!(
        "later polling: {} conditional GETs, {not_modified} answered 304 (free against the primary limit)",
        polls.len()
    );
    println!("client counters: {:?}", c.stats());
}

/// The same ten-repository case, opened from a private vulnerability report filed on the
/// first repository, every repository affected, with the engine's writes: N−1 creates (no
/// draft in the report's repository), one PATCH adopting the report (accepted, linked,
/// content and collaborators), N−1 link updates carrying collaborators (the reporter among
/// them), N CVE requests and N publishes. The bound is 4N−1.
async fn run_from_report() {
    let (sim, _running, repos, c) = setup().await;
    // The researcher's report, through GitHub's own form (not a Lockstep request).
    let report = sim
        .report_as(
            "reporter",
            &repos[0],
            &serde_json::json!({"summary": "Path traversal in the SDK", "description": "Reporter's text."}),
        )
        .unwrap();
    let report_ghsa = report["ghsa_id"].as_str().unwrap().to_owned();
    let case = "case-from-report";
    let names: Vec<RepoName> = repos.iter().map(|r| RepoName::parse(r).unwrap()).collect();
    let start = sim.ledger().len();
    let t0 = Instant::now();
    c.authenticated_user().await.unwrap();
    // The siblings first, unlinked (N−1 creates); the report's repository gets none.
    let mut ghsas: Vec<String> = vec![report_ghsa.clone()];
    for r in names.iter().skip(1) {
        let marker = format!("<!-- lockstep:{case}:{r} -->");
        let draft = NewAdvisory {
            summary: "Path traversal in the SDK".into(),
            description: description(case, &r.to_string(), &[]),
            rating: Some(Rating::Severity(Severity::High)),
            cve_id: None,
            cwe_ids: vec!["CWE-22".into()],
            credits: vec![lockstep_github::Credit {
                login: "reporter".into(),
                credit_type: lockstep_github::CreditType::Reporter,
            }],
            vulnerabilities: vec![vuln(None)],
            start_private_fork: false,
        };
        let (a, _) = c
            .create_draft(r, &draft, &marker, Attempt::First)
            .await
            .unwrap();
        ghsas.push(a.ghsa_id);
    }
    let links_of = |i: usize| -> Vec<(String, String)> {
        repos
            .iter()
            .cloned()
            .zip(ghsas.iter().cloned())
            .enumerate()
            .filter(|(j, _)| *j != i)
            .map(|(_, x)| x)
            .collect()
    };
    // One PATCH adopts the report: accepted, with every link, content and collaborators.
    let marker = format!("<!-- lockstep:{case}:{} -->", repos[0]);
    let adoption = AdvisoryUpdate {
        summary: Some("Path traversal in the SDK".into()),
        description: Some(description(case, &repos[0], &links_of(0))),
        rating: Some(Rating::Severity(Severity::High)),
        vulnerabilities: Some(vec![vuln(None)]),
        collaborating_users: lockstep_github::FieldUpdate::Set(vec!["lockstep-bot".into()]),
        ..AdvisoryUpdate::default()
    };
    c.adopt_report(&names[0], &report_ghsa, &adoption, &marker, Attempt::First)
        .await
        .unwrap();
    // N−1 link updates, the reporter a collaborator on every sibling.
    for (i, r) in names.iter().enumerate().skip(1) {
        c.link_siblings(
            r,
            &ghsas[i],
            &description(case, &r.to_string(), &links_of(i)),
            Some(&["reporter".to_owned()]),
        )
        .await
        .unwrap();
    }
    for (r, g) in names.iter().zip(&ghsas) {
        c.request_cve(r, g).await.unwrap();
    }
    let content = AdvisoryUpdate {
        vulnerabilities: Some(vec![vuln(Some("2.0.0"))]),
        ..AdvisoryUpdate::default()
    };
    let items: Vec<WaveItem> = names
        .iter()
        .zip(&ghsas)
        .map(|(r, g)| WaveItem {
            repo: r.clone(),
            ghsa: g.clone(),
            content: Some(content.clone()),
            attempt: Attempt::First,
        })
        .collect();
    let results = c.publish_wave(&items).await;
    assert!(results.iter().all(Result::is_ok));
    let elapsed = t0.elapsed();
    let ledger = sim.ledger();
    let http: Vec<_> = ledger[start..]
        .iter()
        .filter(|e| e.via == Via::Http)
        .collect();
    let writes = http.iter().filter(|e| e.write).count();
    let count = |op: &str| http.iter().filter(|e| e.op == op).count();
    let bound = 4 * N - 1;
    let per_repo: Vec<usize> = repos
        .iter()
        .map(|r| sim.advisories(r).unwrap().len())
        .collect();
    println!();
    println!(
        "one case opened from a private report on {}, N = {N} repositories, all affected",
        repos[0]
    );
    println!(
        "content-creating writes: {writes} = {} creates + {} updates (1 adoption + {} link updates carrying collaborators) + {} CVE requests + {} publishes",
        count("create"),
        http.iter()
            .filter(|e| e.op == "update" && !e.is_publish())
            .count(),
        N - 1,
        count("request_cve"),
        http.iter().filter(|e| e.is_publish()).count(),
    );
    println!(
        "bound 4N-1 = {bound}; writes / bound = {writes}/{bound} = {:.3}; advisories per repository {:?}; case wall time {:.0} ms",
        writes as f64 / bound as f64,
        per_repo,
        elapsed.as_secs_f64() * 1e3
    );
    assert!(writes <= bound, "{writes} writes, more than 4N-1");
    assert!(
        per_repo.iter().all(|n| *n == 1),
        "one advisory per repository"
    );
    assert_eq!(
        count("create"),
        N - 1,
        "no draft in the report's repository"
    );
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(run());
    rt.block_on(run_from_report());
}
