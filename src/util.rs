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

/// What the record stores in place of a secret's value.
pub const REDACTED: &[u8] = b"<redacted>";

/// Whether an environment variable's name looks like it holds a secret: it contains
/// `TOKEN`, `SECRET`, `PASSWORD`, `PASSWD`, `PASSPHRASE` or `CREDENTIAL`, ends in
/// `_KEY` or `_PAT` (or is `PAT`), or has a word starting `AUTH` (`NPM_AUTH`,
/// `AUTHORIZATION`) other than `AUTHOR` (`GIT_AUTHOR_NAME`), in any case.
pub fn looks_secret(name: &[u8]) -> bool {
    let upper = name.to_ascii_uppercase();
    let contains = |needle: &[u8]| upper.windows(needle.len()).any(|w| w == needle);
    let auth = upper
        .split(|&b| b == b'_')
        .any(|word| word.starts_with(b"AUTH") && word != b"AUTHOR" && word != b"AUTHORS");
    contains(b"TOKEN")
        || contains(b"SECRET")
        || contains(b"PASSWORD")
        || contains(b"PASSWD")
        || contains(b"PASSPHRASE")
        || contains(b"CREDENTIAL")
        || upper.ends_with(b"_KEY")
        || upper.ends_with(b"_PAT")
        || upper == b"PAT"
        || auth
}

/// Whether `value` holds a URL with a password (`scheme://user:password@host`).
pub fn has_url_password(value: &[u8]) -> bool {
    let mut rest = value;
    while let Some(at) = rest.windows(3).position(|w| w == b"://") {
        rest = &rest[at + 3..];
        let authority_end = rest
            .iter()
            .position(|&b| matches!(b, b'/' | b'?' | b'#') || b.is_ascii_whitespace())
            .unwrap_or(rest.len());
        let authority = &rest[..authority_end];
        if let Some(at) = authority.iter().rposition(|&b| b == b'@') {
            if let Some(colon) = authority[..at].iter().position(|&b| b == b':') {
                if colon + 1 < at {
                    return true;
                }
            }
        }
    }
    false
}

/// A make variable assignment on a command line (`NAME=VALUE`, `NAME:=VALUE`, …) with
/// a secret-looking name or a URL with a password, its value redacted; `None` when
/// `word` is none of these.
pub fn redact_assignment(word: &[u8]) -> Option<Vec<u8>> {
    let equals = word.iter().position(|&b| b == b'=')?;
    let name = word[..equals]
        .strip_suffix(b"::")
        .or_else(|| word[..equals].strip_suffix(b":"))
        .or_else(|| word[..equals].strip_suffix(b"+"))
        .or_else(|| word[..equals].strip_suffix(b"?"))
        .or_else(|| word[..equals].strip_suffix(b"!"))
        .unwrap_or(&word[..equals]);
    let plain = !name.is_empty() && !name.starts_with(b"-") && !name.contains(&b' ');
    if plain && (looks_secret(name) || has_url_password(&word[equals + 1..])) {
        let mut redacted = word[..=equals].to_vec();
        redacted.extend_from_slice(REDACTED);
        Some(redacted)
    } else {
        None
    }
}

/// Replace the values of secret-looking `NAME=VALUE` entries (a secret-looking name, or
/// a URL with a password in the value), and of secret-looking variables given on make's
/// command line inside `MAKEFLAGS`/`MFLAGS`.
pub fn redact_environment(entries: &[&[u8]]) -> Vec<u8> {
    join_nul(entries.iter().map(|entry| {
        let Some(equals) = entry.iter().position(|&b| b == b'=') else {
            return entry.to_vec();
        };
        let (name, value) = (&entry[..equals], &entry[equals + 1..]);
        if looks_secret(name) || has_url_password(value) {
            let mut redacted = entry[..=equals].to_vec();
            redacted.extend_from_slice(REDACTED);
            redacted
        } else if matches!(name, b"MAKEFLAGS" | b"MFLAGS" | b"GNUMAKEFLAGS") {
            let mut kept = entry[..=equals].to_vec();
            for (i, word) in value.split(|&b| b == b' ').enumerate() {
                if i > 0 {
                    kept.push(b' ');
                }
                match redact_assignment(word) {
                    Some(redacted) => kept.extend_from_slice(&redacted),
                    None => kept.extend_from_slice(word),
                }
            }
            kept
        } else {
            entry.to_vec()
        }
    }))
}

/// make's NUL-separated arguments with the values of secret variable assignments
/// redacted ([`redact_assignment`]).
pub fn redact_arguments(argv: &[u8]) -> Vec<u8> {
    join_nul(
        split_nul(argv)
            .into_iter()
            .map(|word| redact_assignment(word).unwrap_or_else(|| word.to_vec())),
    )
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

/// A new directory `PREFIX-XXXXXX` under the system's temporary directory, the owner's
/// alone (mkdtemp): for the private files of one run.
pub fn private_temp_dir(prefix: &str) -> anyhow::Result<std::path::PathBuf> {
    use std::os::unix::ffi::{OsStrExt, OsStringExt};
    let base = std::env::temp_dir();
    let mut template = base
        .join(format!("{prefix}-XXXXXX"))
        .as_os_str()
        .as_bytes()
        .to_vec();
    template.push(0);
    // SAFETY: `template` is a NUL-terminated buffer mkdtemp may write into, in place.
    let made = unsafe { libc::mkdtemp(template.as_mut_ptr().cast()) };
    if made.is_null() {
        anyhow::bail!(
            "cannot create a private directory in {}: {}",
            base.display(),
            std::io::Error::last_os_error()
        );
    }
    template.pop();
    Ok(std::ffi::OsString::from_vec(template).into())
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
        for name in [
            "AWS_SECRET_ACCESS_KEY",
            "GITHUB_PAT",
            "GOOGLE_APPLICATION_CREDENTIALS",
            "NPM_AUTH",
            "BASIC_AUTH_USER",
            "AUTHORIZATION",
            "GPG_PASSPHRASE",
        ] {
            assert!(looks_secret(name.as_bytes()), "{name}");
        }
        for name in [
            "GIT_AUTHOR_NAME",
            "AUTHORS",
            "PATCH",
            "PATH_PAT_X",
            "OAUTHLIB",
        ] {
            assert!(!looks_secret(name.as_bytes()), "{name}");
        }
    }

    #[test]
    fn urls_with_passwords_are_secrets() {
        assert!(has_url_password(b"http://bob:hunter2@proxy:3128"));
        assert!(has_url_password(b"x git+https://u:p@h/r.git"));
        assert!(!has_url_password(b"http://proxy:3128/a@b"));
        assert!(!has_url_password(b"ssh://git@host/repo"));
        assert!(!has_url_password(b"http://bob:@host"));
        assert_eq!(
            redact_environment(&[
                b"HTTPS_PROXY=http://bob:pw@p:1",
                b"MAKEFLAGS= -j2 -- API_TOKEN=v X=1"
            ]),
            b"HTTPS_PROXY=<redacted>\0MAKEFLAGS= -j2 -- API_TOKEN=<redacted> X=1"
        );
        assert_eq!(
            redact_arguments(b"make\0-j2\0DB_PASSWORD:=pw\0URL=ftp://a:b@c\0CC=gcc"),
            b"make\0-j2\0DB_PASSWORD:=<redacted>\0URL=<redacted>\0CC=gcc"
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
