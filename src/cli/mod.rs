//! The `wdsmc` command line: clap definitions, the subcommands (get, info, serve, demo),
//! progress rendering and the exit-code table. `src/main.rs` only parses, calls [`run`] and
//! exits with the status it returns.

pub mod exit;
pub mod units;

mod demo;
mod get;
mod info;
mod progress;
mod serve;
mod signals;

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, CommandFactory, Parser, Subcommand, ValueEnum};

pub use exit::{ExitCode, Failure};

use crate::transport::InterfaceSpec;

/// Downloads files from Windows Deployment Services (WDS) multicast namespaces, and serves
/// folders as WDS-compatible multicast namespaces.
#[derive(Debug, Parser)]
#[command(name = "wdsmc", version, after_help = exit::exit_code_help(), propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Commands,
}

#[derive(Debug, Subcommand)]
pub enum Commands {
    /// Download one or more objects from a WDS multicast namespace.
    #[command(after_help = exit::exit_code_help())]
    Get(GetArgs),
    /// Ask the server to set up a session and print its description, without downloading.
    #[command(after_help = exit::exit_code_help())]
    Info(InfoArgs),
    /// Serve folders as multicast namespaces (reference server).
    #[command(after_help = exit::exit_code_help())]
    Serve(ServeArgs),
    /// Serve a random file on loopback and download it with several clients at once.
    #[command(after_help = exit::exit_code_help())]
    Demo(DemoArgs),
}

/// How progress is shown on stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ProgressMode {
    /// A progress bar when stderr is a terminal, nothing otherwise.
    Auto,
    /// A progress bar; plain lines when stderr is not a terminal.
    Bar,
    /// One plain line about every 2 seconds.
    Plain,
    /// JSON lines (schema wdsmc.progress/1).
    Json,
    /// No progress output.
    None,
}

/// Where the server is and which object to ask for.
#[derive(Debug, Clone, Args)]
pub struct SourceArgs {
    /// WDS server, as HOST or HOST:PORT (default port 5041).
    #[arg(long, value_name = "HOST[:PORT]")]
    pub server: String,
    /// Multicast namespace on the server.
    #[arg(long, value_name = "NAME")]
    pub namespace: String,
    /// Local interface for multicast, by address or name (e.g. 192.168.1.20 or eth0).
    #[arg(long, value_name = "ADDR|IFNAME", value_parser = parse_interface)]
    pub interface: Option<InterfaceSpec>,
    /// Limit for session start: initiation, join and first data each [e.g. 30s, 2m].
    #[arg(long, value_name = "DURATION", value_parser = units::parse_duration)]
    pub start_timeout: Option<Duration>,
}

#[derive(Debug, Clone, Args)]
pub struct GetArgs {
    #[command(flatten)]
    pub source: SourceArgs,
    /// Object (content) to download; repeat to download several at once.
    #[arg(long, visible_alias = "content", value_name = "NAME", required = true)]
    pub object: Vec<String>,
    /// Output file, or `-` for stdout; a folder when several objects are given. Default: the
    /// object's file name in the current folder.
    #[arg(short, long, value_name = "PATH|-")]
    pub output: Option<PathBuf>,
    /// Give up after this long without data from the server [e.g. 30s].
    #[arg(long, value_name = "DURATION", value_parser = units::parse_duration)]
    pub timeout: Option<Duration>,
    /// Progress display on stderr.
    #[arg(long, value_enum, default_value_t = ProgressMode::Auto, value_name = "MODE")]
    pub progress: ProgressMode,
    /// No start and summary lines, no progress.
    #[arg(short, long)]
    pub quiet: bool,
    /// More detail: notices and full statistics; twice: every packet on stderr.
    #[arg(short, long, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Keep the partial file when the download fails or is cancelled.
    #[arg(long)]
    pub keep_partial: bool,
    /// Replace an existing output file.
    #[arg(long)]
    pub force: bool,
    /// Expected SHA-256 of the object (64 hex digits); a mismatch deletes the file (exit 8).
    #[arg(long, value_name = "HEX", value_parser = parse_sha256)]
    pub sha256: Option<[u8; 32]>,
    /// Write one line per packet sent or received to FILE.
    #[arg(long, value_name = "FILE")]
    pub trace: Option<PathBuf>,
    /// Received data held in memory before it is written [e.g. 32MiB, 512k, 1G].
    #[arg(long, value_name = "SIZE", value_parser = units::parse_size, default_value = "32MiB")]
    pub cache_size: u64,
}

#[derive(Debug, Clone, Args)]
pub struct InfoArgs {
    #[command(flatten)]
    pub source: SourceArgs,
    /// Object (content) to describe.
    #[arg(long, visible_alias = "content", value_name = "NAME")]
    pub object: String,
    /// Print the description as one JSON object.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormatArg {
    Human,
    Json,
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Namespace to serve, as NAME=DIR; repeat for several.
    #[arg(long, value_name = "NAME=DIR", required = true, value_parser = parse_namespace)]
    pub namespace: Vec<(String, PathBuf)>,
    /// Address to listen and send multicast on.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1")]
    pub listen: IpAddr,
    /// UDP port for session initiation requests.
    #[arg(long, value_name = "PORT", default_value_t = crate::transport::DEFAULT_MSI_PORT)]
    pub msi_port: u16,
    /// Multicast groups given to sessions, as a CIDR block (IPv4 or IPv6).
    #[arg(long, value_name = "CIDR", value_parser = parse_cidr)]
    pub group_range: Option<(IpAddr, u8)>,
    /// UDP ports given to sessions, inclusive.
    #[arg(long, value_name = "LOW-HIGH", value_parser = parse_port_range)]
    pub port_range: Option<(u16, u16)>,
    /// Block size in bytes [e.g. 8192, 16k].
    #[arg(long, value_name = "BYTES", value_parser = parse_block_size)]
    pub block_size: Option<u32>,
    /// Cap each session's data rate [e.g. 100MiB/s, 10M].
    #[arg(long, value_name = "RATE", value_parser = units::parse_rate)]
    pub max_rate: Option<u64>,
    /// Kick clients whose progress stays below RATE.
    #[arg(long, value_name = "RATE", value_parser = units::parse_rate)]
    pub auto_disconnect_below: Option<u64>,
    /// Multicast TTL (hop limit).
    #[arg(long, value_name = "N")]
    pub ttl: Option<u32>,
    /// Log lines as human text or JSON.
    #[arg(long, value_enum, default_value_t = LogFormatArg::Human, value_name = "FORMAT")]
    pub log_format: LogFormatArg,
    /// End a session after this long without any client packet.
    #[arg(long, value_name = "DURATION", value_parser = units::parse_duration)]
    pub session_timeout: Option<Duration>,
}

#[derive(Debug, Clone, Args)]
pub struct DemoArgs {
    /// Size of the random file to serve.
    #[arg(long, value_name = "SIZE", value_parser = units::parse_size, default_value = "16MiB")]
    pub size: u64,
    /// Number of clients downloading at once.
    #[arg(long, value_name = "N", default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=32))]
    pub clients: u32,
    /// Progress display on stderr.
    #[arg(long, value_enum, default_value_t = ProgressMode::Auto, value_name = "MODE")]
    pub progress: ProgressMode,
}

/// The full clap command, for completions and man pages.
pub fn command() -> clap::Command {
    Cli::command()
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> Result<(), Failure> {
    signals::install()?;
    match cli.command {
        Commands::Get(args) => get::run(args),
        Commands::Info(args) => info::run(args),
        Commands::Serve(args) => serve::run(args),
        Commands::Demo(args) => demo::run(args),
    }
}

fn parse_interface(text: &str) -> Result<InterfaceSpec, String> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err("interface must not be empty; give an address or a name like eth0".into());
    }
    Ok(match trimmed.parse::<IpAddr>() {
        Ok(addr) => InterfaceSpec::Address(addr),
        Err(_) => InterfaceSpec::Name(trimmed.to_string()),
    })
}

fn parse_sha256(text: &str) -> Result<[u8; 32], String> {
    let hex = text.trim();
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!(
            "invalid SHA-256 {text:?}: expected 64 hexadecimal digits"
        ));
    }
    let mut digest = [0u8; 32];
    for (i, byte) in digest.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).map_err(|e| e.to_string())?;
    }
    Ok(digest)
}

fn parse_namespace(text: &str) -> Result<(String, PathBuf), String> {
    match text.split_once('=') {
        Some((name, dir)) if !name.trim().is_empty() && !dir.is_empty() => {
            Ok((name.trim().to_string(), PathBuf::from(dir)))
        }
        _ => Err(format!(
            "invalid namespace {text:?}: expected NAME=DIR, e.g. images=/srv/images"
        )),
    }
}

fn parse_cidr(text: &str) -> Result<(IpAddr, u8), String> {
    let (addr, prefix) = text.split_once('/').ok_or_else(|| {
        format!("invalid group range {text:?}: expected a CIDR block like 239.255.77.0/24")
    })?;
    let addr: IpAddr = addr
        .parse()
        .map_err(|e| format!("invalid group range {text:?}: bad address: {e}"))?;
    let prefix: u8 = prefix
        .parse()
        .map_err(|_| format!("invalid group range {text:?}: bad prefix length"))?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    if prefix > max {
        return Err(format!(
            "invalid group range {text:?}: prefix length above {max}"
        ));
    }
    if !addr.is_multicast() {
        return Err(format!(
            "invalid group range {text:?}: {addr} is not a multicast address"
        ));
    }
    Ok((addr, prefix))
}

fn parse_port_range(text: &str) -> Result<(u16, u16), String> {
    let (low, high) = text.split_once('-').ok_or_else(|| {
        format!("invalid port range {text:?}: expected LOW-HIGH, e.g. 64001-65000")
    })?;
    let low: u16 = low
        .trim()
        .parse()
        .map_err(|_| format!("invalid port range {text:?}: bad low port"))?;
    let high: u16 = high
        .trim()
        .parse()
        .map_err(|_| format!("invalid port range {text:?}: bad high port"))?;
    if low == 0 || low > high {
        return Err(format!(
            "invalid port range {text:?}: need 1 <= LOW <= HIGH"
        ));
    }
    Ok((low, high))
}

fn parse_block_size(text: &str) -> Result<u32, String> {
    let size = units::parse_size(text)?;
    // A block travels in one UDP datagram, whose payload cannot exceed 64 KiB.
    if size == 0 || size > 65_000 {
        return Err(format!(
            "invalid block size {text:?}: must be between 1 and 65000 bytes"
        ));
    }
    Ok(size as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_is_consistent() {
        command().debug_assert();
    }

    #[test]
    fn small_parsers() {
        assert_eq!(parse_port_range("100-200"), Ok((100, 200)));
        assert!(parse_port_range("200-100").is_err());
        assert!(parse_port_range("0-10").is_err());
        assert_eq!(
            parse_cidr("239.255.77.0/24"),
            Ok(("239.255.77.0".parse().unwrap(), 24))
        );
        assert!(parse_cidr("10.0.0.0/8").is_err());
        assert!(parse_cidr("239.255.0.0/33").is_err());
        assert_eq!(
            parse_namespace("a=/srv"),
            Ok(("a".into(), PathBuf::from("/srv")))
        );
        assert!(parse_namespace("=/srv").is_err());
        assert!(parse_namespace("a").is_err());
        assert_eq!(parse_sha256(&"ab".repeat(32)), Ok([0xab; 32]));
        assert!(parse_sha256("abc").is_err());
        assert_eq!(
            parse_interface("127.0.0.1"),
            Ok(InterfaceSpec::Address("127.0.0.1".parse().unwrap()))
        );
        assert_eq!(
            parse_interface("eth0"),
            Ok(InterfaceSpec::Name("eth0".into()))
        );
        assert_eq!(parse_block_size("8k"), Ok(8192));
        assert!(parse_block_size("64k").is_err());
    }
}
