//! Token redaction: every log line at TRACE (this crate, octocrab, hyper, tower, the
//! simulator, and `log` records bridged into tracing) during a full run of operations,
//! with a personal token and with a GitHub App, must not contain a token, the App's
//! private key, the App's JWTs, the installation tokens the simulator minted, or the
//! embargoed advisory text.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use common::*;
use lockstep_github::{AdvisoryUpdate, Attempt, FieldUpdate, GithubClient, ListQuery, WaveItem};
use lockstep_sim::InjectedFault;

#[derive(Clone, Default)]
struct Buf(Arc<Mutex<Vec<u8>>>);

impl Write for Buf {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

async fn exercise(c: &GithubClient, repo_name: &str, case: &str) {
    let r = repo(repo_name);
    let m = marker(case, repo_name);
    let d = draft("SECRET-SUMMARY-TEXT", &m);
    // (Refused for an App installation token: logged as an error path.)
    let _ = c.authenticated_user().await;
    c.repo_permission(&r, "alice").await.unwrap();
    let (a, _) = c.ensure_draft(&r, &d, &m, Attempt::Retry).await.unwrap();
    c.get_advisory(&r, &a.ghsa_id).await.unwrap();
    c.get_advisory(&r, &a.ghsa_id).await.unwrap();
    c.list_advisories(&r, &ListQuery::default()).await.unwrap();
    c.update_advisory(
        &r,
        &a.ghsa_id,
        &AdvisoryUpdate {
            description: Some(format!("EMBARGOED-DESCRIPTION-TEXT {m}")),
            collaborating_users: FieldUpdate::Set(vec!["bob".into()]),
            ..AdvisoryUpdate::default()
        },
    )
    .await
    .unwrap();
    c.request_cve(&r, &a.ghsa_id).await.unwrap();
    c.create_private_fork(&r, &a.ghsa_id).await.unwrap();
    // Error paths are logged too.
    let _ = c.get_advisory(&r, "GHSA-0000-0000-0000").await;
    let mb = marker(&format!("{case}-b"), repo_name);
    let (b, _) = c
        .create_draft(&r, &draft("SECRET-SUMMARY-TEXT", &mb), &mb, Attempt::First)
        .await
        .unwrap();
    c.close(&r, &b.ghsa_id, Attempt::Retry).await.unwrap();
    let res = c
        .publish_wave(&[WaveItem {
            repo: r.clone(),
            ghsa: a.ghsa_id.clone(),
            content: None,
            attempt: Attempt::First,
        }])
        .await;
    assert!(res[0].is_ok(), "{res:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_token_or_embargoed_text_in_trace_logs() {
    let buf = Buf::default();
    let writer = buf.clone();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_span_events(tracing_subscriber::fmt::format::FmtSpan::FULL)
        .with_writer(move || writer.clone())
        .try_init()
        .unwrap();

    let (sim, running, c) = start().await;
    // Faults make the retry and error paths log as well.
    sim.inject(InjectedFault::Error5xx, 2);
    sim.inject(InjectedFault::ResetAfterApply, 1);
    exercise(&c, REPO, "case-redact").await;

    // The App: the simulator verifies its JWTs and mints installation tokens; a recording
    // proxy in front of it collects every credential that went over the wire.
    install_app(&sim);
    sim.set_installation_token_ttl(std::time::Duration::from_secs(20));
    let px = proxy(&running).await;
    let key = app_key_pem();
    let cfg = app_config(&px.base_url);
    tracing::debug!(config = ?cfg, client = ?c, "debug impls");
    let app = GithubClient::new(cfg).unwrap();
    exercise(&app, REPO2, "case-redact-app").await;
    // Tokens that expire within the refresh margin are minted again: several JWTs and
    // several installation tokens went by.
    assert!(
        sim.installation_tokens_minted() >= 2,
        "{}",
        sim.installation_tokens_minted()
    );
    let credentials = |mint: bool| -> Vec<String> {
        px.captured()
            .iter()
            .filter(|c| c.path.ends_with("/access_tokens") == mint)
            .filter_map(|c| c.authorization.clone())
            .filter_map(|a| {
                a.strip_prefix("Bearer ")
                    .or_else(|| a.strip_prefix("token "))
                    .map(str::to_owned)
            })
            .collect()
    };
    let jwts = credentials(true);
    let tokens = credentials(false);
    assert!(jwts.len() >= 2, "{}", jwts.len());
    assert!(jwts.iter().all(|j| j.split('.').count() == 3), "App JWTs");
    assert!(!tokens.is_empty() && tokens.iter().all(|t| t.starts_with("ghs_")));

    let logs = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
    assert!(logs.lines().count() > 50, "logs were captured:\n{logs}");
    assert!(logs.contains("github request"), "our own lines");
    assert!(logs.contains("requesting"), "octocrab's tower trace lines");
    let key_body: String = key
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .take(2)
        .collect();
    let mut forbidden: Vec<String> = vec![
        ADMIN_TOKEN.into(),
        // No installation token at all, whatever its value.
        "ghs_".into(),
        key_body,
        "EMBARGOED-DESCRIPTION-TEXT".into(),
        "Embargoed details".into(),
        "SECRET-SUMMARY-TEXT".into(),
    ];
    forbidden.extend(tokens);
    for jwt in &jwts {
        forbidden.push(jwt.clone());
        // Each part on its own: the claims and the signature.
        forbidden.extend(jwt.split('.').skip(1).map(str::to_owned));
    }
    // The RS256 JWT header is the same for every App JWT: a JWT in any form shows it.
    forbidden.push(jwts[0].split('.').next().unwrap().to_owned());
    for f in forbidden {
        assert!(!logs.contains(&f), "{f:?} leaked into the logs");
    }
    if std::env::var_os("LOCKSTEP_DUMP_LOGS").is_some() {
        eprintln!("{logs}");
    }
    eprintln!("{} log lines checked", logs.lines().count());
}
