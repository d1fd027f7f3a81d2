//! Putting events in time order with bounded memory: an external merge sort.
//!
//! Events (their publication time and their JSON text) are collected into a buffer of at
//! most `budget` bytes; a full buffer is sorted and written to an anonymous temporary
//! file as one run; at the end the runs (and the last buffer, kept in memory) are merged.
//! Memory is the buffer plus one read buffer per run, whatever the size of the input.
//!
//! Ties keep input order (the sort key is time, then a sequence number), so the output is
//! the same for the same input, and a replay of it is byte for byte the replay of the
//! same events in time order.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Seek, SeekFrom, Write};

/// Default memory for the sort buffer.
pub const DEFAULT_BUDGET: usize = 256 << 20;
/// Read buffer of each run during the merge (shrinks when there are many runs).
const RUN_READ_BUFFER: usize = 1 << 20;

/// One event in the buffer: its key and where its text is in the arena.
#[derive(Clone, Copy)]
struct Entry {
    ms: i64,
    seq: u64,
    start: usize,
    len: usize,
}

/// Collects events, spilling sorted runs to temporary files.
pub struct Sorter {
    budget: usize,
    arena: Vec<u8>,
    entries: Vec<Entry>,
    runs: Vec<File>,
    seq: u64,
    /// Bytes written to temporary files.
    pub spilled_bytes: u64,
}

impl Sorter {
    pub fn new(budget: usize) -> Sorter {
        Sorter {
            budget: budget.max(1 << 16),
            arena: Vec::new(),
            entries: Vec::new(),
            runs: Vec::new(),
            seq: 0,
            spilled_bytes: 0,
        }
    }

    /// Add one event.
    pub fn push(&mut self, ms: i64, text: &[u8]) -> io::Result<()> {
        let entry_bytes = std::mem::size_of::<Entry>();
        if !self.entries.is_empty()
            && self.arena.len() + text.len() + (self.entries.len() + 1) * entry_bytes > self.budget
        {
            self.spill()?;
        }
        self.entries.push(Entry {
            ms,
            seq: self.seq,
            start: self.arena.len(),
            len: text.len(),
        });
        self.seq += 1;
        self.arena.extend_from_slice(text);
        Ok(())
    }

    /// Events pushed so far.
    pub fn len(&self) -> u64 {
        self.seq
    }

    pub fn is_empty(&self) -> bool {
        self.seq == 0
    }

    fn sort(&mut self) {
        // Already-ordered input is one natural run: the stable sort takes it in linear time.
        self.entries.sort_by_key(|e| (e.ms, e.seq));
    }

    fn spill(&mut self) -> io::Result<()> {
        self.sort();
        let mut file = tempfile::tempfile()?;
        {
            let mut w = BufWriter::with_capacity(1 << 20, &mut file);
            for e in &self.entries {
                let len = u32::try_from(e.len).map_err(|_| {
                    io::Error::new(io::ErrorKind::InvalidData, "an event over 4 GiB")
                })?;
                w.write_all(&e.ms.to_le_bytes())?;
                w.write_all(&e.seq.to_le_bytes())?;
                w.write_all(&len.to_le_bytes())?;
                w.write_all(&self.arena[e.start..e.start + e.len])?;
                self.spilled_bytes += 20 + e.len as u64;
            }
            w.flush()?;
        }
        file.seek(SeekFrom::Start(0))?;
        tracing::debug!(
            run = self.runs.len(),
            events = self.entries.len(),
            "spilled a sorted run"
        );
        self.runs.push(file);
        self.entries.clear();
        self.arena.clear();
        Ok(())
    }

    /// Everything pushed, in time order.
    pub fn finish(mut self) -> io::Result<Merged> {
        self.sort();
        let per_run = (self.budget / (self.runs.len() + 1)).clamp(1 << 14, RUN_READ_BUFFER);
        let mut runs: Vec<Run> = self
            .runs
            .into_iter()
            .map(|f| Run::File {
                reader: BufReader::with_capacity(per_run, f),
                text: Vec::new(),
            })
            .collect();
        runs.push(Run::Memory {
            arena: self.arena,
            entries: self.entries,
            next: 0,
        });
        let mut merged = Merged {
            runs,
            heap: BinaryHeap::new(),
            advance: None,
        };
        for i in 0..merged.runs.len() {
            if let Some(key) = merged.runs[i].advance()? {
                merged.heap.push(Reverse((key.0, key.1, i)));
            }
        }
        Ok(merged)
    }
}

enum Run {
    File {
        reader: BufReader<File>,
        text: Vec<u8>,
    },
    Memory {
        arena: Vec<u8>,
        entries: Vec<Entry>,
        next: usize,
    },
}

impl Run {
    /// Move to the next event; its key, or `None` at the end of the run.
    fn advance(&mut self) -> io::Result<Option<(i64, u64)>> {
        match self {
            Run::File { reader, text } => {
                let mut head = [0u8; 20];
                match reader.read_exact(&mut head) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
                    Err(e) => return Err(e),
                }
                let word = |r: std::ops::Range<usize>| {
                    let mut b = [0u8; 8];
                    b[..r.len()].copy_from_slice(&head[r]);
                    u64::from_le_bytes(b)
                };
                let (ms, seq, len) = (word(0..8) as i64, word(8..16), word(16..20) as usize);
                text.resize(len, 0);
                reader.read_exact(text)?;
                Ok(Some((ms, seq)))
            }
            Run::Memory { entries, next, .. } => {
                let e = entries.get(*next).copied();
                *next += 1;
                Ok(e.map(|e| (e.ms, e.seq)))
            }
        }
    }

    fn text(&self) -> &[u8] {
        match self {
            Run::File { text, .. } => text,
            Run::Memory {
                arena,
                entries,
                next,
            } => match next.checked_sub(1).and_then(|i| entries.get(i)) {
                Some(e) => &arena[e.start..e.start + e.len],
                None => &[],
            },
        }
    }
}

/// The merged runs: events in time order.
pub struct Merged {
    runs: Vec<Run>,
    heap: BinaryHeap<Reverse<(i64, u64, usize)>>,
    /// The run whose current event was handed out last, to advance on the next call.
    advance: Option<usize>,
}

impl Merged {
    /// The next event's time and text, or `None` at the end.
    pub fn next_event(&mut self) -> io::Result<Option<(i64, &[u8])>> {
        if let Some(i) = self.advance.take() {
            if let Some((ms, seq)) = self.runs[i].advance()? {
                self.heap.push(Reverse((ms, seq, i)));
            }
        }
        let Some(Reverse((ms, _, i))) = self.heap.pop() else {
            return Ok(None);
        };
        self.advance = Some(i);
        Ok(Some((ms, self.runs[i].text())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn drain(mut m: Merged) -> Vec<(i64, Vec<u8>)> {
        let mut out = Vec::new();
        while let Some((ms, t)) = m.next_event().unwrap() {
            out.push((ms, t.to_vec()));
        }
        out
    }

    #[test]
    fn small_input_stays_in_memory_and_comes_out_sorted() {
        let mut s = Sorter::new(1 << 20);
        for (ms, t) in [(3, "c"), (1, "a"), (2, "b"), (1, "a2")] {
            s.push(ms, t.as_bytes()).unwrap();
        }
        assert_eq!(s.spilled_bytes, 0);
        let got = drain(s.finish().unwrap());
        let want: Vec<(i64, Vec<u8>)> = [(1, "a"), (1, "a2"), (2, "b"), (3, "c")]
            .iter()
            .map(|(m, t)| (*m, t.as_bytes().to_vec()))
            .collect();
        assert_eq!(got, want);
    }

    proptest! {
        // Each case writes dozens of temporary files.
        #![proptest_config(ProptestConfig::with_cases(24))]

        #[test]
        fn spilled_runs_merge_into_a_stable_sort(
            events in proptest::collection::vec((0i64..50, "[a-z]{0,300}"), 0..400)
        ) {
            // A tiny budget: many runs on disk.
            let mut s = Sorter::new(0);
            s.budget = 4096;
            for (ms, t) in &events {
                s.push(*ms, t.as_bytes()).unwrap();
            }
            let got = drain(s.finish().unwrap());
            let mut want: Vec<(i64, Vec<u8>)> =
                events.iter().map(|(m, t)| (*m, t.as_bytes().to_vec())).collect();
            want.sort_by_key(|(m, _)| *m);
            prop_assert_eq!(got, want);
        }
    }
}
