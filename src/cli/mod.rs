//! The `wdsmc` command line, a thin layer over the library: argument definitions (`args`) and
//! value parsers (`units`, `values`), the subcommands, progress rendering, signal handling and
//! the exit-code table. `src/main.rs` only parses, calls [`run`] and exits with the status it
//! returns.

mod apply;
mod args;
mod demo;
mod doctor;
mod exit;
mod generate;
mod get;
mod images;
mod info;
mod jobs;
mod login;
mod progress;
mod serve;
mod signals;
mod trace;
mod units;
mod values;
mod watch;

pub use args::Cli;
pub use exit::{ExitCode, Failure};

use args::Commands;

/// Runs a parsed command line.
pub fn run(cli: Cli) -> Result<(), Failure> {
    if let Commands::Generate(args) = &cli.command {
        return generate::run(args);
    }
    signals::install()?;
    match cli.command {
        Commands::Get(args) => get::run(args),
        Commands::Apply(args) => apply::run(args),
        Commands::Info(args) => info::run(args),
        Commands::Doctor(args) => doctor::run(args),
        Commands::Watch(args) => watch::run(args),
        Commands::Images(args) => images::run(args),
        Commands::Trace(args::TraceCommand::Summarize(args)) => trace::run(args),
        Commands::Serve(args) => serve::run(args),
        Commands::Demo(args) => demo::run(args),
        Commands::Generate(_) => Ok(()),
    }
}
