//! `wdsmc serve`: the reference server, until SIGINT or SIGTERM.

use std::net::IpAddr;
use std::sync::mpsc;

use super::exit::{ExitCode, Failure};
use super::{LogFormatArg, ServeArgs, signals};
use crate::server::{LogFormat, NamespaceConfig, Server, ServerConfig, ServerError};

pub fn run(args: ServeArgs) -> Result<(), Failure> {
    let config = build_config(&args)?;
    let (stop_tx, stop_rx) = mpsc::channel::<()>();
    signals::on_interrupt(move || {
        let _ = stop_tx.send(());
    });
    let server = Server::start(config).map_err(|error| {
        let code = match &error {
            ServerError::Bind { .. } => ExitCode::NetworkSetup,
            ServerError::Namespace { .. } | ServerError::Config(_) => ExitCode::Usage,
            ServerError::Io(_) => ExitCode::Internal,
        };
        Failure::new(code, error)
    })?;
    eprintln!("wdsmc: serving on {} (Ctrl-C to stop)", server.msi_addr());
    let _ = stop_rx.recv();
    eprintln!("wdsmc: stopping");
    server.shutdown();
    Ok(())
}

fn build_config(args: &ServeArgs) -> Result<ServerConfig, Failure> {
    let namespaces = args
        .namespace
        .iter()
        .map(|(name, root)| NamespaceConfig {
            name: name.clone(),
            root: root.clone(),
        })
        .collect();
    let mut config = ServerConfig::new(namespaces);
    config.listen = args.listen;
    config.msi_port = args.msi_port;
    match args.group_range {
        Some((IpAddr::V4(base), prefix)) => config.group_range_v4 = (base, prefix),
        Some((IpAddr::V6(base), prefix)) => config.group_range_v6 = Some((base, prefix)),
        None => {}
    }
    if let Some(range) = args.port_range {
        config.port_range = range;
    }
    if let Some(size) = args.block_size {
        config.block_size = size;
    }
    config.max_rate = args.max_rate;
    config.auto_disconnect_below = args.auto_disconnect_below;
    if let Some(ttl) = args.ttl {
        config.ttl = ttl;
    }
    if let Some(timeout) = args.session_timeout {
        config.session_inactivity = timeout;
    }
    config.log_format = match args.log_format {
        LogFormatArg::Human => LogFormat::Human,
        LogFormatArg::Json => LogFormat::Json,
    };
    Ok(config)
}
