//! Text files for the editor: deciding whether bytes are text, in which encoding, and
//! writing edited text back in the same encoding (and byte-order mark) it was read in.
//!
//! Pure functions over byte slices; no I/O.

use encoding_rs::{Encoding, UTF_8, UTF_16BE, UTF_16LE};

/// Decoded text and how to write it back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded {
    /// The text, line endings untouched.
    pub text: String,
    /// How it is stored on disk.
    pub format: TextFormat,
}

/// An encoding plus whether the file starts with a byte-order mark.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TextFormat {
    /// The encoding (WHATWG name, e.g. `UTF-8`, `windows-1252`, `UTF-16LE`).
    pub encoding: &'static Encoding,
    /// The file starts with a byte-order mark.
    pub bom: bool,
}

impl TextFormat {
    /// UTF-8 without BOM: what new files are written in.
    pub const UTF8: TextFormat = TextFormat {
        encoding: UTF_8,
        bom: false,
    };

    /// The encoding's name as shown to clients.
    pub fn name(&self) -> &'static str {
        self.encoding.name()
    }
}

/// Looks up an encoding by a client-supplied label (`utf-8`, `latin1`, `utf-16le`, …).
pub fn encoding_for_label(label: &str) -> Option<&'static Encoding> {
    Encoding::for_label_no_replacement(label.trim().as_bytes())
}

/// Decodes `bytes` as text, or returns `None` when they look binary: undecodable in the
/// detected encoding, containing NUL bytes (outside UTF-16), or with many control
/// characters that text files do not have.
pub fn decode(bytes: &[u8]) -> Option<Decoded> {
    let (encoding, bom_len) = match Encoding::for_bom(bytes) {
        Some((enc, len)) => (enc, len),
        None if bytes.contains(&0) => return None,
        None if std::str::from_utf8(bytes).is_ok() => (UTF_8, 0),
        None => {
            let mut detector =
                chardetng::EncodingDetector::new(chardetng::Iso2022JpDetection::Deny);
            detector.feed(bytes, true);
            (detector.guess(None, chardetng::Utf8Detection::Deny), 0)
        }
    };
    let body = bytes.get(bom_len..)?;
    let text = encoding
        .decode_without_bom_handling_and_without_replacement(body)?
        .into_owned();
    if looks_binary(&text) {
        return None;
    }
    Some(Decoded {
        text,
        format: TextFormat {
            encoding,
            bom: bom_len > 0,
        },
    })
}

/// More than 1 in 100 characters being C0 controls other than tab, newlines, form feed
/// and escape (colour codes in logs) means this is not something to edit as text.
fn looks_binary(text: &str) -> bool {
    let mut total = 0usize;
    let mut control = 0usize;
    for c in text.chars() {
        total += 1;
        if c.is_control() && !matches!(c, '\t' | '\n' | '\r' | '\x0c' | '\x1b') && c < '\u{80}' {
            control += 1;
        }
    }
    control * 100 > total
}

/// Encodes `text` in `format`. Fails with a readable message when a character cannot be
/// represented in that encoding (silently replacing it would corrupt the file).
pub fn encode(text: &str, format: TextFormat) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(text.len() + 3);
    if format.encoding == UTF_16LE || format.encoding == UTF_16BE {
        // encoding_rs only decodes UTF-16 (the web never writes it), so encode by hand.
        let le = format.encoding == UTF_16LE;
        if format.bom {
            out.extend_from_slice(if le { &[0xFF, 0xFE] } else { &[0xFE, 0xFF] });
        }
        for unit in text.encode_utf16() {
            out.extend_from_slice(&if le {
                unit.to_le_bytes()
            } else {
                unit.to_be_bytes()
            });
        }
        return Ok(out);
    }
    if format.bom && format.encoding == UTF_8 {
        out.extend_from_slice(&[0xEF, 0xBB, 0xBF]);
    }
    let (bytes, used, had_errors) = format.encoding.encode(text);
    if had_errors || used != format.encoding {
        let bad = text
            .chars()
            .find(|c| {
                let mut buf = [0u8; 4];
                format.encoding.encode(c.encode_utf8(&mut buf)).2
            })
            .map(|c| format!(" (first one: {c:?})"))
            .unwrap_or_default();
        return Err(format!(
            "the text has characters that {} cannot store{bad}; save it as UTF-8 instead",
            format.encoding.name()
        ));
    }
    out.extend_from_slice(&bytes);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf8_round_trips() {
        let d = decode("motd=Héllo §aworld\r\nmax-players=20\n".as_bytes()).expect("text");
        assert_eq!(d.format, TextFormat::UTF8);
        assert_eq!(
            encode(&d.text, d.format).expect("enc"),
            "motd=Héllo §aworld\r\nmax-players=20\n".as_bytes()
        );
    }

    #[test]
    fn bom_is_kept() {
        let bytes = b"\xEF\xBB\xBFkey=value\n";
        let d = decode(bytes).expect("text");
        assert!(d.format.bom);
        assert_eq!(d.text, "key=value\n");
        assert_eq!(encode(&d.text, d.format).expect("enc"), bytes);
    }

    #[test]
    fn utf16_with_bom_round_trips() {
        let mut bytes = vec![0xFF, 0xFE];
        for u in "[Section]\r\nName=Ünïcode\r\n".encode_utf16() {
            bytes.extend_from_slice(&u.to_le_bytes());
        }
        let d = decode(&bytes).expect("text");
        assert_eq!(d.format.encoding, UTF_16LE);
        assert_eq!(d.text, "[Section]\r\nName=Ünïcode\r\n");
        assert_eq!(encode(&d.text, d.format).expect("enc"), bytes);
    }

    #[test]
    fn legacy_encoding_is_detected_and_kept() {
        // "café crème à la française" in windows-1252.
        let bytes = b"name=caf\xe9 cr\xe8me \xe0 la fran\xe7aise, tr\xe8s bien\n";
        let d = decode(bytes).expect("text");
        assert_ne!(d.format.encoding, UTF_8);
        assert!(d.text.contains("café"), "{}", d.text);
        assert_eq!(encode(&d.text, d.format).expect("enc"), bytes);
        // A character the encoding cannot hold is refused, not replaced.
        let err = encode("snow ☃", d.format).expect_err("unmappable");
        assert!(err.contains('☃'), "{err}");
    }

    #[test]
    fn binary_is_recognised() {
        assert!(decode(&[0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 13]).is_none());
        assert!(decode(b"abc\x01\x02\x03\x04\x05\x06").is_none());
        assert!(decode(b"").is_some(), "an empty file is text");
    }

    #[test]
    fn labels() {
        assert_eq!(encoding_for_label("utf-8"), Some(UTF_8));
        assert_eq!(encoding_for_label("UTF-16LE"), Some(UTF_16LE));
        assert!(encoding_for_label("klingon").is_none());
    }
}
