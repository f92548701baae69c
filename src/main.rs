//! The `wdsmc` binary: parse the command line, run it, exit with the documented status.

mod cli;

use clap::Parser;
use clap::error::ErrorKind;
use cli::{Cli, ExitCode};

fn main() {
    // A file-size limit (RLIMIT_FSIZE) must surface as a write error, which `get` reports with
    // exit code 3 after removing its partial file, not as SIGXFSZ killing the process mid-file.
    #[cfg(unix)]
    // SAFETY: setting a signal's disposition to SIG_IGN before any thread starts.
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
    }
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => match error.kind() {
            ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => error.exit(),
            _ => {
                // One line: clap's message (which may list missing arguments on the lines
                // after it) without the usage block and hints that follow a blank line.
                let rendered = error.render().to_string();
                let message: Vec<&str> = rendered
                    .lines()
                    .take_while(|line| !line.trim().is_empty() && !line.starts_with("Usage:"))
                    .map(str::trim)
                    .collect();
                let message = message.join(" ");
                let message = message.strip_prefix("error: ").unwrap_or(&message);
                eprintln!("wdsmc: error: {message} (see 'wdsmc --help')");
                std::process::exit(ExitCode::Usage.as_i32());
            }
        },
    };
    if let Err(failure) = cli::run(cli) {
        if let Some(error) = failure.error {
            eprintln!("wdsmc: error: {error:#}");
        }
        std::process::exit(failure.code.as_i32());
    }
}
