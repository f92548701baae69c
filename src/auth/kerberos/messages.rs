//! The Kerberos messages an initiator and an acceptor need (RFC 4120 5): KDC-REQ (AS and
//! TGS), KDC-REP and its encrypted part, Ticket and EncTicketPart, AP-REQ, Authenticator,
//! AP-REP and EncAPRepPart, KRB-ERROR, and the PA-DATA of password pre-authentication
//! (PA-ENC-TIMESTAMP, PA-ETYPE-INFO2). Fields we never use (addresses, transited realms,
//! authorization data, last-req) are skipped on reading and never written.

use super::KrbError;
use super::asn1::{
    self, Fields, Seq, app_seq, elements, flags, int, octets, only, read_flags, read_i32, read_int,
    read_octets, read_string, read_time, read_u32, seq_of, string, time,
};
use super::crypto::Key;
use crate::auth::spnego::der::{self, Tlv};

/// Application tags (RFC 4120 5.10).
pub mod tag {
    pub const TICKET: u8 = 1;
    pub const AUTHENTICATOR: u8 = 2;
    pub const ENC_TICKET_PART: u8 = 3;
    pub const AS_REQ: u8 = 10;
    pub const AS_REP: u8 = 11;
    pub const TGS_REQ: u8 = 12;
    pub const TGS_REP: u8 = 13;
    pub const AP_REQ: u8 = 14;
    pub const AP_REP: u8 = 15;
    pub const ENC_AS_REP_PART: u8 = 25;
    pub const ENC_TGS_REP_PART: u8 = 26;
    pub const ENC_AP_REP_PART: u8 = 27;
    pub const KRB_ERROR: u8 = 30;
}

/// Name types (RFC 4120 6.2).
pub const NT_PRINCIPAL: i32 = 1;
pub const NT_SRV_INST: i32 = 2;
pub const NT_SRV_HST: i32 = 3;

/// PA-DATA types (RFC 4120 7.5.2).
pub mod pa {
    pub const TGS_REQ: i32 = 1;
    pub const ENC_TIMESTAMP: i32 = 2;
    pub const ETYPE_INFO2: i32 = 19;
}

/// Key usage numbers (RFC 4120 7.5.1).
pub mod usage {
    pub const PA_ENC_TIMESTAMP: u32 = 1;
    pub const TICKET: u32 = 2;
    pub const AS_REP_ENC_PART: u32 = 3;
    pub const TGS_REQ_AUTH_CKSUM: u32 = 6;
    pub const TGS_REQ_AUTHENTICATOR: u32 = 7;
    pub const TGS_REP_ENC_PART_SESSION: u32 = 8;
    pub const TGS_REP_ENC_PART_SUBKEY: u32 = 9;
    pub const AP_REQ_AUTHENTICATOR: u32 = 11;
    pub const AP_REP_ENC_PART: u32 = 12;
}

/// Error codes (RFC 4120 7.5.9) we act on or name.
pub mod error_code {
    pub const KDC_ERR_C_PRINCIPAL_UNKNOWN: i32 = 6;
    pub const KDC_ERR_S_PRINCIPAL_UNKNOWN: i32 = 7;
    pub const KDC_ERR_NEVER_VALID: i32 = 11;
    pub const KDC_ERR_POLICY: i32 = 12;
    pub const KDC_ERR_ETYPE_NOSUPP: i32 = 14;
    pub const KDC_ERR_CLIENT_REVOKED: i32 = 18;
    pub const KDC_ERR_KEY_EXPIRED: i32 = 23;
    pub const KDC_ERR_PREAUTH_FAILED: i32 = 24;
    pub const KDC_ERR_PREAUTH_REQUIRED: i32 = 25;
    pub const KRB_AP_ERR_BAD_INTEGRITY: i32 = 31;
    pub const KRB_AP_ERR_TKT_EXPIRED: i32 = 32;
    pub const KRB_AP_ERR_TKT_NYV: i32 = 33;
    pub const KRB_AP_ERR_REPEAT: i32 = 34;
    pub const KRB_AP_ERR_SKEW: i32 = 37;
    pub const KRB_AP_ERR_MODIFIED: i32 = 41;
    pub const KRB_ERR_RESPONSE_TOO_BIG: i32 = 52;
    pub const KRB_ERR_GENERIC: i32 = 60;
    pub const KDC_ERR_WRONG_REALM: i32 = 68;

    /// A short English meaning.
    pub fn describe(code: i32) -> &'static str {
        match code {
            KDC_ERR_C_PRINCIPAL_UNKNOWN => "client not found in the Kerberos database",
            KDC_ERR_S_PRINCIPAL_UNKNOWN => "server not found in the Kerberos database",
            KDC_ERR_NEVER_VALID => "requested start time is later than the end time",
            KDC_ERR_POLICY => "KDC policy rejects the request",
            KDC_ERR_ETYPE_NOSUPP => "no common encryption type (AES is required)",
            KDC_ERR_CLIENT_REVOKED => "the account is disabled or locked out",
            KDC_ERR_KEY_EXPIRED => "the password has expired",
            KDC_ERR_PREAUTH_FAILED => "pre-authentication failed (wrong password)",
            KDC_ERR_PREAUTH_REQUIRED => "pre-authentication required",
            KRB_AP_ERR_BAD_INTEGRITY => "integrity check failed",
            KRB_AP_ERR_TKT_EXPIRED => "the ticket has expired",
            KRB_AP_ERR_TKT_NYV => "the ticket is not yet valid",
            KRB_AP_ERR_REPEAT => "replayed request",
            KRB_AP_ERR_SKEW => "clock skew too great",
            KRB_AP_ERR_MODIFIED => "message modified (wrong key?)",
            KRB_ERR_RESPONSE_TOO_BIG => "response too big for UDP",
            KDC_ERR_WRONG_REALM => "wrong realm",
            KRB_ERR_GENERIC => "generic error",
            _ => "Kerberos error",
        }
    }
}

/// KDCOptions bits (RFC 4120 5.4.1), bit 0 the most significant.
pub mod kdc_options {
    pub const FORWARDABLE: u32 = 1 << 30;
    pub const RENEWABLE: u32 = 1 << 23;
    pub const CANONICALIZE: u32 = 1 << 16;
    pub const RENEWABLE_OK: u32 = 1 << 4;
}

/// APOptions mutual-required (bit 2).
pub const AP_OPTION_MUTUAL_REQUIRED: u32 = 1 << 29;
/// TicketFlags invalid (bit 7).
pub const TICKET_FLAG_INVALID: u32 = 1 << 24;

fn bad(what: &'static str) -> KrbError {
    KrbError::Malformed(what)
}

/// Most entries read from any SEQUENCE OF.
const MAX_ELEMENTS: usize = 64;

fn pvno(f: &Fields<'_>, n: usize) -> Result<(), KrbError> {
    if read_int(f.req(n, "missing pvno")?)? != 5 {
        return Err(bad("pvno is not 5"));
    }
    Ok(())
}

fn msg_type(f: &Fields<'_>, n: usize, want: i64) -> Result<(), KrbError> {
    if read_int(f.req(n, "missing msg-type")?)? != want {
        return Err(bad("unexpected msg-type"));
    }
    Ok(())
}

/// PrincipalName.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrincipalName {
    pub name_type: i32,
    pub components: Vec<String>,
}

impl PrincipalName {
    pub fn new(name_type: i32, components: &[&str]) -> PrincipalName {
        PrincipalName {
            name_type,
            components: components.iter().map(|c| c.to_string()).collect(),
        }
    }

    /// `krbtgt/REALM`.
    pub fn krbtgt(realm: &str) -> PrincipalName {
        PrincipalName::new(NT_SRV_INST, &["krbtgt", realm])
    }

    pub fn encode(&self) -> Vec<u8> {
        let names: Vec<Vec<u8>> = self.components.iter().map(|c| string(c)).collect();
        Seq::new()
            .field(0, &int(i64::from(self.name_type)))
            .field(1, &seq_of(&names))
            .finish()
    }

    pub fn decode(t: Tlv<'_>) -> Result<PrincipalName, KrbError> {
        let f = Fields::of(t)?;
        let name_type = read_i32(f.req(0, "PrincipalName without name-type")?)?;
        let mut components = Vec::new();
        for c in elements(f.req(1, "PrincipalName without name-string")?, 16)? {
            components.push(read_string(c)?);
        }
        if components.is_empty() {
            return Err(bad("empty PrincipalName"));
        }
        Ok(PrincipalName {
            name_type,
            components,
        })
    }

    /// Same components (the name type is advisory, RFC 4120 6.2).
    pub fn same_name(&self, other: &PrincipalName) -> bool {
        self.components == other.components
    }

    /// Same components ignoring ASCII case, as Active Directory compares service
    /// principal names (`HOST/wds01` is `host/WDS01`).
    pub fn same_service(&self, other: &PrincipalName) -> bool {
        self.components.len() == other.components.len()
            && self
                .components
                .iter()
                .zip(&other.components)
                .all(|(a, b)| a.eq_ignore_ascii_case(b))
    }
}

impl std::fmt::Display for PrincipalName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.components.join("/"))
    }
}

/// EncryptedData.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncryptedData {
    pub etype: i32,
    pub kvno: Option<u32>,
    pub cipher: Vec<u8>,
}

impl EncryptedData {
    pub fn encode(&self) -> Vec<u8> {
        Seq::new()
            .field(0, &int(i64::from(self.etype)))
            .opt(1, self.kvno.map(|k| int(i64::from(k))).as_deref())
            .field(2, &octets(&self.cipher))
            .finish()
    }

    pub fn decode(t: Tlv<'_>) -> Result<EncryptedData, KrbError> {
        let f = Fields::of(t)?;
        Ok(EncryptedData {
            etype: read_i32(f.req(0, "EncryptedData without etype")?)?,
            kvno: f.get(1).map(read_u32).transpose()?,
            cipher: read_octets(f.req(2, "EncryptedData without cipher")?)?.to_vec(),
        })
    }
}

/// EncryptionKey, with a type we implement.
pub fn encode_key(key: &Key) -> Vec<u8> {
    Seq::new()
        .field(0, &int(i64::from(key.etype().number())))
        .field(1, &octets(key.bytes()))
        .finish()
}

pub fn decode_key(t: Tlv<'_>) -> Result<Key, KrbError> {
    let f = Fields::of(t)?;
    let etype = read_i32(f.req(0, "EncryptionKey without keytype")?)?;
    let value = read_octets(f.req(1, "EncryptionKey without keyvalue")?)?;
    Ok(Key::from_parts(etype, value)?)
}

/// Checksum.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checksum {
    pub cksumtype: i32,
    pub checksum: Vec<u8>,
}

impl Checksum {
    pub fn encode(&self) -> Vec<u8> {
        Seq::new()
            .field(0, &int(i64::from(self.cksumtype)))
            .field(1, &octets(&self.checksum))
            .finish()
    }

    pub fn decode(t: Tlv<'_>) -> Result<Checksum, KrbError> {
        let f = Fields::of(t)?;
        Ok(Checksum {
            cksumtype: read_i32(f.req(0, "Checksum without type")?)?,
            checksum: read_octets(f.req(1, "Checksum without value")?)?.to_vec(),
        })
    }
}

/// Ticket. `der` is the encoding as received, sent on verbatim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ticket {
    pub realm: String,
    pub sname: PrincipalName,
    pub enc_part: EncryptedData,
    pub der: Vec<u8>,
}

impl Ticket {
    pub fn decode(b: &[u8]) -> Result<Ticket, KrbError> {
        let f = app_seq(b, tag::TICKET, "expected a Ticket")?;
        if read_int(f.req(0, "Ticket without tkt-vno")?)? != 5 {
            return Err(bad("tkt-vno is not 5"));
        }
        Ok(Ticket {
            realm: read_string(f.req(1, "Ticket without realm")?)?,
            sname: PrincipalName::decode(f.req(2, "Ticket without sname")?)?,
            enc_part: EncryptedData::decode(f.req(3, "Ticket without enc-part")?)?,
            der: b.to_vec(),
        })
    }

    /// Encodes a ticket (the acceptor tests make their own).
    pub fn encode(realm: &str, sname: &PrincipalName, enc_part: &EncryptedData) -> Vec<u8> {
        Seq::new()
            .field(0, &int(5))
            .field(1, &string(realm))
            .field(2, &sname.encode())
            .field(3, &enc_part.encode())
            .finish_app(tag::TICKET)
    }
}

/// EncTicketPart: what the acceptor needs of it.
#[derive(Debug, Clone)]
pub struct EncTicketPart {
    pub flags: u32,
    pub key: Key,
    pub crealm: String,
    pub cname: PrincipalName,
    pub authtime: i64,
    pub starttime: Option<i64>,
    pub endtime: i64,
    pub renew_till: Option<i64>,
}

impl EncTicketPart {
    pub fn decode(b: &[u8]) -> Result<EncTicketPart, KrbError> {
        let f = app_seq(b, tag::ENC_TICKET_PART, "expected an EncTicketPart")?;
        Ok(EncTicketPart {
            flags: read_flags(f.req(0, "EncTicketPart without flags")?)?,
            key: decode_key(f.req(1, "EncTicketPart without key")?)?,
            crealm: read_string(f.req(2, "EncTicketPart without crealm")?)?,
            cname: PrincipalName::decode(f.req(3, "EncTicketPart without cname")?)?,
            authtime: read_time(f.req(5, "EncTicketPart without authtime")?)?,
            starttime: f.get(6).map(read_time).transpose()?,
            endtime: read_time(f.req(7, "EncTicketPart without endtime")?)?,
            renew_till: f.get(8).map(read_time).transpose()?,
        })
    }

    /// Encodes one (tests of the acceptor play the KDC); transited is empty.
    pub fn encode(&self) -> Vec<u8> {
        let transited = Seq::new().field(0, &int(1)).field(1, &octets(b"")).finish();
        Seq::new()
            .field(0, &flags(self.flags))
            .field(1, &encode_key(&self.key))
            .field(2, &string(&self.crealm))
            .field(3, &self.cname.encode())
            .field(4, &transited)
            .field(5, &time(self.authtime))
            .opt(6, self.starttime.map(time).as_deref())
            .field(7, &time(self.endtime))
            .opt(8, self.renew_till.map(time).as_deref())
            .finish_app(tag::ENC_TICKET_PART)
    }
}

/// PA-DATA.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaData {
    pub padata_type: i32,
    pub value: Vec<u8>,
}

impl PaData {
    pub fn encode(&self) -> Vec<u8> {
        Seq::new()
            .field(1, &int(i64::from(self.padata_type)))
            .field(2, &octets(&self.value))
            .finish()
    }

    pub fn decode(t: Tlv<'_>) -> Result<PaData, KrbError> {
        let f = Fields::of(t)?;
        Ok(PaData {
            padata_type: read_i32(f.req(1, "PA-DATA without type")?)?,
            value: read_octets(f.req(2, "PA-DATA without value")?)?.to_vec(),
        })
    }

    /// METHOD-DATA / padata fields: SEQUENCE OF PA-DATA.
    pub fn decode_list(t: Tlv<'_>) -> Result<Vec<PaData>, KrbError> {
        elements(t, MAX_ELEMENTS)?
            .into_iter()
            .map(PaData::decode)
            .collect()
    }
}

/// PA-ENC-TS-ENC, the plaintext of PA-ENC-TIMESTAMP.
pub fn encode_pa_enc_ts(unix: i64, usec: u32) -> Vec<u8> {
    Seq::new()
        .field(0, &time(unix))
        .field(1, &int(i64::from(usec)))
        .finish()
}

/// ETYPE-INFO2-ENTRY.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EtypeInfo2 {
    pub etype: i32,
    pub salt: Option<String>,
    pub s2kparams: Option<Vec<u8>>,
}

impl EtypeInfo2 {
    pub fn decode_list(b: &[u8]) -> Result<Vec<EtypeInfo2>, KrbError> {
        let (t, rest) = der::read(b)?;
        if !rest.is_empty() {
            return Err(bad("bytes after ETYPE-INFO2"));
        }
        let mut out = Vec::new();
        for e in elements(t, MAX_ELEMENTS)? {
            let f = Fields::of(e)?;
            out.push(EtypeInfo2 {
                etype: read_i32(f.req(0, "ETYPE-INFO2 without etype")?)?,
                salt: f.get(1).map(read_string).transpose()?,
                s2kparams: f.get(2).map(read_octets).transpose()?.map(<[u8]>::to_vec),
            });
        }
        Ok(out)
    }

    pub fn encode_list(entries: &[EtypeInfo2]) -> Vec<u8> {
        let items: Vec<Vec<u8>> = entries
            .iter()
            .map(|e| {
                Seq::new()
                    .field(0, &int(i64::from(e.etype)))
                    .opt(1, e.salt.as_deref().map(string).as_deref())
                    .opt(2, e.s2kparams.as_deref().map(octets).as_deref())
                    .finish()
            })
            .collect();
        seq_of(&items)
    }
}

/// KDC-REQ-BODY, as we send it.
#[derive(Debug, Clone)]
pub struct KdcReqBody {
    pub options: u32,
    pub cname: Option<PrincipalName>,
    pub realm: String,
    pub sname: PrincipalName,
    pub till: i64,
    pub nonce: u32,
    pub etypes: Vec<i32>,
}

impl KdcReqBody {
    pub fn encode(&self) -> Vec<u8> {
        let etypes: Vec<Vec<u8>> = self.etypes.iter().map(|&e| int(i64::from(e))).collect();
        Seq::new()
            .field(0, &flags(self.options))
            .opt(1, self.cname.as_ref().map(PrincipalName::encode).as_deref())
            .field(2, &string(&self.realm))
            .field(3, &self.sname.encode())
            .field(5, &time(self.till))
            .field(7, &int(i64::from(self.nonce)))
            .field(8, &seq_of(&etypes))
            .finish()
    }
}

/// AS-REQ or TGS-REQ (`app` is [`tag::AS_REQ`] or [`tag::TGS_REQ`]) around an encoded body.
pub fn encode_kdc_req(app: u8, padata: &[PaData], body: &[u8]) -> Vec<u8> {
    let pa: Vec<Vec<u8>> = padata.iter().map(PaData::encode).collect();
    Seq::new()
        .field(1, &int(5))
        .field(2, &int(i64::from(app)))
        .opt(3, (!pa.is_empty()).then(|| seq_of(&pa)).as_deref())
        .field(4, body)
        .finish_app(app)
}

/// KDC-REP (AS-REP or TGS-REP).
#[derive(Debug, Clone)]
pub struct KdcRep {
    pub padata: Vec<PaData>,
    pub crealm: String,
    pub cname: PrincipalName,
    pub ticket: Ticket,
    pub enc_part: EncryptedData,
}

impl KdcRep {
    pub fn decode(b: &[u8], app: u8) -> Result<KdcRep, KrbError> {
        let f = app_seq(b, app, "expected a KDC-REP")?;
        pvno(&f, 0)?;
        msg_type(&f, 1, i64::from(app))?;
        let ticket_tlv = f.req(5, "KDC-REP without ticket")?;
        Ok(KdcRep {
            padata: f
                .get(2)
                .map(PaData::decode_list)
                .transpose()?
                .unwrap_or_default(),
            crealm: read_string(f.req(3, "KDC-REP without crealm")?)?,
            cname: PrincipalName::decode(f.req(4, "KDC-REP without cname")?)?,
            ticket: Ticket::decode(ticket_tlv.raw)?,
            enc_part: EncryptedData::decode(f.req(6, "KDC-REP without enc-part")?)?,
        })
    }
}

/// EncKDCRepPart (inside EncASRepPart or EncTGSRepPart).
#[derive(Debug, Clone)]
pub struct EncKdcRepPart {
    pub key: Key,
    pub nonce: u32,
    pub flags: u32,
    pub authtime: i64,
    pub starttime: Option<i64>,
    pub endtime: i64,
    pub renew_till: Option<i64>,
    pub srealm: String,
    pub sname: PrincipalName,
}

impl EncKdcRepPart {
    /// MIT sends EncTGSRepPart for AS replies too (RFC 4120 5.4.2 tells clients to accept
    /// either tag), so both are taken.
    pub fn decode(b: &[u8]) -> Result<EncKdcRepPart, KrbError> {
        let (outer, rest) = der::read(b)?;
        // Some encoders pad the plaintext; anything after the value is ignored.
        let _ = rest;
        if outer.tag != asn1::app(tag::ENC_AS_REP_PART)
            && outer.tag != asn1::app(tag::ENC_TGS_REP_PART)
        {
            return Err(bad("expected an EncKDCRepPart"));
        }
        let f = Fields::of(only(
            outer.value,
            asn1::SEQUENCE,
            "expected an EncKDCRepPart",
        )?)?;
        Ok(EncKdcRepPart {
            key: decode_key(f.req(0, "EncKDCRepPart without key")?)?,
            nonce: read_u32(f.req(2, "EncKDCRepPart without nonce")?)?,
            flags: read_flags(f.req(4, "EncKDCRepPart without flags")?)?,
            authtime: read_time(f.req(5, "EncKDCRepPart without authtime")?)?,
            starttime: f.get(6).map(read_time).transpose()?,
            endtime: read_time(f.req(7, "EncKDCRepPart without endtime")?)?,
            renew_till: f.get(8).map(read_time).transpose()?,
            srealm: read_string(f.req(9, "EncKDCRepPart without srealm")?)?,
            sname: PrincipalName::decode(f.req(10, "EncKDCRepPart without sname")?)?,
        })
    }
}

/// KRB-ERROR.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KrbErrorMessage {
    pub error_code: i32,
    pub stime: i64,
    pub susec: u32,
    pub realm: String,
    pub sname: PrincipalName,
    pub e_text: Option<String>,
    pub e_data: Option<Vec<u8>>,
}

impl KrbErrorMessage {
    pub fn decode(b: &[u8]) -> Result<KrbErrorMessage, KrbError> {
        let f = app_seq(b, tag::KRB_ERROR, "expected a KRB-ERROR")?;
        pvno(&f, 0)?;
        msg_type(&f, 1, 30)?;
        Ok(KrbErrorMessage {
            stime: read_time(f.req(4, "KRB-ERROR without stime")?)?,
            susec: read_u32(f.req(5, "KRB-ERROR without susec")?)?,
            error_code: read_i32(f.req(6, "KRB-ERROR without error-code")?)?,
            realm: read_string(f.req(9, "KRB-ERROR without realm")?)?,
            sname: PrincipalName::decode(f.req(10, "KRB-ERROR without sname")?)?,
            e_text: f.get(11).map(read_string).transpose()?,
            e_data: f.get(12).map(read_octets).transpose()?.map(<[u8]>::to_vec),
        })
    }

    pub fn encode(&self) -> Vec<u8> {
        Seq::new()
            .field(0, &int(5))
            .field(1, &int(30))
            .field(4, &time(self.stime))
            .field(5, &int(i64::from(self.susec)))
            .field(6, &int(i64::from(self.error_code)))
            .field(9, &string(&self.realm))
            .field(10, &self.sname.encode())
            .opt(11, self.e_text.as_deref().map(string).as_deref())
            .opt(12, self.e_data.as_deref().map(octets).as_deref())
            .finish_app(tag::KRB_ERROR)
    }

    /// Whether `b` starts like a KRB-ERROR (so a reply can be told from the expected one).
    pub fn looks_like(b: &[u8]) -> bool {
        b.first() == Some(&asn1::app(tag::KRB_ERROR))
    }
}

/// AP-REQ.
#[derive(Debug, Clone)]
pub struct ApReq {
    pub options: u32,
    pub ticket: Ticket,
    pub authenticator: EncryptedData,
}

impl ApReq {
    pub fn encode(&self) -> Vec<u8> {
        Seq::new()
            .field(0, &int(5))
            .field(1, &int(i64::from(tag::AP_REQ)))
            .field(2, &flags(self.options))
            .field(3, &self.ticket.der)
            .field(4, &self.authenticator.encode())
            .finish_app(tag::AP_REQ)
    }

    pub fn decode(b: &[u8]) -> Result<ApReq, KrbError> {
        let f = app_seq(b, tag::AP_REQ, "expected an AP-REQ")?;
        pvno(&f, 0)?;
        msg_type(&f, 1, i64::from(tag::AP_REQ))?;
        Ok(ApReq {
            options: read_flags(f.req(2, "AP-REQ without ap-options")?)?,
            ticket: Ticket::decode(f.req(3, "AP-REQ without ticket")?.raw)?,
            authenticator: EncryptedData::decode(f.req(4, "AP-REQ without authenticator")?)?,
        })
    }
}

/// Authenticator.
#[derive(Debug, Clone)]
pub struct Authenticator {
    pub crealm: String,
    pub cname: PrincipalName,
    pub cksum: Option<Checksum>,
    pub cusec: u32,
    pub ctime: i64,
    pub subkey: Option<Key>,
    pub seq_number: Option<u32>,
}

impl Authenticator {
    pub fn encode(&self) -> Vec<u8> {
        Seq::new()
            .field(0, &int(5))
            .field(1, &string(&self.crealm))
            .field(2, &self.cname.encode())
            .opt(3, self.cksum.as_ref().map(Checksum::encode).as_deref())
            .field(4, &int(i64::from(self.cusec)))
            .field(5, &time(self.ctime))
            .opt(6, self.subkey.as_ref().map(encode_key).as_deref())
            .opt(7, self.seq_number.map(|s| int(i64::from(s))).as_deref())
            .finish_app(tag::AUTHENTICATOR)
    }

    pub fn decode(b: &[u8]) -> Result<Authenticator, KrbError> {
        let (outer, _padding) = der::read(b)?;
        let f = app_seq(outer.raw, tag::AUTHENTICATOR, "expected an Authenticator")?;
        if read_int(f.req(0, "Authenticator without vno")?)? != 5 {
            return Err(bad("authenticator-vno is not 5"));
        }
        Ok(Authenticator {
            crealm: read_string(f.req(1, "Authenticator without crealm")?)?,
            cname: PrincipalName::decode(f.req(2, "Authenticator without cname")?)?,
            cksum: f.get(3).map(Checksum::decode).transpose()?,
            cusec: read_u32(f.req(4, "Authenticator without cusec")?)?,
            ctime: read_time(f.req(5, "Authenticator without ctime")?)?,
            subkey: f.get(6).map(decode_key).transpose()?,
            seq_number: f.get(7).map(read_u32).transpose()?,
        })
    }
}

/// AP-REP.
pub fn encode_ap_rep(enc_part: &EncryptedData) -> Vec<u8> {
    Seq::new()
        .field(0, &int(5))
        .field(1, &int(i64::from(tag::AP_REP)))
        .field(2, &enc_part.encode())
        .finish_app(tag::AP_REP)
}

pub fn decode_ap_rep(b: &[u8]) -> Result<EncryptedData, KrbError> {
    let f = app_seq(b, tag::AP_REP, "expected an AP-REP")?;
    pvno(&f, 0)?;
    msg_type(&f, 1, i64::from(tag::AP_REP))?;
    EncryptedData::decode(f.req(2, "AP-REP without enc-part")?)
}

/// EncAPRepPart.
#[derive(Debug, Clone)]
pub struct EncApRepPart {
    pub ctime: i64,
    pub cusec: u32,
    pub subkey: Option<Key>,
    pub seq_number: Option<u32>,
}

impl EncApRepPart {
    pub fn encode(&self) -> Vec<u8> {
        Seq::new()
            .field(0, &time(self.ctime))
            .field(1, &int(i64::from(self.cusec)))
            .opt(2, self.subkey.as_ref().map(encode_key).as_deref())
            .opt(3, self.seq_number.map(|s| int(i64::from(s))).as_deref())
            .finish_app(tag::ENC_AP_REP_PART)
    }

    pub fn decode(b: &[u8]) -> Result<EncApRepPart, KrbError> {
        let (outer, _padding) = der::read(b)?;
        let f = app_seq(outer.raw, tag::ENC_AP_REP_PART, "expected an EncAPRepPart")?;
        Ok(EncApRepPart {
            ctime: read_time(f.req(0, "EncAPRepPart without ctime")?)?,
            cusec: read_u32(f.req(1, "EncAPRepPart without cusec")?)?,
            subkey: f.get(2).map(decode_key).transpose()?,
            seq_number: f.get(3).map(read_u32).transpose()?,
        })
    }
}

#[cfg(test)]
mod tests;
