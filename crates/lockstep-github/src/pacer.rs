//! Per-token pacing of content-creating requests (POST/PATCH/PUT/DELETE).
//!
//! GitHub's secondary limits allow about 80 content-creating requests per minute and 500
//! per hour per identity, and advise one write at a time with a pause between writes.
//! The [`Pacer`] enforces both sliding windows and a minimum spacing, and serialises
//! ordinary writes (one in flight). A release wave is the exception: every second
//! between two publications is a second in which some advisories are public and others
//! are not, so [`Pacer::acquire_burst`] reserves `n` slots at once (within the windows)
//! and lets the `n` writes go out concurrently; the burst holds the serial permit until it
//! completes, so no ordinary write overlaps a wave in flight.
//!
//! After a rate-limit refusal the adapter *holds* the pacer until the time GitHub
//! advertised ([`Pacer::block_until`]): no write of the token goes out before then, and a
//! caller that would have to wait longer than its `max_wait` gets the refusal back at once.

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
    /// The refusal that set `blocked_until`, returned to callers that cannot wait that long.
    block_cause: Option<Error>,
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

/// `n` write slots reserved together: the writes may be sent concurrently. It holds the
/// token's serial permit, so ordinary writes wait until the burst is dropped (keep it until
/// every write of the burst has its response).
#[derive(Debug)]
pub struct BurstPermit<'a> {
    slots: u32,
    _serial: Option<SemaphorePermit<'a>>,
}

impl BurstPermit<'_> {
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

    /// Holds every write back until `until` (after a rate limit: GitHub counts further
    /// attempts against the integration).
    pub fn block_until(&self, until: Instant) {
        let mut st = self.lock();
        st.blocked_until = Some(st.blocked_until.map_or(until, |b| b.max(until)));
    }

    /// [`Self::block_until`], remembering the refusal that caused it.
    pub(crate) fn hold(&self, until: Instant, cause: Error) {
        let mut st = self.lock();
        if st.blocked_until.is_none_or(|b| until >= b) {
            st.blocked_until = Some(until);
            st.block_cause = Some(cause);
        }
    }

    /// How long writes are still held back, if they are.
    pub fn blocked_for(&self) -> Option<Duration> {
        let st = self.lock();
        st.blocked_until
            .and_then(|b| b.checked_duration_since(Instant::now()))
            .filter(|d| !d.is_zero())
    }

    /// The refusal to return when the hold outlasts `max_hold`.
    fn held_error(st: &State, remaining: Duration) -> Error {
        match st.block_cause.clone() {
            Some(Error::RateLimited { reset, .. }) => Error::RateLimited {
                retry_after: Some(remaining),
                reset,
            },
            _ => Error::SecondaryRateLimited {
                retry_after: Some(remaining),
            },
        }
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

    /// Waits until `n` slots are free and takes them. With `max_hold`, a rate-limit hold
    /// lasting longer than that is refused at once with the refusal that set it.
    async fn reserve(&self, n: u32, spaced: bool, max_hold: Option<Duration>) -> Result<()> {
        let started = Instant::now();
        loop {
            let wait = {
                let mut st = self.lock();
                let now = Instant::now();
                if let (Some(max), Some(b)) = (max_hold, st.blocked_until)
                    && let Some(remaining) = b.checked_duration_since(now)
                    && remaining > max
                {
                    return Err(Self::held_error(&st, remaining));
                }
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
        Ok(())
    }

    async fn serial_permit(&self) -> SemaphorePermit<'_> {
        // The semaphore is never closed, so this cannot fail; fall back to waiting again.
        loop {
            if let Ok(p) = self.serial.acquire().await {
                break p;
            }
            tokio::task::yield_now().await;
        }
    }

    /// Waits for the right to send one ordinary write; hold the permit until the
    /// response arrives (writes are serialised per token).
    pub async fn acquire(&self) -> WritePermit<'_> {
        let permit = self.serial_permit().await;
        // Without a bound on the hold, `reserve` cannot fail.
        let _ = self.reserve(1, true, None).await;
        WritePermit { _permit: permit }
    }

    /// [`Self::acquire`], refusing at once when writes are held back for longer than
    /// `max_hold` after a rate limit.
    pub(crate) async fn acquire_within(&self, max_hold: Duration) -> Result<WritePermit<'_>> {
        let permit = self.serial_permit().await;
        self.reserve(1, true, Some(max_hold)).await?;
        Ok(WritePermit { _permit: permit })
    }

    /// One more slot for a write of a burst already holding the serial permit (a retry
    /// after a rate-limit refusal inside the burst).
    pub(crate) async fn reserve_in_burst(&self, max_hold: Duration) -> Result<()> {
        self.reserve(1, false, Some(max_hold)).await
    }

    /// Reserves `n` slots at once, so `n` writes can go out concurrently (a release
    /// wave). Waits for in-flight ordinary writes, for spacing after the last one, and
    /// until both windows have `n` free slots. Refuses `n` above the window budget. The
    /// permit holds the serial permit: ordinary writes wait until it is dropped.
    pub async fn acquire_burst(&self, n: u32) -> Result<BurstPermit<'_>> {
        self.burst(n, None).await
    }

    /// [`Self::acquire_burst`], refusing at once when writes are held back for longer
    /// than `max_hold` after a rate limit.
    pub(crate) async fn acquire_burst_within(
        &self,
        n: u32,
        max_hold: Duration,
    ) -> Result<BurstPermit<'_>> {
        self.burst(n, Some(max_hold)).await
    }

    async fn burst(&self, n: u32, max_hold: Option<Duration>) -> Result<BurstPermit<'_>> {
        if n == 0 {
            return Ok(BurstPermit {
                slots: 0,
                _serial: None,
            });
        }
        if n > self.config.max_burst() {
            return Err(Error::InvalidInput(format!(
                "burst of {n} exceeds the pacing budget ({} per window)",
                self.config.max_burst()
            )));
        }
        let serial = self.serial_permit().await;
        self.reserve(n, true, max_hold).await?;
        Ok(BurstPermit {
            slots: n,
            _serial: Some(serial),
        })
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

    #[tokio::test]
    async fn burst_holds_the_serial_permit_until_dropped() {
        let p = std::sync::Arc::new(Pacer::new(cfg(10, 60_000, 0)));
        let burst = p.acquire_burst(3).await.unwrap();
        let q = std::sync::Arc::clone(&p);
        let ordinary = tokio::spawn(async move {
            drop(q.acquire().await);
            Instant::now()
        });
        tokio::time::sleep(Duration::from_millis(80)).await;
        assert!(
            !ordinary.is_finished(),
            "an ordinary write overlapped the burst"
        );
        let released = Instant::now();
        drop(burst);
        let granted = ordinary.await.unwrap();
        assert!(granted >= released);
        // An empty burst holds nothing.
        let empty = p.acquire_burst(0).await.unwrap();
        drop(p.acquire().await);
        drop(empty);
    }

    #[tokio::test]
    async fn a_hold_beyond_the_bound_is_refused_at_once() {
        let p = Pacer::new(cfg(10, 60_000, 0));
        p.hold(
            Instant::now() + Duration::from_secs(30),
            Error::SecondaryRateLimited {
                retry_after: Some(Duration::from_secs(30)),
            },
        );
        let t0 = Instant::now();
        let e = p.acquire_within(Duration::from_secs(1)).await.unwrap_err();
        assert!(t0.elapsed() < Duration::from_millis(50));
        match e {
            Error::SecondaryRateLimited {
                retry_after: Some(d),
            } => {
                assert!(
                    d > Duration::from_secs(29) && d <= Duration::from_secs(30),
                    "{d:?}"
                );
            }
            other => panic!("{other:?}"),
        }
        assert!(
            p.acquire_burst_within(2, Duration::from_secs(1))
                .await
                .is_err()
        );
        assert!(p.reserve_in_burst(Duration::from_secs(1)).await.is_err());
        assert!(p.blocked_for().is_some());
        assert_eq!(p.stats().granted, 0);
        // A short hold is waited out.
        let q = Pacer::new(cfg(10, 60_000, 0));
        q.hold(
            Instant::now() + Duration::from_millis(100),
            Error::SecondaryRateLimited { retry_after: None },
        );
        let t0 = Instant::now();
        drop(q.acquire_within(Duration::from_secs(1)).await.unwrap());
        assert!(t0.elapsed() >= Duration::from_millis(90));
    }
}
