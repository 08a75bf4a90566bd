//! The runtime against the simulator and a SQLite store: a whole case from drafts to release,
//! and exactly-once behaviour under faults.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use lockstep_core::input::{FixStage, Verdict};
use lockstep_core::vuln::{PackageFix, Rating, Severity, Vulnerability};
use lockstep_core::*;
use lockstep_github::{ApiBase, Credentials, GithubClient, GithubConfig, PacingConfig};
use lockstep_runtime::{ReleaseProgress, Runtime, RuntimeOptions};
use lockstep_sim::{FaultConfig, Permission, SimConfig, Simulator};
use lockstep_store::Store;

const WORKFLOW: &str = r#"
name = "fixture"
coordinators = ["alice"]

[embargo]
default_days = 30
max_days = 60
deadline_policy = "hold-all"

[[repo]]
name = "org/core"
ecosystem = "npm"
packages = ["core"]
maintainers = ["bob"]

[[repo]]
name = "org/extra"
ecosystem = "rust"
packages = ["extra"]
maintainers = ["carol"]

[[repo]]
name = "org/plugin"
ecosystem = "pip"
packages = ["plugin"]
maintainers = ["dave"]
publish_after = ["org/core"]
"#;

struct World {
    sim: Simulator,
    _running: lockstep_sim::RunningSim,
    store: Store,
    runtime: Runtime,
    case: CaseId,
    _dir: tempfile::TempDir,
}

fn r(s: &str) -> RepoId {
    s.parse().unwrap()
}

async fn world(faults: FaultConfig) -> World {
    let sim = Simulator::new(SimConfig {
        faults,
        ..SimConfig::default()
    });
    sim.add_user("lockstep-bot", "tok-bot");
    for login in ["alice", "bob", "carol", "dave", "finder1"] {
        sim.add_user(login, &format!("tok-{login}"));
    }
    for repo in ["org/core", "org/extra", "org/plugin"] {
        sim.add_repo(repo).unwrap();
        sim.grant(repo, "lockstep-bot", Permission::Admin).unwrap();
    }
    let running = lockstep_sim::spawn_local(sim.clone()).await.unwrap();
    let base = ApiBase::parse(&running.base_url, &["127.0.0.1".to_owned()]).unwrap();
    let mut config = GithubConfig::new(base, Credentials::Token("tok-bot".to_owned().into()));
    config.pacing = PacingConfig::unlimited();
    let github = Arc::new(GithubClient::new(config).unwrap());
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&format!("sqlite://{}", dir.path().join("l.db").display()))
        .await
        .unwrap();
    let runtime = Runtime::new(
        store.clone(),
        github,
        RuntimeOptions {
            backoff_base: Duration::from_millis(5),
            backoff_max: Duration::from_millis(20),
            lease: Duration::from_secs(5),
            ..RuntimeOptions::default()
        },
    );
    let open = OpenCase {
        case_id: "LS-RT-1".parse().unwrap(),
        workflow: Workflow::parse("fixture.toml", WORKFLOW).unwrap(),
        scope: Default::default(),
        vulnerability: Vulnerability {
            summary: "Host header not validated".into(),
            description: "DNS rebinding against local servers.".into(),
            rating: Rating::Severity(Severity::High),
            cwes: ["CWE-350".parse().unwrap()].into(),
            credits: vec!["finder1:finder".parse().unwrap()],
        },
        embargo_until: None,
    };
    let alice = Principal::user("alice".parse().unwrap());
    let case = store.open_case(&alice, open).await.unwrap().case.id;
    World {
        sim,
        _running: running,
        store,
        runtime,
        case,
        _dir: dir,
    }
}

impl World {
    async fn command(&self, login: &str, command: Command) {
        let who = Principal::user(login.parse().unwrap());
        self.store
            .handle(&self.case, &who, Input::Command(command))
            .await
            .unwrap();
    }

    /// Runs the runtime until nothing is due, including retries scheduled a little later.
    async fn settle(&self) {
        for _ in 0..200 {
            self.runtime.run_once().await.unwrap();
            let pending = self.store.outbox(None).await.unwrap().into_iter().any(|e| {
                !matches!(
                    e.state,
                    lockstep_store::OutboxState::Done
                        | lockstep_store::OutboxState::Failed
                        | lockstep_store::OutboxState::Held
                )
            });
            if !pending {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("the runtime did not settle");
    }

    fn publishes(&self) -> Vec<String> {
        self.sim
            .ledger()
            .iter()
            .filter(|e| e.is_publish() && e.applied)
            .filter_map(|e| e.repo.clone())
            .collect()
    }
}

fn released(repo: &str, package: &str) -> Command {
    Command::MarkFix {
        repo: r(repo),
        stage: FixStage::Released,
        packages: vec![PackageFix {
            package: package.into(),
            vulnerable_range: Some("< 2.0.1".into()),
            patched_versions: "2.0.1".into(),
        }],
    }
}

async fn journey(w: &World) {
    w.settle().await;
    // Drafts exist, linked to each other; nothing is public, and no CVE is requested before a
    // repository is assessed affected.
    for repo in ["org/core", "org/extra", "org/plugin"] {
        let advisories = w.sim.advisories(repo).unwrap();
        assert_eq!(advisories.len(), 1, "{repo}: exactly one advisory");
        let description = advisories[0]["description"].as_str().unwrap();
        assert_eq!(
            description.matches("/security/advisories/GHSA-").count(),
            2,
            "{repo}: {description}"
        );
        assert_eq!(advisories[0]["state"], "draft");
        let collaborators: Vec<&str> = advisories[0]["collaborating_users"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|u| u["login"].as_str())
            .collect();
        assert!(
            collaborators.contains(&"alice"),
            "{repo}: the coordinator is a collaborator"
        );
    }

    w.settle().await;
    let case = w.store.case(&w.case).await.unwrap();
    assert!(case.scope().all(|(_, p)| !p.advisory.cve_requested));
    // The preflight warns that the finder has not accepted the credit yet.
    assert!(
        case.preflight()
            .iter()
            .any(|f| !f.blocker && f.text.contains("finder1")),
        "{:?}",
        case.preflight()
    );

    w.command(
        "bob",
        Command::Assess {
            repo: r("org/core"),
            verdict: Verdict::Affected,
            reason: "yes".into(),
        },
    )
    .await;
    w.command(
        "carol",
        Command::Assess {
            repo: r("org/extra"),
            verdict: Verdict::NotAffected,
            reason: "no HTTP".into(),
        },
    )
    .await;
    w.command("bob", released("org/core", "core")).await;
    w.settle().await;
    assert!(w.publishes().is_empty(), "plugin has no fix: hold");
    // GitHub's CNA assigns the CVE of the affected repository on its own; the runtime's sync
    // step observes it. None was requested for extra, which is not affected.
    w.settle().await;
    let case = w.store.case(&w.case).await.unwrap();
    assert!(case.participants[&r("org/core")].advisory.cve.is_some());
    assert!(!case.participants[&r("org/extra")].advisory.cve_requested);

    w.command("dave", released("org/plugin", "plugin")).await;
    w.settle().await;
    assert_eq!(
        w.publishes(),
        vec!["org/core".to_owned(), "org/plugin".to_owned()],
        "core's wave, then plugin's"
    );
    let case = w.store.case(&w.case).await.unwrap();
    assert_eq!(
        case.participants[&r("org/core")].advisory.state,
        model::RemoteState::Published
    );
    assert_eq!(
        case.participants[&r("org/plugin")].advisory.state,
        model::RemoteState::Published
    );
    assert_eq!(
        case.participants[&r("org/extra")].advisory.state,
        model::RemoteState::Closed
    );
    let plugin = &w.sim.advisories("org/plugin").unwrap()[0];
    assert_eq!(plugin["vulnerabilities"][0]["patched_versions"], "2.0.1");
    assert!(
        !plugin["description"].as_str().unwrap().contains(
            case.participants[&r("org/extra")]
                .advisory
                .ghsa
                .as_ref()
                .unwrap()
                .as_str()
        ),
        "the published text links no closed sibling"
    );
    w.store.verify(None).await.unwrap();
}

#[tokio::test]
async fn a_case_runs_from_drafts_to_release() {
    let mut w = world(FaultConfig::default()).await;
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = seen.clone();
    w.runtime = w
        .runtime
        .clone()
        .with_progress(Arc::new(move |p: &ReleaseProgress| {
            sink.lock().unwrap().push((p.published, p.total));
        }));
    journey(&w).await;
    // The progress display saw each wave go out and each publication land: core's wave,
    // then plugin's, of the two advisories the release publishes.
    assert_eq!(*seen.lock().unwrap(), vec![(0, 2), (1, 2), (1, 2), (2, 2)]);
    let creations = w
        .sim
        .ledger()
        .iter()
        .filter(|e| e.is_creation() && e.applied)
        .count();
    assert_eq!(creations, 3);
}

#[tokio::test]
async fn faults_do_not_duplicate_or_publish_early() {
    let faults = FaultConfig {
        error_5xx: 0.2,
        reset_after_apply: 0.3,
        ..FaultConfig::default()
    };
    let w = world(faults).await;
    journey(&w).await;
    for repo in ["org/core", "org/extra", "org/plugin"] {
        assert_eq!(
            w.sim.advisories(repo).unwrap().len(),
            1,
            "{repo}: one advisory despite retries"
        );
    }
    let ledger = w.sim.ledger();
    let resets = ledger
        .iter()
        .filter(|e| e.fault.is_some() && e.applied && e.write)
        .count();
    let errors = ledger
        .iter()
        .filter(|e| e.fault.is_some() && !e.applied)
        .count();
    assert!(
        resets > 0 && errors > 0,
        "faults fired: {resets} resets after apply, {errors} 5xx"
    );
}

#[tokio::test]
async fn leases_stay_alive_while_effects_wait_in_the_pacer() {
    let w = world(FaultConfig::default()).await;
    let base = ApiBase::parse(&w._running.base_url, &["127.0.0.1".to_owned()]).unwrap();
    let mut config = GithubConfig::new(base, Credentials::Token("tok-bot".to_owned().into()));
    config.pacing = PacingConfig {
        min_spacing: Duration::from_millis(600),
        ..PacingConfig::unlimited()
    };
    let slow = Runtime::new(
        w.store.clone(),
        Arc::new(GithubClient::new(config).unwrap()),
        RuntimeOptions {
            worker: "slow".into(),
            lease: Duration::from_millis(300),
            ..RuntimeOptions::default()
        },
    );
    let running = tokio::spawn({
        let slow = slow.clone();
        async move { slow.run_once().await }
    });
    // The first two drafts are claimed together; the second waits 600 ms for its slot in the
    // pacer, twice its lease. Its lease is renewed meanwhile: no other worker can take it.
    tokio::time::sleep(Duration::from_millis(450)).await;
    let taken = w
        .store
        .claim("other", Duration::from_secs(30), 10)
        .await
        .unwrap();
    assert!(
        taken.iter().all(|c| c.effect.action.name() != "open-draft"),
        "another worker took a draft that was waiting in the pacer: {:?}",
        taken.iter().map(|c| &c.effect.key).collect::<Vec<_>>()
    );
    let report = running.await.unwrap().unwrap();
    assert_eq!(report.stale, 0, "{report:?}");
    for repo in ["org/core", "org/extra", "org/plugin"] {
        assert_eq!(w.sim.advisories(repo).unwrap().len(), 1, "{repo}");
    }
}

#[tokio::test]
async fn serve_notices_commits_from_another_process() {
    let w = world(FaultConfig::default()).await;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn({
        let rt = w.runtime.clone();
        async move {
            rt.serve(async {
                let _ = stopped.await;
            })
            .await
        }
    });
    // serve does the first case's drafts, then sleeps (its idle timer is minutes away).
    let drafts = |n: usize| {
        ["org/core", "org/extra", "org/plugin"]
            .iter()
            .all(|r| w.sim.advisories(r).unwrap().len() == n)
    };
    for _ in 0..100 {
        if drafts(1) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(drafts(1));
    // Let its pass finish (links, CVE requests, reading GitHub back) so that it sleeps.
    for _ in 0..100 {
        let busy = w
            .store
            .outbox(None)
            .await
            .unwrap()
            .into_iter()
            .any(|e| !matches!(e.state, lockstep_store::OutboxState::Done));
        if !busy {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = w.sim.ledger().len();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(w.sim.ledger().len(), before, "serve is idle");
    // Another process (its own pool on the same file, like a CLI command) opens a second case.
    let other = Store::open(&format!(
        "sqlite://{}",
        w._dir.path().join("l.db").display()
    ))
    .await
    .unwrap();
    let mut open = other.case(&w.case).await.unwrap();
    let opening = OpenCase {
        case_id: "LS-RT-2".parse().unwrap(),
        workflow: open.workflow.clone(),
        scope: Default::default(),
        vulnerability: std::mem::replace(
            &mut open.vulnerability,
            Vulnerability {
                summary: String::new(),
                description: String::new(),
                rating: Rating::Severity(Severity::Low),
                cwes: Default::default(),
                credits: Vec::new(),
            },
        ),
        embargo_until: None,
    };
    let alice = Principal::user("alice".parse().unwrap());
    other.open_case(&alice, opening).await.unwrap();
    // No wake() call: serve must notice the commit itself, well before any timer.
    let started = std::time::Instant::now();
    while !drafts(2) {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "serve did not notice another process's commit"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = stop.send(());
    serving.await.unwrap().unwrap();
}

/// The preflight tests' assessments: core and plugin affected, extra not.
async fn assess_two_affected(w: &World) {
    for (login, repo) in [("bob", "org/core"), ("dave", "org/plugin")] {
        w.command(
            login,
            Command::Assess {
                repo: r(repo),
                verdict: Verdict::Affected,
                reason: "yes".into(),
            },
        )
        .await;
    }
    w.command(
        "carol",
        Command::Assess {
            repo: r("org/extra"),
            verdict: Verdict::NotAffected,
            reason: "no HTTP".into(),
        },
    )
    .await;
}

#[tokio::test]
async fn a_preflight_blocker_holds_the_whole_wave_until_it_clears() {
    let w = world(FaultConfig::default()).await;
    w.settle().await;
    assess_two_affected(&w).await;
    w.settle().await;
    // Lockstep's identity loses admin on plugin: GitHub would refuse its publication.
    w.sim
        .grant("org/plugin", "lockstep-bot", Permission::Write)
        .unwrap();
    w.settle().await;
    let case = w.store.case(&w.case).await.unwrap();
    let blockers: Vec<_> = case.preflight().into_iter().filter(|f| f.blocker).collect();
    assert_eq!(blockers.len(), 1, "{blockers:?}");
    assert_eq!(blockers[0].repo, r("org/plugin"));
    assert!(
        blockers[0].text.contains("publishing needs admin"),
        "{blockers:?}"
    );
    // Every fix released: the gate opens and nothing publishes, not even core.
    w.command("bob", released("org/core", "core")).await;
    w.command("dave", released("org/plugin", "plugin")).await;
    w.settle().await;
    assert!(w.publishes().is_empty(), "the whole wave holds");
    // Admin again: the next preflight clears the blocker and the wave goes out.
    w.sim
        .grant("org/plugin", "lockstep-bot", Permission::Admin)
        .unwrap();
    w.settle().await;
    w.settle().await;
    assert_eq!(
        w.publishes(),
        vec!["org/core".to_owned(), "org/plugin".to_owned()]
    );
}

#[tokio::test]
async fn an_incomplete_draft_holds_the_whole_wave_until_it_is_complete() {
    let w = world(FaultConfig::default()).await;
    w.settle().await;
    assess_two_affected(&w).await;
    w.settle().await;
    // A maintainer strips plugin's draft of its affected products in GitHub's UI: GitHub
    // would refuse its publication, after core's had gone out.
    let ghsa = w.sim.advisories("org/plugin").unwrap()[0]["ghsa_id"]
        .as_str()
        .unwrap()
        .to_owned();
    w.sim
        .update_as(
            "lockstep-bot",
            "org/plugin",
            &ghsa,
            &serde_json::json!({"vulnerabilities": []}),
        )
        .unwrap();
    w.settle().await;
    let case = w.store.case(&w.case).await.unwrap();
    let blockers: Vec<_> = case.preflight().into_iter().filter(|f| f.blocker).collect();
    assert_eq!(blockers.len(), 1, "{blockers:?}");
    assert_eq!(blockers[0].repo, r("org/plugin"));
    assert!(blockers[0].text.contains("lacks package"), "{blockers:?}");
    // Every fix released: the gate opens and nothing publishes, not even core.
    w.command("bob", released("org/core", "core")).await;
    w.command("dave", released("org/plugin", "plugin")).await;
    w.settle().await;
    w.settle().await;
    assert!(w.publishes().is_empty(), "the whole wave holds");
    // The product is back: the next preflight clears the blocker and the wave goes out.
    w.sim
        .update_as(
            "lockstep-bot",
            "org/plugin",
            &ghsa,
            &serde_json::json!({"vulnerabilities": [
                {"package": {"ecosystem": "pip", "name": "plugin"}}
            ]}),
        )
        .unwrap();
    w.settle().await;
    w.settle().await;
    assert_eq!(
        w.publishes(),
        vec!["org/core".to_owned(), "org/plugin".to_owned()]
    );
}

#[tokio::test]
async fn unmerged_pull_requests_in_the_private_fork_hold_the_whole_wave_until_merged() {
    let w = world(FaultConfig::default()).await;
    w.sim.set_fork_delay(Duration::ZERO);
    w.settle().await;
    assess_two_affected(&w).await;
    // A maintainer works on plugin's fix in the advisory's temporary private fork.
    let ghsa = w.sim.advisories("org/plugin").unwrap()[0]["ghsa_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let forked = w.sim.fork_as("lockstep-bot", "org/plugin", &ghsa).unwrap();
    let fork = forked["full_name"].as_str().unwrap().to_owned();
    let pull = w
        .sim
        .open_fork_pull(&fork, "Validate the Host header")
        .unwrap();
    w.settle().await;
    w.settle().await;
    let case = w.store.case(&w.case).await.unwrap();
    let blockers: Vec<_> = case.preflight().into_iter().filter(|f| f.blocker).collect();
    assert_eq!(blockers.len(), 1, "{blockers:?}");
    assert_eq!(blockers[0].repo, r("org/plugin"));
    assert!(
        blockers[0].text.contains("1 unmerged pull request"),
        "{blockers:?}"
    );
    // Every fix released: the gate opens and nothing publishes, not even core.
    w.command("bob", released("org/core", "core")).await;
    w.command("dave", released("org/plugin", "plugin")).await;
    w.settle().await;
    w.settle().await;
    assert!(w.publishes().is_empty(), "the whole wave holds");
    // Merged: the next preflight clears the blocker and the wave goes out.
    w.sim.merge_fork_pull(&fork, pull).unwrap();
    w.settle().await;
    w.settle().await;
    assert_eq!(
        w.publishes(),
        vec!["org/core".to_owned(), "org/plugin".to_owned()]
    );
}
