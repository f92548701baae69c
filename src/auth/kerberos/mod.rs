//! Kerberos V5 (RFC 4120) for DCE/RPC logins, written for this crate: the AES encryption
//! types (RFC 3961/3962), the messages an initiator and an acceptor need, the AS and TGS
//! exchanges (sans-IO: the transport sends and receives), GSS-API krb5 (RFC 4121) in the
//! DCE style of MS-KILE 3.4.5.1 with the wrap tokens MS-KILE 3.4.5.4.1 describes for
//! DCE/RPC, keytab reading and credential cache reading and writing.

pub mod crypto;
