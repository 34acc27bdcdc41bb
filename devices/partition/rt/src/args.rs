//! Bootargs: whitespace-separated `key=value` words (a bare `key` has the value "").

/// The value of the first `key=value` (or bare `key`) word in `bootargs`.
pub fn find<'a>(bootargs: &'a str, key: &str) -> Option<&'a str> {
    bootargs.split_ascii_whitespace().find_map(|word| {
        let (k, v) = word.split_once('=').unwrap_or((word, ""));
        (k == key).then_some(v)
    })
}

/// A number: `0x`-prefixed hex, else decimal; `_` separators allowed.
pub fn parse_u64(s: &str) -> Option<u64> {
    match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) => parse_radix(hex, 16),
        None => parse_radix(s, 10),
    }
}

/// A hex number, with or without `0x`; `_` separators allowed.
pub fn parse_hex(s: &str) -> Option<u64> {
    parse_radix(
        s.strip_prefix("0x")
            .or_else(|| s.strip_prefix("0X"))
            .unwrap_or(s),
        16,
    )
}

fn parse_radix(s: &str, radix: u32) -> Option<u64> {
    let mut value: u64 = 0;
    let mut digits = 0;
    for c in s.chars() {
        if c == '_' {
            continue;
        }
        let d = c.to_digit(radix)?;
        value = value.checked_mul(radix as u64)?.checked_add(d as u64)?;
        digits += 1;
    }
    (digits > 0).then_some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_values() {
        let a = "console=hvc0 name=alpha  wait=300 verbose target=0x48c00000";
        assert_eq!(find(a, "name"), Some("alpha"));
        assert_eq!(find(a, "wait"), Some("300"));
        assert_eq!(find(a, "verbose"), Some(""));
        assert_eq!(find(a, "target"), Some("0x48c00000"));
        assert_eq!(find(a, "nam"), None);
        assert_eq!(find(a, "alpha"), None);
        assert_eq!(find("", "name"), None);
        assert_eq!(find("a=1 a=2", "a"), Some("1"));
        assert_eq!(find("k=v=w", "k"), Some("v=w"));
    }

    #[test]
    fn numbers() {
        assert_eq!(parse_u64("300"), Some(300));
        assert_eq!(parse_u64("0x10"), Some(16));
        assert_eq!(parse_u64("1_000"), Some(1000));
        assert_eq!(parse_u64(""), None);
        assert_eq!(parse_u64("0x"), None);
        assert_eq!(parse_u64("12ms"), None);
        assert_eq!(parse_u64("99999999999999999999999"), None);
        assert_eq!(parse_hex("48c00000"), Some(0x48c0_0000));
        assert_eq!(parse_hex("0x9010000"), Some(0x0901_0000));
        assert_eq!(parse_hex("0X8000_0003"), Some(0x8000_0003));
        assert_eq!(parse_hex("xyz"), None);
    }
}
