//! `lockstep`: the command-line entry point.
//!
//! Errors are one line on stderr. Exit codes: 0 success, 1 failure, 2 usage error, 3 refused
//! (not authorised).
#![forbid(unsafe_code)]

mod amend;
mod client;
mod commands;
mod config;
mod demo;
mod demo_web;
mod export;
mod logging;
mod output;
mod progress;
mod propagation;
mod report;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use clap::{CommandFactory, Parser, Subcommand};
use lockstep_core::Workflow;

#[derive(Parser)]
#[command(
    name = "lockstep",
    version,
    about = "Coordinated vulnerability disclosure across repositories: linked draft advisories, one embargo, one release."
)]
struct Cli {
    /// Settings file, which must exist (default: lockstep.toml, where present); the
    /// environment overrides it.
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    /// A shared `lockstep serve` to send the case commands to, over its HTTP API (default:
    /// LOCKSTEP_SERVER_URL, else `server_url` in lockstep.toml; none: the local database).
    #[arg(long, global = true, value_name = "URL")]
    server: Option<String>,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Cases: open, list, show, close.
    Case {
        #[command(subcommand)]
        command: commands::CaseCmd,
    },
    /// Private vulnerability reports awaiting triage: list, show, reject, merge (open a case
    /// from one with `case open --from-report`).
    Report {
        #[command(subcommand)]
        command: report::ReportCmd,
    },
    /// Records an assessment of one repository.
    Assess(commands::AssessArgs),
    /// Marks a repository's fix released, with its versions.
    FixReady(commands::FixArgs),
    /// The repositories in a case: add one late (a late vendor), or remove one.
    Scope {
        #[command(subcommand)]
        command: commands::ScopeCmd,
    },
    /// Records that the vulnerability or an exploit is public, or that attacks are observed.
    Threat(commands::ThreatArgs),
    /// Withdraws a fix mark.
    FixRevoke {
        /// The case id.
        case: String,
        /// The repository.
        #[arg(long)]
        repo: String,
        /// Why.
        #[arg(long)]
        reason: String,
    },
    /// Puts a repository's GitHub writes that failed for good back in line, once the cause is
    /// dealt with; the next attempt reconciles with GitHub before it writes.
    Retry {
        /// The case id.
        case: String,
        /// The repository.
        #[arg(long)]
        repo: String,
        /// What was done about the failure.
        #[arg(long)]
        reason: String,
    },
    /// Sets or extends the embargo (coordinators; this grants a pending request).
    /// `embargo request` asks the coordinators for more time; `embargo decline` declines.
    Embargo(commands::EmbargoArgs),
    /// Ends the embargo at once: publishes every advisory whose fix is released.
    DiscloseNow {
        /// The case id.
        case: String,
        /// Why (a leak, exploitation observed…).
        #[arg(long)]
        reason: String,
    },
    /// Shows what holds the case and the waves that would run.
    Plan {
        /// The case id.
        case: String,
        /// Machine output.
        #[arg(long)]
        json: bool,
    },
    /// Changes a published advisory's packages: a fix found incomplete.
    Amend(amend::AmendArgs),
    /// Exports a case as OSV records, a CSAF 2.0 VEX document or CVE JSON 5 records.
    Export(export::ExportArgs),
    /// The audit trail.
    Audit {
        #[command(subcommand)]
        command: commands::AuditCmd,
    },
    /// Runs a whole disclosure journey through the ten-SDK MCP workflow and prints its timeline;
    /// with `--web`, serves the dashboard on a simulated case to click through instead.
    Demo {
        /// Serve the web dashboard (with the simulator's sign-in) on a seeded case until Ctrl-C.
        #[arg(long)]
        web: bool,
        /// Where the dashboard listens with `--web` (a free port if this one is taken).
        #[arg(long, default_value = "127.0.0.1:8080", requires = "web")]
        listen: SocketAddr,
    },
    /// Does all due work (deadlines, GitHub effects), then returns.
    Run {
        /// Return once nothing more is due now.
        #[arg(long, required = true)]
        once: bool,
    },
    /// The long-running service: executes effects and fires deadlines as they fall due.
    Serve {
        /// Address for the HTTP endpoints; port 0 picks a free port and logs it. Default:
        /// LOCKSTEP_LISTEN, else 127.0.0.1:8080.
        #[arg(long)]
        listen: Option<SocketAddr>,
    },
    /// The GitHub advisory simulator.
    Sim {
        #[command(subcommand)]
        command: SimCmd,
    },
    /// Workflow files.
    Workflow {
        #[command(subcommand)]
        command: WorkflowCmd,
    },
    /// Prints shell completions.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

#[derive(Subcommand)]
enum SimCmd {
    /// Serves the simulator, seeded with the ten MCP SDK repositories and a demo GitHub App.
    Serve {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:3001")]
        listen: SocketAddr,
        /// The URL clients reach the simulator at, for `url` fields and `Link` headers
        /// (default: http://LISTEN-ADDRESS).
        #[arg(long, value_name = "URL")]
        public_url: Option<String>,
        /// Require this value in `x-sim-admin-token` on the `/_sim/*` admin routes.
        #[arg(long, env = "LOCKSTEP_SIM_ADMIN_TOKEN", hide_env_values = true)]
        admin_token: Option<String>,
    },
}

#[derive(Subcommand)]
enum WorkflowCmd {
    /// Parses and validates workflow files; errors name file, line and column.
    Check {
        /// The files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => {
            // Help and version go to stdout with 0.
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("{}", usage_error_line(&e));
            return ExitCode::from(2);
        }
    };
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", one_line(&e));
            if e.downcast_ref::<commands::Refused>().is_some() {
                ExitCode::from(commands::EXIT_REFUSED)
            } else {
                ExitCode::from(1)
            }
        }
    }
}

/// An error as one line: its chain joined with ": ", leaving out a cause that the line says
/// already (many errors print their source in their own message), newlines flattened.
fn one_line(e: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if line.contains(text.as_str()) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line.replace('\n', " ")
}

/// A usage error as one line: clap's message without its usage block or its pointer to
/// `--help`, its lines joined; a missing subcommand names the subcommands there are.
fn usage_error_line(e: &clap::Error) -> String {
    let text = e.render().to_string();
    if e.kind() == clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
        let names: Vec<&str> = text
            .lines()
            .skip_while(|l| !l.starts_with("Commands:"))
            .skip(1)
            .take_while(|l| l.starts_with("  "))
            .filter_map(|l| l.split_whitespace().next())
            .filter(|name| *name != "help")
            .collect();
        return format!(
            "error: a subcommand is required: {} (see --help)",
            names.join(", ")
        );
    }
    let message = text.split("\n\nUsage:").next().unwrap_or_default();
    let message = message.replace("For more information, try '--help'.", "");
    let words: Vec<&str> = message.split_whitespace().collect();
    format!("{} (see --help)", words.join(" "))
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

async fn shutdown_signal() {
    let _ = tokio::signal::ctrl_c().await;
}

async fn open_runtime(settings: &config::Settings) -> anyhow::Result<lockstep_runtime::Runtime> {
    let store = lockstep_store::Store::open(&settings.database_url).await?;
    let github = Arc::new(lockstep_github::GithubClient::new(settings.github()?)?);
    let rt = lockstep_runtime::Runtime::new(store, github, Default::default())
        .with_intake(settings.intake()?);
    Ok(match progress::observer() {
        Some(observer) => rt.with_progress(observer),
        None => rt,
    })
}

/// Runs a case command through the API: over HTTP to the server named by `--server`,
/// `LOCKSTEP_SERVER_URL` or `server_url` (no database is opened), else in-process over the
/// local database.
fn with_client<F, Fut>(config: &std::path::Path, server: Option<&str>, f: F) -> anyhow::Result<()>
where
    F: FnOnce(client::Client) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    logging::init_client();
    let settings = config::Settings::load(config)?;
    let server = server
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .or_else(|| settings.server_url());
    runtime()?.block_on(async {
        let client = match server {
            Some(url) => client::Client::remote(url, &settings)?,
            None => client::Client::local(&settings).await?,
        };
        f(client).await
    })
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let config = match &cli.config {
        Some(file) if !file.exists() => {
            anyhow::bail!("{}: cannot read: no such file", file.display())
        }
        Some(file) => file.as_path(),
        None => std::path::Path::new("lockstep.toml"),
    };
    let server = cli.server.as_deref();
    match cli.command {
        Cmd::Case { command } => with_client(config, server, |c| async move {
            commands::case(&c, command).await
        }),
        Cmd::Report { command } => {
            with_client(
                config,
                server,
                |c| async move { report::run(&c, command).await },
            )
        }
        Cmd::Assess(a) => with_client(
            config,
            server,
            |c| async move { commands::assess(&c, a).await },
        ),
        Cmd::FixReady(a) => with_client(config, server, |c| async move {
            commands::fix_ready(&c, a).await
        }),
        Cmd::Scope { command } => with_client(config, server, |c| async move {
            commands::scope(&c, command).await
        }),
        Cmd::Threat(a) => with_client(
            config,
            server,
            |c| async move { commands::threat(&c, a).await },
        ),
        Cmd::FixRevoke { case, repo, reason } => with_client(config, server, |c| async move {
            commands::fix_revoke(&c, &case, repo, reason).await
        }),
        Cmd::Retry { case, repo, reason } => with_client(config, server, |c| async move {
            commands::retry(&c, &case, repo, reason).await
        }),
        Cmd::Embargo(a) => {
            with_client(
                config,
                server,
                |c| async move { commands::embargo(&c, a).await },
            )
        }
        Cmd::DiscloseNow { case, reason } => with_client(config, server, |c| async move {
            commands::disclose_now(&c, &case, reason).await
        }),
        Cmd::Plan { case, json } => with_client(config, server, |c| async move {
            commands::plan(&c, &case, json).await
        }),
        Cmd::Amend(a) => with_client(config, server, |c| async move { amend::run(&c, a).await }),
        Cmd::Export(a) => with_client(config, server, |c| async move { export::run(&c, a).await }),
        Cmd::Audit { command } => {
            let settings = config::Settings::load(config)?;
            runtime()?.block_on(async {
                // Read-only: never creates, migrates or writes the database it audits.
                let store = lockstep_store::Store::open_read_only(&settings.database_url).await?;
                commands::audit(&store, command).await
            })
        }
        Cmd::Demo { web: false, .. } => demo::run(),
        Cmd::Demo { web: true, listen } => demo_web::run(listen),
        Cmd::Run { once: _ } => {
            logging::init();
            let settings = config::Settings::load(config)?;
            runtime()?.block_on(async {
                let rt = open_runtime(&settings).await?;
                let report = rt.run_once().await?;
                println!(
                    "executed {} effects ({} succeeded, {} to retry, {} failed); {} deadlines fired",
                    report.executed, report.succeeded, report.retrying, report.failed, report.ticks
                );
                // Loud until a person deals with it: any failure waiting for a person, from this
                // pass or an earlier one, makes the exit code 1.
                let waiting = rt.needing_a_person().await?;
                if let Some(first) = waiting.first() {
                    anyhow::bail!(
                        "{} effect(s) failed and need a person, first {} {}: {} ({}); see `lockstep case show {}`, then `lockstep retry`",
                        waiting.len(), first.case, first.repo, first.key, first.error, first.case
                    );
                }
                Ok(())
            })
        }
        Cmd::Serve { listen } => {
            logging::init();
            let settings = config::Settings::load(config)?;
            #[cfg(feature = "failpoints")]
            let _scenario = fail::FailScenario::setup();
            runtime()?.block_on(async {
                let store = lockstep_store::Store::open(&settings.database_url).await?;
                let config = settings.github()?;
                let github = Arc::new(lockstep_github::GithubClient::new(config.clone())?);
                let mut rt = lockstep_runtime::Runtime::new(store.clone(), github.clone(), settings.runtime_options()?)
                    .with_intake(settings.intake()?);
                if let Some(observer) = progress::observer() {
                    rt = rt.with_progress(observer);
                }
                if settings.webhook_secret.is_none() {
                    tracing::warn!("LOCKSTEP_WEBHOOK_SECRET is not set: the webhook endpoint refuses every delivery");
                }
                let state = lockstep_server::AppState::new(store, github, config)
                    .with_webhook_secret(settings.webhook_secret.clone())
                    .with_runtime(rt.clone())
                    .with_workflows_dir(settings.workflows_dir.clone())
                    .with_inline_workflows(settings.inline_workflows()?)
                    .with_web(lockstep_server::web::WebConfig::from_env().map_err(anyhow::Error::msg)?);
                let listen = match listen {
                    Some(addr) => addr,
                    None => settings.listen()?,
                };
                let listener = tokio::net::TcpListener::bind(listen)
                    .await
                    .with_context(|| format!("cannot listen on {listen}"))?;
                tracing::info!(addr = %listener.local_addr()?, "listening");
                let app = lockstep_server::router(state);
                let http = tokio::spawn(async move { axum::serve(listener, app).await });
                let result = rt.serve(shutdown_signal()).await;
                http.abort();
                Ok(result?)
            })
        }
        Cmd::Sim {
            command:
                SimCmd::Serve {
                    listen,
                    public_url,
                    admin_token,
                },
        } => {
            logging::init();
            let config = lockstep_sim::ServeConfig {
                listen,
                public_url,
                admin_token,
            };
            config.sim_config().map_err(anyhow::Error::msg)?;
            // serve_with logs the address once it is bound.
            runtime()?.block_on(async { Ok(lockstep_sim::serve_with(config).await?) })
        }
        Cmd::Workflow {
            command: WorkflowCmd::Check { files },
        } => {
            for file in files {
                let name = file.display().to_string();
                let text = std::fs::read_to_string(&file)
                    .map_err(|e| anyhow::anyhow!("{name}: cannot read: {e}"))?;
                let w = Workflow::parse(&name, &text)?;
                println!(
                    "{name}: ok: workflow {:?}, {} repositories, {} coordinators",
                    w.name,
                    w.repos.len(),
                    w.coordinators.len()
                );
            }
            Ok(())
        }
        Cmd::Completions { shell } => {
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "lockstep",
                &mut std::io::stdout(),
            );
            Ok(())
        }
    }
}
