//! A table of named timers, one deadline each, shared by both machines (in the manner of
//! quinn-proto's `TimerTable`).
//!
//! A machine names its timers with a small enum, keeps one [`TimerTable`] and answers
//! `poll_timeout` with [`TimerTable::next_timeout`]; `handle_timeout` asks each timer in its
//! own order whether it has [expired](TimerTable::is_expired) (or [takes](TimerTable::take_expired)
//! it), and ending a session [stops](TimerTable::stop_all) them all at once.

use std::time::Instant;

/// A machine's timer names: an enum whose variants index the table.
pub(crate) trait TimerName: Copy {
    /// The variant's slot, below the table's size.
    fn index(self) -> usize;
}

/// One optional deadline per timer name; `N` is the number of names.
#[derive(Debug, Clone)]
pub(crate) struct TimerTable<T, const N: usize> {
    deadlines: [Option<Instant>; N],
    names: std::marker::PhantomData<T>,
}

impl<T: TimerName, const N: usize> Default for TimerTable<T, N> {
    fn default() -> Self {
        Self {
            deadlines: [None; N],
            names: std::marker::PhantomData,
        }
    }
}

impl<T: TimerName, const N: usize> TimerTable<T, N> {
    /// Arms (or re-arms) `timer` for `at`.
    pub(crate) fn set(&mut self, timer: T, at: Instant) {
        self.deadlines[timer.index()] = Some(at);
    }

    /// Disarms `timer`.
    pub(crate) fn stop(&mut self, timer: T) {
        self.deadlines[timer.index()] = None;
    }

    pub(crate) fn get(&self, timer: T) -> Option<Instant> {
        self.deadlines[timer.index()]
    }

    pub(crate) fn is_set(&self, timer: T) -> bool {
        self.get(timer).is_some()
    }

    /// `timer` is armed for `now` or earlier.
    pub(crate) fn is_expired(&self, timer: T, now: Instant) -> bool {
        self.get(timer).is_some_and(|at| at <= now)
    }

    /// Disarms `timer` and returns true when it had expired at `now`; otherwise leaves it.
    pub(crate) fn take_expired(&mut self, timer: T, now: Instant) -> bool {
        let expired = self.is_expired(timer, now);
        if expired {
            self.stop(timer);
        }
        expired
    }

    /// The earliest armed deadline.
    pub(crate) fn next_timeout(&self) -> Option<Instant> {
        self.deadlines.iter().flatten().min().copied()
    }

    /// Disarms every timer.
    pub(crate) fn stop_all(&mut self) {
        self.deadlines = [None; N];
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[derive(Debug, Clone, Copy)]
    enum Name {
        A,
        B,
        C,
    }

    impl TimerName for Name {
        fn index(self) -> usize {
            self as usize
        }
    }

    #[test]
    fn next_deadline_expiry_and_stop() {
        let t0 = Instant::now();
        let mut table = TimerTable::<Name, 3>::default();
        assert_eq!(table.next_timeout(), None);
        table.set(Name::A, t0 + Duration::from_secs(3));
        table.set(Name::C, t0 + Duration::from_secs(1));
        assert_eq!(table.next_timeout(), Some(t0 + Duration::from_secs(1)));
        assert!(!table.is_set(Name::B));
        assert!(!table.is_expired(Name::A, t0 + Duration::from_secs(2)));
        assert!(table.is_expired(Name::C, t0 + Duration::from_secs(1)));
        assert!(!table.take_expired(Name::A, t0 + Duration::from_secs(2)));
        assert!(table.take_expired(Name::C, t0 + Duration::from_secs(2)));
        assert!(!table.is_set(Name::C));
        assert_eq!(table.next_timeout(), Some(t0 + Duration::from_secs(3)));
        table.stop_all();
        assert_eq!(table.next_timeout(), None);
        assert_eq!(table.get(Name::A), None);
    }
}
