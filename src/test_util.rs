//! Helpers for the unit tests of every module.

/// The bytes that hex digits spell, as specifications print them; white space between the
/// digits (line breaks, grouping) is ignored.
pub(crate) fn hex(digits: &str) -> Vec<u8> {
    let digits: String = digits.split_whitespace().collect();
    (0..digits.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&digits[i..i + 2], 16).unwrap())
        .collect()
}
