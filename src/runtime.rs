//! The embedded async runtime: one current-thread tokio runtime per backend, created on first
//! use (never in `_PG_init`, so the postmaster never forks one), and a `block_on` that hands
//! control back as soon as the caller reports a pending interrupt.

use std::cell::OnceCell;
use std::future::Future;
use std::time::Duration;

/// How often a running request checks for a query cancel or statement_timeout.
pub const INTERRUPT_POLL_INTERVAL: Duration = Duration::from_millis(50);

/// The future was dropped because an interrupt was pending.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Interrupted;

thread_local! {
    static RUNTIME: OnceCell<tokio::runtime::Runtime> = const { OnceCell::new() };
}

/// Runs `future` to completion on this thread's runtime, polling `interrupt_pending` every
/// `INTERRUPT_POLL_INTERVAL`. When it returns true, `Err(Interrupted)` comes back so the
/// caller can process the interrupt: pass a pinned `&mut` future (`future.as_mut()`) to go
/// on with the same call afterwards, or the future itself to have it dropped.
///
/// `on_worker_thread_start` runs on any helper thread the runtime starts (the SDK's blocking
/// DNS lookups); the Postgres glue uses it to block signals there, so that only the backend's
/// own thread ever runs Postgres signal handlers.
pub fn block_on_interruptible<F: Future>(
    future: F,
    interrupt_pending: impl Fn() -> bool,
    on_worker_thread_start: fn(),
) -> Result<F::Output, Interrupted> {
    RUNTIME.with(|cell| {
        let runtime = cell.get_or_init(|| build_runtime(on_worker_thread_start));
        runtime.block_on(async {
            tokio::pin!(future);
            let mut ticker = tokio::time::interval(INTERRUPT_POLL_INTERVAL);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    biased;
                    output = &mut future => return Ok(output),
                    _ = ticker.tick() => {
                        if interrupt_pending() {
                            return Err(Interrupted);
                        }
                    }
                }
            }
        })
    })
}

/// How long [`settle_parked`] parks the runtime before its rounds, for the I/O driver to run.
const SETTLE_PARK: std::time::Duration = std::time::Duration::from_millis(1);
/// The most rounds [`settle`] lets the runtime's ready tasks run.
const SETTLE_ROUNDS: usize = 256;
/// Rounds in a row with no task ending after which [`settle`] stops.
const SETTLED_AFTER: usize = 4;

/// Lets the runtime's ready tasks run, without waiting for any timer, until no task has
/// ended for a few rounds: the tasks of connections whose request was dropped (a cancel) or
/// whose pool was let go end and close their sockets now, not whenever this backend next
/// calls AWS. Tasks that stay (idle keep-alive connections) cost a few rounds.
pub fn settle() {
    settle_rounds(false);
}

/// [`settle`], after parking the runtime once ([`SETTLE_PARK`]): the runtime polls its I/O
/// driver only when it parks (or every few dozen ticks), and a connection still being set
/// up (hyper races a new one against its pool) holds the pool, and so every idle
/// connection in it, until its connect completes. For the end of a big scan, whose pool
/// was just let go; a millisecond that every query would pay otherwise.
pub fn settle_parked() {
    settle_rounds(true);
}

fn settle_rounds(park: bool) {
    RUNTIME.with(|cell| {
        if let Some(runtime) = cell.get() {
            let metrics = runtime.metrics();
            runtime.block_on(async {
                if park {
                    tokio::time::sleep(SETTLE_PARK).await;
                }
                let (mut alive, mut quiet) = (metrics.num_alive_tasks(), 0);
                for _ in 0..SETTLE_ROUNDS {
                    tokio::task::yield_now().await;
                    let now = metrics.num_alive_tasks();
                    quiet = if now < alive { 0 } else { quiet + 1 };
                    alive = now;
                    if quiet >= SETTLED_AFTER {
                        break;
                    }
                }
            });
        }
    });
}

/// Calls [`settle`] when dropped: declared before a future, it settles the runtime after
/// the future is dropped, on return and on unwind alike.
pub struct SettleOnDrop;

impl Drop for SettleOnDrop {
    fn drop(&mut self) {
        settle();
    }
}

fn build_runtime(on_worker_thread_start: fn()) -> tokio::runtime::Runtime {
    match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .on_thread_start(on_worker_thread_start)
        .thread_name("aws_sts-blocking")
        .build()
    {
        Ok(runtime) => runtime,
        // Building a current-thread runtime only fails when the OS refuses an epoll or timer
        // descriptor; the glue's panic guard turns this into an ERROR.
        Err(error) => panic!("aws_sts could not start its async runtime: {error}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;
    use std::time::Instant;

    #[test]
    fn completes_when_not_interrupted() {
        let result = block_on_interruptible(async { 41 + 1 }, || false, || {});
        assert_eq!(result, Ok(42));
    }

    #[test]
    fn an_interrupt_drops_a_hung_future_quickly() {
        let polls = Cell::new(0);
        let started = Instant::now();
        let result = block_on_interruptible(
            std::future::pending::<()>(),
            || {
                polls.set(polls.get() + 1);
                polls.get() >= 3
            },
            || {},
        );
        assert_eq!(result, Err(Interrupted));
        assert_eq!(polls.get(), 3);
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{:?}",
            started.elapsed()
        );
    }

    #[test]
    fn an_interrupted_pinned_future_goes_on_where_it_was() {
        let started = Cell::new(0);
        let future = async {
            started.set(started.get() + 1);
            tokio::time::sleep(Duration::from_millis(300)).await;
            "done"
        };
        let mut future = std::pin::pin!(future);
        let begun = Instant::now();
        let interrupts = Cell::new(0);
        let first = block_on_interruptible(
            future.as_mut(),
            || {
                interrupts.set(interrupts.get() + 1);
                true
            },
            || {},
        );
        assert_eq!(first, Err(Interrupted));
        let second = block_on_interruptible(future.as_mut(), || false, || {});
        assert_eq!(second, Ok("done"));
        assert_eq!(started.get(), 1, "the future was not started again");
        let elapsed = begun.elapsed();
        assert!(
            elapsed >= Duration::from_millis(300) && elapsed < Duration::from_millis(600),
            "{elapsed:?}"
        );
    }

    #[test]
    fn the_runtime_is_reused_on_one_thread() {
        let first = block_on_interruptible(
            async { tokio::runtime::Handle::current().id() },
            || false,
            || {},
        );
        let second = block_on_interruptible(
            async { tokio::runtime::Handle::current().id() },
            || false,
            || {},
        );
        assert_eq!(first, second);
    }
}
