//! Small helpers shared by the pieces: time, bytes for people and for JSON, the
//! NUL-separated lists the record stores, secret redaction.
//!
//! What it must never do: depend on another module of the crate; every piece may use it.

/// Nanoseconds since the Unix epoch.
pub fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

/// Text for a person: lossy where the bytes are not UTF-8.
pub fn lossy(bytes: &[u8]) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(bytes)
}

/// Bytes in JSON: a string when they are UTF-8, otherwise
/// `{"text": <lossy text>, "base64": <the exact bytes>}` so nothing is lost.
pub fn json_bytes(bytes: &[u8]) -> serde_json::Value {
    match std::str::from_utf8(bytes) {
        Ok(text) => serde_json::Value::String(text.to_owned()),
        Err(_) => {
            serde_json::json!({ "text": String::from_utf8_lossy(bytes), "base64": base64(bytes) })
        }
    }
}

/// Standard base64 with padding.
pub fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = (chunk[0] as u32) << 16
            | (*chunk.get(1).unwrap_or(&0) as u32) << 8
            | *chunk.get(2).unwrap_or(&0) as u32;
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Whether an environment variable's name looks like it holds a secret.
pub fn looks_secret(name: &[u8]) -> bool {
    let upper = name.to_ascii_uppercase();
    let contains = |needle: &[u8]| upper.windows(needle.len()).any(|w| w == needle);
    contains(b"TOKEN")
        || contains(b"SECRET")
        || contains(b"PASSWORD")
        || contains(b"PASSWD")
        || upper.ends_with(b"_KEY")
}

/// Replace the values of secret-looking `NAME=VALUE` entries.
pub fn redact_environment(entries: &[&[u8]]) -> Vec<u8> {
    join_nul(entries.iter().map(|entry| {
        let name = entry.split(|&b| b == b'=').next().unwrap_or_default();
        if looks_secret(name) && name.len() < entry.len() {
            let mut redacted = name.to_vec();
            redacted.extend_from_slice(b"=<redacted>");
            redacted
        } else {
            entry.to_vec()
        }
    }))
}

/// Split a NUL-separated list (the record's form of argv, environments and shell
/// words); a trailing NUL does not make an empty last item.
pub fn split_nul(bytes: &[u8]) -> Vec<&[u8]> {
    if bytes.is_empty() {
        return Vec::new();
    }
    let bytes = bytes.strip_suffix(b"\0").unwrap_or(bytes);
    bytes.split(|&b| b == 0).collect()
}

/// Join items with NUL separators: the inverse of [`split_nul`].
pub fn join_nul<I, T>(items: I) -> Vec<u8>
where
    I: IntoIterator<Item = T>,
    T: AsRef<[u8]>,
{
    let mut out = Vec::new();
    for (i, item) in items.into_iter().enumerate() {
        if i > 0 {
            out.push(0);
        }
        out.extend_from_slice(item.as_ref());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets() {
        assert!(looks_secret(b"GITHUB_TOKEN"));
        assert!(looks_secret(b"aws_secret_access_key"));
        assert!(looks_secret(b"API_KEY"));
        assert!(!looks_secret(b"KEYBOARD"));
        assert!(!looks_secret(b"PATH"));
        assert_eq!(
            redact_environment(&[b"A=1", b"MY_TOKEN=xyz"]),
            b"A=1\0MY_TOKEN=<redacted>"
        );
    }

    #[test]
    fn nul_lists_round_trip() {
        assert_eq!(split_nul(b""), Vec::<&[u8]>::new());
        assert_eq!(split_nul(b"a\0b"), [&b"a"[..], b"b"]);
        assert_eq!(split_nul(b"a\0b\0"), [&b"a"[..], b"b"]);
        assert_eq!(split_nul(b"a\0\0b"), [&b"a"[..], b"", b"b"]);
        assert_eq!(join_nul([&b"a"[..], b"", b"b"]), b"a\0\0b");
        assert_eq!(join_nul(Vec::<&[u8]>::new()), b"");
        let items: [&[u8]; 3] = [b"make", b"-C", b"sub dir"];
        assert_eq!(split_nul(&join_nul(items)), items);
    }

    #[test]
    fn base64_matches_reference() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
        assert_eq!(
            json_bytes(b"\xff/a"),
            serde_json::json!({"text": "\u{fffd}/a", "base64": "/y9h"})
        );
    }
}
