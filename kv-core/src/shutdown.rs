//! The signal every long-running kvlab process stops on: SIGINT or SIGTERM.

use std::io;

use tokio::signal::unix::{signal, Signal, SignalKind};

/// SIGINT and SIGTERM handlers, installed when this is built.
///
/// Install before announcing readiness: a handler registered lazily (on
/// first poll) leaves a window in which SIGTERM still kills the process
/// with the default action instead of stopping it cleanly.
pub struct Shutdown {
    interrupt: Signal,
    terminate: Signal,
}

impl Shutdown {
    /// Registers both handlers now. Must be called inside a tokio runtime.
    pub fn install() -> io::Result<Shutdown> {
        Ok(Shutdown {
            interrupt: signal(SignalKind::interrupt())?,
            terminate: signal(SignalKind::terminate())?,
        })
    }

    /// Resolves on the first SIGINT (Ctrl-C) or SIGTERM.
    pub async fn recv(mut self) {
        tokio::select! {
            _ = self.interrupt.recv() => {}
            _ = self.terminate.recv() => {}
        }
    }
}

/// How often [`orphaned`] looks at its parent: a helper outlives a killed
/// script by at most this.
const ORPHAN_POLL: std::time::Duration = std::time::Duration::from_millis(200);

/// Resolves once the process that started this one is gone (this one was
/// re-parented to init or a subreaper). Helpers that a script starts and
/// stops by PID (the run's collector, its dashboard) stop with the script
/// even when it was SIGKILLed and could not stop them.
pub async fn orphaned() {
    let parent = std::os::unix::process::parent_id();
    let mut tick = tokio::time::interval(ORPHAN_POLL);
    loop {
        tick.tick().await;
        if std::os::unix::process::parent_id() != parent {
            return;
        }
    }
}
