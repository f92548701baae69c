//! The AS and TGS exchanges (RFC 4120 3.1, 3.3), sans-IO: these functions build requests
//! and check replies; the transport sends them to the KDC (TCP or UDP) and hands back the
//! answer. Time and randomness come from the caller.
//!
//! AS: an AS-REQ without pre-authentication first (to learn the salt and iteration count
//! from PA-ETYPE-INFO2, as Windows clients do), then, on KDC_ERR_PREAUTH_REQUIRED, one
//! with PA-ENC-TIMESTAMP. Only aes256/aes128-cts-hmac-sha1-96 are requested.

use rand::RngCore;
use zeroize::Zeroizing;

use super::KrbError;
use super::crypto::{self, Etype, Key};
use super::messages::{
    ApReq, Authenticator, Checksum, EncKdcRepPart, EncryptedData, EtypeInfo2, KdcRep, KdcReqBody,
    KrbErrorMessage, PaData, PrincipalName, encode_kdc_req, encode_pa_enc_ts, error_code, pa, tag,
    usage,
};

/// What we ask for, strongest first.
pub const REQUESTED_ETYPES: [i32; 2] = [
    crypto::ETYPE_AES256_CTS_HMAC_SHA1_96,
    crypto::ETYPE_AES128_CTS_HMAC_SHA1_96,
];
/// Ticket lifetime asked for in an AS-REQ.
pub const TGT_LIFETIME_SECS: i64 = 10 * 3600;

/// A ticket and its session key: what a credential cache entry holds.
#[derive(Clone)]
pub struct Credential {
    pub client: PrincipalName,
    pub crealm: String,
    pub server: PrincipalName,
    pub srealm: String,
    pub key: Key,
    /// The Ticket's DER encoding.
    pub ticket: Vec<u8>,
    pub flags: u32,
    pub authtime: i64,
    pub starttime: i64,
    pub endtime: i64,
    pub renew_till: i64,
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credential")
            .field("client", &format_args!("{}@{}", self.client, self.crealm))
            .field("server", &format_args!("{}@{}", self.server, self.srealm))
            .field("endtime", &self.endtime)
            .finish_non_exhaustive()
    }
}

impl Credential {
    /// Whether this is a ticket-granting ticket for `realm`.
    pub fn is_tgt_for(&self, realm: &str) -> bool {
        self.server.components.len() == 2
            && self.server.components[0] == "krbtgt"
            && self.server.components[1] == realm
    }

    fn from_reply(rep: &KdcRep, part: EncKdcRepPart) -> Credential {
        Credential {
            client: rep.cname.clone(),
            crealm: rep.crealm.clone(),
            server: part.sname,
            srealm: part.srealm,
            key: part.key,
            ticket: rep.ticket.der.clone(),
            flags: part.flags,
            authtime: part.authtime,
            starttime: part.starttime.unwrap_or(part.authtime),
            endtime: part.endtime,
            renew_till: part.renew_till.unwrap_or(0),
        }
    }
}

/// The default salt (RFC 4120 4): the realm followed by the name's components.
pub fn default_salt(realm: &str, name: &PrincipalName) -> String {
    let mut s = realm.to_string();
    for c in &name.components {
        s.push_str(c);
    }
    s
}

/// Where an AS exchange is.
pub enum AsStep {
    /// Send this AS-REQ and call [`AsExchange::handle`] with the answer.
    Send(Vec<u8>),
    /// The TGT.
    Done(Box<Credential>),
}

/// An AS exchange for a password.
pub struct AsExchange {
    client: PrincipalName,
    realm: String,
    password: Zeroizing<String>,
    nonce: u32,
    /// The key PA-ENC-TIMESTAMP was made with, once sent.
    preauth_key: Option<Key>,
}

impl AsExchange {
    pub fn new(client: PrincipalName, realm: &str, password: &str, nonce: u32) -> AsExchange {
        AsExchange {
            client,
            realm: realm.to_string(),
            password: Zeroizing::new(password.to_string()),
            nonce: nonce & 0x7fff_ffff,
            preauth_key: None,
        }
    }

    fn request(&self, now: i64, padata: &[PaData]) -> Vec<u8> {
        let body = KdcReqBody {
            options: super::messages::kdc_options::RENEWABLE_OK,
            cname: Some(self.client.clone()),
            realm: self.realm.clone(),
            sname: PrincipalName::krbtgt(&self.realm),
            till: now + TGT_LIFETIME_SECS,
            nonce: self.nonce,
            etypes: REQUESTED_ETYPES.to_vec(),
        };
        encode_kdc_req(tag::AS_REQ, padata, &body.encode())
    }

    /// The first AS-REQ, without pre-authentication.
    pub fn start(&self, now: i64) -> Vec<u8> {
        self.request(now, &[])
    }

    /// The key for an etype, with the salt and iteration count the KDC named.
    fn key_for(&self, info: &[EtypeInfo2], fallback_etype: i32) -> Result<Key, KrbError> {
        let entry = info
            .iter()
            .find(|e| Etype::from_number(e.etype).is_ok())
            .cloned()
            .unwrap_or(EtypeInfo2 {
                etype: fallback_etype,
                salt: None,
                s2kparams: None,
            });
        let etype = Etype::from_number(entry.etype)?;
        let salt = entry
            .salt
            .unwrap_or_else(|| default_salt(&self.realm, &self.client));
        let iterations = crypto::iterations_from_params(entry.s2kparams.as_deref())?;
        Ok(crypto::string_to_key(
            etype,
            self.password.as_bytes(),
            salt.as_bytes(),
            iterations,
        ))
    }

    /// Takes the KDC's answer: the next AS-REQ to send, or the TGT.
    pub fn handle(
        &mut self,
        reply: &[u8],
        now: i64,
        usec: u32,
        rng: &mut dyn RngCore,
    ) -> Result<AsStep, KrbError> {
        if KrbErrorMessage::looks_like(reply) {
            let e = KrbErrorMessage::decode(reply)?;
            if e.error_code != error_code::KDC_ERR_PREAUTH_REQUIRED || self.preauth_key.is_some() {
                return Err(KrbError::Refused {
                    code: e.error_code,
                    text: e.e_text,
                });
            }
            let info = etype_info2_in_method_data(e.e_data.as_deref())?;
            let key = self.key_for(&info, REQUESTED_ETYPES[0])?;
            let ts = encode_pa_enc_ts(now, usec);
            let enc = EncryptedData {
                etype: key.etype().number(),
                kvno: None,
                cipher: crypto::encrypt_random(&key, usage::PA_ENC_TIMESTAMP, &ts, rng),
            };
            let padata = [PaData {
                padata_type: pa::ENC_TIMESTAMP,
                value: enc.encode(),
            }];
            self.preauth_key = Some(key);
            return Ok(AsStep::Send(self.request(now, &padata)));
        }
        let rep = KdcRep::decode(reply, tag::AS_REP)?;
        let key = match self.preauth_key.take() {
            Some(k) if k.etype().number() == rep.enc_part.etype => k,
            _ => {
                // No pre-authentication was asked for, or the KDC chose another etype: the
                // reply's own PA-ETYPE-INFO2 names the salt.
                let info = rep
                    .padata
                    .iter()
                    .find(|p| p.padata_type == pa::ETYPE_INFO2)
                    .map(|p| EtypeInfo2::decode_list(&p.value))
                    .transpose()?
                    .unwrap_or_default();
                let info: Vec<EtypeInfo2> = info
                    .into_iter()
                    .filter(|e| e.etype == rep.enc_part.etype)
                    .collect();
                self.key_for(&info, rep.enc_part.etype)?
            }
        };
        let plain =
            crypto::decrypt(&key, usage::AS_REP_ENC_PART, &rep.enc_part.cipher).map_err(|_| {
                KrbError::Protocol(
                    "the KDC's reply does not decrypt with the password's key (wrong password?)",
                )
            })?;
        let part = EncKdcRepPart::decode(&plain)?;
        if part.nonce != self.nonce {
            return Err(KrbError::Protocol("the KDC's reply has the wrong nonce"));
        }
        if !part.sname.same_name(&PrincipalName::krbtgt(&self.realm)) || part.srealm != self.realm {
            return Err(KrbError::Protocol(
                "the KDC's reply is not a TGT for the realm",
            ));
        }
        if !rep.cname.same_name(&self.client) || rep.crealm != self.realm {
            return Err(KrbError::Protocol("the KDC's reply is for another client"));
        }
        Ok(AsStep::Done(Box::new(Credential::from_reply(&rep, part))))
    }
}

/// PA-ETYPE-INFO2 out of a KRB-ERROR's METHOD-DATA (empty when absent).
fn etype_info2_in_method_data(e_data: Option<&[u8]>) -> Result<Vec<EtypeInfo2>, KrbError> {
    let Some(data) = e_data else {
        return Ok(Vec::new());
    };
    let (t, _) = crate::auth::spnego::der::read(data)?;
    for p in PaData::decode_list(t)? {
        if p.padata_type == pa::ETYPE_INFO2 {
            return EtypeInfo2::decode_list(&p.value);
        }
    }
    Ok(Vec::new())
}

/// A TGS-REQ for `service` in `srealm` with the TGT `tgt`.
pub fn tgs_request(
    tgt: &Credential,
    service: &PrincipalName,
    srealm: &str,
    nonce: u32,
    now: i64,
    usec: u32,
    rng: &mut dyn RngCore,
) -> Vec<u8> {
    let body = KdcReqBody {
        options: super::messages::kdc_options::CANONICALIZE,
        cname: None,
        realm: srealm.to_string(),
        sname: service.clone(),
        till: tgt.endtime,
        nonce: nonce & 0x7fff_ffff,
        etypes: REQUESTED_ETYPES.to_vec(),
    }
    .encode();
    let authenticator = Authenticator {
        crealm: tgt.crealm.clone(),
        cname: tgt.client.clone(),
        cksum: Some(Checksum {
            cksumtype: tgt.key.etype().checksum_type(),
            checksum: crypto::checksum(&tgt.key, usage::TGS_REQ_AUTH_CKSUM, &[&body]).to_vec(),
        }),
        cusec: usec,
        ctime: now,
        subkey: None,
        seq_number: None,
    };
    let ap_req = ApReq {
        options: 0,
        ticket: super::messages::Ticket::decode(&tgt.ticket).expect("a TGT we decoded before"),
        authenticator: EncryptedData {
            etype: tgt.key.etype().number(),
            kvno: None,
            cipher: crypto::encrypt_random(
                &tgt.key,
                usage::TGS_REQ_AUTHENTICATOR,
                &authenticator.encode(),
                rng,
            ),
        },
    };
    let padata = [PaData {
        padata_type: pa::TGS_REQ,
        value: ap_req.encode(),
    }];
    encode_kdc_req(tag::TGS_REQ, &padata, &body)
}

/// Checks a TGS-REP (or KRB-ERROR) for the request [`tgs_request`] made.
pub fn tgs_reply(
    tgt: &Credential,
    reply: &[u8],
    nonce: u32,
    service: &PrincipalName,
) -> Result<Credential, KrbError> {
    if KrbErrorMessage::looks_like(reply) {
        let e = KrbErrorMessage::decode(reply)?;
        return Err(KrbError::Refused {
            code: e.error_code,
            text: e.e_text,
        });
    }
    let rep = KdcRep::decode(reply, tag::TGS_REP)?;
    let plain = crypto::decrypt(
        &tgt.key,
        usage::TGS_REP_ENC_PART_SESSION,
        &rep.enc_part.cipher,
    )
    .map_err(|_| KrbError::Protocol("the TGS reply does not decrypt with the TGT's key"))?;
    let part = EncKdcRepPart::decode(&plain)?;
    if part.nonce != nonce & 0x7fff_ffff {
        return Err(KrbError::Protocol("the TGS reply has the wrong nonce"));
    }
    let wanted: Vec<String> = service
        .components
        .iter()
        .map(|c| c.to_lowercase())
        .collect();
    let got: Vec<String> = part
        .sname
        .components
        .iter()
        .map(|c| c.to_lowercase())
        .collect();
    if wanted != got {
        return Err(KrbError::Protocol("the TGS reply is for another service"));
    }
    if !rep.cname.same_name(&tgt.client) {
        return Err(KrbError::Protocol("the TGS reply is for another client"));
    }
    Ok(Credential::from_reply(&rep, part))
}

/// The KDC answered that the reply is too big for UDP: retry over TCP.
pub fn is_response_too_big(reply: &[u8]) -> bool {
    KrbErrorMessage::looks_like(reply)
        && KrbErrorMessage::decode(reply)
            .is_ok_and(|e| e.error_code == error_code::KRB_ERR_RESPONSE_TOO_BIG)
}
