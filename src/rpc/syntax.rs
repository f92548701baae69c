//! UUIDs and presentation syntaxes: the interfaces and transfer syntaxes this crate binds,
//! and the bind-time feature negotiation pseudo-syntax (MS-RPCE 3.3.1.5.3).

use std::fmt;

/// A UUID in its NDR wire order (the first three fields little-endian).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Uuid(pub [u8; 16]);

impl Uuid {
    pub const NIL: Self = Self([0; 16]);

    /// From the textual `d1-d2-d3-d4[0..2]-d4[2..8]` fields.
    pub const fn from_fields(d1: u32, d2: u16, d3: u16, d4: [u8; 8]) -> Self {
        Self(crate::wire::wdsc::guid_bytes(d1, d2, d3, d4))
    }
}

impl fmt::Display for Uuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = &self.0;
        write!(
            f,
            "{:08x}-{:04x}-{:04x}-{:02x}{:02x}-{:02x}{:02x}{:02x}{:02x}{:02x}{:02x}",
            u32::from_le_bytes([b[0], b[1], b[2], b[3]]),
            u16::from_le_bytes([b[4], b[5]]),
            u16::from_le_bytes([b[6], b[7]]),
            b[8],
            b[9],
            b[10],
            b[11],
            b[12],
            b[13],
            b[14],
            b[15]
        )
    }
}

impl fmt::Debug for Uuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// `p_syntax_id_t`: a UUID with major and minor version.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default, Debug)]
pub struct SyntaxId {
    pub uuid: Uuid,
    pub version: u16,
    pub minor: u16,
}

impl fmt::Display for SyntaxId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} v{}.{}", self.uuid, self.version, self.minor)
    }
}

/// NDR 2.0 transfer syntax `8a885d04-1ceb-11c9-9fe8-08002b104860` v2.
pub const NDR: SyntaxId = SyntaxId {
    uuid: Uuid::from_fields(
        0x8a88_5d04,
        0x1ceb,
        0x11c9,
        [0x9f, 0xe8, 0x08, 0x00, 0x2b, 0x10, 0x48, 0x60],
    ),
    version: 2,
    minor: 0,
};

/// NDR64 transfer syntax `71710533-beba-4937-8319-b5dbef9ccc36` v1 (refused by our server).
pub const NDR64: SyntaxId = SyntaxId {
    uuid: Uuid::from_fields(
        0x7171_0533,
        0xbeba,
        0x4937,
        [0x83, 0x19, 0xb5, 0xdb, 0xef, 0x9c, 0xcc, 0x36],
    ),
    version: 1,
    minor: 0,
};

/// `WdsRpcInterface` `1A927394-352E-4553-AE3F-7CF4AAFCA620` v1.0 (MS-WDSC 6).
pub const WDS_INTERFACE: SyntaxId = SyntaxId {
    uuid: Uuid::from_fields(
        0x1a92_7394,
        0x352e,
        0x4553,
        [0xae, 0x3f, 0x7c, 0xf4, 0xaa, 0xfc, 0xa6, 0x20],
    ),
    version: 1,
    minor: 0,
};

/// Endpoint mapper `e1af8308-5d1f-11c9-91a4-08002b14a0fa` v3.0 (C706 appendix O).
pub const EPM_INTERFACE: SyntaxId = SyntaxId {
    uuid: Uuid::from_fields(
        0xe1af_8308,
        0x5d1f,
        0x11c9,
        [0x91, 0xa4, 0x08, 0x00, 0x2b, 0x14, 0xa0, 0xfa],
    ),
    version: 3,
    minor: 0,
};

/// Bind-time feature negotiation bits (MS-RPCE 2.2.2.14, 2.2.2.15).
pub mod btfn {
    pub const SECURITY_CONTEXT_MULTIPLEXING: u8 = 0x01;
    pub const KEEP_CONNECTION_ON_ORPHAN: u8 = 0x02;
}

/// First 8 wire bytes of the bind-time feature negotiation pseudo-syntax
/// `6CB71C2C-9812-4540-…` (MS-RPCE 3.3.1.5.3); the 8 bytes after them are the bitmask.
const BTFN_PREFIX: [u8; 8] = [0x2c, 0x1c, 0xb7, 0x6c, 0x12, 0x98, 0x40, 0x45];

/// The feature negotiation transfer syntax offering `bits`, v1.0. Windows clients send
/// `6cb71c2c-9812-4540-0300-000000000000` (both bits).
pub fn bind_time_feature_syntax(bits: u8) -> SyntaxId {
    let mut uuid = [0u8; 16];
    uuid[..8].copy_from_slice(&BTFN_PREFIX);
    uuid[8] = bits;
    SyntaxId {
        uuid: Uuid(uuid),
        version: 1,
        minor: 0,
    }
}

/// The offered feature bits if `syntax` is the feature negotiation pseudo-syntax.
pub fn bind_time_features(syntax: &SyntaxId) -> Option<u8> {
    (syntax.uuid.0[..8] == BTFN_PREFIX).then_some(syntax.uuid.0[8])
}
