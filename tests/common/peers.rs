//! The Python peers in tests/peers/ and the interpreter that runs them: `$WDSMC_PYTHON`, else
//! `python3`, with tests/peers/requirements.txt installed (`.ci/run` makes such a venv).

use std::process::Command;

pub const PEERS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/peers");

pub fn python() -> String {
    std::env::var("WDSMC_PYTHON").unwrap_or_else(|_| "python3".into())
}

/// The interpreter, leaving no `__pycache__` in the source tree.
pub fn python_command() -> Command {
    let mut command = Command::new(python());
    command.env("PYTHONDONTWRITEBYTECODE", "1");
    command
}

/// Whether the interpreter imports `modules` (as `import` lists them, e.g.
/// `"impacket, spnego"`); prints a `SKIP:` line saying why when it does not.
pub fn imports_or_skip(modules: &str) -> bool {
    match missing_modules(modules) {
        None => true,
        Some(why) => {
            eprintln!("SKIP: {why}");
            false
        }
    }
}

fn missing_modules(modules: &str) -> Option<String> {
    let py = python();
    match Command::new(&py)
        .args(["-c", &format!("import {modules}")])
        .output()
    {
        Ok(o) if o.status.success() => None,
        Ok(o) => Some(format!(
            "{py} lacks {modules} ({}); pip install -r tests/peers/requirements.txt and set WDSMC_PYTHON",
            String::from_utf8_lossy(&o.stderr)
                .trim()
                .lines()
                .last()
                .unwrap_or("")
        )),
        Err(e) => Some(format!("cannot run {py}: {e}")),
    }
}
