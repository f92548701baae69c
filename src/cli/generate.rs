//! `wdsmc generate completions|man DIR` (hidden): writes the committed completions and man
//! pages from the clap definitions, so they cannot drift from the code (a test compares them).

use std::fs;
use std::path::Path;

use clap_complete::Shell;

use super::args::{GenerateArgs, GeneratedAsset, command};
use super::exit::{ExitCode, Failure};

/// Completion files, by shell, under the names the project commits.
const COMPLETIONS: [(Shell, &str); 5] = [
    (Shell::Bash, "wdsmc.bash"),
    (Shell::Zsh, "_wdsmc"),
    (Shell::Fish, "wdsmc.fish"),
    (Shell::PowerShell, "_wdsmc.ps1"),
    (Shell::Elvish, "wdsmc.elv"),
];

pub fn run(args: &GenerateArgs) -> Result<(), Failure> {
    let written = match args.what {
        GeneratedAsset::Completions => completions(&args.dir),
        GeneratedAsset::Man => fs::create_dir_all(&args.dir)
            .and_then(|()| clap_mangen::generate_to(command(), &args.dir)),
    };
    written.map_err(|e| {
        Failure::msg(
            ExitCode::Output,
            format!("cannot write into {}: {e}", args.dir.display()),
        )
    })
}

fn completions(dir: &Path) -> std::io::Result<()> {
    fs::create_dir_all(dir)?;
    for (shell, file) in COMPLETIONS {
        let mut buffer = Vec::new();
        clap_complete::generate(shell, &mut command(), "wdsmc", &mut buffer);
        fs::write(dir.join(file), buffer)?;
    }
    Ok(())
}
