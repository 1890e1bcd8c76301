//! The Postgres backend against the conformance suite (each check in its own
//! schema), plus what only Postgres does: several stores on one database,
//! notifications across them, schema isolation.

use std::time::Duration;

use runekernel_storage::testing::postgres::{database_url, TestSchemas};
use runekernel_storage::testing::{self, new_job};
use runekernel_storage::{PostgresOptions, PostgresStorage, Storage, StorageEvent};

async fn connect(url: &str, schema: &str) -> PostgresStorage {
    PostgresStorage::connect_with(url, PostgresOptions::default().schema(schema))
        .await
        .expect("connect to the test database")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_passes_the_conformance_suite() {
    let Some(url) = database_url() else { return };
    let schemas = TestSchemas::new(&url);
    testing::conformance(|| {
        let schema = schemas.fresh("rk_conformance");
        let url = url.clone();
        async move { connect(&url, &schema).await }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_stores_share_jobs_and_notifications() {
    let Some(url) = database_url() else { return };
    let schemas = TestSchemas::new(&url);
    let schema = schemas.fresh("rk_shared");
    let a = connect(&url, &schema).await;
    let b = connect(&url, &schema).await;
    let mut events = b.subscribe();
    let job = new_job("m", 1);
    a.insert(job.clone()).await.unwrap();
    let event = tokio::time::timeout(Duration::from_secs(5), events.recv()).await;
    assert!(matches!(event, Ok(Ok(StorageEvent::JobsReady))), "{event:?}");
    assert_eq!(b.get(job.id).await.unwrap().unwrap().id, job.id);
}

#[tokio::test]
async fn schemas_isolate_applications() {
    let Some(url) = database_url() else { return };
    let schemas = TestSchemas::new(&url);
    let (one, two) = (schemas.fresh("rk_app_one"), schemas.fresh("rk_app_two"));
    let a = connect(&url, &one).await;
    let b = connect(&url, &two).await;
    let job = new_job("m", 1);
    a.insert(job.clone()).await.unwrap();
    assert!(b.get(job.id).await.unwrap().is_none());
    assert_eq!(a.schema(), one);
}

#[tokio::test]
async fn a_bad_schema_name_is_refused() {
    let Some(url) = database_url() else { return };
    let err = PostgresStorage::connect_with(&url, PostgresOptions::default().schema("Robert'); DROP"))
        .await
        .err()
        .expect("refused");
    assert!(err.to_string().contains("not a usable schema name"), "{err}");
}
