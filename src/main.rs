//! The `ringtrail` command-line tool.
//!
//! `ringtrail demo` runs the project's main job end to end: a realistic
//! multi-threaded workload through the layer into PostgreSQL, on a
//! throwaway cluster unless `--database-url` (or `DATABASE_URL`) names a
//! server.
//!
//! This file only parses the command line and dispatches; each subcommand
//! lives in its own module under `src/cli/`.

mod cli;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "ringtrail",
    version,
    about = "Zero-allocation tracing → PostgreSQL binary COPY"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a realistic workload through the layer into PostgreSQL and
    /// report throughput, drops, batches and the row count.
    Demo(cli::demo::DemoArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Demo(args) => cli::demo::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            cli::report_error(&*e);
            ExitCode::FAILURE
        }
    }
}
