//! The reference server's answer to MS-WDSOSD `WDS_OP_IMG_ENUMERATE`: every regular file at
//! the top of each namespace folder is offered, in an image group named after the namespace
//! and served by that same multicast namespace (see README.md#pn-server-images).
//!
//! A WIM file (`MSWIM` header) lists one entry per image in its XML metadata, with the
//! `<IMAGE>` element as the entry's metadata; any other file is one entry with index 1 and a
//! small `<IMAGE>` element naming the file.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use crate::wire::wdsc::{ImageEntry, escape_xml};

/// Offered entries per namespace at most, so a huge folder cannot make a huge reply.
pub const MAX_IMAGES_PER_NAMESPACE: usize = 256;
/// A WIM's XML metadata larger than this is not read (the file is then listed as one entry).
const MAX_WIM_XML: u64 = 4 * 1024 * 1024;

/// The entries for one namespace folder, sorted by file name then index.
pub fn namespace_images(namespace: &str, root: &Path) -> Vec<ImageEntry> {
    let Ok(dir) = std::fs::read_dir(root) else {
        return Vec::new();
    };
    let mut files: Vec<(String, u64, std::path::PathBuf)> = dir
        .filter_map(Result::ok)
        .filter_map(|e| {
            let meta = std::fs::metadata(e.path()).ok()?;
            if !meta.is_file() {
                return None;
            }
            let name = e.file_name().into_string().ok()?;
            (!name.starts_with('.')).then(|| (name, meta.len(), e.path()))
        })
        .collect();
    files.sort();
    let mut out = Vec::new();
    for (name, size, path) in files {
        let relative = format!("\\{namespace}\\{name}");
        let images = wim_images(&path).unwrap_or_else(|| {
            vec![(
                1,
                format!(
                    "<IMAGE INDEX=\"1\"><TOTALBYTES>{size}</TOTALBYTES><NAME>{}</NAME></IMAGE>",
                    escape_xml(&name)
                ),
            )]
        });
        for (index, xml) in images {
            if out.len() >= MAX_IMAGES_PER_NAMESPACE {
                return out;
            }
            out.push(ImageEntry {
                group: namespace.to_string(),
                index,
                path: relative.clone(),
                resource_path: None,
                namespace: Some(namespace.to_string()),
                namespace_size: Some(size),
                xml: Some(xml),
                image_type: None,
            });
        }
    }
    out
}

/// The images a WIM's XML metadata describes: (index, `<IMAGE>` element). `None` when the file
/// is not a WIM whose metadata can be read (uncompressed XML resource, as WIMs store it).
pub fn wim_images(path: &Path) -> Option<Vec<(u32, String)>> {
    let mut file = File::open(path).ok()?;
    let mut header = [0u8; 208];
    file.read_exact(&mut header).ok()?;
    if &header[..8] != b"MSWIM\0\0\0" {
        return None;
    }
    // XML data resource header at offset 72: 7-byte size and 1 flag byte, offset, original size.
    let size = u64::from_le_bytes([
        header[72], header[73], header[74], header[75], header[76], header[77], header[78], 0,
    ]);
    let flags = header[79];
    let offset = u64::from_le_bytes(header[80..88].try_into().ok()?);
    // Compressed (0x04) XML is not expected; skip it rather than decompress.
    if !(2..=MAX_WIM_XML).contains(&size) || flags & 0x04 != 0 {
        return None;
    }
    file.seek(SeekFrom::Start(offset)).ok()?;
    let mut bytes = vec![0u8; size as usize];
    file.read_exact(&mut bytes).ok()?;
    let units: Vec<u16> = bytes
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .collect();
    let text = String::from_utf16_lossy(&units);
    let text = text.trim_start_matches('\u{feff}');
    let mut images = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("<IMAGE ") {
        let after = &rest[start..];
        let end = after.find("</IMAGE>")? + "</IMAGE>".len();
        let element = &after[..end];
        let index = element
            .split_once("INDEX=\"")
            .and_then(|(_, v)| v.split_once('"'))
            .and_then(|(n, _)| n.parse::<u32>().ok())?;
        images.push((index, element.to_string()));
        rest = &after[end..];
    }
    (!images.is_empty()).then_some(images)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A file with a WIM header and an uncompressed UTF-16 XML resource (no image data): what
    /// the catalogue reads.
    pub fn fake_wim(images: &[(u32, &str)]) -> Vec<u8> {
        let mut xml = String::from("<WIM><TOTALBYTES>0</TOTALBYTES>");
        for (index, name) in images {
            xml += &format!("<IMAGE INDEX=\"{index}\"><NAME>{name}</NAME></IMAGE>");
        }
        xml += "</WIM>";
        let mut utf16 = vec![0xff, 0xfe];
        for unit in xml.encode_utf16() {
            utf16.extend_from_slice(&unit.to_le_bytes());
        }
        let mut out = vec![0u8; 208];
        out[..8].copy_from_slice(b"MSWIM\0\0\0");
        out[8..12].copy_from_slice(&208u32.to_le_bytes());
        out[44..48].copy_from_slice(&(images.len() as u32).to_le_bytes());
        out[72..79].copy_from_slice(&(utf16.len() as u64).to_le_bytes()[..7]);
        out[80..88].copy_from_slice(&208u64.to_le_bytes());
        out[88..96].copy_from_slice(&(utf16.len() as u64).to_le_bytes());
        out.extend_from_slice(&utf16);
        out
    }

    #[test]
    fn a_wim_lists_its_images_and_other_files_are_one_entry() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("install.wim"),
            fake_wim(&[(1, "Pro"), (2, "Home &amp; More")]),
        )
        .unwrap();
        std::fs::write(dir.path().join("boot.bin"), b"12345").unwrap();
        std::fs::write(dir.path().join(".hidden"), b"x").unwrap();
        let images = namespace_images("WDS:G", dir.path());
        let summary: Vec<(String, u32, String)> = images
            .iter()
            .map(|i| (i.path.clone(), i.index, i.name()))
            .collect();
        assert_eq!(
            summary,
            vec![
                ("\\WDS:G\\boot.bin".to_string(), 1, "boot.bin".to_string()),
                ("\\WDS:G\\install.wim".to_string(), 1, "Pro".to_string()),
                (
                    "\\WDS:G\\install.wim".to_string(),
                    2,
                    "Home & More".to_string()
                ),
            ]
        );
        assert_eq!(images[0].namespace_size, Some(5));
        assert_eq!(images[0].namespace.as_deref(), Some("WDS:G"));
    }
}
