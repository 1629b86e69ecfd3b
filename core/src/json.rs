//! JSON as JavaScript writes it: strings may hold lone UTF-16 surrogates
//! (`"\ud800"`), which `JSON.parse` and `JSON.stringify` pass through but
//! Rust strings cannot hold. Event arguments are kept as raw JSON text
//! ([`RawValue`]) and decoded only where needed; a lone surrogate becomes
//! U+FFFD in a Rust string and stays as sent when text is passed on.

use serde_json::value::RawValue;

/// Splits a JSON array into its raw elements; `None` if `text` is not a
/// JSON array (or is nested too deep).
pub(crate) fn array(text: &str) -> Option<Vec<&RawValue>> {
    serde_json::from_str::<Vec<&RawValue>>(text).ok()
}

/// Whether `text` is a JSON object.
pub(crate) fn is_object(text: &str) -> bool {
    text.trim_start().starts_with('{') && serde_json::from_str::<&RawValue>(text).is_ok()
}

/// The inside of a JSON string literal, escapes kept (`None` if `raw` is
/// not a string).
pub(crate) fn string_body(raw: &RawValue) -> Option<&str> {
    let s = raw.get();
    if s.len() >= 2 && s.starts_with('"') && s.ends_with('"') {
        Some(&s[1..s.len() - 1])
    } else {
        None
    }
}

/// Decodes a JSON string literal; a lone surrogate becomes U+FFFD.
pub(crate) fn string(raw: &RawValue) -> Option<String> {
    let body = string_body(raw)?;
    if !body.contains('\\') {
        return Some(body.to_owned());
    }
    let mut out = String::with_capacity(body.len());
    let mut chars = body.chars();
    let mut pending_high: Option<u16> = None;
    let flush = |out: &mut String, high: &mut Option<u16>| {
        if high.take().is_some() {
            out.push('\u{fffd}');
        }
    };
    while let Some(c) = chars.next() {
        if c != '\\' {
            flush(&mut out, &mut pending_high);
            out.push(c);
            continue;
        }
        let e = chars.next()?;
        let simple = match e {
            '"' => '"',
            '\\' => '\\',
            '/' => '/',
            'b' => '\u{8}',
            'f' => '\u{c}',
            'n' => '\n',
            'r' => '\r',
            't' => '\t',
            'u' => {
                let hex: String = chars.by_ref().take(4).collect();
                let unit = u16::from_str_radix(&hex, 16).ok()?;
                match unit {
                    0xd800..=0xdbff => {
                        flush(&mut out, &mut pending_high);
                        pending_high = Some(unit);
                    }
                    0xdc00..=0xdfff => match pending_high.take() {
                        Some(high) => {
                            let cp = 0x10000
                                + ((u32::from(high) - 0xd800) << 10)
                                + (u32::from(unit) - 0xdc00);
                            out.push(char::from_u32(cp).unwrap_or('\u{fffd}'));
                        }
                        None => out.push('\u{fffd}'),
                    },
                    _ => {
                        flush(&mut out, &mut pending_high);
                        out.push(char::from_u32(u32::from(unit)).unwrap_or('\u{fffd}'));
                    }
                }
                continue;
            }
            _ => return None,
        };
        flush(&mut out, &mut pending_high);
        out.push(simple);
    }
    flush(&mut out, &mut pending_high);
    Some(out)
}

/// Parses JSON into a `serde_json::Value`, reading lone surrogates as
/// U+FFFD.
pub(crate) fn value(text: &str) -> Option<serde_json::Value> {
    match serde_json::from_str(text) {
        Ok(v) => Some(v),
        Err(_) => serde_json::from_str(&replace_lone_surrogates(text)).ok(),
    }
}

/// Rewrites every `\uXXXX` escape of a lone surrogate as `\ufffd`.
fn replace_lone_surrogates(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    let unit_at = |i: usize| -> Option<u16> {
        if b.get(i) == Some(&b'\\') && b.get(i + 1) == Some(&b'u') {
            std::str::from_utf8(b.get(i + 2..i + 6)?)
                .ok()
                .and_then(|h| u16::from_str_radix(h, 16).ok())
        } else {
            None
        }
    };
    let mut last = 0;
    while i < b.len() {
        if b[i] == b'\\' {
            if let Some(unit) = unit_at(i) {
                let lone = match unit {
                    0xd800..=0xdbff => !matches!(unit_at(i + 6), Some(0xdc00..=0xdfff)),
                    0xdc00..=0xdfff => true,
                    _ => false,
                };
                if lone {
                    out.push_str(&text[last..i]);
                    out.push_str("\\ufffd");
                    i += 6;
                    last = i;
                    continue;
                }
                if (0xd800..=0xdbff).contains(&unit) {
                    i += 12; // a valid pair
                    continue;
                }
                i += 6;
                continue;
            }
            i += 2; // any other escape, including `\\`
            continue;
        }
        i += 1;
    }
    out.push_str(&text[last..]);
    out
}

/// Appends `s` as a JSON string literal.
pub(crate) fn write_string(out: &mut impl std::io::Write, s: &str) {
    // Writing to memory does not fail.
    let _ = serde_json::to_writer(out, s);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(s: &str) -> Box<RawValue> {
        RawValue::from_string(s.to_owned()).unwrap()
    }

    #[test]
    fn arrays_keep_their_elements_raw() {
        let items = array(r#"["clientMessage","a\ud800b",{"k":[1]}]"#).unwrap();
        assert_eq!(items.len(), 3);
        assert_eq!(items[1].get(), r#""a\ud800b""#);
        assert!(array("{}").is_none());
        // Deep nesting is scanned without recursion (no stack to exhaust)
        // and refused when parsed into values.
        let deep = format!("[{}{}]", "[".repeat(500_000), "]".repeat(500_000));
        assert_eq!(array(&deep).map(|a| a.len()), Some(1));
        assert!(value(&deep).is_none());
    }

    #[test]
    fn strings_decode_with_lone_surrogates_replaced() {
        assert_eq!(string(&raw(r#""plain""#)).as_deref(), Some("plain"));
        assert_eq!(
            string(&raw(r#""a\n\"b\" \u00e9 \ud83d\ude00""#)).as_deref(),
            Some("a\n\"b\" é 😀")
        );
        assert_eq!(string(&raw(r#""a\ud800b""#)).as_deref(), Some("a\u{fffd}b"));
        assert_eq!(string(&raw(r#""\udc00""#)).as_deref(), Some("\u{fffd}"));
        assert_eq!(string(&raw("5")), None);
        assert_eq!(string_body(&raw(r#""a\ud800""#)), Some(r"a\ud800"));
    }

    #[test]
    fn values_parse_through_lone_surrogates() {
        let v = value(r#"["x","\ud800",{"k":"\udc00\\ud800"}]"#).unwrap();
        assert_eq!(v[1], "\u{fffd}");
        assert_eq!(v[2]["k"], "\u{fffd}\\ud800");
        assert_eq!(value(r#""\ud83d\ude00""#).unwrap(), "😀");
        assert!(value("{").is_none());
    }
}
