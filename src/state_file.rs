//! One JSON state file kept between runs (the route's ledger, the silences, the Slack
//! sink's messages): a header line carrying a SHA-256 of the body, written atomically,
//! moved aside when it fails the check.
//!
//! ```text
//!   authpulse-alert-state v1 sha256=<64 hex digits>
//!   { …the value, pretty JSON… }
//! ```
//!
//! - **Save**: the bytes go to a temporary file `.<name>.tmp` beside it, are `fsync`ed,
//!   renamed over the file, and the directory is `fsync`ed ([`write_atomic`]): a reader
//!   sees the old content or the new, never a mix.
//! - **Load**: a missing file is a fresh start. A file that fails the check (torn by a
//!   file system without ordered writes, truncated, edited, not the expected JSON) is
//!   renamed `<name>.corrupt-<ms>`, the stamp taken from the injected clock, with an error
//!   log line naming the reason and what starting empty means; it reads as the default
//!   value. Only I/O errors (permissions, a full disk) fail.
//! - **Older files**: a [`Format`] may name a `legacy` reader for files written before the
//!   header existed (the Slack threads file was plain JSON); the next save writes the
//!   header.

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::clock::SharedClock;

/// `fsync` a directory, so that a rename or unlink in it survives a power cut.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Write `bytes` to `path` atomically: temporary file, `fsync`, rename, `fsync` the
/// directory. Readers see the old content or the new, never a mix.
pub fn write_atomic(path: &Path, tmp: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut f = File::create(tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(tmp, path)?;
    sync_dir(path.parent().unwrap_or(Path::new(".")))
}

/// Reads the bytes of a file written before its format had a header.
pub type LegacyReader<T> = fn(&[u8]) -> Result<T, String>;

/// What one kind of state file looks like and what losing it means.
pub struct Format<T> {
    /// The header line up to the checksum, e.g. `authpulse-alert-state v1 sha256=`.
    pub header: &'static str,
    /// What the file holds, for the log line (`alert state`).
    pub what: &'static str,
    /// What starting without it means, for the log line.
    pub if_lost: &'static str,
    /// Reads a file written before the header existed (bytes that do not start with
    /// `header`); `None`: there are no such files.
    pub legacy: Option<LegacyReader<T>>,
}

/// `value` as a state file's bytes: the header with the body's checksum, then the body.
pub fn encode<T: Serialize>(header: &str, value: &T) -> io::Result<Vec<u8>> {
    let body = serde_json::to_vec_pretty(value)?;
    let mut out = format!("{header}{}\n", hex::encode(Sha256::digest(&body))).into_bytes();
    out.extend_from_slice(&body);
    Ok(out)
}

/// The value in a state file's bytes, or why they are not one.
pub fn decode<T: DeserializeOwned>(format: &Format<T>, bytes: &[u8]) -> Result<T, String> {
    if let Some(legacy) = format.legacy {
        if !bytes.starts_with(format.header.as_bytes()) {
            return legacy(bytes).map_err(|e| {
                format!("not a state file with a header line, nor an older one: {e}")
            });
        }
    }
    let newline = bytes
        .iter()
        .position(|&b| b == b'\n')
        .ok_or("no header line (truncated?)")?;
    let header = std::str::from_utf8(&bytes[..newline]).map_err(|_| "header is not text")?;
    let sum = header.strip_prefix(format.header).ok_or_else(|| {
        format!(
            "unknown header (expected a line starting {:?})",
            format.header
        )
    })?;
    let body = &bytes[newline + 1..];
    if hex::encode(Sha256::digest(body)) != sum {
        return Err("checksum mismatch (partly written or modified)".into());
    }
    serde_json::from_slice(body).map_err(|e| format!("cannot parse: {e}"))
}

/// How loading went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Loaded {
    /// No file yet.
    Fresh,
    Restored,
    /// The file failed the check (`reason`) and was moved to `to`; the value is empty.
    MovedAside {
        to: PathBuf,
        reason: String,
    },
}

/// A value of type `T` kept in one file.
pub struct StateFile<T> {
    path: PathBuf,
    tmp: PathBuf,
    format: Format<T>,
    clock: SharedClock,
}

impl<T> std::fmt::Debug for StateFile<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateFile")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl<T: Serialize + DeserializeOwned + Default> StateFile<T> {
    /// The file at `path` (its directory must exist to load or save); `clock` stamps a
    /// corrupt file moved aside.
    pub fn new(path: PathBuf, format: Format<T>, clock: SharedClock) -> StateFile<T> {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let tmp = path.with_file_name(format!(".{name}.tmp"));
        StateFile {
            path,
            tmp,
            format,
            clock,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Load the value. A missing file is a fresh start; a corrupt one is moved aside
    /// (logged) and reads as the default. Only I/O errors fail.
    pub fn load(&self) -> io::Result<(T, Loaded)> {
        // A save cut short leaves its temporary file: it never replaced anything.
        let _ = std::fs::remove_file(&self.tmp);
        let bytes = match std::fs::read(&self.path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Ok((T::default(), Loaded::Fresh))
            }
            Err(e) => return Err(e),
        };
        match decode(&self.format, &bytes) {
            Ok(value) => Ok((value, Loaded::Restored)),
            Err(reason) => {
                let mut name = self.path.as_os_str().to_owned();
                name.push(format!(".corrupt-{}", self.clock.now_ms()));
                let to = PathBuf::from(name);
                std::fs::rename(&self.path, &to)?;
                tracing::error!(
                    file = %self.path.display(),
                    moved_to = %to.display(),
                    %reason,
                    "{} file is corrupt; moved it aside and starting without it ({})",
                    self.format.what,
                    self.format.if_lost
                );
                Ok((T::default(), Loaded::MovedAside { to, reason }))
            }
        }
    }

    /// Save atomically.
    pub fn save(&self, value: &T) -> io::Result<()> {
        write_atomic(&self.path, &self.tmp, &encode(self.format.header, value)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    type Value = BTreeMap<String, i64>;

    const T0: i64 = 1_795_600_000_000;

    fn format() -> Format<Value> {
        Format {
            header: "authpulse-test v1 sha256=",
            what: "test state",
            if_lost: "nothing is lost in a test",
            legacy: None,
        }
    }

    /// An older format: plain JSON `{"version": 1, "values": {…}}`.
    fn legacy(bytes: &[u8]) -> Result<Value, String> {
        #[derive(serde::Deserialize)]
        struct Old {
            version: u32,
            values: Value,
        }
        let old: Old = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
        if old.version != 1 {
            return Err(format!("unknown version {}", old.version));
        }
        Ok(old.values)
    }

    fn file(dir: &Path, format: Format<Value>) -> StateFile<Value> {
        StateFile::new(dir.join("test.json"), format, ManualClock::at(T0))
    }

    fn sample() -> Value {
        BTreeMap::from([("a".to_string(), 1), ("b".to_string(), -7)])
    }

    #[test]
    fn a_missing_file_is_fresh_and_a_saved_one_is_restored() {
        let dir = tempfile::tempdir().unwrap();
        let f = file(dir.path(), format());
        assert_eq!(f.load().unwrap(), (Value::default(), Loaded::Fresh));
        f.save(&sample()).unwrap();
        assert_eq!(f.load().unwrap(), (sample(), Loaded::Restored));
        let bytes = std::fs::read(f.path()).unwrap();
        assert!(bytes.starts_with(b"authpulse-test v1 sha256="));
    }

    #[test]
    fn a_save_replaces_the_file_whole_and_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let f = file(dir.path(), format());
        f.save(&sample()).unwrap();
        f.save(&Value::from([("c".to_string(), 3)])).unwrap();
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["test.json"]);
        assert_eq!(f.load().unwrap().0, Value::from([("c".to_string(), 3)]));
        // A temporary file left by a save cut short never replaced anything: it goes.
        std::fs::write(dir.path().join(".test.json.tmp"), b"half").unwrap();
        assert_eq!(f.load().unwrap().1, Loaded::Restored);
        assert!(!dir.path().join(".test.json.tmp").exists());
    }

    #[test]
    fn a_corrupt_file_is_moved_aside_with_the_reason_and_a_clock_stamp() {
        let dir = tempfile::tempdir().unwrap();
        let f = file(dir.path(), format());
        f.save(&sample()).unwrap();
        let bytes = std::fs::read(f.path()).unwrap();
        let aside = dir.path().join(format!("test.json.corrupt-{T0}"));
        let cases: [(&[u8], &str); 4] = [
            (&bytes[..bytes.len() - 3], "checksum mismatch"),
            (b"not json", "no header line"),
            (
                b"authpulse-other v1 sha256=00\n{}",
                "unknown header (expected a line starting \"authpulse-test v1 sha256=\")",
            ),
            (&bytes[..20], "no header line (truncated?)"),
        ];
        for (content, why) in cases {
            std::fs::write(f.path(), content).unwrap();
            let (value, how) = f.load().unwrap();
            assert_eq!(value, Value::default());
            let Loaded::MovedAside { to, reason } = how else {
                panic!("{how:?}")
            };
            assert_eq!(to, aside);
            assert!(
                reason.starts_with(why),
                "{reason:?} should start with {why:?}"
            );
            assert_eq!(std::fs::read(&aside).unwrap(), content);
            assert!(!f.path().exists());
        }
        // A body that passes the check but is not the type.
        let wrong = encode("authpulse-test v1 sha256=", &vec!["x"]).unwrap();
        std::fs::write(f.path(), wrong).unwrap();
        let Loaded::MovedAside { reason, .. } = f.load().unwrap().1 else {
            panic!("a wrong body should be moved aside")
        };
        assert!(reason.starts_with("cannot parse:"), "{reason}");
    }

    #[test]
    fn an_older_file_without_header_is_read_by_the_legacy_reader() {
        let dir = tempfile::tempdir().unwrap();
        let with_legacy = || Format {
            legacy: Some(legacy as LegacyReader<Value>),
            ..format()
        };
        let f = file(dir.path(), with_legacy());
        std::fs::write(f.path(), br#"{"version": 1, "values": {"a": 1, "b": -7}}"#).unwrap();
        assert_eq!(f.load().unwrap(), (sample(), Loaded::Restored));
        // The next save writes the header, and that reads too.
        f.save(&sample()).unwrap();
        assert!(std::fs::read(f.path())
            .unwrap()
            .starts_with(b"authpulse-test v1"));
        assert_eq!(f.load().unwrap(), (sample(), Loaded::Restored));
        // An older file the legacy reader refuses is corrupt like any other.
        std::fs::write(f.path(), br#"{"version": 9, "values": {}}"#).unwrap();
        let Loaded::MovedAside { reason, .. } = f.load().unwrap().1 else {
            panic!("an unknown version should be moved aside")
        };
        assert!(reason.contains("unknown version 9"), "{reason}");
    }

    proptest! {
        /// Whatever the value, it decodes to itself; any change to one byte of the body is
        /// caught by the checksum (or leaves no valid header).
        #[test]
        fn round_trip_and_every_flipped_byte_is_caught(
            value in proptest::collection::btree_map("\\PC{0,8}", any::<i64>(), 0..8),
            at in any::<prop::sample::Index>(),
            flip in 1u8..=255,
        ) {
            let bytes = encode(format().header, &value).unwrap();
            prop_assert_eq!(decode(&format(), &bytes), Ok(value));
            let mut torn = bytes.clone();
            let i = at.index(torn.len());
            torn[i] ^= flip;
            prop_assert!(decode(&format(), &torn).is_err());
        }
    }
}
