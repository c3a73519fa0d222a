//! The open-loop generator's naps, precise to microseconds.
//!
//! tokio's timer ticks in whole milliseconds, so `tokio::time::sleep(200 µs)`
//! wakes after up to ~1 ms; with a flush interval of 200 µs that ms is most
//! of a low-load op's latency, and it is the generator's, not the servers'.
//! A timerfd (an hrtimer) registered with tokio's reactor wakes the task on
//! time without spinning a core.

use std::io;
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::time::Duration;

use nix::sys::time::TimeSpec;
use nix::sys::timerfd::{ClockId, Expiration, TimerFd, TimerFlags, TimerSetTimeFlags};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

/// A timerfd as tokio's reactor wants it.
pub struct Fd(TimerFd);

impl AsRawFd for Fd {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_fd().as_raw_fd()
    }
}

/// One generator's timer. Falls back to tokio's when no timerfd can be had.
pub enum Nap {
    Precise(AsyncFd<Fd>),
    Coarse,
}

impl Nap {
    /// Must be called inside a tokio runtime (with I/O enabled).
    pub fn new() -> io::Result<Nap> {
        let fd = TimerFd::new(
            ClockId::CLOCK_MONOTONIC,
            TimerFlags::TFD_NONBLOCK | TimerFlags::TFD_CLOEXEC,
        )?;
        // SAFETY: `Fd` owns the timerfd, so the descriptor stays open and
        // the same for as long as the AsyncFd (its owner) lives.
        let fd = unsafe { AsyncFd::register_with_interest(Fd(fd), Interest::READABLE) }?;
        Ok(Nap::Precise(fd))
    }

    /// Sleeps for `d` (from now). A timerfd that fails is given up for
    /// tokio's timer, for this nap and every later one.
    pub async fn sleep(&mut self, d: Duration) {
        if let Nap::Precise(fd) = self {
            if precise(fd, d).await.is_ok() {
                return;
            }
            *self = Nap::Coarse;
        }
        tokio::time::sleep(d).await
    }
}

async fn precise(fd: &AsyncFd<Fd>, d: Duration) -> io::Result<()> {
    // A zero expiration would disarm the timer instead.
    let d = d.max(Duration::from_micros(1));
    fd.get_ref().0.set(
        Expiration::OneShot(TimeSpec::from_duration(d)),
        TimerSetTimeFlags::empty(),
    )?;
    loop {
        let mut ready = fd.readable().await?;
        // The expiry count; EAGAIN means a stale readiness: wait again.
        let read = ready.try_io(|fd| {
            let mut n = [0u8; 8];
            nix::unistd::read(fd.as_raw_fd(), &mut n).map_err(io::Error::from)
        });
        match read {
            Ok(Ok(_)) => return Ok(()),
            Ok(Err(e)) if e.kind() == io::ErrorKind::Interrupted => {}
            Ok(Err(e)) => return Err(e),
            Err(_would_block) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[tokio::test(flavor = "current_thread")]
    async fn wakes_after_the_nap_and_can_nap_again() {
        let mut nap = Nap::new().unwrap();
        assert!(matches!(nap, Nap::Precise(_)));
        for us in [300u64, 50, 2_000] {
            let t = Instant::now();
            nap.sleep(Duration::from_micros(us)).await;
            // Never early (an hrtimer fires at or after its time).
            assert!(t.elapsed() >= Duration::from_micros(us), "{us} us");
        }
        assert!(matches!(nap, Nap::Precise(_)), "stayed precise");
    }
}
