//! SPNEGO tokens (RFC 4178 4.2, MS-SPNG 2.2): NegTokenInit inside the GSS-API
//! InitialContextToken, NegTokenResp, and the MechTypeList the mechListMIC covers.

use super::der::{self, Tlv};
use crate::rpc::security::AuthError;

/// Largest SPNEGO token we decode (a Windows Kerberos ticket can be tens of kilobytes).
pub const MAX_TOKEN_LEN: usize = 64 * 1024;
/// Most mechanisms we read from a mechTypes list.
pub const MAX_MECHS: usize = 32;

/// OID contents (without tag and length).
pub const OID_SPNEGO: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x02]; // 1.3.6.1.5.5.2
pub const OID_NTLM: &[u8] = &[0x2b, 0x06, 0x01, 0x04, 0x01, 0x82, 0x37, 0x02, 0x02, 0x0a]; // 1.3.6.1.4.1.311.2.2.10
pub const OID_KRB5: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x12, 0x01, 0x02, 0x02]; // 1.2.840.113554.1.2.2
pub const OID_MS_KRB5: &[u8] = &[0x2a, 0x86, 0x48, 0x82, 0xf7, 0x12, 0x01, 0x02, 0x02]; // 1.2.840.48018.1.2.2

const OID: u8 = 0x06;
const OCTET_STRING: u8 = 0x04;
const ENUMERATED: u8 = 0x0a;
const SEQUENCE: u8 = 0x30;
const GSS_APP0: u8 = 0x60;
const fn ctx(n: u8) -> u8 {
    0xa0 | n
}

fn bad(reason: &'static str) -> AuthError {
    AuthError::BadToken { reason }
}

/// A mechanism we can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mech {
    Ntlm,
    /// Kerberos under the IETF OID or Microsoft's variant.
    Kerberos,
    Other,
}

impl Mech {
    pub fn of(oid: &[u8]) -> Mech {
        match oid {
            OID_NTLM => Mech::Ntlm,
            OID_KRB5 | OID_MS_KRB5 => Mech::Kerberos,
            _ => Mech::Other,
        }
    }
}

/// negState (RFC 4178 4.2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NegState {
    AcceptCompleted = 0,
    AcceptIncomplete = 1,
    Reject = 2,
    RequestMic = 3,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NegTokenInit<'a> {
    /// OID contents, in the initiator's order of preference.
    pub mech_types: Vec<&'a [u8]>,
    /// The MechTypeList DER as received: the mechListMIC is computed over these bytes.
    pub mech_types_der: &'a [u8],
    pub mech_token: Option<&'a [u8]>,
    pub mech_list_mic: Option<&'a [u8]>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NegTokenResp<'a> {
    pub neg_state: Option<NegState>,
    pub supported_mech: Option<&'a [u8]>,
    pub response_token: Option<&'a [u8]>,
    pub mech_list_mic: Option<&'a [u8]>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NegotiationToken<'a> {
    Init(NegTokenInit<'a>),
    Resp(NegTokenResp<'a>),
}

/// Decodes a token as it arrives in an RPC auth_value: InitialContextToken(NegTokenInit),
/// a bare NegTokenInit, or NegTokenResp.
pub fn decode(b: &[u8]) -> Result<NegotiationToken<'_>, AuthError> {
    if b.len() > MAX_TOKEN_LEN {
        return Err(bad("SPNEGO token too long"));
    }
    let (t, rest) = der::read(b)?;
    if !rest.is_empty() {
        return Err(bad("SPNEGO: bytes after the token"));
    }
    match t.tag {
        GSS_APP0 => {
            let (oid, inner) = der::read(t.value)?;
            if oid.tag != OID || oid.value != OID_SPNEGO {
                return Err(bad("GSS token is not SPNEGO"));
            }
            let init = der::read_only(inner, ctx(0), "SPNEGO: expected negTokenInit")?;
            Ok(NegotiationToken::Init(decode_init(init)?))
        }
        t0 if t0 == ctx(0) => Ok(NegotiationToken::Init(decode_init(t)?)),
        t1 if t1 == ctx(1) => Ok(NegotiationToken::Resp(decode_resp(t)?)),
        _ => Err(bad("not an SPNEGO token")),
    }
}

/// The context-tagged fields of a SEQUENCE, in increasing tag order.
fn fields<'a>(outer: Tlv<'a>) -> Result<Vec<(u8, Tlv<'a>)>, AuthError> {
    let seq = der::read_only(outer.value, SEQUENCE, "SPNEGO: expected a SEQUENCE")?;
    let mut out: Vec<(u8, Tlv<'a>)> = Vec::new();
    let mut rest = seq.value;
    while !rest.is_empty() {
        let (f, r) = der::read(rest)?;
        rest = r;
        if f.tag & 0xe0 != 0xa0 {
            return Err(bad("SPNEGO: unexpected field"));
        }
        let n = f.tag & 0x1f;
        if out.last().is_some_and(|(last, _)| *last >= n) {
            return Err(bad("SPNEGO: fields out of order"));
        }
        // The value of each [n] EXPLICIT field is exactly one TLV.
        let (inner, extra) = der::read(f.value)?;
        if !extra.is_empty() {
            return Err(bad("SPNEGO: field holds more than one value"));
        }
        // At most 5 distinct tags exist; bounded by the input anyway.
        out.push((n, inner));
    }
    Ok(out)
}

fn octets<'a>(t: Tlv<'a>) -> Result<&'a [u8], AuthError> {
    if t.tag != OCTET_STRING {
        return Err(bad("SPNEGO: expected an OCTET STRING"));
    }
    Ok(t.value)
}

fn oid<'a>(t: Tlv<'a>) -> Result<&'a [u8], AuthError> {
    if t.tag != OID {
        return Err(bad("SPNEGO: expected an OID"));
    }
    Ok(t.value)
}

fn decode_init<'a>(t: Tlv<'a>) -> Result<NegTokenInit<'a>, AuthError> {
    let mut init = NegTokenInit {
        mech_types: Vec::new(),
        mech_types_der: &[],
        mech_token: None,
        mech_list_mic: None,
    };
    let mut have_types = false;
    for (n, v) in fields(t)? {
        match n {
            0 => {
                if v.tag != SEQUENCE {
                    return Err(bad("SPNEGO: mechTypes is not a SEQUENCE"));
                }
                let mut rest = v.value;
                while !rest.is_empty() {
                    let (m, r) = der::read(rest)?;
                    rest = r;
                    if init.mech_types.len() == MAX_MECHS {
                        return Err(bad("SPNEGO: too many mechanisms"));
                    }
                    init.mech_types.push(oid(m)?);
                }
                init.mech_types_der = v.raw;
                have_types = true;
            }
            1 => {} // reqFlags: deprecated, ignored (RFC 4178 4.2.1).
            2 => init.mech_token = Some(octets(v)?),
            // [3] is mechListMIC in RFC 4178 and negHints (a SEQUENCE) in MS-SPNG's
            // NegTokenInit2; [4] is NegTokenInit2's mechListMIC.
            3 if v.tag == SEQUENCE => {}
            3 | 4 => init.mech_list_mic = Some(octets(v)?),
            _ => return Err(bad("SPNEGO: unknown negTokenInit field")),
        }
    }
    if !have_types || init.mech_types.is_empty() {
        return Err(bad("SPNEGO: negTokenInit without mechanisms"));
    }
    Ok(init)
}

fn decode_resp<'a>(t: Tlv<'a>) -> Result<NegTokenResp<'a>, AuthError> {
    let mut resp = NegTokenResp::default();
    for (n, v) in fields(t)? {
        match n {
            0 => {
                if v.tag != ENUMERATED || v.value.len() != 1 {
                    return Err(bad("SPNEGO: bad negState"));
                }
                resp.neg_state = Some(match v.value[0] {
                    0 => NegState::AcceptCompleted,
                    1 => NegState::AcceptIncomplete,
                    2 => NegState::Reject,
                    3 => NegState::RequestMic,
                    _ => return Err(bad("SPNEGO: unknown negState")),
                });
            }
            1 => resp.supported_mech = Some(oid(v)?),
            2 => resp.response_token = Some(octets(v)?),
            3 => resp.mech_list_mic = Some(octets(v)?),
            _ => return Err(bad("SPNEGO: unknown negTokenResp field")),
        }
    }
    Ok(resp)
}

/// MechTypeList DER: SEQUENCE OF OID.
pub fn mech_type_list(mechs: &[&[u8]]) -> Vec<u8> {
    let mut inner = Vec::new();
    for m in mechs {
        der::write(&mut inner, OID, m);
    }
    der::tlv(SEQUENCE, &inner)
}

/// InitialContextToken { SPNEGO, negTokenInit { mechTypes, mechToken } }.
pub fn encode_init(mech_types_der: &[u8], mech_token: Option<&[u8]>) -> Vec<u8> {
    let mut seq = der::tlv(ctx(0), mech_types_der);
    if let Some(t) = mech_token {
        seq.extend(der::tlv(ctx(2), &der::tlv(OCTET_STRING, t)));
    }
    let init = der::tlv(ctx(0), &der::tlv(SEQUENCE, &seq));
    let mut app = der::tlv(OID, OID_SPNEGO);
    app.extend(init);
    der::tlv(GSS_APP0, &app)
}

/// negTokenResp, fields present as given.
pub fn encode_resp(r: &NegTokenResp<'_>) -> Vec<u8> {
    let mut seq = Vec::new();
    if let Some(s) = r.neg_state {
        der::write(&mut seq, ctx(0), &der::tlv(ENUMERATED, &[s as u8]));
    }
    if let Some(m) = r.supported_mech {
        der::write(&mut seq, ctx(1), &der::tlv(OID, m));
    }
    if let Some(t) = r.response_token {
        der::write(&mut seq, ctx(2), &der::tlv(OCTET_STRING, t));
    }
    if let Some(m) = r.mech_list_mic {
        der::write(&mut seq, ctx(3), &der::tlv(OCTET_STRING, m));
    }
    der::tlv(ctx(1), &der::tlv(SEQUENCE, &seq))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// BER encoding of an OID from its arcs, to check the constants above.
    fn oid_of(arcs: &[u64]) -> Vec<u8> {
        let mut v = vec![(arcs[0] * 40 + arcs[1]) as u8];
        for &a in &arcs[2..] {
            let mut groups = vec![(a & 0x7f) as u8];
            let mut x = a >> 7;
            while x > 0 {
                groups.push(0x80 | (x & 0x7f) as u8);
                x >>= 7;
            }
            v.extend(groups.iter().rev());
        }
        v
    }

    #[test]
    fn oids() {
        assert_eq!(OID_SPNEGO, oid_of(&[1, 3, 6, 1, 5, 5, 2]));
        assert_eq!(OID_NTLM, oid_of(&[1, 3, 6, 1, 4, 1, 311, 2, 2, 10]));
        assert_eq!(OID_KRB5, oid_of(&[1, 2, 840, 113554, 1, 2, 2]));
        assert_eq!(OID_MS_KRB5, oid_of(&[1, 2, 840, 48018, 1, 2, 2]));
    }

    #[test]
    fn init_round_trip() {
        let list = mech_type_list(&[OID_MS_KRB5, OID_KRB5, OID_NTLM]);
        let tok = encode_init(&list, Some(b"NTLMSSP\0rest"));
        let NegotiationToken::Init(i) = decode(&tok).unwrap() else {
            panic!("not an init")
        };
        assert_eq!(i.mech_types, [OID_MS_KRB5, OID_KRB5, OID_NTLM]);
        assert_eq!(i.mech_types_der, &list[..]);
        assert_eq!(i.mech_token, Some(&b"NTLMSSP\0rest"[..]));
        assert_eq!(Mech::of(i.mech_types[0]), Mech::Kerberos);
    }

    #[test]
    fn resp_round_trip() {
        let r = NegTokenResp {
            neg_state: Some(NegState::AcceptIncomplete),
            supported_mech: Some(OID_NTLM),
            response_token: Some(b"challenge"),
            mech_list_mic: Some(&[1; 16]),
        };
        let enc = encode_resp(&r);
        assert_eq!(decode(&enc).unwrap(), NegotiationToken::Resp(r));
        // accept-completed with nothing else is a1 07 30 05 a0 03 0a 01 00.
        let done = encode_resp(&NegTokenResp {
            neg_state: Some(NegState::AcceptCompleted),
            ..Default::default()
        });
        assert_eq!(done, [0xa1, 0x07, 0x30, 0x05, 0xa0, 0x03, 0x0a, 0x01, 0x00]);
    }

    #[test]
    fn refuses_malformed() {
        let good = encode_resp(&NegTokenResp {
            neg_state: Some(NegState::AcceptCompleted),
            ..Default::default()
        });
        let mut trailing = good.clone();
        trailing.push(0);
        assert!(decode(&trailing).is_err());
        // Fields out of order.
        let swapped = der::tlv(
            0xa1,
            &der::tlv(
                0x30,
                &[
                    der::tlv(0xa2, &der::tlv(0x04, b"x")),
                    der::tlv(0xa0, &der::tlv(0x0a, &[0])),
                ]
                .concat(),
            ),
        );
        assert!(decode(&swapped).is_err());
        // A GSS wrapper around another mechanism.
        let mut app = der::tlv(0x06, OID_NTLM);
        app.extend(der::tlv(0xa0, &[]));
        assert!(decode(&der::tlv(0x60, &app)).is_err());
    }
}
