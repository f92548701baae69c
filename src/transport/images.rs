//! MS-WDSOSD image enumeration (`WDS_OP_IMG_ENUMERATE`) over the same authenticated RPC
//! channel as session initiation: what `wdsmc images` shows.

use std::net::SocketAddr;
use std::time::Duration;

use super::error::{RequestError, RpcFailure};
use super::{Event, RpcInitiation, TransportError, net, rpc_initiation};
use crate::wire::wdsc::{ImageEnumOutcome, ImageEnumReply, ImageEnumRequest};

/// Where to ask and how to log in.
#[derive(Debug, Clone)]
pub struct ImagesRequest {
    /// Server host or address (a `:port` suffix is the UDP initiation port and is ignored).
    pub server: String,
    pub rpc: RpcInitiation,
    /// Limit for the whole exchange: connect, login, call.
    pub timeout: Duration,
    /// `CC` to send; `None` asks for the version 1 list the specification's example shows.
    pub client_caps: Option<u32>,
    /// Deliver [`Event::RpcTrace`] for every PDU.
    pub trace: bool,
}

impl ImagesRequest {
    pub fn new(server: impl Into<String>, rpc: RpcInitiation) -> Self {
        Self {
            server: server.into(),
            rpc,
            timeout: Duration::from_secs(30),
            client_caps: None,
            trace: false,
        }
    }
}

/// The server's answer.
#[derive(Debug, Clone)]
pub struct ImageList {
    /// The server's address that was asked.
    pub server: SocketAddr,
    pub reply: ImageEnumReply,
}

/// Asks the server for its image list. A non-zero OpCode-ErrorCode is
/// [`TransportError::Refused`] (access denied: [`TransportError::AuthFailed`]).
pub fn list_images(
    request: &ImagesRequest,
    emit: &mut dyn FnMut(Event<'_>),
) -> Result<ImageList, TransportError> {
    net::check_server_syntax(&request.server)?;
    let server = net::resolve_server(&request.server, crate::wire::msi::MSI_PORT)?;
    let packet = ImageEnumRequest {
        client_caps: request.client_caps,
    }
    .encode()
    .map_err(|e| RequestError::ClientName {
        name: String::new(),
        reason: e.to_string(),
    })?;
    let reply = rpc_initiation::call(
        &request.rpc,
        &request.server,
        server,
        request.timeout,
        request.trace,
        &packet,
        emit,
    )?;
    match ImageEnumOutcome::decode(&reply).map_err(RpcFailure::BadReply)? {
        ImageEnumOutcome::List(reply) => Ok(ImageList { server, reply }),
        ImageEnumOutcome::Failed {
            code: crate::wire::wdsc::error_code::ACCESS_DENIED,
        } => Err(super::AuthFailure::AccessDenied.into()),
        ImageEnumOutcome::Failed { code } => Err(TransportError::Refused { code }),
    }
}
