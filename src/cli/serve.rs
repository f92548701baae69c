//! `wdsmc serve`: the reference server, until SIGINT or SIGTERM.

use std::net::IpAddr;
use std::sync::mpsc;

use wdsmc::auth::Accounts;
use wdsmc::auth::kerberos::keytab::Keytab;
use wdsmc::server::{
    KerberosAcceptorConfig, LogFormat, NamespaceConfig, RpcConfig, Server, ServerConfig,
    ServerError,
};
use wdsmc::wire::mt::SecurityType;
use wdsmc::wire::security::SecModes;

use super::args::{LogFormatArg, SecurityModeArg, ServeArgs};
use super::exit::{ExitCode, Failure};
use super::signals;

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
    match server.rpc_addr() {
        Some(rpc) => eprintln!(
            "wdsmc: serving on {} and RPC {rpc} (Ctrl-C to stop)",
            server.msi_addr()
        ),
        None => eprintln!("wdsmc: serving on {} (Ctrl-C to stop)", server.msi_addr()),
    }
    // A signal stops the server through its handle; `wait` also returns if the server stops
    // on its own (a fatal error), which must not look like a clean stop.
    let handle = server.shutdown_handle();
    let signalled = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watcher_signalled = std::sync::Arc::clone(&signalled);
    std::thread::spawn(move || {
        if stop_rx.recv().is_ok() {
            watcher_signalled.store(true, std::sync::atomic::Ordering::SeqCst);
            eprintln!("wdsmc: stopping");
            handle.shutdown();
        }
    });
    server.wait();
    server.shutdown();
    if signalled.load(std::sync::atomic::Ordering::SeqCst) {
        Ok(())
    } else {
        Err(Failure::new(
            ExitCode::Internal,
            anyhow::anyhow!("the server stopped unexpectedly; see the log lines above"),
        ))
    }
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
    if args.require_auth && args.accounts.is_none() && args.keytab.is_none() {
        return Err(Failure::msg(
            ExitCode::Usage,
            "--require-auth needs --accounts or --keytab: someone must be able to log in",
        ));
    }
    if args.accounts.is_some() || args.keytab.is_some() {
        let accounts = match &args.accounts {
            Some(path) => Accounts::load(path).map_err(|e| Failure::new(ExitCode::Usage, e))?,
            None => Accounts::new(Vec::new()),
        };
        let mut rpc = RpcConfig::new(accounts);
        if let Some(path) = &args.keytab {
            let keytab = Keytab::load(path).map_err(|e| Failure::new(ExitCode::Usage, e))?;
            if let Some(spn) = &args.spn {
                let (name, realm) = wdsmc::auth::kerberos::parse_principal(
                    spn,
                    wdsmc::auth::kerberos::messages::NT_SRV_INST,
                );
                if !keytab.has(&name, realm.as_deref()) {
                    return Err(Failure::msg(
                        ExitCode::Usage,
                        format!("keytab {} holds no key for {spn}", path.display()),
                    ));
                }
            }
            rpc.kerberos = Some(KerberosAcceptorConfig {
                keytab: std::sync::Arc::new(keytab),
                spn: args.spn.clone(),
            });
        }
        rpc.port = args.rpc_port;
        rpc.require_auth = args.require_auth;
        rpc.allow_anonymous = args.allow_anonymous;
        rpc.sign_key_bits = args.sign_key_bits as usize;
        let (server, client) = match args.security_mode {
            SecurityModeArg::Checksum => (SecurityType::Checksum, SecurityType::Checksum),
            SecurityModeArg::Hash => (SecurityType::Hash, SecurityType::Hash),
            SecurityModeArg::Sign => (SecurityType::Sign, SecurityType::Hash),
        };
        rpc.modes = SecModes { client, server };
        config.rpc = Some(rpc);
    }
    Ok(config)
}
