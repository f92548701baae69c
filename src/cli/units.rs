//! Parsers for the sizes, rates and durations given on the command line.
//!
//! Sizes are a whole number with an optional unit, case-insensitive: none or `B` (bytes);
//! `k`, `M`, `G`, `T` and `KiB`, `MiB`, `GiB`, `TiB` (powers of 1024, as dd and GNU tools read
//! the single letters); `KB`, `MB`, `GB`, `TB` (powers of 1000). Rates are sizes per second with
//! an optional `/s`. Durations are humantime (`30s`, `2m`, `1h 30m`, `500ms`) or bare seconds.

use std::time::Duration;

/// Parses a byte count such as `32MiB`, `512k` or `1G`.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let trimmed = text.trim();
    let digits_end = trimmed
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(trimmed.len());
    let (digits, unit) = trimmed.split_at(digits_end);
    if digits.is_empty() {
        return Err(format!(
            "invalid size {text:?}: expected a whole number with an optional unit, like 512k, 32MiB or 1G"
        ));
    }
    let number: u64 = digits
        .parse()
        .map_err(|_| format!("invalid size {text:?}: the number is too large"))?;
    let multiplier: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" => 1 << 10,
        "m" | "mib" => 1 << 20,
        "g" | "gib" => 1 << 30,
        "t" | "tib" => 1 << 40,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        "tb" => 1_000_000_000_000,
        other => {
            return Err(format!(
                "invalid size {text:?}: unknown unit {other:?}; use B, k, M, G, T, KiB, MiB, GiB, TiB, KB, MB, GB or TB"
            ));
        }
    };
    number
        .checked_mul(multiplier)
        .ok_or_else(|| format!("invalid size {text:?}: larger than 2^64 bytes"))
}

/// Parses a rate in bytes per second such as `100MiB/s` or `10M`.
pub fn parse_rate(text: &str) -> Result<u64, String> {
    let trimmed = text.trim();
    let without_per_second = trimmed
        .strip_suffix("/s")
        .or_else(|| trimmed.strip_suffix("/S"))
        .unwrap_or(trimmed);
    let rate = parse_size(without_per_second)
        .map_err(|e| format!("{e} (rates are bytes per second, e.g. 100MiB/s)"))?;
    if rate == 0 {
        return Err(format!(
            "invalid rate {text:?}: must be more than 0 bytes per second"
        ));
    }
    Ok(rate)
}

/// Parses a positive duration such as `30s`, `2m` or `90` (seconds).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let trimmed = text.trim();
    let duration = if !trimmed.is_empty() && trimmed.bytes().all(|b| b.is_ascii_digit()) {
        let seconds: u64 = trimmed
            .parse()
            .map_err(|_| format!("invalid duration {text:?}: too large"))?;
        Duration::from_secs(seconds)
    } else {
        humantime::parse_duration(trimmed).map_err(|e| {
            format!("invalid duration {text:?}: {e}; use forms like 30s, 2m or 500ms")
        })?
    };
    if duration.is_zero() {
        return Err(format!(
            "invalid duration {text:?}: must be longer than zero"
        ));
    }
    Ok(duration)
}

/// Formats a byte count with binary units, e.g. `12.5 MiB`.
pub fn format_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// Formats a rate in bytes per second, e.g. `80.0 MiB/s`.
pub fn format_rate(bytes_per_second: f64) -> String {
    format!("{}/s", format_bytes(bytes_per_second.max(0.0) as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_with_units() {
        assert_eq!(parse_size("0"), Ok(0));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("10B"), Ok(10));
        assert_eq!(parse_size("512k"), Ok(512 * 1024));
        assert_eq!(parse_size("512K"), Ok(512 * 1024));
        assert_eq!(parse_size("32MiB"), Ok(32 << 20));
        assert_eq!(parse_size("32mib"), Ok(32 << 20));
        assert_eq!(parse_size("1G"), Ok(1 << 30));
        assert_eq!(parse_size("2T"), Ok(2 << 40));
        assert_eq!(parse_size("3MB"), Ok(3_000_000));
        assert_eq!(parse_size("1kb"), Ok(1000));
        assert_eq!(parse_size(" 8 MiB "), Ok(8 << 20));
    }

    #[test]
    fn sizes_rejected() {
        for bad in [
            "",
            "MiB",
            "-1",
            "1.5G",
            "12Q",
            "1 2",
            "99999999999999999999",
            "16777216T",
        ] {
            assert!(parse_size(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn rates() {
        assert_eq!(parse_rate("100MiB/s"), Ok(100 << 20));
        assert_eq!(parse_rate("10M"), Ok(10 << 20));
        assert_eq!(parse_rate("500000"), Ok(500_000));
        assert_eq!(parse_rate("1GB/s"), Ok(1_000_000_000));
        assert!(parse_rate("0/s").is_err());
        assert!(parse_rate("fast").is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1h 30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("45"), Ok(Duration::from_secs(45)));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("0").is_err());
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn byte_formatting() {
        assert_eq!(format_bytes(512), "512 B");
        assert_eq!(format_bytes(1536), "1.5 KiB");
        assert_eq!(format_bytes(32 << 20), "32.0 MiB");
    }
}
