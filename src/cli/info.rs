//! `wdsmc info`: session initiation only, then print what the server announced.

use serde_json::json;

use super::InfoArgs;
use super::exit::{ExitCode, Failure};
use super::units::format_bytes;
use crate::transport::{Request, initiate};

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
    let info =
        initiate(&request).map_err(|e| Failure::new(ExitCode::for_transport_error(&e), e))?;
    if args.json {
        let description = json!({
            "server": info.server.to_string(),
            "namespace": args.source.namespace,
            "object": args.object,
            "group": info.group.ip().to_string(),
            "port": info.group.port(),
            "interface": info.local_address.to_string(),
            "session_id": info.session_id,
            "size": info.content_size,
            "block_size": info.block_size,
            "total_blocks": info.total_blocks,
        });
        println!("{description}");
    } else {
        println!("server:       {}", info.server);
        println!("object:       {}/{}", args.source.namespace, args.object);
        println!("group:        {}", info.group.ip());
        println!("port:         {}", info.group.port());
        println!("interface:    {}", info.local_address);
        println!(
            "session id:   {} (0x{:08X})",
            info.session_id, info.session_id
        );
        println!(
            "size:         {} bytes ({})",
            info.content_size,
            format_bytes(info.content_size)
        );
        println!("block size:   {} bytes", info.block_size);
        println!("total blocks: {}", info.total_blocks);
    }
    Ok(())
}
