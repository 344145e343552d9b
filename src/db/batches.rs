//! Long jobs in batches (a quarterly fee run, a year's surcharge settlement): each batch its own write
//! transaction, so memory stays flat in the size of the job, and — on PostgreSQL — two batches at a time on two
//! connections, so that one batch's computing in the service overlaps another's writing in the database.
//!
//! A job that must not run twice at once holds a lock for its whole length ([`with_session_lock`], taken by
//! [`super::Db::run_wide`] before it lends the second connection); its batches then need no lock of their own and
//! do not wait for each other.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use diesel::prelude::*;

use super::{write_transaction, DbConn, LOST};
use crate::error::ApiError;

/// Connections a batch job works on at once on PostgreSQL (SQLite has one writer, so one). Measured on two cores
/// with the database on the same machine: a quarterly run of 100 000 permits took 17 s on one connection; on two,
/// the service computes a batch while the database writes the other.
pub const WORKERS: usize = 2;

/// Runs `work` on every batch that `next` pages out, each in its own write transaction, on every connection of
/// `conns` at once, and hands each batch's result to `fold` in the order of the batches (whichever finished
/// first). `next` gets the last item of the previous batch (`None` for the first) and returns the next batch,
/// empty at the end; it is called on one connection at a time, in order, outside any batch's transaction.
///
/// The first error stops the job: no new batch starts, and the error is returned once the batches under way have
/// ended. Batches committed before stay committed (the jobs are written so that running them again completes them).
pub fn in_batches<T, S>(
    conns: &mut [&mut DbConn],
    next: impl Fn(&mut DbConn, Option<&T>) -> QueryResult<Vec<T>> + Sync,
    work: impl Fn(&mut DbConn, &[T]) -> Result<S, ApiError> + Sync,
    fold: impl FnMut(S) + Send,
) -> Result<(), ApiError>
where
    T: Clone + Send,
    S: Send,
{
    let pages = Mutex::new(Pages { last: None, taken: 0, done: false });
    // The first error, and a flag to stop on that no worker waits for (the paging lock is busy while a job runs).
    let failed: Mutex<Option<ApiError>> = Mutex::new(None);
    let stop = AtomicBool::new(false);
    let fail = |e: ApiError| {
        failed.lock().unwrap_or_else(|e| e.into_inner()).get_or_insert(e);
        stop.store(true, Ordering::SeqCst);
    };
    let results = Mutex::new(InOrder { next: 0, waiting: BTreeMap::new(), fold });
    let span = tracing::Span::current();
    let worker = |conn: &mut DbConn| {
        let _entered = span.enter();
        loop {
            // The next batch, paged by one worker at a time so that batches are numbered in their order.
            let (index, batch) = {
                let mut p = pages.lock().unwrap_or_else(|e| e.into_inner());
                if p.done || stop.load(Ordering::SeqCst) {
                    return;
                }
                match next(conn, p.last.as_ref()) {
                    Ok(batch) if !batch.is_empty() => {
                        p.last = batch.last().cloned();
                        p.taken += 1;
                        (p.taken - 1, batch)
                    }
                    Ok(_) => {
                        p.done = true;
                        return;
                    }
                    Err(e) => {
                        fail(e.into());
                        return;
                    }
                }
            };
            // A panicking batch fails the job like an error (its connection, left inside the transaction, is
            // discarded by the pool): the other worker stops, and no later result waits for it forever.
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                write_transaction(conn, |conn| work(conn, &batch))
            }))
            .unwrap_or_else(|_| Err(ApiError::internal("a batch of the job panicked")));
            match outcome {
                Ok(result) => results.lock().unwrap_or_else(|e| e.into_inner()).put(index, result),
                Err(e) => {
                    fail(e);
                    return;
                }
            }
        }
    };
    std::thread::scope(|scope| {
        let (first, others) = conns.split_first_mut().expect("at least one connection");
        for conn in others.iter_mut() {
            let worker = &worker;
            scope.spawn(move || worker(conn));
        }
        worker(first);
    });
    match failed.into_inner().unwrap_or_else(|e| e.into_inner()) {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// Where the paging stands: the last item handed out, how many batches were, whether the pages ran out.
struct Pages<T> {
    last: Option<T>,
    taken: usize,
    done: bool,
}

/// Results folded in batch order: those finished ahead of an earlier batch wait here (at most one per worker).
struct InOrder<S, F> {
    next: usize,
    waiting: BTreeMap<usize, S>,
    fold: F,
}

impl<S, F: FnMut(S)> InOrder<S, F> {
    fn put(&mut self, index: usize, result: S) {
        self.waiting.insert(index, result);
        while let Some(result) = self.waiting.remove(&self.next) {
            (self.fold)(result);
            self.next += 1;
        }
    }
}

/// Runs `f` holding the lock `name` for a job longer than a transaction, whose batches commit one by one, so two
/// runs of it never interleave: a second waits for the first to end. On PostgreSQL a session advisory lock on
/// `conn` (so across instances); on SQLite, whose writers are this process's, a lock in the process.
///
/// Should the PostgreSQL lock not be released (the connection failed, or `f` panicked), the connection is not put
/// back in the pool (see [`super::Db::run_wide`]): closing it ends the session and, with it, the lock.
pub fn with_session_lock<T, E>(
    conn: &mut DbConn,
    name: &str,
    f: impl FnOnce(&mut DbConn) -> Result<T, E>,
) -> Result<T, E>
where
    E: From<diesel::result::Error>,
{
    if !matches!(conn, DbConn::Postgres(_)) {
        let _held = InProcess::take(name);
        return f(conn);
    }
    let lock = |conn: &mut DbConn, sql: &str| {
        diesel::sql_query(sql).bind::<diesel::sql_types::Text, _>(name).execute(conn).map(|_| ())
    };
    lock(conn, "SELECT pg_advisory_lock(hashtext($1))")?;
    let held = Held;
    let result = f(conn);
    if lock(conn, "SELECT pg_advisory_unlock(hashtext($1))").is_ok() {
        std::mem::forget(held);
    }
    result
}

/// The names of the jobs running in this process (SQLite).
static RUNNING: Mutex<Vec<String>> = Mutex::new(Vec::new());
static ENDED: std::sync::Condvar = std::sync::Condvar::new();

/// A job's name taken in this process until dropped.
struct InProcess(String);

impl InProcess {
    fn take(name: &str) -> Self {
        let mut running = RUNNING.lock().unwrap_or_else(|e| e.into_inner());
        while running.iter().any(|n| n == name) {
            running = ENDED.wait(running).unwrap_or_else(|e| e.into_inner());
        }
        running.push(name.to_string());
        Self(name.to_string())
    }
}

impl Drop for InProcess {
    fn drop(&mut self) {
        RUNNING.lock().unwrap_or_else(|e| e.into_inner()).retain(|n| *n != self.0);
        ENDED.notify_all();
    }
}

/// While alive, a session lock is held: dropped without being forgotten (unwinding, or a failed release), it marks
/// the connection for the pool to discard.
struct Held;

impl Drop for Held {
    fn drop(&mut self) {
        LOST.set(true);
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::time::Duration;

    use diesel::Connection;

    use super::*;

    fn memory() -> DbConn {
        DbConn::Sqlite(diesel::SqliteConnection::establish(":memory:").unwrap())
    }

    /// Pages of ten out of 0..n, after the last item seen. Paging takes a millisecond, as a query would: the two
    /// in-memory connections still share this process's one SQLite writer turn, and a worker that paged and asked
    /// for it again at once could keep the other waiting for its turn to the end of the job.
    fn pages(n: u32) -> impl Fn(&mut DbConn, Option<&u32>) -> QueryResult<Vec<u32>> + Sync {
        move |_, after| {
            std::thread::sleep(Duration::from_millis(1));
            let from = after.map_or(0, |a| a + 1);
            Ok((from..n).take(10).collect())
        }
    }

    #[test]
    fn results_are_folded_in_batch_order_whichever_finishes_first() {
        let mut seen = Vec::new();
        let mut in_order = InOrder { next: 0, waiting: BTreeMap::new(), fold: |s: usize| seen.push(s) };
        for i in [2, 0, 3, 1, 4] {
            in_order.put(i, i);
        }
        assert!(in_order.waiting.is_empty());
        assert_eq!(seen, vec![0, 1, 2, 3, 4]);
    }

    #[test]
    fn every_batch_runs_once_on_both_connections_and_folds_in_order() {
        let (mut a, mut b) = (memory(), memory());
        let threads = Mutex::new(HashSet::new());
        let mut folded = Vec::new();
        in_batches(
            &mut [&mut a, &mut b],
            pages(95),
            |_, batch: &[u32]| {
                threads.lock().unwrap().insert(std::thread::current().id());
                // Later batches finish sooner, so results arrive out of order.
                std::thread::sleep(Duration::from_millis(u64::from(20 - batch[0] / 5)));
                Ok(batch.to_vec())
            },
            |batch| folded.extend(batch),
        )
        .unwrap();
        assert_eq!(folded, (0..95).collect::<Vec<_>>());
        assert_eq!(threads.into_inner().unwrap().len(), 2, "both connections worked");
    }

    #[test]
    fn the_first_error_stops_new_batches_and_is_returned() {
        let (mut a, mut b) = (memory(), memory());
        let started = Mutex::new(Vec::new());
        let mut folded = Vec::new();
        let result = in_batches(
            &mut [&mut a, &mut b],
            pages(1000),
            |_, batch: &[u32]| {
                started.lock().unwrap().push(batch[0]);
                if batch[0] == 30 {
                    return Err(ApiError::internal("batch 3 failed"));
                }
                Ok(batch[0])
            },
            |first| folded.push(first),
        );
        assert!(matches!(result, Err(ApiError::Internal(_))), "{result:?}");
        let started = started.into_inner().unwrap();
        // Once batch 3 had failed, the other connection finished what it had in hand and could page one more before
        // the failure was recorded (it is recorded after the rollback); nothing after that.
        let failed_at = started.iter().position(|&s| s == 30).expect("batch 3 ran");
        assert!(started.len() - failed_at - 1 <= 2, "{started:?}");
        assert!(folded.iter().all(|&f| f < 30), "{folded:?}");
        assert_eq!(folded, (0..folded.len() as u32).map(|i| i * 10).collect::<Vec<_>>(), "in order, without gaps");
    }

    #[test]
    fn a_panicking_batch_fails_the_job_instead_of_hanging_it() {
        let (mut a, mut b) = (memory(), memory());
        let mut folded = Vec::new();
        let result = in_batches(
            &mut [&mut a, &mut b],
            pages(1000),
            |_, batch: &[u32]| {
                assert!(batch[0] != 20, "batch 2 panics");
                Ok(batch[0])
            },
            |first| folded.push(first),
        );
        assert!(matches!(result, Err(ApiError::Internal(_))), "{result:?}");
        assert!(folded.len() <= 6 && folded.iter().all(|&f| f < 20), "{folded:?}");
    }

    #[test]
    fn a_job_runs_once_at_a_time_in_the_process_on_sqlite() {
        let running = std::sync::atomic::AtomicUsize::new(0);
        std::thread::scope(|scope| {
            for _ in 0..3 {
                scope.spawn(|| {
                    let mut conn = memory();
                    with_session_lock::<_, ApiError>(&mut conn, "test_job", |_| {
                        assert_eq!(running.fetch_add(1, std::sync::atomic::Ordering::SeqCst), 0, "alone");
                        std::thread::sleep(Duration::from_millis(30));
                        running.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
                        Ok(())
                    })
                    .unwrap();
                });
            }
        });
    }
}
