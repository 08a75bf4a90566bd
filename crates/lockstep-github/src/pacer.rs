//! Per-token pacing of content-creating requests (POST/PATCH/PUT/DELETE).
//!
//! GitHub's secondary limits allow about 80 content-creating requests per minute and 500
//! per hour per identity, and advise one write at a time with a pause between writes.
//! The [`Pacer`] enforces both sliding windows and a minimum spacing, and serialises
//! ordinary writes (one in flight). A release wave is the exception: every second
//! between two publications is a second in which some advisories are public and others
//! are not, so [`Pacer::acquire_burst`] reserves `n` slots at once (within the windows)
//! and lets the `n` writes go out concurrently.

use std::collections::VecDeque;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::{Semaphore, SemaphorePermit};
use tokio::time::Instant;

use crate::error::{Error, Result};

/// Pacing budget.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PacingConfig {
    /// Writes allowed per short window (GitHub: 80).
    pub per_short_window: u32,
    /// Short window (GitHub: 60 s).
    pub short_window: Duration,
    /// Writes allowed per long window (GitHub: 500).
    pub per_long_window: u32,
    /// Long window (GitHub: 3,600 s).
    pub long_window: Duration,
    /// Minimum gap between two ordinary writes (GitHub advises 1 s). Writes of one burst
    /// are not spaced.
    pub min_spacing: Duration,
}

impl Default for PacingConfig {
    fn default() -> Self {
        Self {
            per_short_window: 80,
            short_window: Duration::from_secs(60),
            per_long_window: 500,
            long_window: Duration::from_secs(3_600),
            min_spacing: Duration::from_secs(1),
        }
    }
}

impl PacingConfig {
    /// No budget and no spacing (tests and benchmarks against the simulator).
    pub fn unlimited() -> Self {
        Self {
            per_short_window: u32::MAX,
            short_window: Duration::from_secs(60),
            per_long_window: u32::MAX,
            long_window: Duration::from_secs(3_600),
            min_spacing: Duration::ZERO,
        }
    }

    /// The largest burst the windows can ever grant.
    pub fn max_burst(&self) -> u32 {
        self.per_short_window.min(self.per_long_window)
    }
}

#[derive(Debug, Default)]
struct State {
    /// Start times of writes within the long window, oldest first.
    history: VecDeque<Instant>,
    last: Option<Instant>,
    blocked_until: Option<Instant>,
}

/// Counters, for benchmarks and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PacerStats {
    /// Slots granted (one per write attempt sent).
    pub granted: u64,
    /// Total time spent waiting for slots.
    pub waited: Duration,
}

/// The per-token write limiter. Share one `Arc<Pacer>` between every client that uses
/// the same token.
#[derive(Debug)]
pub struct Pacer {
    config: PacingConfig,
    state: Mutex<State>,
    serial: Semaphore,
    stats: Mutex<PacerStats>,
}

/// Held while an ordinary write is in flight (writes are serialised per token).
#[derive(Debug)]
pub struct WritePermit<'a> {
    _permit: SemaphorePermit<'a>,
}

/// `n` write slots reserved together: the writes may be sent concurrently.
#[derive(Debug)]
pub struct BurstPermit {
    slots: u32,
}

impl BurstPermit {
    /// How many writes this burst covers.
    pub fn slots(&self) -> u32 {
        self.slots
    }
}

impl Pacer {
    /// A pacer with this budget.
    pub fn new(config: PacingConfig) -> Self {
        Self {
            config,
            state: Mutex::new(State::default()),
            serial: Semaphore::new(1),
            stats: Mutex::new(PacerStats::default()),
        }
    }

    /// The budget.
    pub fn config(&self) -> &PacingConfig {
        &self.config
    }

    /// Counters so far.
    pub fn stats(&self) -> PacerStats {
        *self.stats.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Holds every write back until `until` (after a secondary limit: GitHub counts
    /// further attempts against the integration).
    pub fn block_until(&self, until: Instant) {
        let mut st = self.lock();
        st.blocked_until = Some(st.blocked_until.map_or(until, |b| b.max(until)));
    }

    /// How long until `n` slots are free (None: now), given spacing when `spaced`.
    fn wait_for(&self, st: &mut State, n: u32, spaced: bool, now: Instant) -> Option<Duration> {
        let cfg = &self.config;
        while st
            .history
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) >= cfg.long_window)
        {
            st.history.pop_front();
        }
        let mut until = now;
        if let Some(b) = st.blocked_until {
            until = until.max(b);
        }
        if spaced && let Some(last) = st.last {
            until = until.max(last + cfg.min_spacing);
        }
        let n = n as usize;
        let window_wait = |limit: u32, window: Duration, entries: &[Instant]| -> Option<Instant> {
            let limit = limit as usize;
            if entries.len() + n <= limit {
                return None;
            }
            // Drop the k oldest entries of the window to make room.
            let k = entries.len() + n - limit;
            entries.get(k - 1).map(|t| *t + window)
        };
        let (a, b) = st.history.as_slices();
        let all: Vec<Instant> = a.iter().chain(b.iter()).copied().collect();
        let short: Vec<Instant> = all
            .iter()
            .copied()
            .filter(|t| now.saturating_duration_since(*t) < cfg.short_window)
            .collect();
        if let Some(t) = window_wait(cfg.per_short_window, cfg.short_window, &short) {
            until = until.max(t);
        }
        if let Some(t) = window_wait(cfg.per_long_window, cfg.long_window, &all) {
            until = until.max(t);
        }
        (until > now).then(|| until - now)
    }

    async fn reserve(&self, n: u32, spaced: bool) {
        let started = Instant::now();
        loop {
            let wait = {
                let mut st = self.lock();
                let now = Instant::now();
                match self.wait_for(&mut st, n, spaced, now) {
                    None => {
                        for _ in 0..n {
                            st.history.push_back(now);
                        }
                        st.last = Some(now);
                        None
                    }
                    Some(d) => Some(d),
                }
            };
            match wait {
                None => break,
                Some(d) => {
                    tracing::debug!(
                        wait_ms = d.as_millis() as u64,
                        n,
                        "pacer: waiting for write slot"
                    );
                    tokio::time::sleep(d).await;
                }
            }
        }
        let mut s = self.stats.lock().unwrap_or_else(PoisonError::into_inner);
        s.granted += u64::from(n);
        s.waited += started.elapsed();
    }

    /// Waits for the right to send one ordinary write; hold the permit until the
    /// response arrives (writes are serialised per token).
    pub async fn acquire(&self) -> WritePermit<'_> {
        // The semaphore is never closed, so this cannot fail; fall back to waiting again.
        let permit = loop {
            if let Ok(p) = self.serial.acquire().await {
                break p;
            }
            tokio::task::yield_now().await;
        };
        self.reserve(1, true).await;
        WritePermit { _permit: permit }
    }

    /// Reserves `n` slots at once, so `n` writes can go out concurrently (a release
    /// wave). Waits for in-flight ordinary writes, for spacing after the last one, and
    /// until both windows have `n` free slots. Refuses `n` above the window budget.
    pub async fn acquire_burst(&self, n: u32) -> Result<BurstPermit> {
        if n == 0 {
            return Ok(BurstPermit { slots: 0 });
        }
        if n > self.config.max_burst() {
            return Err(Error::InvalidInput(format!(
                "burst of {n} exceeds the pacing budget ({} per window)",
                self.config.max_burst()
            )));
        }
        let _serial = loop {
            if let Ok(p) = self.serial.acquire().await {
                break p;
            }
            tokio::task::yield_now().await;
        };
        self.reserve(n, true).await;
        Ok(BurstPermit { slots: n })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn cfg(per_short: u32, window_ms: u64, spacing_ms: u64) -> PacingConfig {
        PacingConfig {
            per_short_window: per_short,
            short_window: Duration::from_millis(window_ms),
            per_long_window: 1_000,
            long_window: Duration::from_secs(3_600),
            min_spacing: Duration::from_millis(spacing_ms),
        }
    }

    #[tokio::test]
    async fn ordinary_writes_are_spaced() {
        let p = Pacer::new(cfg(100, 60_000, 40));
        let t0 = Instant::now();
        for _ in 0..3 {
            drop(p.acquire().await);
        }
        assert!(
            t0.elapsed() >= Duration::from_millis(80),
            "{:?}",
            t0.elapsed()
        );
    }

    #[tokio::test]
    async fn window_budget_blocks_until_oldest_expires() {
        let p = Pacer::new(cfg(3, 150, 0));
        let t0 = Instant::now();
        for _ in 0..3 {
            drop(p.acquire().await);
        }
        assert!(t0.elapsed() < Duration::from_millis(100));
        drop(p.acquire().await);
        assert!(
            t0.elapsed() >= Duration::from_millis(150),
            "{:?}",
            t0.elapsed()
        );
    }

    #[tokio::test]
    async fn burst_is_not_spaced_and_respects_budget() {
        let p = Pacer::new(cfg(10, 60_000, 500));
        let t0 = Instant::now();
        let b = p.acquire_burst(10).await.unwrap();
        assert_eq!(b.slots(), 10);
        assert!(t0.elapsed() < Duration::from_millis(100));
        assert!(p.acquire_burst(11).await.is_err());
        assert_eq!(p.stats().granted, 10);
    }

    #[tokio::test]
    async fn block_until_holds_writes() {
        let p = Pacer::new(cfg(10, 60_000, 0));
        p.block_until(Instant::now() + Duration::from_millis(120));
        let t0 = Instant::now();
        drop(p.acquire().await);
        assert!(t0.elapsed() >= Duration::from_millis(110));
    }
}
