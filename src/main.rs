//! The `wdsmc` binary: parse the command line, run it, exit with the documented status.

use clap::Parser;
use clap::error::ErrorKind;
use wdsmc::cli::{Cli, ExitCode, run};

fn main() {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => match error.kind() {
            ErrorKind::DisplayHelp | ErrorKind::DisplayVersion | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
                error.exit()
            }
            _ => {
                // One line: clap's first line, without the usage block that follows it.
                let rendered = error.render().to_string();
                let first = rendered.lines().next().unwrap_or("invalid arguments").trim();
                let first = first.strip_prefix("error: ").unwrap_or(first);
                eprintln!("wdsmc: error: {first} (see 'wdsmc --help')");
                std::process::exit(ExitCode::Usage.as_i32());
            }
        },
    };
    if let Err(failure) = run(cli) {
        if let Some(error) = failure.error {
            eprintln!("wdsmc: error: {error:#}");
        }
        std::process::exit(failure.code.as_i32());
    }
}
