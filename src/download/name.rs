//! The file name an object is saved under when the caller gives only a folder.

/// The object's last path component, made safe to use as a file name on every platform:
/// control characters and `< > : " | ? *` become `_`, trailing dots and spaces go, and a
/// Windows device name (CON, NUL, COM1, LPT1.txt, ...) gets a leading `_`. `None` when nothing
/// usable is left (`..`, `/`, an empty name).
pub fn default_file_name(object: &str) -> Option<String> {
    let last = object.rsplit(['/', '\\']).find(|part| !part.is_empty())?;
    let cleaned: String = last
        .chars()
        .map(|c| {
            if c.is_control() || matches!(c, '<' | '>' | ':' | '"' | '|' | '?' | '*') {
                '_'
            } else {
                c
            }
        })
        .collect();
    let cleaned = cleaned.trim().trim_end_matches('.').to_string();
    if cleaned.is_empty() || cleaned == "." || cleaned == ".." {
        None
    } else if is_windows_device_name(&cleaned) {
        // `con.wim` would open the console on Windows; same name on every platform.
        Some(format!("_{cleaned}"))
    } else {
        Some(cleaned)
    }
}

/// Names Windows maps to devices whatever the extension (CON, NUL, COM1, LPT1.txt, ...).
fn is_windows_device_name(name: &str) -> bool {
    let stem = name.split('.').next().unwrap_or(name).trim_end();
    let upper = stem.to_ascii_uppercase();
    matches!(
        upper.as_str(),
        "CON" | "PRN" | "AUX" | "NUL" | "CONIN$" | "CONOUT$"
    ) || ((upper.starts_with("COM") || upper.starts_with("LPT"))
        && upper.len() == 4
        && upper.as_bytes()[3].is_ascii_digit()
        && upper.as_bytes()[3] != b'0')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_names_are_safe() {
        let cases: [(&str, Option<&str>); 19] = [
            ("install.wim", Some("install.wim")),
            ("sources/install.wim", Some("install.wim")),
            ("boot\\x64\\boot.wim", Some("boot.wim")),
            ("dir/", Some("dir")),
            ("a:b*c", Some("a_b_c")),
            ("evil\u{7}name", Some("evil_name")),
            ("..", None),
            ("x/..", None),
            (".", None),
            ("", None),
            ("///", None),
            ("sources\\install.wim", Some("install.wim")),
            ("C:\\images\\boot.wim", Some("boot.wim")),
            ("C:", Some("C_")),
            ("images/con.wim", Some("_con.wim")),
            ("NUL", Some("_NUL")),
            ("lpt1.txt", Some("_lpt1.txt")),
            ("com0.wim", Some("com0.wim")),
            ("console.wim", Some("console.wim")),
        ];
        for (object, expected) in cases {
            assert_eq!(
                default_file_name(object).as_deref(),
                expected,
                "object {object:?}"
            );
        }
    }
}
