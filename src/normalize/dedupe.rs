//! Collapsing duplicates: the same key exported twice keeps one row.
//!
//! The winner is the latest by the source's update timestamp; without one (or on a tie) the
//! last read wins, in file-name then line order. Read order is `(batch, ordinal)`: batches
//! are numbered as files are read, so the outcome does not depend on which worker finished
//! first.
//!
//! Memory does not grow with the input: a worker settles the duplicates inside its own chunk
//! and appends every [`Sighting`] of the chunk, sorted, to the source's [`Ledger`], a
//! temporary file (40 bytes a record). At the end one merge of the sorted runs finds the keys
//! seen in more than one chunk; the rows that lost are then removed from their parts.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::fs::File;
use std::io::{self, Write};
use std::path::Path;

/// Where an item was read: its batch and its ordinal inside the batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ReadPosition {
    /// Batch number, in read order.
    pub batch: u32,
    /// Item ordinal inside the batch.
    pub ordinal: u32,
}

/// One read of a key. Sightings order by key, then by precedence: the last of a key wins.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Sighting {
    /// The 128-bit hash of the key ([`key_hash`]).
    pub key: u128,
    /// The source's update timestamp (microseconds); `None` sorts first.
    pub updated_at: Option<i64>,
    /// Where it was read.
    pub at: ReadPosition,
    /// A hash of the item's bytes, to tell identical re-exports from conflicting ones.
    pub content: u64,
}

const SIGHTING_BYTES: usize = 16 + 1 + 8 + 4 + 4 + 8;

impl Sighting {
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.key.to_le_bytes());
        out.push(self.updated_at.is_some() as u8);
        out.extend_from_slice(&self.updated_at.unwrap_or(0).to_le_bytes());
        out.extend_from_slice(&self.at.batch.to_le_bytes());
        out.extend_from_slice(&self.at.ordinal.to_le_bytes());
        out.extend_from_slice(&self.content.to_le_bytes());
    }

    fn decode(b: &[u8; SIGHTING_BYTES]) -> Self {
        let field = |at: usize, n: usize| &b[at..at + n];
        let u32_at = |at| u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]);
        let mut k = [0u8; 16];
        k.copy_from_slice(field(0, 16));
        let mut t = [0u8; 8];
        t.copy_from_slice(field(17, 8));
        let mut c = [0u8; 8];
        c.copy_from_slice(field(33, 8));
        Sighting {
            key: u128::from_le_bytes(k),
            updated_at: (b[16] == 1).then(|| i64::from_le_bytes(t)),
            at: ReadPosition {
                batch: u32_at(25),
                ordinal: u32_at(29),
            },
            content: u64::from_le_bytes(c),
        }
    }
}

/// Sorts a chunk's sightings and returns the ordinals that lose inside the chunk, ascending.
pub fn settle_chunk(sightings: &mut [Sighting]) -> Vec<u32> {
    sightings.sort_unstable();
    let mut losers: Vec<u32> = sightings
        .windows(2)
        .filter(|w| w[0].key == w[1].key)
        .map(|w| w[0].at.ordinal)
        .collect();
    losers.sort_unstable();
    losers
}

/// Every sighting of one source, as sorted runs in a temporary file.
#[derive(Debug)]
pub struct Ledger {
    file: File,
    /// Byte offset and sighting count of each run.
    runs: Vec<(u64, u64)>,
    end: u64,
    scratch: Vec<u8>,
}

/// The outcome of a source's deduplication.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Resolution {
    /// Copies beyond the first, over all keys.
    pub duplicates: u64,
    /// Keys whose copies did not all have the same contents.
    pub conflicting: u64,
    /// Per batch, the keys whose row in that batch's part lost to a later batch.
    pub losers: HashMap<u32, HashSet<u128>>,
}

impl Ledger {
    /// A new, empty ledger in a temporary file under `dir` (deleted when dropped).
    pub fn new(dir: &Path) -> io::Result<Self> {
        Ok(Ledger {
            file: tempfile::tempfile_in(dir)?,
            runs: Vec::new(),
            end: 0,
            scratch: Vec::new(),
        })
    }

    /// Appends a chunk's sightings, sorted by [`settle_chunk`].
    pub fn record(&mut self, sightings: &[Sighting]) -> io::Result<()> {
        if sightings.is_empty() {
            return Ok(());
        }
        self.scratch.clear();
        for s in sightings {
            s.encode(&mut self.scratch);
        }
        self.file.write_all(&self.scratch)?;
        self.runs.push((self.end, sightings.len() as u64));
        self.end += self.scratch.len() as u64;
        Ok(())
    }

    /// Merges the runs: counts duplicates and conflicts, and names the rows that lost.
    pub fn resolve(&self) -> io::Result<Resolution> {
        let mut cursors = Vec::with_capacity(self.runs.len());
        let mut heap = BinaryHeap::new();
        for &(offset, count) in &self.runs {
            let mut c = Cursor {
                offset,
                left: count,
                buf: Vec::new(),
                pos: 0,
            };
            if let Some(s) = c.next(&self.file)? {
                heap.push(Reverse((s, cursors.len())));
            }
            cursors.push(c);
        }
        let mut out = Resolution::default();
        let mut group: Vec<Sighting> = Vec::new();
        loop {
            let next = match heap.pop() {
                Some(Reverse((s, run))) => {
                    if let Some(n) = cursors[run].next(&self.file)? {
                        heap.push(Reverse((n, run)));
                    }
                    Some(s)
                }
                None => None,
            };
            if group.first().is_some_and(|g| next.is_none_or(|n| n.key != g.key)) {
                settle_group(&group, &mut out);
                group.clear();
            }
            match next {
                Some(s) => group.push(s),
                None => return Ok(out),
            }
        }
    }
}

/// One key's sightings, in precedence order: the last wins.
fn settle_group(group: &[Sighting], out: &mut Resolution) {
    let [first, .., winner] = group else { return };
    out.duplicates += group.len() as u64 - 1;
    if group.iter().any(|s| s.content != first.content) {
        out.conflicting += 1;
    }
    // Each batch wrote only its own best copy; those of other batches than the winner's go.
    for s in group.iter().filter(|s| s.at.batch != winner.at.batch) {
        out.losers.entry(s.at.batch).or_default().insert(s.key);
    }
}

/// Reads one run back, a few thousand sightings at a time.
struct Cursor {
    offset: u64,
    left: u64,
    buf: Vec<u8>,
    pos: usize,
}

impl Cursor {
    const BATCH: u64 = 1024;

    fn next(&mut self, file: &File) -> io::Result<Option<Sighting>> {
        if self.pos == self.buf.len() {
            if self.left == 0 {
                return Ok(None);
            }
            let n = self.left.min(Self::BATCH);
            self.buf.resize(n as usize * SIGHTING_BYTES, 0);
            read_at(file, &mut self.buf, self.offset)?;
            self.offset += self.buf.len() as u64;
            self.left -= n;
            self.pos = 0;
        }
        let mut b = [0u8; SIGHTING_BYTES];
        b.copy_from_slice(&self.buf[self.pos..self.pos + SIGHTING_BYTES]);
        self.pos += SIGHTING_BYTES;
        Ok(Some(Sighting::decode(&b)))
    }
}

#[cfg(unix)]
fn read_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(file, buf, offset)
}

#[cfg(windows)]
fn read_at(file: &File, mut buf: &mut [u8], mut offset: u64) -> io::Result<()> {
    use std::os::windows::fs::FileExt;
    while !buf.is_empty() {
        match file.seek_read(buf, offset)? {
            0 => return Err(io::ErrorKind::UnexpectedEof.into()),
            n => {
                buf = &mut buf[n..];
                offset += n as u64;
            }
        }
    }
    Ok(())
}

/// The 128-bit hash under which a key is indexed.
pub fn key_hash(key: &str) -> u128 {
    xxhash_rust::xxh3::xxh3_128(key.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(key: u128, updated_at: Option<i64>, batch: u32, ordinal: u32, content: u64) -> Sighting {
        Sighting {
            key,
            updated_at,
            at: ReadPosition { batch, ordinal },
            content,
        }
    }

    /// Records chunks the way workers do (in any order) and resolves.
    fn run(chunks: Vec<Vec<Sighting>>) -> (Vec<Vec<u32>>, Resolution) {
        let dir = tempfile::tempdir().unwrap();
        let mut ledger = Ledger::new(dir.path()).unwrap();
        let mut dropped = Vec::new();
        for mut c in chunks {
            dropped.push(settle_chunk(&mut c));
            ledger.record(&c).unwrap();
        }
        (dropped, ledger.resolve().unwrap())
    }

    #[test]
    fn latest_update_wins_whatever_the_read_order() {
        let (dropped, r) = run(vec![
            vec![
                seen(1, Some(30), 0, 5, 9),
                seen(1, Some(20), 0, 0, 7),
                seen(2, None, 0, 1, 1),
            ],
            vec![seen(1, Some(10), 1, 0, 8)],
        ]);
        assert_eq!(
            dropped,
            vec![vec![0], vec![]],
            "inside chunk 0, ordinal 0 (older) loses"
        );
        assert_eq!(r.duplicates, 2);
        assert_eq!(r.conflicting, 1);
        assert_eq!(r.losers.len(), 1);
        assert_eq!(r.losers[&1], HashSet::from([1]), "batch 1's copy is older: removed");
    }

    #[test]
    fn without_timestamps_the_last_read_wins_even_when_recorded_first() {
        let (_, r) = run(vec![vec![seen(7, None, 3, 1, 5)], vec![seen(7, None, 2, 9, 5)]]);
        assert_eq!(r.losers[&2], HashSet::from([7]));
        assert!(!r.losers.contains_key(&3));
        assert_eq!(r.conflicting, 0, "identical copies are not conflicts");
    }

    #[test]
    fn a_timestamp_beats_none() {
        let (_, r) = run(vec![vec![seen(1, Some(0), 0, 0, 1)], vec![seen(1, None, 9, 0, 1)]]);
        assert_eq!(r.losers[&9], HashSet::from([1]));
    }

    #[test]
    fn the_winners_batch_keeps_its_row_even_when_it_also_held_a_loser() {
        let (dropped, r) = run(vec![
            vec![seen(4, Some(1), 0, 0, 1), seen(4, Some(5), 0, 1, 2)],
            vec![seen(4, Some(3), 1, 0, 3), seen(4, Some(2), 1, 1, 4)],
        ]);
        assert_eq!(dropped, vec![vec![0], vec![1]]);
        assert_eq!(r.duplicates, 3);
        assert_eq!(r.losers.keys().collect::<Vec<_>>(), vec![&1]);
    }

    #[test]
    fn many_runs_merge_into_exact_counts() {
        // 40 chunks of 3000 keys, each key seen in two chunks: the merge crosses cursor refills.
        let chunks = (0..40u32)
            .map(|b| {
                (0..3000u32)
                    .map(|i| seen(((b / 2) * 3000 + i) as u128, None, b, i, 0))
                    .collect()
            })
            .collect();
        let (_, r) = run(chunks);
        assert_eq!(r.duplicates, 20 * 3000);
        assert_eq!(r.conflicting, 0);
        assert_eq!(r.losers.len(), 20, "the even batches lose to the odd ones");
        assert!(r.losers.keys().all(|b| b % 2 == 0));
    }

    #[test]
    fn a_sighting_survives_the_file_round_trip() {
        let s = seen(u128::MAX - 3, Some(-42), 7, 8, u64::MAX);
        let mut v = Vec::new();
        s.encode(&mut v);
        let b: [u8; SIGHTING_BYTES] = v.as_slice().try_into().unwrap();
        assert_eq!(Sighting::decode(&b), s);
        let none = seen(1, None, 0, 0, 0);
        v.clear();
        none.encode(&mut v);
        assert_eq!(Sighting::decode(v.as_slice().try_into().unwrap()), none);
    }
}
