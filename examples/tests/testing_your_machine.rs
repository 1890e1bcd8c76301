//! How to test your own machine: deterministic mode runs every step in the
//! test's task on a manual clock, so retries, delays and timeouts are tested
//! by moving the clock, and the same test gives the same history every time.

use std::time::Duration;

use runekernel::prelude::*;
use runekernel_examples::{Order, Shop};

#[tokio::test]
async fn a_flaky_gateway_is_retried_after_its_backoff() {
    let rt = Runtime::builder()
        .deterministic(42)
        .register(Order::handler(Shop::flaky(2))) // the first charge fails, the second goes through
        .build()
        .await
        .unwrap();
    let id = rt
        .submit(Order::Created {
            sku: "rune-1".into(),
            qty: 2,
        })
        .await
        .unwrap();

    rt.run_until_idle().await.unwrap();
    let job = rt.get::<Order>(id).await.unwrap().unwrap();
    assert_eq!(job.status, JobState::Pending);
    assert_eq!(job.last_error.as_deref(), Some("the payment gateway timed out"));

    // Nothing happens before the backoff (1 s, give or take 25%) is over...
    rt.advance(Duration::from_millis(700)).await;
    assert_eq!(rt.run_until_idle().await.unwrap(), 0);
    // ...and the retry runs once it is.
    rt.advance(Duration::from_millis(600)).await;
    let done = rt.wait::<Order>(id).await.unwrap();
    assert!(matches!(done.state, Order::Shipped { .. }));
    let history = rt.history(id).await.unwrap();
    assert_eq!(history.len(), 4, "submitted, a failed attempt, paid, shipped");
    rt.verify(id).await.unwrap();
}

#[tokio::test]
async fn an_order_ships_and_its_history_replays() {
    let rt = Runtime::builder()
        .deterministic(7)
        .register(Order::handler(Shop::default()))
        .build()
        .await
        .unwrap();
    let id = rt
        .submit(Order::Created {
            sku: "rune-2".into(),
            qty: 1,
        })
        .await
        .unwrap();
    let done = rt.wait::<Order>(id).await.unwrap();
    assert!(matches!(done.state, Order::Shipped { .. }));
    let states: Vec<String> = rt.history(id).await.unwrap().into_iter().map(|h| h.to).collect();
    assert_eq!(states, ["Created", "Paid", "Shipped"]);
    rt.verify(id).await.unwrap();
}

#[tokio::test]
async fn a_large_refund_is_refused_by_the_guard() {
    let rt = Runtime::builder()
        .deterministic(9)
        .register(Order::handler(Shop::default()))
        .build()
        .await
        .unwrap();
    // 11 tomes: refunded as out of stock, but 137 500 cents is over the
    // refund guard's limit, so the step fails until its attempts are spent.
    let id = rt
        .submit(Order::Created {
            sku: "tome".into(),
            qty: 11,
        })
        .await
        .unwrap();
    for _ in 0..5 {
        rt.run_until_idle().await.unwrap();
        rt.advance(Duration::from_secs(60)).await;
    }
    let job = rt.wait::<Order>(id).await.unwrap();
    assert_eq!(job.status, JobState::Failed);
    assert!(job.last_error.unwrap().contains("refund_allowed"));
}
