//! MS-WDSOSD `WDS_OP_IMG_ENUMERATE` (§2.2.6, §3.1.5.6): the OS images a WDS server offers,
//! asked at the OS deployment endpoint over the same WDSC packets as session initiation.
//!
//! The request carries `VERSION` = 1 and, optionally, the client capabilities `CC`. The reply
//! lists images in one of two forms:
//! * version 1 (no `SC`, or `SC` without SERVER_CAP_SUPPORT_V2): `XML_n`, `PATH_n`,
//!   `GROUP_n`, `INDEX_n`, `NAMESPACE_n`, `NAMESPACE_SIZE_n`, `RESOURCEFILEPATH_n`, n from 1
//!   (the spec's example, §4.4);
//! * version 2: `IL.Type[n]`, `IL.Xml[n]`, `IL.Path[n]`, `IL.ResPath[n]`, `IL.Group[n]`,
//!   `IL.Index[n]`, `IL.NS[n]`, `IL.NSCS[n]`, ... The spec does not say whether the brackets
//!   are literal nor where n starts, so the decoder accepts `IL.Path3` and `IL.Path[3]` and
//!   groups entries by whatever numbers it finds (an inference until a capture settles it).
//!
//! The decoder never trusts the order of variables; it groups them by their index.

use std::collections::BTreeMap;

use super::super::codec::{DecodeError, DecodeErrorKind};
use super::{
    ENDPOINT_HEADER_LEN, Value, Variable, WdscEncodeError, WdscPacket, decode_raw, guid_bytes,
    same_name,
};

/// OS Deployment endpoint GUID `d8deeb5a-effd-43b2-99fc-1a8a5921c227` (MS-WDSOSD 1.9), in
/// packet byte order.
pub const OS_DEPLOYMENT_ENDPOINT_GUID: [u8; 16] = guid_bytes(
    0xd8de_eb5a,
    0xeffd,
    0x43b2,
    [0x99, 0xfc, 0x1a, 0x8a, 0x59, 0x21, 0xc2, 0x27],
);

/// OpCode of `WDS_OP_IMG_ENUMERATE`.
pub const OP_IMG_ENUMERATE: u32 = 0x0000_0002;

/// The one protocol version both ends send in `VERSION`.
pub const IMG_VERSION: u32 = 1;

/// Bits of the request's `CC` variable.
pub mod client_cap {
    /// `CLIENT_CAP_SUPPORT_V2`: the client reads the version 2 (`IL.*`) list.
    pub const SUPPORT_V2: u32 = 0x0000_0001;
    /// `CLIENT_CAP_SUPPORT_VHDX`
    pub const SUPPORT_VHDX: u32 = 0x0000_0002;
}

/// Bits of the reply's `SC` variable.
pub mod server_cap {
    /// `SERVER_CAP_SUPPORT_V2`: the list is in the version 2 form.
    pub const SUPPORT_V2: u32 = 0x0000_0001;
    pub const SUPPORT_VHDX: u32 = 0x0000_0002;
}

/// Bits of the reply's `OPTIONS` variable.
pub mod options {
    /// `WdsCliFlagEnumFilterVersion`
    pub const FILTER_VERSION: u32 = 0x0000_0001;
    /// `WdsCliFlagEnumFilterFirmware`
    pub const FILTER_FIRMWARE: u32 = 0x0000_0002;
}

/// `IL.Type` values.
pub mod image_type {
    pub const VHD: u32 = 1;
    pub const WIM: u32 = 2;
    pub const VHDX: u32 = 3;
}

/// The client's request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ImageEnumRequest {
    /// `CC`, when sent.
    pub client_caps: Option<u32>,
}

impl ImageEnumRequest {
    pub fn to_packet(&self) -> WdscPacket {
        let mut vars = vec![Variable::new("VERSION", Value::ULong(IMG_VERSION))];
        if let Some(cc) = self.client_caps {
            vars.push(Variable::new("CC", Value::ULong(cc)));
        }
        WdscPacket::request(OS_DEPLOYMENT_ENDPOINT_GUID, OP_IMG_ENUMERATE, vars)
    }

    pub fn encode(&self) -> Result<Vec<u8>, WdscEncodeError> {
        self.to_packet().encode()
    }

    /// Decodes a request as a server receives it (endpoint, opcode and `VERSION` checked).
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let packet = WdscPacket::decode(bytes)?;
        Self::from_packet(&packet)
    }

    /// The request in an already decoded packet.
    pub fn from_packet(packet: &WdscPacket) -> Result<Self, DecodeError> {
        if packet.endpoint != OS_DEPLOYMENT_ENDPOINT_GUID {
            return Err(invalid("WDSC endpoint header", "Endpoint-GUID", 8, 0));
        }
        if packet.opcode_or_error != OP_IMG_ENUMERATE {
            return Err(invalid(
                "WDSC operation header",
                "OpCode-ErrorCode",
                ENDPOINT_HEADER_LEN + 8,
                packet.opcode_or_error.into(),
            ));
        }
        match packet.get("VERSION") {
            Some(Value::ULong(IMG_VERSION)) => {}
            Some(Value::ULong(v)) => {
                return Err(invalid("WDSOSD IMG_ENUMERATE", "VERSION", 0, (*v).into()));
            }
            _ => return Err(missing("WDSOSD IMG_ENUMERATE", "VERSION")),
        }
        let client_caps = match packet.get("CC") {
            Some(Value::ULong(cc)) => Some(*cc),
            Some(_) => return Err(invalid("WDSOSD IMG_ENUMERATE", "CC", 0, 0)),
            None => None,
        };
        Ok(Self { client_caps })
    }
}

/// One OS image in the list.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ImageEntry {
    /// The image group.
    pub group: String,
    /// The image's index inside its container (the WIM image number).
    pub index: u32,
    /// The container's path on the server, relative to the REMINST share.
    pub path: String,
    /// The second file of a two-file container (`RESOURCEFILEPATH` / `IL.ResPath`).
    pub resource_path: Option<String>,
    /// The multicast namespace that serves the container; `None` or empty when none does.
    pub namespace: Option<String>,
    /// Bytes to download by multicast (`NAMESPACE_SIZE` / `IL.NSCS`).
    pub namespace_size: Option<u64>,
    /// The image metadata (the WIM's `<IMAGE>` element).
    pub xml: Option<String>,
    /// `IL.Type` (version 2 only).
    pub image_type: Option<u32>,
}

impl ImageEntry {
    /// The image's name: the metadata's `<NAME>`, else `<DISPLAYNAME>`, else the container's
    /// file name.
    pub fn name(&self) -> String {
        if let Some(xml) = &self.xml {
            for tag in ["NAME", "DISPLAYNAME"] {
                if let Some(name) = xml_element(xml, tag).filter(|n| !n.trim().is_empty()) {
                    return unescape_xml(name.trim());
                }
            }
        }
        self.path
            .rsplit(['\\', '/'])
            .next()
            .unwrap_or(&self.path)
            .to_string()
    }
}

/// The text inside the first `<tag>...</tag>` of `xml` (no nesting, no attributes on `tag`).
pub fn xml_element<'a>(xml: &'a str, tag: &str) -> Option<&'a str> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let start = xml.find(&open)? + open.len();
    let end = xml[start..].find(&close)? + start;
    Some(&xml[start..end])
}

/// Replaces the five predefined XML entities.
pub fn unescape_xml(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

/// Escapes text for an XML element's content.
pub fn escape_xml(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Which form the list is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListFormat {
    V1,
    V2,
}

/// The server's answer.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ImageEnumReply {
    /// `OPTIONS`, when sent.
    pub options: Option<u32>,
    /// `SC`, when sent.
    pub server_caps: Option<u32>,
    pub images: Vec<ImageEntry>,
}

/// A decoded reply: the list, or the operation's error code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageEnumOutcome {
    List(ImageEnumReply),
    /// OpCode-ErrorCode was non-zero; the variables are not interpreted.
    Failed {
        code: u32,
    },
}

impl ImageEnumReply {
    /// The form the reply uses (MS-WDSOSD 2.2.6: version 2 only with `SC` SUPPORT_V2).
    pub fn format(&self) -> ListFormat {
        if self
            .server_caps
            .is_some_and(|sc| sc & server_cap::SUPPORT_V2 != 0)
        {
            ListFormat::V2
        } else {
            ListFormat::V1
        }
    }

    /// The reply packet, with the images in the form [`Self::format`] names, numbered from 1.
    pub fn to_packet(&self) -> WdscPacket {
        let mut vars = vec![Variable::new("VERSION", Value::ULong(IMG_VERSION))];
        if let Some(options) = self.options {
            vars.push(Variable::new("OPTIONS", Value::ULong(options)));
        }
        if let Some(sc) = self.server_caps {
            vars.push(Variable::new("SC", Value::ULong(sc)));
        }
        let v2 = self.format() == ListFormat::V2;
        for (i, image) in self.images.iter().enumerate() {
            let n = i + 1;
            let name = |v1: &str, v2_field: &str| {
                if v2 {
                    format!("IL.{v2_field}[{n}]")
                } else {
                    format!("{v1}_{n}")
                }
            };
            let wstring = |s: &str| Value::WString(s.to_string());
            if v2 {
                vars.push(Variable::new(
                    &name("", "Type"),
                    Value::ULong(image.image_type.unwrap_or(image_type::WIM)),
                ));
            }
            vars.push(Variable::new(
                &name("XML", "Xml"),
                wstring(image.xml.as_deref().unwrap_or("")),
            ));
            vars.push(Variable::new(&name("PATH", "Path"), wstring(&image.path)));
            vars.push(Variable::new(
                &name("GROUP", "Group"),
                wstring(&image.group),
            ));
            vars.push(Variable::new(
                &name("INDEX", "Index"),
                Value::ULong(image.index),
            ));
            vars.push(Variable::new(
                &name("NAMESPACE", "NS"),
                wstring(image.namespace.as_deref().unwrap_or("")),
            ));
            if let Some(size) = image.namespace_size {
                vars.push(Variable::new(
                    &name("NAMESPACE_SIZE", "NSCS"),
                    Value::ULong64(size),
                ));
            }
            vars.push(Variable::new(
                &name("RESOURCEFILEPATH", "ResPath"),
                wstring(image.resource_path.as_deref().unwrap_or(&image.path)),
            ));
        }
        WdscPacket::reply(OS_DEPLOYMENT_ENDPOINT_GUID, 0, vars)
    }

    pub fn encode(&self) -> Result<Vec<u8>, WdscEncodeError> {
        self.to_packet().encode()
    }

    /// The list in a decoded reply packet.
    pub fn from_packet(packet: &WdscPacket) -> Result<Self, DecodeError> {
        let ulong = |name: &'static str| match packet.get(name) {
            Some(Value::ULong(v)) => Ok(Some(*v)),
            Some(_) => Err(invalid("WDSOSD IMG_ENUMERATE reply", name, 0, 0)),
            None => Ok(None),
        };
        let options = ulong("OPTIONS")?;
        let server_caps = ulong("SC")?;
        let mut reply = ImageEnumReply {
            options,
            server_caps,
            images: Vec::new(),
        };
        let v2 = reply.format() == ListFormat::V2;
        let mut entries: BTreeMap<u64, (ImageEntry, bool)> = BTreeMap::new();
        for var in &packet.variables {
            let Some((field, n)) = split_indexed(&var.name, v2) else {
                continue;
            };
            let (entry, has_path) = entries.entry(n).or_default();
            let text = || match &var.value {
                Value::WString(s) => Ok(s.clone()),
                Value::String(b) => Ok(String::from_utf8_lossy(b).into_owned()),
                _ => Err(invalid("WDSOSD IMG_ENUMERATE reply", "image string", 0, n)),
            };
            let number = || match &var.value {
                Value::ULong(v) => Ok(u64::from(*v)),
                Value::ULong64(v) => Ok(*v),
                Value::UShort(v) => Ok(u64::from(*v)),
                Value::Byte(v) => Ok(u64::from(*v)),
                _ => Err(invalid("WDSOSD IMG_ENUMERATE reply", "image number", 0, n)),
            };
            match field {
                Field::Xml => entry.xml = Some(text()?),
                Field::Path => {
                    entry.path = text()?;
                    *has_path = true;
                }
                Field::ResPath => entry.resource_path = Some(text()?),
                Field::Group => entry.group = text()?,
                Field::Index => {
                    entry.index = u32::try_from(number()?)
                        .map_err(|_| invalid("WDSOSD IMG_ENUMERATE reply", "INDEX", 0, n))?;
                }
                Field::Namespace => entry.namespace = Some(text()?),
                Field::NamespaceSize => entry.namespace_size = Some(number()?),
                Field::Type => entry.image_type = u32::try_from(number()?).ok(),
            }
        }
        // An image is the set of variables with one index; one without a path is not an image
        // (MS-WDSOSD requires PATH), so a stray variable cannot invent one.
        reply.images = entries
            .into_values()
            .filter(|(_, has_path)| *has_path)
            .map(|(mut entry, _)| {
                if entry.namespace.as_deref() == Some("") {
                    entry.namespace = None;
                }
                entry
            })
            .collect();
        Ok(reply)
    }
}

impl ImageEnumOutcome {
    /// Decodes a reply as a client receives it.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let raw = decode_raw(bytes)?;
        if raw.endpoint != OS_DEPLOYMENT_ENDPOINT_GUID {
            return Err(invalid("WDSC endpoint header", "Endpoint-GUID", 8, 0));
        }
        if raw.opcode_or_error != 0 {
            return Ok(Self::Failed {
                code: raw.opcode_or_error,
            });
        }
        let packet = WdscPacket::decode(bytes)?;
        ImageEnumReply::from_packet(&packet).map(Self::List)
    }
}

/// Encodes an error reply from the OS deployment endpoint.
pub fn encode_images_error_reply(code: u32) -> Vec<u8> {
    WdscPacket::reply(OS_DEPLOYMENT_ENDPOINT_GUID, code, Vec::new())
        .encode()
        .unwrap_or_default()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Xml,
    Path,
    ResPath,
    Group,
    Index,
    Namespace,
    NamespaceSize,
    Type,
}

/// `PATH_3` -> (Path, 3) in the version 1 form; `IL.Path[3]` or `IL.Path3` in version 2.
fn split_indexed(name: &str, v2: bool) -> Option<(Field, u64)> {
    if v2 {
        let rest = name
            .get(..3)
            .filter(|p| same_name(p, "IL."))
            .map(|_| &name[3..])?;
        let digits_at = rest.find(|c: char| c == '[' || c.is_ascii_digit())?;
        let (field, index) = rest.split_at(digits_at);
        let index = index.trim_start_matches('[').trim_end_matches(']');
        let n = index.parse::<u64>().ok()?;
        let fields = [
            ("Xml", Field::Xml),
            ("Path", Field::Path),
            ("ResPath", Field::ResPath),
            ("Group", Field::Group),
            ("Index", Field::Index),
            ("NS", Field::Namespace),
            ("NSCS", Field::NamespaceSize),
            ("Type", Field::Type),
        ];
        fields
            .iter()
            .find(|(f, _)| same_name(f, field))
            .map(|(_, f)| (*f, n))
    } else {
        let (field, index) = name.rsplit_once('_')?;
        let n = index.parse::<u64>().ok()?;
        let fields = [
            ("XML", Field::Xml),
            ("PATH", Field::Path),
            ("RESOURCEFILEPATH", Field::ResPath),
            ("GROUP", Field::Group),
            ("INDEX", Field::Index),
            ("NAMESPACE", Field::Namespace),
            ("NAMESPACE_SIZE", Field::NamespaceSize),
        ];
        fields
            .iter()
            .find(|(f, _)| same_name(f, field))
            .map(|(_, f)| (*f, n))
    }
}

fn invalid(packet: &'static str, field: &'static str, offset: usize, value: u64) -> DecodeError {
    DecodeError {
        packet,
        field,
        offset,
        kind: DecodeErrorKind::InvalidValue { value },
    }
}

fn missing(packet: &'static str, field: &'static str) -> DecodeError {
    DecodeError {
        packet,
        field,
        offset: 0,
        kind: DecodeErrorKind::Truncated {
            needed: 1,
            available: 0,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(n: u32) -> ImageEntry {
        ImageEntry {
            group: "Default".into(),
            index: n,
            path: "\\Images\\Default\\install.wim".into(),
            resource_path: None,
            namespace: Some(format!("WDS:Default/install.wim/{n}")),
            namespace_size: Some(0xEF8B_56EC),
            xml: Some(format!(
                "<IMAGE INDEX=\"{n}\"><NAME>Windows &amp; {n}</NAME></IMAGE>"
            )),
            image_type: None,
        }
    }

    #[test]
    fn the_request_carries_version_one_at_the_os_deployment_endpoint() {
        let bytes = ImageEnumRequest::default().encode().unwrap();
        // Endpoint GUID in packet order: 5a eb de d8 fd ef b2 43 99 fc ...
        assert_eq!(&bytes[8..12], &[0x5a, 0xeb, 0xde, 0xd8]);
        assert_eq!(&bytes[12..16], &[0xfd, 0xef, 0xb2, 0x43]);
        let decoded = ImageEnumRequest::decode(&bytes).unwrap();
        assert_eq!(decoded.client_caps, None);
        let with_cc = ImageEnumRequest {
            client_caps: Some(client_cap::SUPPORT_V2),
        };
        assert_eq!(
            ImageEnumRequest::decode(&with_cc.encode().unwrap()).unwrap(),
            with_cc
        );
        // A multicast INITIATE is not an image enumeration.
        let initiate = crate::wire::wdsc::InitiateRequest {
            namespace: "n".into(),
            content: "c".into(),
            client: "x".into(),
            cap: None,
        }
        .encode()
        .unwrap();
        assert!(ImageEnumRequest::decode(&initiate).is_err());
    }

    #[test]
    fn version_one_and_two_lists_round_trip() {
        for sc in [None, Some(server_cap::SUPPORT_V2)] {
            let reply = ImageEnumReply {
                options: Some(options::FILTER_VERSION | options::FILTER_FIRMWARE),
                server_caps: sc,
                images: vec![entry(1), entry(2)],
            };
            let bytes = reply.encode().unwrap();
            let ImageEnumOutcome::List(decoded) = ImageEnumOutcome::decode(&bytes).unwrap() else {
                panic!("not a list")
            };
            assert_eq!(decoded.images.len(), 2, "{sc:?}");
            let mut expected = reply.clone();
            for image in &mut expected.images {
                image.resource_path = Some(image.path.clone());
                if sc.is_some() {
                    image.image_type = Some(image_type::WIM);
                }
            }
            assert_eq!(decoded, expected);
            assert_eq!(decoded.images[1].name(), "Windows & 2");
        }
    }

    #[test]
    fn version_two_names_without_brackets_and_from_zero_are_read_too() {
        let vars = vec![
            Variable::new("VERSION", Value::ULong(1)),
            Variable::new("SC", Value::ULong(1)),
            Variable::new("IL.Path0", Value::WString("\\a.wim".into())),
            Variable::new("IL.Group0", Value::WString("G".into())),
            Variable::new("IL.Index0", Value::ULong(4)),
            // A variable of an index without a path does not make an image.
            Variable::new("IL.Group7", Value::WString("ghost".into())),
        ];
        let bytes = WdscPacket::reply(OS_DEPLOYMENT_ENDPOINT_GUID, 0, vars)
            .encode()
            .unwrap();
        let ImageEnumOutcome::List(list) = ImageEnumOutcome::decode(&bytes).unwrap() else {
            panic!()
        };
        assert_eq!(list.images.len(), 1);
        assert_eq!(list.images[0].index, 4);
        assert_eq!(list.images[0].name(), "a.wim");
    }

    #[test]
    fn an_error_reply_is_a_failure_code() {
        let bytes = encode_images_error_reply(5);
        assert_eq!(
            ImageEnumOutcome::decode(&bytes).unwrap(),
            ImageEnumOutcome::Failed { code: 5 }
        );
    }
}
