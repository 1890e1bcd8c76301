//! The in-memory backend against the conformance suite.

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn in_memory_storage_passes_the_conformance_suite() {
    runekernel_storage::testing::conformance(|| async { runekernel_storage::InMemoryStorage::new() }).await;
}
