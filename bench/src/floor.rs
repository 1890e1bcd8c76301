//! Raw-SQL floors: the least SQL that claims and completes the same jobs,
//! hand-written, so we know how close RuneKernel's storage is to the limit.

use std::time::Instant;

use rusqlite::{params, Connection};

/// SQLite: claim 100 at a time with `UPDATE .. RETURNING`, complete them in a
/// second transaction, on one connection (SQLite has one writer). Returns
/// jobs per second.
pub fn sqlite(path: &std::path::Path, n: u64, synchronous: &str) -> f64 {
    let conn = Connection::open(path).expect("open");
    conn.execute_batch(&format!(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = {synchronous};
         CREATE TABLE jobs (id INTEGER PRIMARY KEY, status INTEGER NOT NULL, run_at INTEGER NOT NULL, payload TEXT NOT NULL);
         CREATE INDEX jobs_ready ON jobs (run_at, id) WHERE status = 0;"
    ))
    .expect("schema");
    {
        let tx = conn.unchecked_transaction().expect("begin");
        let mut insert = tx
            .prepare("INSERT INTO jobs (status, run_at, payload) VALUES (0, 0, ?1)")
            .expect("prepare");
        for i in 0..n {
            insert.execute([format!("{{\"n\":{i}}}")]).expect("insert");
        }
        drop(insert);
        tx.commit().expect("commit");
    }
    let started = Instant::now();
    loop {
        let tx = conn.unchecked_transaction().expect("begin");
        let ids: Vec<i64> = {
            let mut claim = tx
                .prepare_cached(
                    "UPDATE jobs SET status = 1 WHERE id IN \
                     (SELECT id FROM jobs WHERE status = 0 AND run_at <= ?1 ORDER BY run_at, id LIMIT 100) RETURNING id",
                )
                .expect("prepare");
            claim
                .query_map([i64::MAX], |row| row.get(0))
                .expect("claim")
                .map(|r| r.expect("row"))
                .collect()
        };
        tx.commit().expect("commit");
        if ids.is_empty() {
            break;
        }
        let tx = conn.unchecked_transaction().expect("begin");
        {
            let mut done = tx
                .prepare_cached("UPDATE jobs SET status = 2 WHERE id = ?1")
                .expect("prepare");
            for id in ids {
                done.execute(params![id]).expect("complete");
            }
        }
        tx.commit().expect("commit");
    }
    n as f64 / started.elapsed().as_secs_f64()
}

/// Postgres: `workers` tasks each claim 100 with `FOR UPDATE SKIP LOCKED`
/// and complete them with one `UPDATE .. = ANY`. Returns jobs per second.
pub async fn postgres(url: &str, n: u64, workers: usize) -> f64 {
    use sqlx::postgres::PgPoolOptions;
    use sqlx::Executor;
    let pool = PgPoolOptions::new()
        .max_connections(workers as u32 + 1)
        .connect(url)
        .await
        .expect("connect");
    pool.execute(
        "DROP TABLE IF EXISTS rk_bench_floor; \
         CREATE UNLOGGED TABLE IF NOT EXISTS rk_bench_floor_probe (x int); DROP TABLE rk_bench_floor_probe; \
         CREATE TABLE rk_bench_floor (id bigserial PRIMARY KEY, status int NOT NULL, run_at bigint NOT NULL, payload jsonb NOT NULL); \
         CREATE INDEX rk_bench_floor_ready ON rk_bench_floor (run_at, id) WHERE status = 0;",
    )
    .await
    .expect("schema");
    sqlx::query("INSERT INTO rk_bench_floor (status, run_at, payload) SELECT 0, 0, jsonb_build_object('n', g) FROM generate_series(1, $1) g")
        .bind(n as i64)
        .execute(&pool)
        .await
        .expect("insert");
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..workers {
        let pool = pool.clone();
        tasks.push(tokio::spawn(async move {
            loop {
                let ids: Vec<i64> = sqlx::query_scalar(
                    "UPDATE rk_bench_floor SET status = 1 WHERE id IN (SELECT id FROM rk_bench_floor WHERE status = 0 \
                     ORDER BY run_at, id LIMIT 100 FOR UPDATE SKIP LOCKED) RETURNING id",
                )
                .fetch_all(&pool)
                .await
                .expect("claim");
                if ids.is_empty() {
                    break;
                }
                sqlx::query("UPDATE rk_bench_floor SET status = 2 WHERE id = ANY($1)")
                    .bind(&ids)
                    .execute(&pool)
                    .await
                    .expect("complete");
            }
        }));
    }
    for task in tasks {
        task.await.expect("worker");
    }
    let rate = n as f64 / started.elapsed().as_secs_f64();
    pool.execute("DROP TABLE rk_bench_floor").await.expect("drop");
    rate
}
