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
