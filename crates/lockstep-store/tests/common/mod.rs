//! Test databases for both backends, fixtures, and a driver that plays GitHub's part.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use lockstep_core::effect::Action;
use lockstep_core::input::{FixStage, Outcome, Verdict};
use lockstep_core::vuln::{PackageFix, Rating, Severity, Vulnerability};
use lockstep_core::*;
use lockstep_store::{EffectResult, Store};
use sqlx::Connection as _;

pub const WORKFLOW: &str = r#"
name = "fixture"
coordinators = ["alice"]

[embargo]
default_days = 30
max_days = 60
deadline_policy = "hold-all"

[[repo]]
name = "org/core"
ecosystem = "npm"
packages = ["core", "core-extras"]
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
publish_after = ["org/core"]
"#;

pub const POSTGRES_ENV: &str = "LOCKSTEP_TEST_POSTGRES_URL";

/// `conformance!(a, b, …)`: each scenario `async fn a(db: &TestDb)` as a test on SQLite, and
/// on PostgreSQL when [`POSTGRES_ENV`] names a server (skipped, saying so, without it).
macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    let db = super::TestDb::sqlite().await;
                    super::$name(&db).await;
                    db.cleanup().await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    let Some(db) = super::TestDb::postgres().await else {
                        eprintln!("skipped: set {} to run the PostgreSQL suite", super::POSTGRES_ENV);
                        return;
                    };
                    super::$name(&db).await;
                    db.cleanup().await;
                }
            )*
        }
    };
}

pub enum Kind {
    Sqlite {
        dir: tempfile::TempDir,
        path: std::path::PathBuf,
    },
    Postgres {
        admin: String,
        name: String,
    },
}

/// A fresh, migrated store and a way to reach its database directly (to tamper with it).
pub struct TestDb {
    pub store: Store,
    pub url: String,
    pub kind: Kind,
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

impl TestDb {
    pub async fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lockstep.db");
        let url = format!("sqlite://{}", path.display());
        let store = Store::open(&url).await.unwrap();
        TestDb {
            store,
            url,
            kind: Kind::Sqlite { dir, path },
        }
    }

    /// A fresh database on the server named by `LOCKSTEP_TEST_POSTGRES_URL`, or `None`.
    pub async fn postgres() -> Option<TestDb> {
        let admin = std::env::var(POSTGRES_ENV).ok().filter(|u| !u.is_empty())?;
        let name = format!(
            "lockstep_test_{}_{}_{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst),
            rand::random::<u32>()
        );
        let mut conn = sqlx::PgConnection::connect(&admin).await.unwrap();
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
            .execute(&mut conn)
            .await
            .unwrap();
        conn.close().await.unwrap();
        let url = with_database(&admin, &name);
        let store = Store::open(&url).await.unwrap();
        Some(TestDb {
            store,
            url,
            kind: Kind::Postgres { admin, name },
        })
    }

    pub fn is_postgres(&self) -> bool {
        matches!(self.kind, Kind::Postgres { .. })
    }

    pub async fn cleanup(self) {
        self.store.close().await;
        if let Kind::Postgres { admin, name } = &self.kind {
            let mut conn = sqlx::PgConnection::connect(admin).await.unwrap();
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
            )))
            .execute(&mut conn)
            .await
            .unwrap();
        }
    }

    /// Runs raw SQL (with text/integer binds) on a separate connection.
    pub async fn exec(&self, sql: &str, binds: &[Bind]) -> u64 {
        match &self.kind {
            Kind::Sqlite { .. } => {
                let mut conn = sqlx::SqliteConnection::connect(&self.url).await.unwrap();
                let mut q = sqlx::query::<sqlx::Sqlite>(sqlx::AssertSqlSafe(sql.to_owned()));
                for b in binds {
                    q = match b {
                        Bind::Text(s) => q.bind(s.clone()),
                        Bind::Int(i) => q.bind(*i),
                    };
                }
                let n = q.execute(&mut conn).await.unwrap().rows_affected();
                conn.close().await.unwrap();
                n
            }
            Kind::Postgres { .. } => {
                let mut conn = sqlx::PgConnection::connect(&self.url).await.unwrap();
                let mut q = sqlx::query::<sqlx::Postgres>(sqlx::AssertSqlSafe(sql.to_owned()));
                for b in binds {
                    q = match b {
                        Bind::Text(s) => q.bind(s.clone()),
                        Bind::Int(i) => q.bind(*i),
                    };
                }
                let n = q.execute(&mut conn).await.unwrap().rows_affected();
                conn.close().await.unwrap();
                n
            }
        }
    }

    /// Runs several statements at once (no binds).
    pub async fn exec_many(&self, sql: &str) {
        use sqlx::Executor as _;
        match &self.kind {
            Kind::Sqlite { .. } => {
                let mut conn = sqlx::SqliteConnection::connect(&self.url).await.unwrap();
                conn.execute(sqlx::AssertSqlSafe(sql.to_owned()))
                    .await
                    .unwrap();
                conn.close().await.unwrap();
            }
            Kind::Postgres { .. } => {
                let mut conn = sqlx::PgConnection::connect(&self.url).await.unwrap();
                conn.execute(sqlx::AssertSqlSafe(sql.to_owned()))
                    .await
                    .unwrap();
                conn.close().await.unwrap();
            }
        }
    }

    /// One text column of one row.
    pub async fn text(&self, sql: &str, binds: &[Bind]) -> String {
        match &self.kind {
            Kind::Sqlite { .. } => {
                let mut conn = sqlx::SqliteConnection::connect(&self.url).await.unwrap();
                let mut q =
                    sqlx::query_scalar::<sqlx::Sqlite, String>(sqlx::AssertSqlSafe(sql.to_owned()));
                for b in binds {
                    q = match b {
                        Bind::Text(s) => q.bind(s.clone()),
                        Bind::Int(i) => q.bind(*i),
                    };
                }
                q.fetch_one(&mut conn).await.unwrap()
            }
            Kind::Postgres { .. } => {
                let mut conn = sqlx::PgConnection::connect(&self.url).await.unwrap();
                let mut q = sqlx::query_scalar::<sqlx::Postgres, String>(sqlx::AssertSqlSafe(
                    sql.to_owned(),
                ));
                for b in binds {
                    q = match b {
                        Bind::Text(s) => q.bind(s.clone()),
                        Bind::Int(i) => q.bind(*i),
                    };
                }
                q.fetch_one(&mut conn).await.unwrap()
            }
        }
    }

    /// Removes the append-only triggers, as an attacker with database access would.
    pub async fn drop_guards(&self) {
        match &self.kind {
            Kind::Sqlite { .. } => {
                self.exec_many(
                    "DROP TRIGGER events_no_update; DROP TRIGGER events_no_delete; DROP TRIGGER audit_no_update; DROP TRIGGER audit_no_delete;",
                )
                .await
            }
            Kind::Postgres { .. } => {
                self.exec_many("ALTER TABLE events DISABLE TRIGGER USER; ALTER TABLE audit DISABLE TRIGGER USER;")
                    .await
            }
        }
    }
}

pub enum Bind {
    Text(String),
    Int(i64),
}

pub fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let base = match base[scheme_end..].find('/') {
        Some(i) => &base[..scheme_end + i],
        None => base,
    };
    match query {
        Some(q) => format!("{base}/{name}?{q}"),
        None => format!("{base}/{name}"),
    }
}

pub fn r(s: &str) -> RepoId {
    s.parse().unwrap()
}

pub fn user(login: &str) -> Principal {
    Principal::user(login.parse().unwrap())
}

pub fn vulnerability() -> Vulnerability {
    Vulnerability {
        summary: "DNS rebinding in the HTTP transport".into(),
        description: "Servers do not validate the Host header.".into(),
        rating: Rating::Severity(Severity::High),
        cwes: std::collections::BTreeSet::from(["CWE-350".parse().unwrap()]),
        credits: vec!["finder1:finder".parse().unwrap()],
    }
}

pub fn open_case(id: &str) -> OpenCase {
    OpenCase {
        case_id: id.parse().unwrap(),
        workflow: Workflow::parse("fixture.toml", WORKFLOW).unwrap(),
        scope: Default::default(),
        vulnerability: vulnerability(),
        embargo_until: None,
    }
}

pub fn cid(s: &str) -> CaseId {
    s.parse().unwrap()
}

pub fn fix(package: &str, patched: &str) -> PackageFix {
    PackageFix {
        package: package.into(),
        vulnerable_range: Some(format!("< {patched}")),
        patched_versions: patched.into(),
    }
}

pub fn assess(repo: &str, verdict: Verdict, reason: &str) -> Input {
    Input::Command(Command::Assess {
        repo: r(repo),
        verdict,
        reason: reason.into(),
    })
}

pub fn released(repo: &str, package: &str) -> Input {
    Input::Command(Command::MarkFix {
        repo: r(repo),
        stage: FixStage::Released,
        packages: vec![fix(package, "2.0.1")],
    })
}

pub fn ghsa_for(repo: &RepoId) -> GhsaId {
    let n = repo.name().len() as u32 + repo.name().bytes().map(u32::from).sum::<u32>();
    format!(
        "GHSA-{:04x}-{:04x}-{:04x}",
        n,
        n * 7 % 65536,
        n * 13 % 65536
    )
    .parse()
    .unwrap()
}

pub fn success_for(e: &Effect) -> Outcome {
    match &e.action {
        Action::OpenDraft { .. } => Outcome::DraftOpened {
            ghsa: ghsa_for(&e.repo),
        },
        Action::LinkSiblings { .. } => Outcome::SiblingsLinked,
        Action::AddCollaborators { .. } => Outcome::CollaboratorsAdded,
        Action::RequestCve { .. } => Outcome::CveRequested,
        Action::Publish { .. } => Outcome::Published,
        Action::CloseDraft { .. } => Outcome::DraftClosed,
        Action::AmendAdvisory { .. } => Outcome::Amended,
        Action::AdoptReport { ghsa, .. } => Outcome::DraftOpened { ghsa: ghsa.clone() },
        Action::CloseReport { .. } => Outcome::ReportClosed,
    }
}

/// Claims and completes (with success) every effect that can be claimed, until none can.
/// Returns the effects executed, in order.
pub async fn drain(store: &Store) -> Vec<Effect> {
    let mut done = Vec::new();
    loop {
        let claims = store
            .claim("driver", Duration::from_secs(60), 100)
            .await
            .unwrap();
        if claims.is_empty() {
            return done;
        }
        for c in claims {
            let outcome = success_for(&c.effect);
            store
                .complete(&c.effect.key, c.epoch, EffectResult::Succeeded(outcome))
                .await
                .unwrap();
            done.push(c.effect);
        }
    }
}
