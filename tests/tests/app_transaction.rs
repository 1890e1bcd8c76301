//! A typed job submitted inside an application's own Postgres transaction
//! runs once that transaction commits, and never if it rolls back.

use std::time::Duration;

use runekernel::storage::testing::postgres::{database_url, TestSchemas};
use runekernel::storage::{PostgresOptions, PostgresStorage};
use runekernel::{JobState, Runtime, SubmitOptions};
use runekernel_tests::machines::{Calls, Scripted, Task};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_submitted_in_an_app_transaction_runs_once_it_commits() {
    let Some(url) = database_url() else { return };
    let schemas = TestSchemas::new(&url);
    let app = sqlx_postgres::PgPoolOptions::new()
        .max_connections(2)
        .connect(&url)
        .await
        .unwrap();
    let options = PostgresOptions::default().schema(schemas.fresh("rk_app_submit"));
    let storage = PostgresStorage::from_pool(&app, options).await.unwrap();
    let rt = Runtime::builder()
        .storage(storage.clone())
        .register(Task::handler(Scripted))
        .resource(Calls::default())
        .build()
        .await
        .unwrap();

    let rolled_back = rt
        .prepare_job(Task::Todo { mode: "ok".into() }, SubmitOptions::default())
        .unwrap();
    let mut tx = app.begin().await.unwrap();
    storage.insert_in(&mut tx, vec![rolled_back.clone()]).await.unwrap();
    tx.rollback().await.unwrap();

    let job = rt
        .prepare_job(Task::Todo { mode: "ok".into() }, SubmitOptions::default())
        .unwrap();
    let mut tx = app.begin().await.unwrap();
    // The application's own row, in the same transaction.
    sqlx_core::query::query("SELECT 1").execute(&mut *tx).await.unwrap();
    storage.insert_in(&mut tx, vec![job.clone()]).await.unwrap();
    tx.commit().await.unwrap();

    let done = tokio::time::timeout(Duration::from_secs(10), rt.wait::<Task>(job.id))
        .await
        .expect("the committed job ran")
        .unwrap();
    assert_eq!(done.status, JobState::Completed);
    assert!(rt.get_record(rolled_back.id).await.unwrap().is_none());
    rt.shutdown().await.unwrap();
}
