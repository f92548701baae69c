//! Parsers for the values of options that are not sizes, rates or durations (those are in
//! `units`): interfaces, digests, namespaces, address and port ranges, block sizes.

use std::net::IpAddr;
use std::path::PathBuf;

use wdsmc::transport::InterfaceSpec;

use super::units;

pub fn parse_interface(text: &str) -> Result<InterfaceSpec, String> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err("interface must not be empty; give an address or a name like eth0".into());
    }
    Ok(match trimmed.parse::<IpAddr>() {
        Ok(addr) => InterfaceSpec::Address(addr),
        Err(_) => InterfaceSpec::Name(trimmed.to_string()),
    })
}

pub fn parse_sha256(text: &str) -> Result<[u8; 32], String> {
    let hex = text.trim();
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!(
            "invalid SHA-256 {text:?}: expected 64 hexadecimal digits"
        ));
    }
    let mut digest = [0u8; 32];
    for (i, byte) in digest.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).map_err(|e| e.to_string())?;
    }
    Ok(digest)
}

pub fn parse_namespace(text: &str) -> Result<(String, PathBuf), String> {
    match text.split_once('=') {
        Some((name, dir)) if !name.trim().is_empty() && !dir.is_empty() => {
            Ok((name.trim().to_string(), PathBuf::from(dir)))
        }
        _ => Err(format!(
            "invalid namespace {text:?}: expected NAME=DIR, e.g. images=/srv/images"
        )),
    }
}

pub fn parse_cidr(text: &str) -> Result<(IpAddr, u8), String> {
    let (addr, prefix) = text.split_once('/').ok_or_else(|| {
        format!("invalid group range {text:?}: expected a CIDR block like 239.255.77.0/24")
    })?;
    let addr: IpAddr = addr
        .parse()
        .map_err(|e| format!("invalid group range {text:?}: bad address: {e}"))?;
    let prefix: u8 = prefix
        .parse()
        .map_err(|_| format!("invalid group range {text:?}: bad prefix length"))?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    if prefix > max {
        return Err(format!(
            "invalid group range {text:?}: prefix length above {max}"
        ));
    }
    if !addr.is_multicast() {
        return Err(format!(
            "invalid group range {text:?}: {addr} is not a multicast address"
        ));
    }
    Ok((addr, prefix))
}

pub fn parse_port_range(text: &str) -> Result<(u16, u16), String> {
    let (low, high) = text.split_once('-').ok_or_else(|| {
        format!("invalid port range {text:?}: expected LOW-HIGH, e.g. 64001-65000")
    })?;
    let low: u16 = low
        .trim()
        .parse()
        .map_err(|_| format!("invalid port range {text:?}: bad low port"))?;
    let high: u16 = high
        .trim()
        .parse()
        .map_err(|_| format!("invalid port range {text:?}: bad high port"))?;
    if low == 0 || low > high {
        return Err(format!(
            "invalid port range {text:?}: need 1 <= LOW <= HIGH"
        ));
    }
    Ok((low, high))
}

pub fn parse_block_size(text: &str) -> Result<u32, String> {
    let size = units::parse_size(text)?;
    // A block travels in one UDP datagram, whose payload cannot exceed 64 KiB.
    if size == 0 || size > 65_000 {
        return Err(format!(
            "invalid block size {text:?}: must be between 1 and 65000 bytes"
        ));
    }
    Ok(size as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_parsers() {
        assert_eq!(parse_port_range("100-200"), Ok((100, 200)));
        assert!(parse_port_range("200-100").is_err());
        assert!(parse_port_range("0-10").is_err());
        assert_eq!(
            parse_cidr("239.255.77.0/24"),
            Ok(("239.255.77.0".parse().unwrap(), 24))
        );
        assert!(parse_cidr("10.0.0.0/8").is_err());
        assert!(parse_cidr("239.255.0.0/33").is_err());
        assert_eq!(
            parse_namespace("a=/srv"),
            Ok(("a".into(), PathBuf::from("/srv")))
        );
        assert!(parse_namespace("=/srv").is_err());
        assert!(parse_namespace("a").is_err());
        assert_eq!(parse_sha256(&"ab".repeat(32)), Ok([0xab; 32]));
        assert!(parse_sha256("abc").is_err());
        assert_eq!(
            parse_interface("127.0.0.1"),
            Ok(InterfaceSpec::Address("127.0.0.1".parse().unwrap()))
        );
        assert_eq!(
            parse_interface("eth0"),
            Ok(InterfaceSpec::Name("eth0".into()))
        );
        assert_eq!(parse_block_size("8k"), Ok(8192));
        assert!(parse_block_size("64k").is_err());
    }
}
