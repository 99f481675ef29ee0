//! A seat set: one bit per seat, so an event of 100,000 seats costs 12.5 KiB.
//!
//! Finding the lowest free seats starts from a hint (the first word that may have a free
//! bit), so a flash sale that fills seats in order finds each one in O(1).

use crate::ids::SeatNo;

/// Occupied seats of one event (booked or held); seat `n` is bit `n - 1`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SeatSet {
    words: Vec<u64>,
    capacity: u32,
    occupied: u32,
    /// No free bit below word `hint`.
    hint: usize,
}

impl SeatSet {
    /// Seats `1..=capacity`, all free.
    pub fn new(capacity: u32) -> Self {
        Self { words: vec![0; words_for(capacity)], capacity, occupied: 0, hint: 0 }
    }

    /// How many seats the set has: they are numbered `1..=capacity`.
    pub fn capacity(&self) -> u32 {
        self.capacity
    }

    /// How many seats are occupied (booked or held).
    pub fn occupied(&self) -> u32 {
        self.occupied
    }

    /// How many seats are free: `capacity - occupied`.
    pub fn free(&self) -> u32 {
        self.capacity - self.occupied
    }

    /// Whether `seat` is in range and occupied.
    pub fn is_occupied(&self, seat: SeatNo) -> bool {
        seat >= 1 && seat <= self.capacity && {
            let i = (seat - 1) as usize;
            self.words[i / 64] & (1 << (i % 64)) != 0
        }
    }

    /// The seats of `seats` that are occupied (or out of range).
    pub fn taken_of(&self, seats: &[SeatNo]) -> Vec<SeatNo> {
        seats.iter().copied().filter(|&s| s < 1 || s > self.capacity || self.is_occupied(s)).collect()
    }

    /// Marks `seats` occupied. Each MUST be free and in range (checked with `taken_of`).
    pub fn occupy(&mut self, seats: &[SeatNo]) {
        for &s in seats {
            assert!(!self.is_occupied(s) && s >= 1 && s <= self.capacity, "seat {s} not free");
            let i = (s - 1) as usize;
            self.words[i / 64] |= 1 << (i % 64);
        }
        self.occupied += seats.len() as u32;
    }

    /// Marks `seats` free. Each MUST be occupied.
    pub fn release(&mut self, seats: &[SeatNo]) {
        for &s in seats {
            assert!(self.is_occupied(s), "seat {s} not occupied");
            let i = (s - 1) as usize;
            self.words[i / 64] &= !(1 << (i % 64));
            self.hint = self.hint.min(i / 64);
        }
        self.occupied -= seats.len() as u32;
    }

    /// Occupies the `n` lowest free seats and returns them ascending, or `None` (and
    /// changes nothing) if fewer than `n` are free.
    pub fn occupy_lowest(&mut self, n: u32) -> Option<Vec<SeatNo>> {
        if n > self.free() {
            return None;
        }
        let mut out = Vec::with_capacity(n as usize);
        let mut w = self.hint;
        while out.len() < n as usize {
            let mut free_bits = !self.words[w];
            if w == self.words.len() - 1 {
                free_bits &= last_word_mask(self.capacity);
            }
            if free_bits == 0 {
                w += 1;
                if out.is_empty() {
                    self.hint = w;
                }
                continue;
            }
            let bit = free_bits.trailing_zeros() as usize;
            self.words[w] |= 1 << bit;
            out.push((w * 64 + bit) as SeatNo + 1);
        }
        self.occupied += n;
        Some(out)
    }

    /// Highest occupied seat, 0 if none.
    pub fn highest_occupied(&self) -> SeatNo {
        for (w, &word) in self.words.iter().enumerate().rev() {
            if word != 0 {
                return (w * 64 + 63 - word.leading_zeros() as usize) as SeatNo + 1;
            }
        }
        0
    }

    /// Changes the capacity. MUST NOT drop an occupied seat.
    pub fn resize(&mut self, capacity: u32) {
        assert!(self.highest_occupied() <= capacity, "resize would drop occupied seats");
        self.words.resize(words_for(capacity), 0);
        self.capacity = capacity;
        self.hint = self.hint.min(self.words.len().saturating_sub(1));
    }

    /// Occupied seats, ascending.
    pub fn iter(&self) -> impl Iterator<Item = SeatNo> + '_ {
        self.words.iter().enumerate().flat_map(|(w, &word)| {
            let mut bits = word;
            std::iter::from_fn(move || {
                if bits == 0 {
                    return None;
                }
                let b = bits.trailing_zeros();
                bits &= bits - 1;
                Some((w as u32) * 64 + b + 1)
            })
        })
    }

    /// Heap bytes used.
    pub fn heap_bytes(&self) -> usize {
        self.words.capacity() * 8
    }
}

fn words_for(capacity: u32) -> usize {
    (capacity as usize).div_ceil(64).max(1)
}

fn last_word_mask(capacity: u32) -> u64 {
    match capacity % 64 {
        0 if capacity > 0 => u64::MAX,
        r => (1u64 << r) - 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lowest_free_in_order_and_after_release() {
        let mut s = SeatSet::new(130);
        assert_eq!(s.occupy_lowest(3), Some(vec![1, 2, 3]));
        s.occupy(&[5]);
        assert_eq!(s.occupy_lowest(2), Some(vec![4, 6]));
        s.release(&[2]);
        assert_eq!(s.occupy_lowest(1), Some(vec![2]));
        assert_eq!(s.occupied(), 6);
        assert_eq!(s.iter().collect::<Vec<_>>(), vec![1, 2, 3, 4, 5, 6]);
    }

    #[test]
    fn never_hands_out_seats_past_capacity() {
        let mut s = SeatSet::new(65);
        assert_eq!(s.occupy_lowest(65).map(|v| v.len()), Some(65));
        assert_eq!(s.occupy_lowest(1), None);
        assert_eq!(s.highest_occupied(), 65);
        assert_eq!(s.taken_of(&[0, 1, 66]), vec![0, 1, 66]);
    }

    #[test]
    fn short_request_changes_nothing() {
        let mut s = SeatSet::new(10);
        s.occupy(&[1, 2, 3]);
        let before = s.clone();
        assert_eq!(s.occupy_lowest(8), None);
        assert_eq!(s, before);
    }

    #[test]
    fn resize_keeps_seats_and_grows() {
        let mut s = SeatSet::new(64);
        s.occupy(&[64]);
        s.resize(200);
        assert_eq!(s.occupy_lowest(64).unwrap().last(), Some(&65));
        assert_eq!(s.highest_occupied(), 65);
        s.release(&[65, 64]);
        s.resize(63);
        assert_eq!(s.capacity(), 63);
    }

    #[test]
    fn hundred_thousand_seats_cost_kilobytes() {
        let s = SeatSet::new(100_000);
        assert!(s.heap_bytes() <= 12_504, "{} bytes", s.heap_bytes());
    }
}
