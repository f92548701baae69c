//! Turning the authenticated-initiation options into the transport's [`Initiation`]: which
//! way to initiate, the user, and the password from a file, the environment, the command
//! line or a no-echo prompt. The password lives in zeroizing memory and is never printed.

use std::io::{IsTerminal, Read};
use std::sync::Arc;

use wdsmc::transport::{Credentials, Initiation, KerberosSettings, RpcAuth, RpcInitiation};
use zeroize::Zeroizing;

use super::args::{AuthArgs, AuthMech, InitiationArg};
use super::exit::{ExitCode, Failure};

/// The environment variable a password may come from.
pub const PASSWORD_ENV: &str = "WDSMC_PASSWORD";
/// A password file bigger than this is refused rather than read.
const MAX_PASSWORD_FILE: u64 = 64 * 1024;

fn usage(message: impl std::fmt::Display) -> Failure {
    Failure::msg(ExitCode::Usage, message)
}

/// The initiation the options ask for; `warn` reports a warning about how the password was
/// given.
pub fn initiation(args: &AuthArgs, warn: &mut dyn FnMut(&str)) -> Result<Initiation, Failure> {
    let rpc = match args.initiation {
        InitiationArg::Rpc => true,
        InitiationArg::Udp => false,
        InitiationArg::Auto => args.user.is_some() || args.auth.is_some(),
    };
    if !rpc {
        if args.user.is_some() || args.auth.is_some() {
            return Err(usage(
                "--user and --auth log in over RPC; they cannot be used with --initiation udp",
            ));
        }
        return Ok(Initiation::Udp);
    }
    let mech = args.auth.unwrap_or(AuthMech::Negotiate);
    let kerberos = KerberosSettings {
        kdc: args.kdc.clone(),
        spn: args.spn.clone(),
        ccache: None,
    };
    let auth = match mech {
        AuthMech::Anonymous => {
            if args.user.is_some() {
                return Err(usage(
                    "--auth anonymous logs in without a user; drop --user",
                ));
            }
            RpcAuth::Anonymous
        }
        AuthMech::Ntlm => {
            let Some(user) = &args.user else {
                return Err(usage(
                    "--auth ntlm needs --user [DOMAIN\\]NAME (or --auth anonymous)",
                ));
            };
            RpcAuth::Ntlm(Arc::new(credentials(user, &password(args, warn)?)?))
        }
        AuthMech::Negotiate | AuthMech::Kerberos => {
            let spnego = mech == AuthMech::Negotiate;
            match &args.user {
                // No user: the credential cache's.
                None => RpcAuth::KerberosCache { user: None, spnego },
                // A user without a password given: the cache, when it holds that user's
                // TGT; otherwise the prompt.
                Some(user) if !password_given(args) && cache_holds(user) => {
                    RpcAuth::KerberosCache {
                        user: Some(user.clone()),
                        spnego,
                    }
                }
                Some(user) => {
                    let credentials = Arc::new(credentials(user, &password(args, warn)?)?);
                    if spnego {
                        RpcAuth::Negotiate(credentials)
                    } else {
                        RpcAuth::Kerberos(credentials)
                    }
                }
            }
        }
    };
    let mut rpc = RpcInitiation::new(auth);
    rpc.port = args.rpc_port;
    rpc.endpoint_mapper = args.endpoint_mapper;
    rpc.pre_os = args.pre_os;
    rpc.kerberos = kerberos;
    Ok(Initiation::Rpc(rpc))
}

/// Whether the password comes from an option or the environment (no prompt needed).
fn password_given(args: &AuthArgs) -> bool {
    args.password_file.is_some()
        || args.password.is_some()
        || std::env::var_os(PASSWORD_ENV).is_some()
}

/// Whether the credential cache (KRB5CCNAME or the default) holds an unexpired TGT of
/// `user` (NAME, NAME@REALM or DOMAIN\NAME).
fn cache_holds(user: &str) -> bool {
    use wdsmc::auth::kerberos::ccache::{Ccache, default_path};
    let Ok(Some(path)) = default_path() else {
        return false;
    };
    let Ok(cache) = Ccache::load(&path) else {
        return false;
    };
    let name = user.rsplit('\\').next().unwrap_or(user);
    let (name, realm) = name
        .rsplit_once('@')
        .map_or((name, None), |(n, r)| (n, Some(r)));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    cache.default_client.to_string() == name
        && realm.is_none_or(|r| r.eq_ignore_ascii_case(&cache.default_realm))
        && cache.tgt().is_some_and(|t| t.endtime > now)
}

/// `DOMAIN\NAME`, or `NAME` (also `NAME@DOMAIN`, which NTLM sends as the user with an empty
/// domain and Kerberos takes as the realm).
fn credentials(user: &str, password: &str) -> Result<Credentials, Failure> {
    let (domain, name) = user.split_once('\\').unwrap_or(("", user));
    if name.is_empty() || name.contains('\\') {
        return Err(usage(format!(
            "invalid --user {user:?}: expected NAME or DOMAIN\\NAME"
        )));
    }
    Ok(Credentials::new(domain, name, password))
}

/// The password: `--password-file`, else `--password`, else `WDSMC_PASSWORD`, else a
/// no-echo prompt when stdin and stderr are terminals.
fn password(args: &AuthArgs, warn: &mut dyn FnMut(&str)) -> Result<Zeroizing<String>, Failure> {
    if let Some(path) = &args.password_file {
        let mut text = Zeroizing::new(String::new());
        let read = std::fs::File::open(path)
            .and_then(|file| file.take(MAX_PASSWORD_FILE + 1).read_to_string(&mut text));
        match read {
            Ok(_) if text.len() as u64 > MAX_PASSWORD_FILE => {
                return Err(usage(format!(
                    "password file {} is larger than {MAX_PASSWORD_FILE} bytes; it should hold one line",
                    path.display()
                )));
            }
            Ok(_) => {}
            Err(e) => {
                return Err(usage(format!(
                    "cannot read the password file {}: {e}",
                    path.display()
                )));
            }
        }
        let line = text.lines().next().unwrap_or("");
        return Ok(Zeroizing::new(
            line.strip_suffix('\r').unwrap_or(line).to_string(),
        ));
    }
    if let Some(password) = &args.password {
        warn(
            "--password is visible to other users of this machine; prefer --password-file or WDSMC_PASSWORD",
        );
        return Ok(Zeroizing::new(password.clone()));
    }
    if let Some(password) = std::env::var_os(PASSWORD_ENV) {
        return password
            .into_string()
            .map(Zeroizing::new)
            .map_err(|_| usage(format!("{PASSWORD_ENV} is not valid UTF-8")));
    }
    if std::io::stdin().is_terminal() && std::io::stderr().is_terminal() {
        let user = args.user.as_deref().unwrap_or_default();
        return rpassword::prompt_password(format!("Password for {user}: "))
            .map(Zeroizing::new)
            .map_err(|e| usage(format!("cannot read the password from the terminal: {e}")));
    }
    Err(usage(format!(
        "no password for --user: give --password-file FILE or set {PASSWORD_ENV} (there is no terminal to ask on)"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args() -> AuthArgs {
        AuthArgs {
            user: None,
            password_file: None,
            password: None,
            auth: None,
            kdc: None,
            spn: None,
            rpc_port: 5040,
            endpoint_mapper: false,
            initiation: InitiationArg::Auto,
            pre_os: false,
        }
    }

    #[test]
    fn auto_initiates_over_rpc_only_with_user_or_auth() {
        let mut quiet = |_: &str| {};
        assert!(matches!(
            initiation(&args(), &mut quiet),
            Ok(Initiation::Udp)
        ));
        let mut anonymous = args();
        anonymous.auth = Some(AuthMech::Anonymous);
        assert!(matches!(
            initiation(&anonymous, &mut quiet),
            Ok(Initiation::Rpc(RpcInitiation {
                auth: RpcAuth::Anonymous,
                ..
            }))
        ));
        // Kerberos without a user takes the credential cache, raw or inside SPNEGO.
        let mut kerberos = args();
        kerberos.auth = Some(AuthMech::Kerberos);
        assert!(matches!(
            initiation(&kerberos, &mut quiet),
            Ok(Initiation::Rpc(RpcInitiation {
                auth: RpcAuth::KerberosCache {
                    user: None,
                    spnego: false
                },
                ..
            }))
        ));
        kerberos.auth = Some(AuthMech::Negotiate);
        kerberos.kdc = Some("kdc.example:88".into());
        let Ok(Initiation::Rpc(rpc)) = initiation(&kerberos, &mut quiet) else {
            panic!("not RPC")
        };
        assert!(matches!(
            rpc.auth,
            RpcAuth::KerberosCache {
                user: None,
                spnego: true
            }
        ));
        assert_eq!(rpc.kerberos.kdc.as_deref(), Some("kdc.example:88"));
        let mut ntlm = args();
        ntlm.auth = Some(AuthMech::Ntlm);
        assert_eq!(
            initiation(&ntlm, &mut quiet).err().map(|f| f.code),
            Some(ExitCode::Usage)
        );
        let mut udp_user = args();
        udp_user.user = Some("alice".into());
        udp_user.initiation = InitiationArg::Udp;
        assert!(initiation(&udp_user, &mut quiet).is_err());
    }

    #[test]
    fn the_password_comes_from_the_first_line_of_its_file_and_warns_on_the_command_line() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pw");
        std::fs::write(&file, "s3cret pass\r\nsecond line\n").unwrap();
        let mut with_file = args();
        with_file.user = Some("WDS\\alice".into());
        with_file.password_file = Some(file);
        let mut warnings = Vec::new();
        let Initiation::Rpc(rpc) =
            initiation(&with_file, &mut |w| warnings.push(w.to_string())).unwrap()
        else {
            panic!("not RPC")
        };
        let RpcAuth::Negotiate(credentials) = rpc.auth else {
            panic!("not negotiate")
        };
        assert_eq!(
            (
                credentials.domain.as_str(),
                credentials.user.as_str(),
                credentials.password.as_str()
            ),
            ("WDS", "alice", "s3cret pass")
        );
        assert!(warnings.is_empty());
        assert!(!format!("{credentials:?}").contains("s3cret"));

        let mut on_line = args();
        on_line.user = Some("alice".into());
        // Not a word of the warning itself, so the check below means the password is left out.
        on_line.password = Some("hunter2-on-the-line".into());
        initiation(&on_line, &mut |w| warnings.push(w.to_string())).unwrap();
        assert_eq!(warnings.len(), 1);
        assert!(!warnings[0].contains("hunter2"));
    }
}
