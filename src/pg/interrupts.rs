//! Running the async STS calls on the backend's thread while Postgres interrupts (cancel,
//! statement_timeout, terminate) are watched for.

use std::ptr;

use pgrx::pg_sys;

use crate::runtime::{self, Interrupted};

fn interrupt_pending() -> bool {
    // SAFETY: plain reads of Postgres' interrupt flags on the backend's own thread, the same
    // test CHECK_FOR_INTERRUPTS makes (INTERRUPTS_PENDING_CONDITION and
    // INTERRUPTS_CAN_BE_PROCESSED), so a held-off interrupt never restarts the call in a loop.
    unsafe {
        ptr::read_volatile(&raw const pg_sys::InterruptPending) != 0
            && ptr::read_volatile(&raw const pg_sys::InterruptHoldoffCount) == 0
            && ptr::read_volatile(&raw const pg_sys::QueryCancelHoldoffCount) == 0
            && ptr::read_volatile(&raw const pg_sys::CritSectionCount) == 0
    }
}

/// Runs on the runtime's helper threads: Postgres' signal handlers must only ever run on
/// the backend's own thread.
fn block_signals_on_this_thread() {
    // SAFETY: sigfillset initialises the set; pthread_sigmask only changes this thread's mask.
    unsafe {
        let mut all: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        libc::pthread_sigmask(libc::SIG_BLOCK, &all, ptr::null_mut());
    }
}

/// Runs a future on the backend's runtime. A pending interrupt is processed on this thread
/// while the future stays alive: a cancel, statement_timeout or terminate raises an ERROR
/// (the future is dropped as the error unwinds, closing its connections) within
/// INTERRUPT_POLL_INTERVAL; any other interrupt (the client-connection check, a config
/// reload, a memory-context dump, a ProcSignal barrier) lets the same call go on, so a call
/// is never restarted and its own timeout always holds.
pub(super) fn block_on<F: std::future::Future>(future: F) -> F::Output {
    // Dropped after the future: what the future let go of (connections) is closed before
    // this returns or the interrupt's ERROR propagates.
    let _settle = runtime::SettleOnDrop;
    let mut future = std::pin::pin!(future);
    loop {
        match runtime::block_on_interruptible(
            future.as_mut(),
            interrupt_pending,
            block_signals_on_this_thread,
        ) {
            Ok(output) => return output,
            Err(Interrupted) => {
                pgrx::check_for_interrupts!();
            }
        }
    }
}
