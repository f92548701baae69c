use super::*;
use crate::auth::kerberos::crypto::{Etype, Key};

fn principal() -> PrincipalName {
    PrincipalName::new(NT_PRINCIPAL, &["alice"])
}

#[test]
fn authenticator_and_ap_rep_part_round_trip() {
    let a = Authenticator {
        crealm: "EXAMPLE.TEST".into(),
        cname: principal(),
        cksum: Some(Checksum {
            cksumtype: 0x8003,
            checksum: vec![16, 0, 0, 0],
        }),
        cusec: 999_999,
        ctime: 1_700_000_000,
        subkey: Some(Key::new(Etype::Aes256, &[7; 32]).unwrap()),
        seq_number: Some(0x3fff_ffff),
    };
    let b = Authenticator::decode(&a.encode()).unwrap();
    assert_eq!(
        (b.crealm.as_str(), b.cusec, b.ctime),
        ("EXAMPLE.TEST", 999_999, 1_700_000_000)
    );
    assert_eq!(b.cname, principal());
    assert_eq!(b.cksum, a.cksum);
    assert_eq!(b.subkey.unwrap().bytes(), &[7; 32]);
    assert_eq!(b.seq_number, Some(0x3fff_ffff));

    let p = EncApRepPart {
        ctime: 5,
        cusec: 6,
        subkey: None,
        seq_number: Some(42),
    };
    let q = EncApRepPart::decode(&p.encode()).unwrap();
    assert_eq!((q.ctime, q.cusec, q.seq_number), (5, 6, Some(42)));
    assert!(q.subkey.is_none());
}

#[test]
fn ap_req_and_ap_rep_round_trip() {
    let enc = EncryptedData {
        etype: 18,
        kvno: Some(3),
        cipher: vec![1, 2, 3],
    };
    let sname = PrincipalName::new(NT_SRV_INST, &["host", "wds.example.test"]);
    let ticket = Ticket::decode(&Ticket::encode("EXAMPLE.TEST", &sname, &enc)).unwrap();
    assert_eq!(ticket.sname.to_string(), "host/wds.example.test");
    let req = ApReq {
        options: AP_OPTION_MUTUAL_REQUIRED,
        ticket: ticket.clone(),
        authenticator: EncryptedData {
            etype: 18,
            kvno: None,
            cipher: vec![9; 40],
        },
    };
    let back = ApReq::decode(&req.encode()).unwrap();
    assert_eq!(back.options, AP_OPTION_MUTUAL_REQUIRED);
    assert_eq!(back.ticket, ticket);
    assert_eq!(back.authenticator.cipher, vec![9; 40]);
    assert_eq!(decode_ap_rep(&encode_ap_rep(&enc)).unwrap(), enc);
    // Trailing bytes or another message are refused.
    let mut extra = req.encode();
    extra.push(0);
    assert!(ApReq::decode(&extra).is_err());
    assert!(ApReq::decode(&encode_ap_rep(&enc)).is_err());
}

#[test]
fn krb_error_and_etype_info2_round_trip() {
    let info = [
        EtypeInfo2 {
            etype: 18,
            salt: Some("EXAMPLE.TESTalice".into()),
            s2kparams: None,
        },
        EtypeInfo2 {
            etype: 17,
            salt: None,
            s2kparams: Some(vec![0, 0, 0x10, 0]),
        },
    ];
    let e = KrbErrorMessage {
        error_code: error_code::KDC_ERR_PREAUTH_REQUIRED,
        stime: 1_700_000_000,
        susec: 1,
        realm: "EXAMPLE.TEST".into(),
        sname: PrincipalName::krbtgt("EXAMPLE.TEST"),
        e_text: None,
        e_data: Some(seq_of(&[PaData {
            padata_type: pa::ETYPE_INFO2,
            value: EtypeInfo2::encode_list(&info),
        }
        .encode()])),
    };
    let enc = e.encode();
    assert!(KrbErrorMessage::looks_like(&enc));
    let back = KrbErrorMessage::decode(&enc).unwrap();
    assert_eq!(back, e);
    let (t, _) = der::read(back.e_data.as_deref().unwrap()).unwrap();
    let pa = PaData::decode_list(t).unwrap();
    assert_eq!(EtypeInfo2::decode_list(&pa[0].value).unwrap(), info);
}
