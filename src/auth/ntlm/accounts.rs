//! Where the acceptor finds users: the [`AccountStore`] trait and an in-memory store read
//! from an accounts file of lines `[DOMAIN\]NAME:PASSWORD` (`#` starts a comment line).

use super::keys::nt_hash;
use crate::auth::crypto::Key16;

/// One account, as the acceptor needs it: canonical names and the NT hash (never the
/// password).
#[derive(Clone)]
pub struct Account {
    /// The account's domain; empty for an account valid under any domain name.
    pub domain: String,
    pub user: String,
    nt_hash: Key16,
}

impl Account {
    pub fn new(domain: &str, user: &str, password: &str) -> Account {
        Account::from_nt_hash(domain, user, *nt_hash(password))
    }

    pub fn from_nt_hash(domain: &str, user: &str, nt_hash: [u8; 16]) -> Account {
        Account {
            domain: domain.to_owned(),
            user: user.to_owned(),
            nt_hash: zeroize::Zeroizing::new(nt_hash),
        }
    }

    pub(crate) fn nt_hash(&self) -> &[u8; 16] {
        &self.nt_hash
    }
}

impl std::fmt::Debug for Account {
    // Leaves the hash out, so an Account can be logged.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Account")
            .field("domain", &self.domain)
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

/// Looks accounts up for the NTLM acceptor.
pub trait AccountStore: Send + Sync {
    /// The account for `user` (case-insensitive) in `domain` as the client named it (may be
    /// empty). A store with the same user name in several domains must pick by domain.
    fn lookup(&self, domain: &str, user: &str) -> Option<Account>;
}

/// A bad line in an accounts file. Says where and what, never the password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccountsError {
    #[error("accounts file line {line}: {reason}")]
    BadLine { line: usize, reason: &'static str },
    #[error("accounts file {what}")]
    File { what: String },
}

/// Accounts file bigger than this is refused rather than read.
pub const MAX_ACCOUNTS_FILE: u64 = 1 << 20;

/// An in-memory account list.
#[derive(Debug, Clone, Default)]
pub struct Accounts {
    accounts: Vec<Account>,
}

fn same(a: &str, b: &str) -> bool {
    a == b || a.to_uppercase() == b.to_uppercase()
}

impl Accounts {
    pub fn new(accounts: Vec<Account>) -> Accounts {
        Accounts { accounts }
    }

    /// Parses an accounts file's text.
    pub fn parse(text: &str) -> Result<Accounts, AccountsError> {
        let mut accounts: Vec<Account> = Vec::new();
        for (n, raw) in text.lines().enumerate() {
            let line = n + 1;
            let bad = |reason| AccountsError::BadLine { line, reason };
            let raw = raw.strip_suffix('\r').unwrap_or(raw);
            let t = raw.trim_start();
            if t.is_empty() || t.starts_with('#') {
                continue;
            }
            // The password is everything after the first ':', spaces and colons included.
            let (name, password) = t
                .split_once(':')
                .ok_or(bad("expected [DOMAIN\\]NAME:PASSWORD"))?;
            let name = name.trim_end();
            let (domain, user) = match name.split_once('\\') {
                Some((d, u)) => (d, u),
                None => ("", name),
            };
            if name.contains('\\') && domain.is_empty() {
                return Err(bad("empty domain before '\\'"));
            }
            if user.is_empty() {
                return Err(bad("empty user name"));
            }
            if user.contains('\\') || user.contains('@') {
                return Err(bad("user name contains '\\' or '@'"));
            }
            if password.is_empty() {
                return Err(bad("empty password"));
            }
            if accounts
                .iter()
                .any(|a| same(&a.domain, domain) && same(&a.user, user))
            {
                return Err(bad("same user listed twice"));
            }
            accounts.push(Account::new(domain, user, password));
        }
        Ok(Accounts { accounts })
    }

    /// Reads and parses an accounts file (at most [`MAX_ACCOUNTS_FILE`] bytes).
    pub fn load(path: &std::path::Path) -> Result<Accounts, AccountsError> {
        use std::io::Read;
        let file = |e: std::io::Error| AccountsError::File {
            what: format!("{}: {e}", path.display()),
        };
        let mut text = zeroize::Zeroizing::new(String::new());
        let f = std::fs::File::open(path).map_err(file)?;
        f.take(MAX_ACCOUNTS_FILE + 1)
            .read_to_string(&mut text)
            .map_err(file)?;
        if text.len() as u64 > MAX_ACCOUNTS_FILE {
            return Err(AccountsError::File {
                what: format!("{}: larger than {MAX_ACCOUNTS_FILE} bytes", path.display()),
            });
        }
        Accounts::parse(&text)
    }

    pub fn len(&self) -> usize {
        self.accounts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.accounts.is_empty()
    }
}

impl AccountStore for Accounts {
    fn lookup(&self, domain: &str, user: &str) -> Option<Account> {
        // A user principal name: clients (`wdsmc get --user alice@corp.example` among them,
        // Windows and pyspnego too) send `NAME@SUFFIX` as the user with an empty domain
        // (MS-NLMP 2.2.1.3). Accounts are listed as DOMAIN\NAME, so the suffix stands for
        // the domain: the domain itself or a DNS name whose first label it is (CORP for
        // corp.example, the NetBIOS name a domain gets by default).
        if domain.is_empty()
            && let Some((name, suffix)) = user.rsplit_once('@')
            && !name.is_empty()
            && !suffix.is_empty()
        {
            let label = suffix.split('.').next().unwrap_or(suffix);
            let upn = self.accounts.iter().find(|a| {
                !a.domain.is_empty()
                    && (same(&a.domain, suffix) || same(&a.domain, label))
                    && same(&a.user, name)
            });
            if let Some(account) = upn.or_else(|| self.domain_less(name)) {
                return Some(account.clone());
            }
        }
        // An entry for the named domain wins over a domain-less one.
        let named = self
            .accounts
            .iter()
            .find(|a| !a.domain.is_empty() && same(&a.domain, domain) && same(&a.user, user));
        named.or_else(|| self.domain_less(user)).cloned()
    }
}

impl Accounts {
    fn domain_less(&self, user: &str) -> Option<&Account> {
        self.accounts
            .iter()
            .find(|a| a.domain.is_empty() && same(&a.user, user))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_looks_up() {
        let a = Accounts::parse(
            "# WDS accounts\n\nWDS\\alice:Passw0rd!\r\nOTHER\\alice:x:y z\n  bob : pw with space\n",
        )
        .unwrap();
        assert_eq!(a.len(), 3);
        let wds = a.lookup("wds", "ALICE").unwrap();
        assert_eq!((wds.domain.as_str(), wds.user.as_str()), ("WDS", "alice"));
        assert_eq!(wds.nt_hash(), &*nt_hash("Passw0rd!"));
        assert_eq!(
            a.lookup("OTHER", "alice").unwrap().nt_hash(),
            &*nt_hash("x:y z")
        );
        assert!(a.lookup("", "alice").is_none());
        assert!(a.lookup("NOPE", "alice").is_none());
        // Domain-less entries serve any domain name.
        assert_eq!(
            a.lookup("ANY", "Bob").unwrap().nt_hash(),
            &*nt_hash(" pw with space")
        );
    }

    #[test]
    fn user_principal_names_find_their_domain_account() {
        let a = Accounts::parse("WDS\\alice:Passw0rd!\nCORP\\alice:other\nbob:pw\n").unwrap();
        // NTLM sends a UPN as the user name with an empty domain.
        for (upn, password) in [
            ("alice@WDS", "Passw0rd!"),
            ("ALICE@wds", "Passw0rd!"),
            ("alice@corp.example", "other"),
            ("alice@Corp", "other"),
        ] {
            let account = a.lookup("", upn).unwrap_or_else(|| panic!("{upn}"));
            assert_eq!(account.nt_hash(), &*nt_hash(password), "{upn}");
        }
        assert_eq!(a.lookup("", "bob@anywhere.example").unwrap().user, "bob");
        assert!(a.lookup("", "alice@other.example").is_none());
        assert!(a.lookup("", "@WDS").is_none());
        assert!(a.lookup("", "alice@").is_none());
        // With a domain given, the user name is taken as it is.
        assert!(a.lookup("WDS", "alice@WDS").is_none());
    }

    #[test]
    fn bad_lines_name_the_line_not_the_password() {
        for (text, line, reason) in [
            (
                "alice:pw\nno-colon-secret\n",
                2,
                "expected [DOMAIN\\]NAME:PASSWORD",
            ),
            ("\\alice:secret", 1, "empty domain before '\\'"),
            ("WDS\\:secret", 1, "empty user name"),
            ("a\\b\\c:secret", 1, "user name contains '\\' or '@'"),
            ("alice:", 1, "empty password"),
            (
                "#\nalice:secret\nALICE:secret2",
                3,
                "same user listed twice",
            ),
        ] {
            let e = Accounts::parse(text).unwrap_err();
            assert_eq!(e, AccountsError::BadLine { line, reason }, "{text:?}");
            assert!(!e.to_string().contains("secret"));
        }
    }
}
