//! The seam between the RPC connection machines and a security provider (NTLM, SPNEGO,
//! Kerberos), which lives elsewhere. The machines only move tokens between legs and call
//! [`Protection`] on each request and response fragment.
//!
//! Legs, as the machines drive them:
//! * client: `step(None)` gives the bind token; each later `step(Some(reply))` gets the
//!   server's token from bind_ack / alter_context_resp (empty if it sent none).
//!   `Continue(t)` sends `t` in alter_context and waits; `Done(Some(t))` sends `t` in auth3
//!   (no reply); `Done(None)` ends the exchange. auth3 is for providers with an odd number
//!   of legs (NTLM, and raw DCE-style Kerberos's third leg, MS-RPCE 3.3.1.5.2): SPNEGO must
//!   return `Continue` for its last client token, and `Done(None)` on the (possibly empty)
//!   answer.
//! * server: `step(token)` for each bind / alter_context / auth3 token; `Continue(t)` and
//!   `Done(Some(t))` put `t` in the bind_ack / alter_context_resp, `Done(None)` sends none.
//!
//! `header` passed to [`Protection`] is the 16-byte common header plus the PDU's fixed fields
//! before the stub, with the final frag_length and auth_length (header signing); `body` is
//! the stub plus auth padding; `trailer` is the 8-byte sec_trailer.

/// One step of the token exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthStep {
    /// Send this token and expect an answer.
    Continue(Vec<u8>),
    /// The context is established; `Some` is a last token to send (e.g. NTLM AUTHENTICATE).
    Done(Option<Vec<u8>>),
}

/// A failure of the security provider. Variants never carry secrets (no keys, passwords or
/// tokens), so they can be logged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("credentials rejected")]
    RejectedCredentials,
    #[error("malformed or unexpected security token: {reason}")]
    BadToken { reason: &'static str },
    #[error("message signature does not verify")]
    BadSignature,
    #[error("security provider error in {operation}{}: {detail}", status.map(|s| format!(" (status 0x{s:08x})")).unwrap_or_default())]
    Other {
        /// Provider call that failed, e.g. `"accept_security_context"`.
        operation: &'static str,
        /// Provider status code, if it has one (e.g. an SSPI SECURITY_STATUS).
        status: Option<u32>,
        /// Human-readable detail; must not contain secrets.
        detail: String,
    },
}

/// Client side of a security context.
pub trait ClientAuth: Send {
    /// `auth_type` for the sec_trailer (e.g. 0x09 SPNEGO, 0x0A NTLM, 0x10 Kerberos).
    fn auth_type(&self) -> u8;
    fn step(&mut self, input: Option<&[u8]>) -> Result<AuthStep, AuthError>;
    fn into_protection(self: Box<Self>) -> Result<Box<dyn Protection>, AuthError>;
}

/// Server side of a security context.
pub trait ServerAuth: Send {
    fn auth_type(&self) -> u8;
    fn step(&mut self, input: &[u8]) -> Result<AuthStep, AuthError>;
    /// The authenticated user (e.g. `DOMAIN\user`), once known.
    fn user(&self) -> Option<String>;
    fn into_protection(self: Box<Self>) -> Result<Box<dyn Protection>, AuthError>;
}

/// Per-message protection of an established context (PKT_PRIVACY).
pub trait Protection: Send {
    /// Length of the signature `seal` returns (16 for NTLM).
    fn signature_len(&self) -> usize;
    /// PKT_PRIVACY: seal `body` in place, return the signature over header ‖ plaintext body ‖
    /// trailer.
    fn seal(
        &mut self,
        header: &[u8],
        body: &mut [u8],
        trailer: &[u8],
    ) -> Result<Vec<u8>, AuthError>;
    /// Verify `signature` and unseal `body` in place.
    fn unseal(
        &mut self,
        header: &[u8],
        body: &mut [u8],
        trailer: &[u8],
        signature: &[u8],
    ) -> Result<(), AuthError>;
    /// Told once, before the first seal/unseal, whether both sides agreed on header signing
    /// (PFC_SUPPORT_HEADER_SIGN, MS-RPCE 3.3.1.5.2.2). Added to the agreed seam because
    /// Kerberos must then leave `header` and `trailer` out of its checksum; NTLM signs them
    /// either way and can ignore it.
    fn set_header_signing(&mut self, negotiated: bool) {
        let _ = negotiated;
    }
}
