//! Opening input: files and bytes, plain or gzip, and the files `--events` names.

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};

use flate2::read::MultiGzDecoder;

/// Open a file for reading, decompressing it when it starts with the gzip magic bytes.
pub fn open(path: &Path) -> io::Result<(Box<dyn Read + Send>, u64)> {
    let f = File::open(path)?;
    let len = f.metadata()?.len();
    Ok((maybe_gzip(f)?, len))
}

/// `r`, decompressed when it starts with the gzip magic bytes.
pub fn maybe_gzip<'a, R: Read + Send + 'a>(mut r: R) -> io::Result<Box<dyn Read + Send + 'a>> {
    let mut magic = [0u8; 2];
    let mut n = 0;
    while n < 2 {
        match r.read(&mut magic[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let chained = io::Cursor::new(magic[..n].to_vec()).chain(r);
    if n == 2 && magic == [0x1f, 0x8b] {
        Ok(Box::new(MultiGzDecoder::new(BufReader::with_capacity(
            1 << 16,
            chained,
        ))))
    } else {
        Ok(Box::new(chained))
    }
}

/// Where events come from: something that can be read again from the start (a replay
/// that finds its input out of order reads it a second time).
#[derive(Debug, Clone)]
pub enum Source<'a> {
    Path(PathBuf),
    /// Bytes in memory, plain or gzip, with a name for messages.
    Bytes {
        name: String,
        data: &'a [u8],
    },
}

impl Source<'_> {
    pub fn name(&self) -> String {
        match self {
            Source::Path(p) => p.display().to_string(),
            Source::Bytes { name, .. } => name.clone(),
        }
    }

    pub fn open(&self) -> io::Result<Box<dyn Read + Send + '_>> {
        match self {
            Source::Path(p) => Ok(open(p)?.0),
            Source::Bytes { data, .. } => maybe_gzip(*data),
        }
    }

    /// Size on disk (for progress).
    pub fn size(&self) -> u64 {
        match self {
            Source::Path(p) => std::fs::metadata(p).map(|m| m.len()).unwrap_or(0),
            Source::Bytes { data, .. } => data.len() as u64,
        }
    }
}

/// The files `--events` names: files as given, folders as the files in them (sorted by
/// name; hidden files and subfolders are left out).
pub fn sources_of(paths: &[PathBuf]) -> io::Result<Vec<Source<'static>>> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut files: Vec<PathBuf> = std::fs::read_dir(p)?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|f| {
                    f.is_file()
                        && !f
                            .file_name()
                            .is_some_and(|n| n.to_string_lossy().starts_with('.'))
                })
                .collect();
            files.sort();
            if files.is_empty() {
                return Err(io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("{}: an empty folder", p.display()),
                ));
            }
            out.extend(files.into_iter().map(Source::Path));
        } else {
            // Fail early and clearly on a missing file.
            File::open(p).map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", p.display())))?;
            out.push(Source::Path(p.clone()));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::replay::lines::{Line, LineReader};

    #[test]
    fn gzip_is_detected() {
        use flate2::write::GzEncoder;
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.ndjson.gz");
        let mut enc = GzEncoder::new(File::create(&path).unwrap(), flate2::Compression::fast());
        enc.write_all(b"line1\nline2\n").unwrap();
        enc.finish().unwrap();
        let (reader, _) = open(&path).unwrap();
        let mut r = LineReader::new(reader);
        assert_eq!(r.next_line().unwrap(), Some(Line::Text(&b"line1"[..])));
        assert_eq!(r.next_line().unwrap(), Some(Line::Text(&b"line2"[..])));
        assert_eq!(r.next_line().unwrap(), None);
    }
}
