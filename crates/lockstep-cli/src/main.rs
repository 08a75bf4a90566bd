//! `lockstep`: the command-line entry point.
//!
//! Errors are one line on stderr. Exit codes: 0 success, 1 failure, 2 usage error.
#![forbid(unsafe_code)]

mod demo;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};
use lockstep_core::Workflow;

#[derive(Parser)]
#[command(
    name = "lockstep",
    version,
    about = "Coordinated vulnerability disclosure across repositories: linked draft advisories, one embargo, one release."
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Runs a whole disclosure journey through the ten-SDK MCP workflow and prints its timeline.
    Demo,
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
        Err(e) => {
            // Help and version go to stdout with 0; usage errors exit 2.
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Cmd::Demo => demo::run(),
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
