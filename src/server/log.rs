//! A small logger: human lines or JSON lines (`--log-format json`), to stderr or to a sink the
//! embedding program gives (a progress renderer that must print above its bars, say).

use std::io::Write;
use std::sync::Arc;
use std::time::SystemTime;

use super::LogFormat;

/// Where log lines go instead of stderr.
#[derive(Clone)]
pub struct LogSink(pub Arc<dyn Fn(&str) + Send + Sync>);

impl std::fmt::Debug for LogSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LogSink")
    }
}

/// Writes one line per event; cheap to clone and share between threads.
#[derive(Debug, Clone)]
pub struct Logger {
    format: LogFormat,
    sink: Option<LogSink>,
}

impl Logger {
    pub fn new(format: LogFormat, sink: Option<LogSink>) -> Self {
        Self { format, sink }
    }

    /// Logs `event` (a short machine name such as `client_joined`). `message` is the human
    /// text after the session prefix; `fields` (a JSON object) carries the same facts for
    /// JSON lines.
    pub fn log(&self, event: &str, session: Option<u32>, message: &str, fields: serde_json::Value) {
        let ts = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
        let line = self.format_line(&ts, event, session, message, fields);
        match &self.sink {
            Some(sink) => (sink.0)(&line),
            // A closed stderr must not take the server down.
            None => {
                let _ = writeln!(std::io::stderr().lock(), "{line}");
            }
        }
    }

    fn format_line(
        &self,
        ts: &str,
        event: &str,
        session: Option<u32>,
        message: &str,
        fields: serde_json::Value,
    ) -> String {
        match self.format {
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
        }
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

    #[test]
    fn human_and_json_lines() {
        let fields = serde_json::json!({ "client": 7, "name": "pc\n1" });
        let human = Logger::new(LogFormat::Human, None).format_line(
            "2026-11-25T14:00:00Z",
            "client_joined",
            Some(0x1234abcd),
            "client 7 joined from 127.0.0.1:5555 (pc\n1)",
            fields.clone(),
        );
        assert_eq!(
            human,
            "2026-11-25T14:00:00Z session 0x1234abcd client 7 joined from 127.0.0.1:5555 (pc\\n1)"
        );
        let json = Logger::new(LogFormat::Json, None).format_line(
            "2026-11-25T14:00:00Z",
            "client_joined",
            Some(0x1234abcd),
            "ignored",
            fields.clone(),
        );
        assert!(!json.contains('\n'));
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(value["ts"], "2026-11-25T14:00:00Z");
        assert_eq!(value["event"], "client_joined");
        assert_eq!(value["session"], "0x1234abcd");
        assert_eq!(value["fields"], fields);
    }
}
