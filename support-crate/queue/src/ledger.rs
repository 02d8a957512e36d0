//! Account balances kept in the broker, to see what at-least-once delivery does to a task
//! with an effect: [`Ledger::add`] applies a deposit each time it runs, [`Ledger::add_once`]
//! once per deposit id (an idempotency key), atomically.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::broker::{Connection, Connector};
use crate::runtime::block_on;
use crate::QueueError;

/// Balances named `name`, in the broker (a Redis hash, or an SQLite table).
#[derive(Clone, Debug)]
pub struct Ledger {
    name: String,
    connection: Arc<Connector>,
}

const ADD_ONCE: &str = r"
if redis.call('SADD', KEYS[2], ARGV[1]) == 1 then
    redis.call('HINCRBY', KEYS[1], ARGV[2], ARGV[3])
    return 1
end
return 0";

impl Ledger {
    pub(crate) fn new(name: &str, connection: Arc<Connector>) -> Self {
        Ledger { name: name.to_string(), connection }
    }

    fn keys(&self) -> (String, String) {
        (format!("parcours:ledger:{}", self.name), format!("parcours:ledger:{}:applied", self.name))
    }

    /// Adds `amount` to `account`, every time it is called; returns the new balance.
    ///
    /// # Errors
    /// When the broker cannot be reached.
    pub fn add(&self, account: &str, amount: i64) -> Result<i64, QueueError> {
        block_on(async {
            match self.connection.get().await? {
                Connection::Redis(mut redis) => redis::cmd("HINCRBY")
                    .arg(self.keys().0)
                    .arg(account)
                    .arg(amount)
                    .query_async(&mut redis)
                    .await
                    .map_err(QueueError::broker),
                Connection::Sqlite(pool) => {
                    setup(&pool).await?;
                    sqlx::query_scalar(
                        "INSERT INTO ParcoursLedger (ledger, account, balance) VALUES (?1, ?2, ?3) \
                         ON CONFLICT (ledger, account) DO UPDATE SET balance = balance + ?3 \
                         RETURNING balance",
                    )
                    .bind(&self.name)
                    .bind(account)
                    .bind(amount)
                    .fetch_one(&pool)
                    .await
                    .map_err(QueueError::broker)
                }
            }
        })
    }

    /// Adds `amount` to `account` unless a deposit with this `key` was applied before, in one
    /// atomic step; returns whether it applied it.
    ///
    /// # Errors
    /// When the broker cannot be reached.
    pub fn add_once(&self, key: &str, account: &str, amount: i64) -> Result<bool, QueueError> {
        block_on(async {
            match self.connection.get().await? {
                Connection::Redis(mut redis) => {
                    let (balances, applied) = self.keys();
                    let done: i64 = redis::Script::new(ADD_ONCE)
                        .key(balances)
                        .key(applied)
                        .arg(key)
                        .arg(account)
                        .arg(amount)
                        .invoke_async(&mut redis)
                        .await
                        .map_err(QueueError::broker)?;
                    Ok(done == 1)
                }
                Connection::Sqlite(pool) => {
                    setup(&pool).await?;
                    let mut transaction = pool.begin().await.map_err(QueueError::broker)?;
                    let inserted = sqlx::query(
                        "INSERT OR IGNORE INTO ParcoursApplied (ledger, key) VALUES (?1, ?2)",
                    )
                    .bind(&self.name)
                    .bind(key)
                    .execute(&mut *transaction)
                    .await
                    .map_err(QueueError::broker)?
                    .rows_affected()
                        == 1;
                    if inserted {
                        sqlx::query(
                            "INSERT INTO ParcoursLedger (ledger, account, balance) VALUES (?1, ?2, ?3) \
                             ON CONFLICT (ledger, account) DO UPDATE SET balance = balance + ?3",
                        )
                        .bind(&self.name)
                        .bind(account)
                        .bind(amount)
                        .execute(&mut *transaction)
                        .await
                        .map_err(QueueError::broker)?;
                    }
                    transaction.commit().await.map_err(QueueError::broker)?;
                    Ok(inserted)
                }
            }
        })
    }

    /// Every account's balance.
    ///
    /// # Errors
    /// When the broker cannot be reached.
    pub fn balances(&self) -> Result<BTreeMap<String, i64>, QueueError> {
        block_on(async {
            match self.connection.get().await? {
                Connection::Redis(mut redis) => redis::cmd("HGETALL")
                    .arg(self.keys().0)
                    .query_async(&mut redis)
                    .await
                    .map_err(QueueError::broker),
                Connection::Sqlite(pool) => {
                    setup(&pool).await?;
                    let rows: Vec<(String, i64)> = sqlx::query_as(
                        "SELECT account, balance FROM ParcoursLedger WHERE ledger = ?1",
                    )
                    .bind(&self.name)
                    .fetch_all(&pool)
                    .await
                    .map_err(QueueError::broker)?;
                    Ok(rows.into_iter().collect())
                }
            }
        })
    }

    /// One account's balance (0 if it has none).
    ///
    /// # Errors
    /// When the broker cannot be reached.
    pub fn balance(&self, account: &str) -> Result<i64, QueueError> {
        Ok(self.balances()?.get(account).copied().unwrap_or(0))
    }
}

async fn setup(pool: &apalis_sqlite::SqlitePool) -> Result<(), QueueError> {
    sqlx::raw_sql(
        "CREATE TABLE IF NOT EXISTS ParcoursLedger (ledger TEXT NOT NULL, account TEXT NOT NULL, \
           balance INTEGER NOT NULL, PRIMARY KEY (ledger, account));
         CREATE TABLE IF NOT EXISTS ParcoursApplied (ledger TEXT NOT NULL, key TEXT NOT NULL, \
           PRIMARY KEY (ledger, key));",
    )
    .execute(pool)
    .await
    .map(drop)
    .map_err(QueueError::broker)
}
