//! The store's transaction: sqlx's transaction plus statements sent together.
//!
//! On SQLite every statement is a round trip to sqlx's worker thread for the connection, and
//! the single writer connection is held for all of them; on a busy 2-core machine a round
//! trip costs about 0.1 ms, mostly thread wake-ups, so the number of round trips a write
//! transaction makes bounds how many transactions per second the store commits. Two tools cut
//! that number without a second implementation of any query:
//!
//! - [`Tx::run_all`] runs several statements and returns each one's rows and change count. On
//!   SQLite they go to the worker as one multi-statement text (one round trip); on PostgreSQL
//!   they run one after another, as before.
//! - [`Tx::defer`] takes a write whose result the transaction never reads back (events,
//!   deliveries, appended messages, a job). On SQLite deferred writes run in order, together,
//!   before the commit ([`Tx::flush`] runs them earlier); on PostgreSQL they run at once, so
//!   row locks keep the order the code states. A deferred write may require that it changed
//!   a row; otherwise it fails with the error it names and the transaction rolls back,
//!   exactly as if the write had failed where it was queued.
//!
//! Rule: nothing in a transaction may read a table after deferring a write to it without
//! flushing first.
//!
//! **Group commit (SQLite).** A SQLite COMMIT writes every page the transaction dirtied to
//! the WAL, about 0.3 ms for one inbound text on the 2-core machine, and the single writer
//! is held meanwhile. Consecutive transactions dirty mostly the same pages (the right-most
//! leaves of `messages`, `jobs`, `events` and their indexes), so SQLite write transactions
//! share one database transaction: each one runs inside its own `SAVEPOINT`, and when other
//! writers are queued it leaves the database transaction open for them and waits for the
//! batch's COMMIT before it returns. The last one in (or the closer task, queued behind them,
//! or the one that reaches [`MAX_BATCH`]) commits for all. A failing transaction rolls back to
//! its savepoint and takes nothing else with it; a failing COMMIT fails every transaction of
//! its batch, which then report the error as if their own COMMIT had failed. Nobody returns
//! success before their writes are committed.

use crate::rows::Sql;
use crate::StoreError;
use futures_util::TryStreamExt;
use sqlx::any::{AnyArguments, AnyRow};
use sqlx::{AnyPool, Either, Executor, Transaction};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::sync::{watch, Mutex, Notify, OwnedMutexGuard};

/// Most write transactions committed together.
pub(crate) const MAX_BATCH: usize = 32;

/// What a deferred write must have done.
#[derive(Clone, Copy)]
pub(crate) enum Expect {
    /// Nothing checked.
    Any,
    /// At least one row changed, or the flush fails with this error.
    Changed(fn() -> StoreError),
}

/// One statement's outcome in [`Tx::run_all`].
#[derive(Default)]
pub(crate) struct Outcome {
    /// The rows it returned.
    pub(crate) rows: Vec<AnyRow>,
    /// Rows it inserted, updated or deleted.
    pub(crate) changed: u64,
}

/// A transaction on either backend (see the module documentation).
pub(crate) struct Tx {
    conn: Conn,
    /// Whether several statements may share one text (SQLite).
    combine: bool,
    deferred: Vec<(Sql, Expect)>,
}

enum Conn {
    /// A transaction of its own (PostgreSQL; SQLite reads).
    Own(Transaction<'static, sqlx::Any>),
    /// A savepoint in the SQLite writer's shared transaction; `None` once handed back.
    Unit(Option<Unit>),
}

impl std::ops::Deref for Tx {
    type Target = sqlx::AnyConnection;
    fn deref(&self) -> &Self::Target {
        match &self.conn {
            Conn::Own(t) => t,
            Conn::Unit(Some(u)) => u.tx(),
            Conn::Unit(None) => unreachable!("a finished unit is never used"),
        }
    }
}

impl std::ops::DerefMut for Tx {
    fn deref_mut(&mut self) -> &mut Self::Target {
        match &mut self.conn {
            Conn::Own(t) => t,
            Conn::Unit(Some(u)) => u.tx_mut(),
            Conn::Unit(None) => unreachable!("a finished unit is never used"),
        }
    }
}

impl Drop for Tx {
    fn drop(&mut self) {
        // Not committed (an error, or the caller gave up): undo this unit's writes only.
        // `Own` transactions roll back through sqlx's own drop.
        if let Conn::Unit(unit) = &mut self.conn {
            if let Some(unit) = unit.take() {
                match tokio::runtime::Handle::try_current() {
                    Ok(rt) => {
                        rt.spawn(unit.abort());
                    }
                    Err(_) => tracing::warn!("write transaction dropped outside the runtime"),
                }
            }
        }
    }
}

impl Tx {
    pub(crate) fn new(inner: Transaction<'static, sqlx::Any>, combine: bool) -> Tx {
        Tx {
            conn: Conn::Own(inner),
            combine,
            deferred: Vec::new(),
        }
    }

    /// Queues a write for the flush before commit where statements are combined (SQLite);
    /// elsewhere runs it now, so PostgreSQL takes its row locks in the order the code
    /// states them (a reordered lock is a deadlock waiting to happen).
    pub(crate) async fn defer(&mut self, sql: Sql, expect: Expect) -> Result<(), StoreError> {
        if self.combine {
            self.deferred.push((sql, expect));
            return Ok(());
        }
        let outcome = self.run_all(vec![sql]).await?;
        check(&outcome, &[expect])
    }

    /// Runs the deferred writes now.
    pub(crate) async fn flush(&mut self) -> Result<(), StoreError> {
        if self.deferred.is_empty() {
            return Ok(());
        }
        let (stmts, expects): (Vec<Sql>, Vec<Expect>) =
            std::mem::take(&mut self.deferred).into_iter().unzip();
        let outcomes = self.run_all(stmts).await?;
        check(&outcomes, &expects)
    }

    /// Flushes, then commits (for a SQLite writer unit: returns once its batch committed).
    pub(crate) async fn commit(mut self) -> Result<(), StoreError> {
        self.flush().await?;
        match std::mem::replace(&mut self.conn, Conn::Unit(None)) {
            Conn::Own(t) => Ok(t.commit().await?),
            Conn::Unit(Some(u)) => u.commit().await,
            Conn::Unit(None) => unreachable!("a finished unit is never committed"),
        }
    }

    /// [`Tx::run_all`] for two statements, returning the rows of each.
    pub(crate) async fn run_two(
        &mut self,
        a: Sql,
        b: Sql,
    ) -> Result<(Vec<AnyRow>, Vec<AnyRow>), StoreError> {
        let mut out = self.run_all(vec![a, b]).await?.into_iter();
        match (out.next(), out.next()) {
            (Some(a), Some(b)) => Ok((a.rows, b.rows)),
            // `run_all` returns one outcome per statement or fails.
            _ => unreachable!("two statements, two outcomes"),
        }
    }

    /// Runs `stmts` in order and returns each one's outcome (see the module documentation).
    /// The first failing statement fails the call; later ones do not run.
    pub(crate) async fn run_all(&mut self, stmts: Vec<Sql>) -> Result<Vec<Outcome>, StoreError> {
        let n = stmts.len();
        if !self.combine || n < 2 {
            let mut out = Vec::with_capacity(n);
            for s in stmts {
                let (text, args) = s.into_parts()?;
                out.extend(run_text(&mut *self, &text, args, 1).await?);
            }
            return Ok(out);
        }
        let mut text = String::new();
        let mut args = AnyArguments::default();
        for s in stmts {
            let (t, a) = s.into_parts()?;
            if !text.is_empty() {
                text.push_str(";\n");
            }
            text.push_str(&shift_placeholders(&t, args.values.0.len()));
            args.values.0.extend(a.values.0);
        }
        run_text(&mut *self, &text, args, n).await
    }
}

/// The SQLite writer: one connection whose write transactions commit in groups (see the
/// module documentation).
pub(crate) struct Group {
    pool: AnyPool,
    state: Arc<Mutex<Batch>>,
    /// Writers queued for `state`.
    waiting: AtomicUsize,
    /// Wakes the closer: a batch was left open for queued writers (or the group is gone).
    closer: Arc<Notify>,
}

impl Drop for Group {
    fn drop(&mut self) {
        // The closer finds the group gone and ends.
        self.closer.notify_one();
    }
}

/// The open database transaction and who waits for its COMMIT.
#[derive(Default)]
struct Batch {
    tx: Option<Transaction<'static, sqlx::Any>>,
    done: Option<watch::Sender<Option<Result<(), String>>>>,
    units: usize,
}

impl Batch {
    /// Commits (or, with `Err`, rolls back) the open transaction and tells its units.
    async fn finish(&mut self, failure: Option<String>) -> Result<(), StoreError> {
        let Some(tx) = self.tx.take() else {
            return Ok(());
        };
        let result = match failure {
            None => tx.commit().await.map_err(|e| e.to_string()),
            Some(why) => {
                let _ = tx.rollback().await;
                Err(why)
            }
        };
        self.units = 0;
        if let Some(done) = self.done.take() {
            done.send_replace(Some(result.clone()));
        }
        result.map_err(StoreError::Commit)
    }
}

impl Group {
    /// The writer over `pool` (one connection), with its closer task.
    pub(crate) fn start(pool: AnyPool) -> Arc<Group> {
        let group = Arc::new(Group {
            pool,
            state: Arc::default(),
            waiting: AtomicUsize::new(0),
            closer: Arc::new(Notify::new()),
        });
        let weak = Arc::downgrade(&group);
        let wake = group.closer.clone();
        tokio::spawn(async move {
            loop {
                wake.notified().await;
                let Some(g) = weak.upgrade() else { return };
                // Queued behind the writers that were waiting when the batch was left open:
                // they have joined it by the time this runs.
                let mut batch = g.state.clone().lock_owned().await;
                if let Err(e) = batch.finish(None).await {
                    tracing::error!(error = %e, "group commit failed");
                }
            }
        });
        group
    }

    /// Starts a write transaction: a savepoint in the shared transaction.
    pub(crate) async fn begin(self: &Arc<Group>) -> Result<Tx, StoreError> {
        let mut batch = {
            // Counted while queued, also when the caller gives up waiting.
            let _queued = Queued::new(&self.waiting);
            self.state.clone().lock_owned().await
        };
        if batch.tx.is_none() {
            // IMMEDIATE takes the write lock now, waiting (busy_timeout) while another
            // process (a CLI command beside the server) holds it. A deferred BEGIN would
            // read first and then fail to upgrade with SQLITE_BUSY_SNAPSHOT if that process
            // wrote in between, and no timeout helps with that.
            batch.tx = Some(self.pool.begin_with("BEGIN IMMEDIATE").await?);
            batch.done = Some(watch::channel(None).0);
            batch.units = 0;
        }
        let tx = batch.tx.as_mut().expect("opened above");
        if let Err(e) = tx.execute("SAVEPOINT sb_unit").await {
            // The shared transaction is unusable: end it for everyone in it.
            let _ = batch.finish(Some(format!("savepoint failed: {e}"))).await;
            return Err(e.into());
        }
        Ok(Tx {
            conn: Conn::Unit(Some(Unit {
                batch,
                group: self.clone(),
            })),
            combine: true,
            deferred: Vec::new(),
        })
    }
}

/// A writer queued for the batch lock.
struct Queued<'a>(&'a AtomicUsize);

impl<'a> Queued<'a> {
    fn new(n: &'a AtomicUsize) -> Self {
        n.fetch_add(1, Ordering::SeqCst);
        Queued(n)
    }
}

impl Drop for Queued<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// One write transaction's hold on the SQLite writer.
struct Unit {
    batch: OwnedMutexGuard<Batch>,
    group: Arc<Group>,
}

impl Unit {
    fn tx(&self) -> &sqlx::AnyConnection {
        self.batch
            .tx
            .as_ref()
            .expect("a unit holds an open transaction")
    }

    fn tx_mut(&mut self) -> &mut sqlx::AnyConnection {
        self.batch
            .tx
            .as_mut()
            .expect("a unit holds an open transaction")
    }

    /// This unit's writes are done: commit the batch now, or leave it open for the writers
    /// queued behind and wait for its COMMIT.
    async fn commit(mut self) -> Result<(), StoreError> {
        self.batch.units += 1;
        let queued = self.group.waiting.load(Ordering::SeqCst) > 0;
        if !queued || self.batch.units >= MAX_BATCH {
            return self.batch.finish(None).await;
        }
        let mut done = match &self.batch.done {
            Some(d) => d.subscribe(),
            None => return Err(StoreError::Commit("write batch lost".into())),
        };
        self.group.closer.notify_one();
        drop(self.batch);
        let outcome = done
            .wait_for(Option::is_some)
            .await
            .map(|v| v.clone())
            .map_err(|_| StoreError::Commit("write batch abandoned".into()))?;
        match outcome {
            Some(Ok(())) => Ok(()),
            Some(Err(e)) => Err(StoreError::Commit(e)),
            None => unreachable!("waited for a result"),
        }
    }

    /// Undoes this unit's writes (it failed or was dropped), keeping the batch's others.
    async fn abort(mut self) {
        let undo = match self.batch.tx.as_mut() {
            Some(tx) => tx.execute("ROLLBACK TO sb_unit; RELEASE sb_unit").await,
            None => return,
        };
        match undo {
            Err(e) => {
                let _ = self
                    .batch
                    .finish(Some(format!("rollback to savepoint failed: {e}")))
                    .await;
            }
            // Nothing of anyone's is in it: end it now rather than leave it open.
            Ok(_) if self.batch.units == 0 => {
                let _ = self.batch.finish(Some("empty".into())).await;
            }
            // Others' writes wait for their COMMIT.
            Ok(_) => self.group.closer.notify_one(),
        }
    }
}

/// Fails with the first unmet expectation.
fn check(outcomes: &[Outcome], expects: &[Expect]) -> Result<(), StoreError> {
    for (o, e) in outcomes.iter().zip(expects) {
        if let Expect::Changed(err) = e {
            if o.changed == 0 {
                return Err(err());
            }
        }
    }
    Ok(())
}

/// Runs a text of `n` statements, splitting the results at each statement's end.
async fn run_text(
    conn: &mut sqlx::AnyConnection,
    text: &str,
    args: AnyArguments<'static>,
    n: usize,
) -> Result<Vec<Outcome>, StoreError> {
    let mut out = Vec::with_capacity(n);
    let mut cur = Outcome::default();
    {
        // Deprecated by sqlx because only its SQLite driver runs several statements from one
        // prepared text; that is exactly what it is used for here (PostgreSQL callers pass
        // one statement at a time). The store's tests cover both backends, so a sqlx upgrade
        // that drops it fails there, not in production.
        #[allow(deprecated)]
        let mut stream = sqlx::query_with(text, args).fetch_many(&mut *conn);
        while let Some(item) = stream.try_next().await? {
            match item {
                Either::Right(row) => cur.rows.push(row),
                Either::Left(done) => {
                    cur.changed = done.rows_affected();
                    out.push(std::mem::take(&mut cur));
                }
            }
        }
    }
    if out.len() != n {
        return Err(StoreError::Corrupt(format!(
            "expected the outcomes of {n} statements, the database reported {}",
            out.len()
        )));
    }
    Ok(out)
}

/// Renumbers the `$n` placeholders of `sql` by `by`, leaving quoted text alone.
fn shift_placeholders(sql: &str, by: usize) -> String {
    if by == 0 {
        return sql.to_owned();
    }
    let mut out = String::with_capacity(sql.len() + 16);
    let mut chars = sql.char_indices().peekable();
    let mut quote: Option<char> = None;
    while let Some((_, c)) = chars.next() {
        match quote {
            Some(q) => {
                out.push(c);
                if c == q {
                    quote = None;
                }
            }
            None if c == '\'' || c == '"' => {
                quote = Some(c);
                out.push(c);
            }
            None if c == '$' && chars.peek().is_some_and(|(_, d)| d.is_ascii_digit()) => {
                let mut num = 0usize;
                while let Some((_, d)) = chars.peek().copied().filter(|(_, d)| d.is_ascii_digit()) {
                    num = num * 10 + (d as usize - '0' as usize);
                    chars.next();
                }
                out.push('$');
                out.push_str(&(num + by).to_string());
            }
            None => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::shift_placeholders;

    #[test]
    fn placeholders_shift_outside_quotes_only() {
        assert_eq!(
            shift_placeholders(
                "INSERT INTO t VALUES ($1, '$2', \"$3\", $10, 'it''s $4')",
                5
            ),
            "INSERT INTO t VALUES ($6, '$2', \"$3\", $15, 'it''s $4')"
        );
        assert_eq!(shift_placeholders("SELECT $1", 0), "SELECT $1");
        assert_eq!(
            shift_placeholders("SELECT '$' || $2", 1),
            "SELECT '$' || $3"
        );
    }
}
