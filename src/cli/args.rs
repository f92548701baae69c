//! The command-line definitions (clap derive): every subcommand's arguments, with their help
//! texts. Values are parsed by the functions in `units` and `values`.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, CommandFactory, Parser, Subcommand, ValueEnum};
use wdsmc::transport::InterfaceSpec;

use super::exit;
use super::units;
use super::values::{
    parse_block_size, parse_cidr, parse_interface, parse_namespace, parse_port_range, parse_sha256,
};

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
    /// Download a WIM image and apply one of its images to a folder (DISM on Windows,
    /// wimapply elsewhere), like wdsmcast /Apply-Image.
    #[command(after_help = exit::exit_code_help())]
    Apply(ApplyArgs),
    /// Ask the server to set up a session and print its description, without downloading.
    #[command(after_help = exit::exit_code_help())]
    Info(InfoArgs),
    /// Diagnose why multicast does not start: check each step from the server's name to
    /// multicast data on the interface, and name the first that fails.
    #[command(after_help = exit::exit_code_help())]
    Doctor(DoctorArgs),
    /// Watch a session's multicast without taking part in it (nothing is sent to the server).
    #[command(after_help = exit::exit_code_help())]
    Watch(WatchArgs),
    /// List the OS images the server offers (MS-WDSOSD image enumeration, authenticated RPC).
    #[command(after_help = exit::exit_code_help())]
    Images(ImagesArgs),
    /// Read back a --trace file.
    #[command(subcommand)]
    Trace(TraceCommand),
    /// Serve folders as multicast namespaces (reference server).
    #[command(after_help = exit::exit_code_help())]
    Serve(ServeArgs),
    /// Serve a random file on loopback and download it with several clients at once.
    #[command(after_help = exit::exit_code_help())]
    Demo(DemoArgs),
    /// Write the shell completions or man pages (for packaging; they are committed).
    #[command(hide = true)]
    Generate(GenerateArgs),
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
    /// WDS server, as HOST or HOST:PORT (the port of UDP initiation, 5041 by default).
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
    #[command(flatten)]
    pub auth: AuthArgs,
}

/// Authenticated initiation: the WDS Control Protocol over DCE/RPC, as real deployments use.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Authenticated initiation")]
pub struct AuthArgs {
    /// Log in as this user ([DOMAIN\]NAME or NAME@REALM) and initiate over RPC. The password
    /// comes from --password-file, else WDSMC_PASSWORD, else the credential cache (Kerberos),
    /// else a prompt on a terminal.
    #[arg(long, value_name = "[DOMAIN\\]NAME")]
    pub user: Option<String>,
    /// Read the password from the first line of FILE.
    #[arg(long, value_name = "FILE")]
    pub password_file: Option<PathBuf>,
    /// The password itself (other users of this machine can see it; prefer --password-file
    /// or WDSMC_PASSWORD).
    #[arg(long, value_name = "PASSWORD")]
    pub password: Option<String>,
    /// Security provider of the RPC login [default: negotiate].
    #[arg(long, value_enum, value_name = "MECH")]
    pub auth: Option<AuthMech>,
    /// Kerberos KDC (HOST[:PORT], port 88 by default). Without it: DNS SRV
    /// _kerberos._tcp.REALM, then the realm's own name.
    #[arg(long, value_name = "HOST[:PORT]")]
    pub kdc: Option<String>,
    /// The WDS server's Kerberos service principal [default: host/<--server's name>].
    #[arg(long, value_name = "SERVICE/HOST[@REALM]")]
    pub spn: Option<String>,
    /// TCP port of the WDS RPC listener.
    #[arg(long, value_name = "PORT", default_value_t = wdsmc::transport::DEFAULT_RPC_PORT)]
    pub rpc_port: u16,
    /// Ask the endpoint mapper (TCP 135) for the RPC listener's port.
    #[arg(long)]
    pub endpoint_mapper: bool,
    /// How to initiate: auto is rpc when --user or --auth is given, udp otherwise.
    #[arg(long, value_enum, value_name = "HOW", default_value_t = InitiationArg::Auto)]
    pub initiation: InitiationArg,
    /// Running pre-OS (WinPE): ask the server for checksum-only packet security.
    #[arg(long)]
    pub pre_os: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AuthMech {
    /// SPNEGO: Kerberos when a ticket can be had, NTLM otherwise.
    Negotiate,
    /// NTLMv2.
    Ntlm,
    /// Kerberos alone (DCE style, auth type 0x10).
    Kerberos,
    /// Anonymous NTLM (no user, no password).
    Anonymous,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum InitiationArg {
    Auto,
    /// Authenticated, over RPC (TCP 5040 or the endpoint mapper's answer).
    Rpc,
    /// Unauthenticated, over UDP 5041.
    Udp,
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
    /// Keep the partial file when the download fails or is cancelled.
    #[arg(long)]
    pub keep_partial: bool,
    /// Replace an existing output file.
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub transfer: TransferArgs,
}

/// How a transfer runs and reports, shared by `get` and `apply`.
#[derive(Debug, Clone, Args)]
pub struct TransferArgs {
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
pub struct ApplyArgs {
    #[command(flatten)]
    pub source: SourceArgs,
    /// The image (a WIM) to download.
    #[arg(long, visible_alias = "content", value_name = "NAME")]
    pub object: String,
    /// Image index inside the WIM to apply.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub index: u32,
    /// Folder to apply the image to (a mounted target volume, e.g. /mnt or W:\).
    #[arg(long, value_name = "DIR")]
    pub to: PathBuf,
    /// Folder for the downloaded image while it is applied [default: inside --to].
    #[arg(long, value_name = "DIR")]
    pub image_cache: Option<PathBuf>,
    /// Keep the downloaded image after applying it (and after a failure).
    #[arg(long)]
    pub keep_image: bool,
    #[command(flatten)]
    pub transfer: TransferArgs,
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

#[derive(Debug, Clone, Args)]
pub struct DoctorArgs {
    /// WDS server, as HOST or HOST:PORT (the port of UDP initiation, 5041 by default).
    #[arg(long, value_name = "HOST[:PORT]")]
    pub server: String,
    /// Multicast namespace of the session to try (with --object; without them the checks
    /// stop after the ports).
    #[arg(long, value_name = "NAME", requires = "object")]
    pub namespace: Option<String>,
    /// Object of the session to try.
    #[arg(
        long,
        visible_alias = "content",
        value_name = "NAME",
        requires = "namespace"
    )]
    pub object: Option<String>,
    /// Local interface for multicast, by address or name.
    #[arg(long, value_name = "ADDR|IFNAME", value_parser = parse_interface)]
    pub interface: Option<InterfaceSpec>,
    /// How long multicast data may take to arrive after the JOINACK.
    #[arg(long, value_name = "DURATION", value_parser = units::parse_duration, default_value = "5s")]
    pub multicast_wait: Duration,
    /// How long to receive data for the loss figure.
    #[arg(long, value_name = "DURATION", value_parser = units::parse_duration, default_value = "2s")]
    pub sample: Duration,
    /// How long to wait for an answer on UDP, for TCP connects, the login and the JOINACK.
    #[arg(long, value_name = "DURATION", value_parser = units::parse_duration, default_value = "3s")]
    pub wait: Duration,
    /// One JSON object per step on stdout.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub auth: AuthArgs,
}

#[derive(Debug, Clone, Args)]
pub struct WatchArgs {
    /// Watch this group directly (ADDR:PORT); nothing at all is sent.
    #[arg(long, value_name = "ADDR:PORT", conflicts_with_all = ["server", "namespace", "object"])]
    pub group: Option<std::net::SocketAddr>,
    /// Find the group through initiation at this server (only the initiation request is sent;
    /// no JOIN).
    #[arg(long, value_name = "HOST[:PORT]", required_unless_present = "group", requires_all = ["namespace", "object"])]
    pub server: Option<String>,
    /// Multicast namespace (with --server).
    #[arg(long, value_name = "NAME")]
    pub namespace: Option<String>,
    /// Object (with --server).
    #[arg(long, visible_alias = "content", value_name = "NAME")]
    pub object: Option<String>,
    /// Local interface to join the group on, by address or name.
    #[arg(long, value_name = "ADDR|IFNAME", value_parser = parse_interface)]
    pub interface: Option<InterfaceSpec>,
    /// Seconds between reports.
    #[arg(long, value_name = "DURATION", value_parser = units::parse_duration, default_value = "1s")]
    pub interval: Duration,
    /// Stop after this long [default: until Ctrl-C].
    #[arg(long, value_name = "DURATION", value_parser = units::parse_duration)]
    pub duration: Option<Duration>,
    /// Stop once the session has been silent this long after data flowed.
    #[arg(long, value_name = "DURATION", value_parser = units::parse_duration)]
    pub idle_exit: Option<Duration>,
    /// JSON lines on stdout (one per report, and a summary at the end).
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub auth: AuthArgs,
}

#[derive(Debug, Clone, Args)]
pub struct ImagesArgs {
    /// WDS server, as HOST (a :PORT suffix is the UDP port and is ignored).
    #[arg(long, value_name = "HOST[:PORT]")]
    pub server: String,
    /// Limit for connect, login and call.
    #[arg(long, value_name = "DURATION", value_parser = units::parse_duration, default_value = "30s")]
    pub timeout: Duration,
    /// Print the list as one JSON object.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub auth: AuthArgs,
}

#[derive(Debug, Clone, Subcommand)]
pub enum TraceCommand {
    /// Per object: phase timings, loss, repairs and why the session ended.
    Summarize(TraceSummarizeArgs),
}

#[derive(Debug, Clone, Args)]
pub struct TraceSummarizeArgs {
    /// The file `--trace` wrote.
    pub file: PathBuf,
    /// One JSON object per object on stdout.
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
    #[arg(long, value_name = "PORT", default_value_t = wdsmc::transport::DEFAULT_MSI_PORT)]
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
    /// Serve authenticated initiation over RPC to the users in FILE (lines
    /// [DOMAIN\]NAME:PASSWORD, # comments).
    #[arg(long, value_name = "FILE", help_heading = "Authenticated initiation")]
    pub accounts: Option<PathBuf>,
    /// Also accept Kerberos logins (raw and inside SPNEGO) with the service keys in this
    /// keytab.
    #[arg(long, value_name = "FILE", help_heading = "Authenticated initiation")]
    pub keytab: Option<PathBuf>,
    /// The service principal Kerberos tickets must be for (SERVICE/HOST[@REALM]) [default:
    /// any principal in --keytab].
    #[arg(
        long,
        value_name = "SERVICE/HOST[@REALM]",
        requires = "keytab",
        help_heading = "Authenticated initiation"
    )]
    pub spn: Option<String>,
    /// TCP port of the RPC listener (with --accounts or --keytab).
    #[arg(long, value_name = "PORT", default_value_t = wdsmc::transport::DEFAULT_RPC_PORT, help_heading = "Authenticated initiation")]
    pub rpc_port: u16,
    /// Refuse UDP initiation (with an error reply): every client must log in.
    #[arg(long, help_heading = "Authenticated initiation")]
    pub require_auth: bool,
    /// Packet security for authenticated clients that are not pre-OS: checksum, hash (HMAC
    /// both ways) or sign (the server signs, clients hash).
    #[arg(long, value_enum, value_name = "MODE", default_value_t = SecurityModeArg::Hash, help_heading = "Authenticated initiation")]
    pub security_mode: SecurityModeArg,
    /// Accept anonymous NTLM logins.
    #[arg(long, requires = "accounts", help_heading = "Authenticated initiation")]
    pub allow_anonymous: bool,
    /// Bits of the RSA key made at start for --security-mode sign.
    #[arg(long, value_name = "BITS", default_value_t = 2048, value_parser = clap::value_parser!(u32).range(1024..=8192), help_heading = "Authenticated initiation")]
    pub sign_key_bits: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SecurityModeArg {
    Checksum,
    Hash,
    Sign,
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum GeneratedAsset {
    /// bash, zsh, fish, PowerShell and elvish completions.
    Completions,
    /// One man page per command.
    Man,
}

#[derive(Debug, Clone, Args)]
pub struct GenerateArgs {
    /// What to write.
    #[arg(value_enum)]
    pub what: GeneratedAsset,
    /// Folder to write into.
    pub dir: PathBuf,
}

/// The full clap command, for completions and man pages.
pub fn command() -> clap::Command {
    Cli::command()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_is_consistent() {
        command().debug_assert();
    }
}
