//! What a person sees on a terminal: `wdsmc demo` and a failing `wdsmc get` under tmux (a real
//! pseudo-terminal of a chosen width), captured as the screen shows them. The bars must be
//! redrawn in place (one line per bar, however many log lines print meanwhile), never wrap,
//! never show a full bar for an unfinished download, and start as a spinner with the phase.
//! Skipped, with the reason printed, where tmux is missing.

use std::process::Command;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_wdsmc");

/// A tmux server of our own (its own socket), killed when dropped.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn start(name: &str, width: u16, command: &str) -> Option<Tmux> {
        let socket = format!("wdsmc-test-{}-{name}-{width}", std::process::id());
        let status = Command::new("tmux")
            .args([
                "-L",
                &socket,
                "-f",
                "/dev/null",
                "new-session",
                "-d",
                "-s",
                "t",
            ])
            .args(["-x", &width.to_string(), "-y", "60"])
            .arg(command)
            .env("NO_COLOR", "1")
            .status();
        match status {
            Ok(s) if s.success() => {}
            Ok(s) => panic!("tmux could not start a session: {s}"),
            Err(e) => {
                eprintln!("SKIP: tmux is not available ({e})");
                return None;
            }
        }
        let tmux = Tmux { socket };
        // Keep the pane (and its screen) after the command exits.
        tmux.run(&["set-option", "-t", "t", "remain-on-exit", "on"]);
        Some(tmux)
    }

    fn run(&self, args: &[&str]) -> String {
        let out = Command::new("tmux")
            .args(["-L", &self.socket])
            .args(args)
            .output()
            .expect("tmux");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Waits for the command to exit; returns the screen with wrapped lines joined (a line
    /// that wrapped comes back longer than the width).
    fn screen_at_exit(&self, limit: Duration) -> String {
        let deadline = Instant::now() + limit;
        while self
            .run(&["display-message", "-p", "-t", "t", "#{pane_dead}"])
            .trim()
            != "1"
        {
            assert!(
                Instant::now() < deadline,
                "the command did not finish:\n{}",
                self.screen()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        self.screen()
    }

    fn screen(&self) -> String {
        self.run(&["capture-pane", "-p", "-J", "-t", "t", "-S", "-200"])
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-L", &self.socket, "kill-server"])
            .status();
    }
}

/// The lines of a screen, without the blank ones tmux pads it with and without the
/// "Pane is dead" line remain-on-exit adds.
fn lines(screen: &str) -> Vec<&str> {
    screen
        .lines()
        .map(str::trim_end)
        .filter(|l| !l.is_empty() && !l.starts_with("Pane is dead"))
        .collect()
}

fn assert_fits(screen: &str, width: usize) {
    for line in lines(screen) {
        assert!(
            line.chars().count() <= width,
            "a line wrapped at {width} columns ({} characters):\n{line}\n--- screen:\n{screen}",
            line.chars().count()
        );
    }
}

#[test]
fn the_demo_redraws_one_bar_block_at_80_and_200_columns() {
    for width in [80u16, 200] {
        let command = format!("{BIN} demo --size 48MiB --clients 3");
        let Some(tmux) = Tmux::start("demo", width, &command) else {
            return;
        };
        let screen = tmux.screen_at_exit(Duration::from_secs(90));
        assert_fits(&screen, usize::from(width));
        let lines = lines(&screen);
        for label in ["client 1", "client 2", "client 3", "total"] {
            let bars: Vec<&&str> = lines
                .iter()
                .filter(|l| l.starts_with(&format!("{label:>12} ")))
                .collect();
            assert_eq!(bars.len(), 1, "{label}: one bar line at {width}:\n{screen}");
        }
        assert!(
            lines
                .iter()
                .any(|l| l.contains("every copy's SHA-256 matched")),
            "{screen}"
        );
        assert!(
            !screen.contains("0 B/0 B"),
            "a bar before its size:\n{screen}"
        );
    }
}

#[test]
fn a_failing_get_shows_its_state_never_a_full_bar() {
    let dir = tempfile::tempdir().unwrap();
    // Nothing listens on port 9: initiation times out.
    let command = format!(
        "cd {} && {BIN} get --server 127.0.0.1:9 --namespace n --object o.bin --progress bar --start-timeout 2s",
        dir.path().display()
    );
    let Some(tmux) = Tmux::start("get", 80, &command) else {
        return;
    };
    // While it waits, the bar is a spinner with the phase.
    std::thread::sleep(Duration::from_millis(800));
    let waiting = tmux.screen();
    assert!(waiting.contains("initiating"), "{waiting}");
    let screen = tmux.screen_at_exit(Duration::from_secs(20));
    assert!(
        screen.contains("failed before the session started"),
        "{screen}"
    );
    assert!(
        !screen.contains("100%"),
        "a full bar for a failed get:\n{screen}"
    );
    assert!(
        screen.contains("wdsmc: o.bin: failed after 0 B"),
        "the whole error is printed too:\n{screen}"
    );
    assert!(
        screen.contains("UDP 5041"),
        "the hint names the likely cause:\n{screen}"
    );
}
