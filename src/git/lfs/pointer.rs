//! Git LFS pointer files: what a repository stores in place of a large
//! file whose path its `.gitattributes` put under `filter=lfs` (the
//! format of git-lfs's `docs/spec.md`):
//!
//! ```text
//! version https://git-lfs.github.com/spec/v1
//! oid sha256:4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393
//! size 12345
//! ```

/// The largest blob read as a pointer (git-lfs's own cut-off: a pointer
/// is about 130 bytes).
pub(crate) const MAX_POINTER_SIZE: usize = 1024;

/// The object a pointer stands for.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct Pointer {
    /// The SHA-256 of the content, 64 lowercase hex digits.
    pub oid: String,
    /// The content's size in bytes.
    pub size: u64,
}

impl Pointer {
    /// The pointer `blob` holds, if it is one: the version line first,
    /// then `oid` and `size` among sorted `key value` lines. One that asks
    /// for an extension (`ext-0-...`, content changed by a program before
    /// it was stored) is not taken: that program is not here.
    pub fn parse(blob: &[u8]) -> Option<Pointer> {
        if blob.len() > MAX_POINTER_SIZE {
            return None;
        }
        let text = std::str::from_utf8(blob).ok()?;
        let text = text.strip_suffix('\n')?;
        let mut lines = text.split('\n');
        let version = lines.next()?.strip_prefix("version ")?;
        if !matches!(
            version,
            "https://git-lfs.github.com/spec/v1" | "https://hawser.github.com/spec/v1"
        ) {
            return None;
        }
        let (mut oid, mut size, mut previous) = (None, None, "");
        for line in lines {
            let (key, value) = line.split_once(' ')?;
            // Keys come sorted, each once.
            if key <= previous || key.starts_with("ext-") {
                return None;
            }
            previous = key;
            match key {
                "oid" => oid = Some(value.strip_prefix("sha256:").filter(|h| is_sha256(h))?),
                "size" if value.bytes().all(|b| b.is_ascii_digit()) => size = value.parse().ok(),
                "size" => return None,
                _ => {}
            }
        }
        Some(Pointer {
            oid: oid?.to_string(),
            size: size?,
        })
    }

    /// Where the store keeps the object, below its `objects` directory:
    /// `4d/7a/4d7a21...`, as git-lfs lays out `.git/lfs/objects`.
    pub fn store_path(&self) -> String {
        format!("{}/{}/{}", &self.oid[..2], &self.oid[2..4], self.oid)
    }
}

fn is_sha256(hex: &str) -> bool {
    hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

#[cfg(test)]
mod tests {
    use super::*;

    const OID: &str = "4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393";

    fn pointer(body: &str) -> Option<Pointer> {
        Pointer::parse(body.as_bytes())
    }

    #[test]
    fn reads_what_git_lfs_writes() {
        let text =
            format!("version https://git-lfs.github.com/spec/v1\noid sha256:{OID}\nsize 12345\n");
        let p = pointer(&text).unwrap();
        assert_eq!((p.oid.as_str(), p.size), (OID, 12345));
        assert_eq!(p.store_path(), format!("4d/7a/{OID}"));
        // The pre-release name of the spec, and keys it does not know.
        let old = format!(
            "version https://hawser.github.com/spec/v1\noid sha256:{OID}\nsize 0\nx-note hi\n"
        );
        assert_eq!(pointer(&old).unwrap().size, 0);
    }

    #[test]
    fn refuses_what_is_not_a_pointer() {
        let v = "version https://git-lfs.github.com/spec/v1";
        let refused = [
            String::new(),
            "hello\n".to_string(),
            // No final newline; another version; keys unsorted or missing.
            format!("{v}\noid sha256:{OID}\nsize 1"),
            format!("version https://git-lfs.github.com/spec/v2\noid sha256:{OID}\nsize 1\n"),
            format!("{v}\nsize 1\noid sha256:{OID}\n"),
            format!("{v}\noid sha256:{OID}\n"),
            format!("{v}\nsize 1\n"),
            // A bad hash or size; an extension to run.
            format!("{v}\noid sha256:{}\nsize 1\n", &OID[1..]),
            format!("{v}\noid sha256:{}\nsize 1\n", OID.to_uppercase()),
            format!("{v}\noid sha1:{OID}\nsize 1\n"),
            format!("{v}\noid sha256:{OID}\nsize -1\n"),
            format!("{v}\noid sha256:{OID}\nsize +1\n"),
            format!("{v}\next-0-foo sha256:{OID}\noid sha256:{OID}\nsize 1\n"),
            format!("{v}\noid sha256:{OID}\nsize 1\n{}", "x".repeat(1024)),
        ];
        for text in refused {
            assert_eq!(pointer(&text), None, "{text:?}");
        }
    }
}
