//! The exit-code table: one place that says what each process exit status means, used by
//! `--help`, the README and the man page; the mapping from library errors to it; and the hints
//! that name this command line's options, which the library's messages leave out.

use std::fmt;

use wdsmc::download::DownloadError;
use wdsmc::rpc::client::ClientError;
use wdsmc::transport::{
    AuthFailure, KerberosFailure, NetworkError, Phase, RequestError, RpcFailure, TransportError,
};

/// Process exit statuses of `wdsmc`. When several objects are downloaded at once the process
/// exits with the highest status among them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ExitCode {
    Success = 0,
    /// A bug, or a server that broke the protocol (an impossible session description, a
    /// malformed or unverifiable RPC answer).
    Internal = 1,
    /// Bad command line or an option combination that cannot work.
    Usage = 2,
    /// The output could not be created, written, synced or renamed (or `-` lost its reader).
    Output = 3,
    /// Socket bind, multicast join or interface lookup failed.
    NetworkSetup = 4,
    /// The server refused the request (its code is printed).
    Refused = 5,
    /// A phase of the session timed out (the phase is named).
    Timeout = 6,
    /// The server removed this client (the reason is printed).
    Kicked = 7,
    /// The downloaded data did not match `--sha256`.
    Integrity = 8,
    /// The server rejected the credentials, or denied the user the object.
    Auth = 9,
    /// `apply`: DISM or wimapply could not apply the downloaded image.
    Apply = 10,
    /// Interrupted (Ctrl-C, SIGTERM, SIGHUP, console close).
    Cancelled = 130,
}

/// `(status, meaning)` rows, in order, for help texts and documentation.
pub const EXIT_CODE_TABLE: &[(ExitCode, &str)] = &[
    (ExitCode::Success, "success"),
    (
        ExitCode::Internal,
        "internal error, or a protocol error (impossible session description, malformed RPC answer)",
    ),
    (
        ExitCode::Usage,
        "usage error (bad arguments, terminal stdout for -o -, no password for --user)",
    ),
    (
        ExitCode::Output,
        "output error (create, write, disk full, rename, existing file without --force, closed pipe)",
    ),
    (
        ExitCode::NetworkSetup,
        "network setup error (bind, multicast join, no such interface, RPC connection refused or closed)",
    ),
    (
        ExitCode::Refused,
        "refused by the server (its error code is printed)",
    ),
    (ExitCode::Timeout, "timeout (the phase is printed)"),
    (
        ExitCode::Kicked,
        "kicked by the server (the reason is printed)",
    ),
    (
        ExitCode::Integrity,
        "integrity failure (--sha256 mismatch; the file is deleted)",
    ),
    (
        ExitCode::Auth,
        "authentication failed (credentials rejected, or access to the object denied)",
    ),
    (
        ExitCode::Apply,
        "apply: DISM or wimapply failed to apply the downloaded image",
    ),
    (
        ExitCode::Cancelled,
        "cancelled by Ctrl-C, SIGTERM, SIGHUP or console close",
    ),
];

impl ExitCode {
    pub fn as_i32(self) -> i32 {
        self as i32
    }

    /// The status a failed session maps to.
    pub fn for_transport_error(error: &TransportError) -> ExitCode {
        match error {
            TransportError::Cancelled => ExitCode::Cancelled,
            TransportError::Timeout { .. } => ExitCode::Timeout,
            TransportError::Refused { .. } => ExitCode::Refused,
            TransportError::Kicked { .. } => ExitCode::Kicked,
            TransportError::InvalidRequest(_) => ExitCode::Usage,
            TransportError::Network(_) => ExitCode::NetworkSetup,
            TransportError::Aborted => ExitCode::Output,
            // A Kerberos login that cannot even be tried for want of a name is a usage error.
            TransportError::AuthFailed(AuthFailure::Kerberos(
                KerberosFailure::NoSpn { .. } | KerberosFailure::NoRealm { .. },
            )) => ExitCode::Usage,
            TransportError::AuthFailed(_) => ExitCode::Auth,
            TransportError::Rpc(RpcFailure::Fault { .. }) => ExitCode::Refused,
            // The stream ended: the network (or the server going away), like a failed connect.
            TransportError::Rpc(RpcFailure::Connection {
                error: ClientError::Eof { .. } | ClientError::Closed | ClientError::Shutdown,
                ..
            })
            | TransportError::Rpc(RpcFailure::NotRegistered { .. }) => ExitCode::NetworkSetup,
            // Anything else the RPC client refused is the server breaking the protocol: a
            // fragment size, a PDU, a sequence, a bound or a verifier.
            TransportError::Rpc(RpcFailure::Connection { .. }) => ExitCode::Internal,
            TransportError::Rpc(RpcFailure::BadReply(_) | RpcFailure::BadSecurity(_))
            | TransportError::InvalidReply(_)
            | TransportError::Internal(_) => ExitCode::Internal,
        }
    }

    /// The status a failed download maps to.
    pub fn for_download_error(error: &DownloadError) -> ExitCode {
        match error {
            DownloadError::Transport(error) => Self::for_transport_error(error),
            DownloadError::NoFileName { .. } => ExitCode::Usage,
            DownloadError::Integrity { .. } => ExitCode::Integrity,
            DownloadError::CancelUnconfirmed { .. } => ExitCode::Cancelled,
            DownloadError::ShortStream { .. }
            | DownloadError::Thread { .. }
            | DownloadError::WriterStopped => ExitCode::Internal,
            DownloadError::TargetIsFolder { .. }
            | DownloadError::TargetExists { .. }
            | DownloadError::TargetAppeared { .. }
            | DownloadError::CreateFolder { .. }
            | DownloadError::CreatePartial { .. }
            | DownloadError::Size { .. }
            | DownloadError::NoSpace { .. }
            | DownloadError::Write { .. }
            | DownloadError::StreamWrite { .. }
            | DownloadError::Spill { .. }
            | DownloadError::Sync { .. }
            | DownloadError::ReadBack { .. }
            | DownloadError::Rename { .. } => ExitCode::Output,
        }
    }
}

/// A download error as the user reads it: the library's message and, where an option of this
/// command line addresses it, that option. `rpc`: the session was initiated over RPC.
pub fn download_message(error: &DownloadError, rpc: bool) -> String {
    let hint = match error {
        DownloadError::Transport(error) => return transport_message(error, rpc),
        DownloadError::NoFileName { .. } | DownloadError::TargetIsFolder { .. } => "; use -o FILE",
        DownloadError::TargetExists { .. } => {
            "; use --force to replace it or -o to choose another name"
        }
        DownloadError::TargetAppeared { .. } => "; use --force to replace it",
        _ => "",
    };
    format!("{error}{hint}")
}

/// A transport error with the option that addresses it, if any.
pub fn transport_message(error: &TransportError, rpc: bool) -> String {
    let hint = match error {
        TransportError::Network(NetworkError::NoRoute { .. }) => {
            "; choose an interface with --interface"
        }
        TransportError::Network(NetworkError::NoInterfaceAddress { .. }) => {
            if cfg!(windows) {
                "; pick one that `ipconfig` lists"
            } else {
                "; pick one that `ip addr` lists"
            }
        }
        TransportError::InvalidRequest(RequestError::NoServer) => "; give --server HOST[:PORT]",
        TransportError::InvalidRequest(RequestError::CacheTooSmall { .. }) => {
            "; raise --cache-size (the default is 32MiB)"
        }
        TransportError::Network(NetworkError::RpcConnect { .. }) => {
            "; check --rpc-port (or try --endpoint-mapper) and that the firewall passes it"
        }
        TransportError::AuthFailed(AuthFailure::ObjectDenied { .. }) => {
            "; log in as a user the namespace allows (--user)"
        }
        TransportError::AuthFailed(AuthFailure::Kerberos(KerberosFailure::NoSpn { .. })) => {
            "; give --spn SERVICE/HOST, or --server by its DNS name"
        }
        TransportError::AuthFailed(AuthFailure::Kerberos(KerberosFailure::NoCredentials(_))) => {
            "; run kinit, or give --user with a password"
        }
        TransportError::AuthFailed(AuthFailure::Kerberos(KerberosFailure::ClockSkew {
            ..
        })) => "",
        TransportError::Network(NetworkError::KdcUnreachable { .. }) => {
            "; check --kdc (HOST[:PORT]) and that TCP or UDP port 88 is open"
        }
        TransportError::AuthFailed(_) => "; check --user and the password",
        TransportError::Refused {
            code: wdsmc::server::UDP_REFUSED_AUTH_REQUIRED,
        } => "; this server requires authenticated initiation: log in with --user",
        TransportError::Timeout {
            phase: Phase::Initiation,
            ..
        } if rpc => {
            "; the RPC listener did not finish the login in time: check --rpc-port and the firewall, or raise --start-timeout"
        }
        TransportError::Timeout {
            phase: Phase::Initiation,
            ..
        } => {
            "; the server did not answer: UDP 5041 may be blocked, or the server accepts only authenticated initiation (use --user)"
        }
        TransportError::Timeout {
            phase: Phase::Join | Phase::FirstData,
            ..
        } => {
            "; the session's UDP ports or its multicast group may be blocked (firewall, IGMP snooping), or --interface is wrong"
        }
        _ => "",
    };
    format!("{error}{hint}")
}

impl fmt::Display for ExitCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.as_i32())
    }
}

/// The exit-code section shown after `--help` (and so in the man page).
pub fn exit_code_help() -> String {
    let mut text = String::from("Exit codes:\n");
    for (code, meaning) in EXIT_CODE_TABLE {
        text.push_str(&format!("  {:>3}  {}\n", code.as_i32(), meaning));
    }
    text.push_str("  With several --object, the highest code among them.");
    text
}

/// A command's failure: the status to exit with and, unless it was already shown to the user,
/// the error to print.
#[derive(Debug)]
pub struct Failure {
    pub code: ExitCode,
    pub error: Option<anyhow::Error>,
}

impl Failure {
    pub fn new(code: ExitCode, error: impl Into<anyhow::Error>) -> Self {
        Self {
            code,
            error: Some(error.into()),
        }
    }

    pub fn msg(code: ExitCode, message: impl fmt::Display) -> Self {
        Self {
            code,
            error: Some(anyhow::anyhow!("{message}")),
        }
    }

    /// The failure has already been reported (for example per object).
    pub fn reported(code: ExitCode) -> Self {
        Self { code, error: None }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use wdsmc::transport::Phase;

    #[test]
    fn transport_errors_map_to_the_documented_codes() {
        let timeout = TransportError::Timeout {
            phase: Phase::Join,
            after: Duration::from_secs(3),
        };
        assert_eq!(ExitCode::for_transport_error(&timeout).as_i32(), 6);
        assert_eq!(
            ExitCode::for_transport_error(&TransportError::Cancelled).as_i32(),
            130
        );
        let refused = TransportError::Refused { code: 0xC111_0001 };
        assert_eq!(ExitCode::for_transport_error(&refused).as_i32(), 5);
        let network = TransportError::Network(NetworkError::NoAddress { server: "x".into() });
        assert_eq!(ExitCode::for_transport_error(&network).as_i32(), 4);
        assert_eq!(
            ExitCode::for_transport_error(&TransportError::Aborted).as_i32(),
            3
        );
        let auth = TransportError::AuthFailed(AuthFailure::AccessDenied);
        assert_eq!(ExitCode::for_transport_error(&auth).as_i32(), 9);
        let no_server = TransportError::InvalidRequest(RequestError::NoServer);
        assert_eq!(ExitCode::for_transport_error(&no_server).as_i32(), 2);
    }

    #[test]
    fn a_broken_rpc_stream_is_a_network_error_and_a_broken_protocol_exit_1() {
        let server = "127.0.0.1:5040".parse().unwrap();
        let rpc = |error| TransportError::Rpc(RpcFailure::Connection { server, error });
        for error in [ClientError::Eof { mid_pdu: true }, ClientError::Shutdown] {
            assert_eq!(ExitCode::for_transport_error(&rpc(error)).as_i32(), 4);
        }
        let sizes = ClientError::FragmentSizes {
            xmit: 0,
            recv: 4280,
            min: 1432,
        };
        let too_many =
            ClientError::Fragment(wdsmc::rpc::FragmentError::TooManyFragments { limit: 4096 });
        for error in [sizes, too_many] {
            assert_eq!(ExitCode::for_transport_error(&rpc(error)).as_i32(), 1);
        }
    }

    #[test]
    fn help_lists_every_code() {
        let help = exit_code_help();
        for (code, _) in EXIT_CODE_TABLE {
            assert!(
                help.contains(&format!(" {} ", code.as_i32())),
                "missing {code}"
            );
        }
    }
}
