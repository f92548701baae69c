//! `wdsmc info`: session initiation only, then print what the server announced.

use serde_json::json;

use wdsmc::transport::{Initiation, Request, initiate};

use super::args::InfoArgs;
use super::exit::{self, ExitCode, Failure};
use super::login;
use super::units::format_bytes;

pub fn run(args: InfoArgs) -> Result<(), Failure> {
    let mut request = Request::new(
        args.source.server.clone(),
        args.source.namespace.clone(),
        args.object.clone(),
    );
    request.interface = args.source.interface.clone();
    if let Some(limit) = args.source.start_timeout {
        request.timeouts.initiation = limit;
    }
    request.initiation = login::initiation(&args.source.auth, &mut |warning| {
        eprintln!("wdsmc: warning: {warning}")
    })?;
    let rpc = matches!(request.initiation, Initiation::Rpc(_));
    let info = initiate(&request).map_err(|e| {
        Failure::msg(
            ExitCode::for_transport_error(&e),
            exit::transport_message(&e, rpc),
        )
    })?;
    let session = &info.params;
    if args.json {
        let description = json!({
            "server": session.server.to_string(),
            "namespace": args.source.namespace,
            "object": args.object,
            "group": session.group.ip().to_string(),
            "port": session.group.port(),
            "interface": info.local_address.to_string(),
            "session_id": session.session_id,
            "size": session.content_size,
            "block_size": session.block_size,
            "total_blocks": session.total_blocks,
            "authenticated": info.authenticated,
            "server_security": info.security.modes.server.name(),
            "client_security": info.security.modes.client.name(),
        });
        println!("{description}");
    } else {
        println!("server:       {}", session.server);
        println!("object:       {}/{}", args.source.namespace, args.object);
        println!("group:        {}", session.group.ip());
        println!("port:         {}", session.group.port());
        println!("interface:    {}", info.local_address);
        println!(
            "session id:   {} (0x{:08X})",
            session.session_id, session.session_id
        );
        println!(
            "size:         {} bytes ({})",
            session.content_size,
            format_bytes(session.content_size)
        );
        println!("block size:   {} bytes", session.block_size);
        println!("total blocks: {}", session.total_blocks);
        println!(
            "security:     server {}, client {} ({})",
            info.security.modes.server.name(),
            info.security.modes.client.name(),
            if info.authenticated {
                "authenticated over RPC"
            } else {
                "unauthenticated, over UDP"
            }
        );
    }
    Ok(())
}
