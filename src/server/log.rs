//! A small logger to stderr: human lines or JSON lines (`--log-format json`).

use std::io::Write;
use std::time::SystemTime;

use super::LogFormat;

/// Writes one line per event; cheap to clone and share between threads.
#[derive(Debug, Clone, Copy)]
pub struct Logger {
    format: LogFormat,
}

impl Logger {
    pub fn new(format: LogFormat) -> Self {
        Self { format }
    }

    /// Logs `event` (a short machine name such as `client_joined`). `message` is the human
    /// text after the session prefix; `fields` (a JSON object) carries the same facts for
    /// JSON lines.
    pub fn log(&self, event: &str, session: Option<u32>, message: &str, fields: serde_json::Value) {
        let ts = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
        let line = match self.format {
            LogFormat::Human => match session {
                Some(id) => format!("{ts} session 0x{id:08x} {}", sanitize(message)),
                None => format!("{ts} {}", sanitize(message)),
            },
            LogFormat::Json => serde_json::json!({
                "ts": ts,
                "event": event,
                "session": session.map(|id| format!("0x{id:08x}")),
                "fields": fields,
            })
            .to_string(),
        };
        // A closed stderr must not take the server down.
        let _ = writeln!(std::io::stderr().lock(), "{line}");
    }
}

/// Escapes control characters, so that names peers chose cannot forge log lines.
pub fn sanitize(text: &str) -> String {
    text.chars()
        .flat_map(|c| {
            let escaped: Vec<char> = if c.is_control() {
                c.escape_default().collect()
            } else {
                vec![c]
            };
            escaped
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitize_escapes_control_characters() {
        assert_eq!(sanitize("a\nb\u{1b}[2Jc"), "a\\nb\\u{1b}[2Jc");
        assert_eq!(sanitize("plain näme"), "plain näme");
    }
}
