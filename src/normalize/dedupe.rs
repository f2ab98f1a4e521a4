//! Collapsing duplicates: the same key exported twice keeps one row.
//!
//! The winner is the latest by the source's update timestamp; without one (or on a tie) the
//! last read wins, in file-name then line order. Read order is `(batch, ordinal)`: batches
//! are numbered as files are read, so the outcome does not depend on which worker finished
//! first. The index holds a 128-bit hash per key, not the key, to keep memory small.

use std::collections::HashMap;

/// Where an item was read: its batch and its ordinal inside the batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ReadPosition {
    /// Batch number, in read order.
    pub batch: u32,
    /// Item ordinal inside the batch.
    pub ordinal: u32,
}

#[derive(Clone, Copy, Debug)]
struct Entry {
    updated_at: Option<i64>,
    at: ReadPosition,
    first_content: u64,
    conflict: bool,
}

/// What an offered item means for the rows already kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The first item with this key.
    New,
    /// It replaces the item read at this position, which must be dropped.
    Replaces(ReadPosition),
    /// An item already kept wins; this one must be dropped.
    Loses,
}

/// The keys seen so far for one source.
#[derive(Debug, Default)]
pub struct DedupeIndex {
    entries: HashMap<u128, Entry>,
    duplicates: u64,
}

impl DedupeIndex {
    /// Offers an item with key hash `key`; `content` is a hash of its bytes, to tell identical
    /// re-exports from conflicting ones.
    pub fn offer(&mut self, key: u128, updated_at: Option<i64>, at: ReadPosition, content: u64) -> Outcome {
        use std::collections::hash_map::Entry as Slot;
        match self.entries.entry(key) {
            Slot::Vacant(v) => {
                v.insert(Entry {
                    updated_at,
                    at,
                    first_content: content,
                    conflict: false,
                });
                Outcome::New
            }
            Slot::Occupied(mut o) => {
                self.duplicates += 1;
                let e = o.get_mut();
                if content != e.first_content {
                    e.conflict = true;
                }
                if (updated_at, at) > (e.updated_at, e.at) {
                    let loser = e.at;
                    e.updated_at = updated_at;
                    e.at = at;
                    Outcome::Replaces(loser)
                } else {
                    Outcome::Loses
                }
            }
        }
    }

    /// Duplicates collapsed so far (copies beyond the first).
    pub fn duplicates(&self) -> u64 {
        self.duplicates
    }

    /// Keys whose copies did not all have the same contents.
    pub fn conflicting(&self) -> u64 {
        self.entries.values().filter(|e| e.conflict).count() as u64
    }

    /// Distinct keys.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no key was offered.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// The 128-bit hash under which a key is indexed.
pub fn key_hash(key: &str) -> u128 {
    xxhash_rust::xxh3::xxh3_128(key.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(batch: u32, ordinal: u32) -> ReadPosition {
        ReadPosition { batch, ordinal }
    }

    #[test]
    fn latest_update_wins_whatever_the_read_order() {
        let mut ix = DedupeIndex::default();
        assert_eq!(ix.offer(1, Some(20), at(0, 0), 7), Outcome::New);
        assert_eq!(ix.offer(1, Some(10), at(1, 0), 8), Outcome::Loses);
        assert_eq!(ix.offer(1, Some(30), at(0, 5), 9), Outcome::Replaces(at(0, 0)));
        assert_eq!(ix.duplicates(), 2);
        assert_eq!(ix.conflicting(), 1);
    }

    #[test]
    fn without_timestamps_the_last_read_wins_even_when_offered_first() {
        let mut ix = DedupeIndex::default();
        assert_eq!(ix.offer(1, None, at(3, 1), 5), Outcome::New);
        assert_eq!(ix.offer(1, None, at(2, 9), 5), Outcome::Loses);
        assert_eq!(ix.offer(1, None, at(3, 4), 5), Outcome::Replaces(at(3, 1)));
        assert_eq!(ix.conflicting(), 0, "identical copies are not conflicts");
    }

    #[test]
    fn a_timestamp_beats_none() {
        let mut ix = DedupeIndex::default();
        ix.offer(1, Some(0), at(0, 0), 1);
        assert_eq!(ix.offer(1, None, at(9, 0), 1), Outcome::Loses);
    }
}
