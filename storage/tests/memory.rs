//! The in-memory backend against the conformance suite.

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn in_memory_storage_passes_the_conformance_suite() {
    runekernel_storage::testing::conformance(|| async { runekernel_storage::InMemoryStorage::new() }).await;
}

#[tokio::test]
async fn changes_through_another_handle_count() {
    let storage = runekernel_storage::InMemoryStorage::new();
    runekernel_storage::testing::changes_by_another_process_count(
        std::sync::Arc::new(storage.clone()),
        std::sync::Arc::new(storage),
    )
    .await;
}
