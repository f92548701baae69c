//! The server's transport state (MS-WDSMT §3.1.3) and the names of its timers, which the
//! session's one [`TimerTable`](crate::proto::timer::TimerTable) is indexed by.

use crate::proto::timer::TimerName;

/// The transport's state (MS-WDSMT §3.1.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum MtState {
    PreStart,
    Qcc,
    Data,
}

/// The server's timers, in the order `handle_timeout` looks at them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Timer {
    /// No valid client packet for InactivityTimeout: the session ends.
    Inactivity,
    /// Client Cleanup (§3.1.6.2).
    ClientCleanup,
    /// KICK repeats while the Kick list is not empty.
    Kick,
    /// InState QCC timer (§3.1.6.4), QCCState only.
    QccIn,
    /// SPM timer (§3.1.6.5), DataState only.
    Spm,
    /// Cleanup Data List (§3.1.6.7), DataState only.
    Cleanup,
    /// OutState QCC timer (§3.1.6.6), DataState only.
    QccOut,
    /// MS-WDSMA: the Query Timer of a query round, or the end of an idle pause.
    Round,
}

impl Timer {
    pub(super) const COUNT: usize = 8;
}

impl TimerName for Timer {
    fn index(self) -> usize {
        self as usize
    }
}
