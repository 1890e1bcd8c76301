//! What `#[derive(StateMachine)]` generates, exercised through its public API.

use std::str::FromStr;

use runekernel::prelude::*;
use runekernel::{CodecError, TransitionError};
use runekernel_tests::machines::{Order, OrderCreatedNext, OrderState, Shapes, ShapesState};
use serde_json::json;

#[test]
fn names_and_states() {
    assert_eq!(Order::NAME, "order");
    assert_eq!(Shapes::NAME, "shapes");
    let order = Order::Created {
        sku: "rune-1".into(),
        qty: 2,
    };
    assert_eq!(order.state(), OrderState::Created);
    assert_eq!(order.state_name(), "Created");
    assert!(order.is_initial());
    assert!(!order.is_terminal());
    assert!(Order::Cancelled.is_terminal());
    assert_eq!(Shapes::Unit.state_name(), "start");
    assert_eq!(ShapesState::Struct.to_string(), "end");
}

#[test]
fn state_enum_parses_displays_and_serializes() {
    assert_eq!(OrderState::from_str("Paid"), Ok(OrderState::Paid));
    let err = OrderState::from_str("Payd").unwrap_err();
    assert_eq!(err.suggestion.as_deref(), Some("Paid"));
    assert!(err.to_string().contains("did you mean `Paid`?"), "{err}");
    assert_eq!(serde_json::to_value(OrderState::Shipped).unwrap(), json!("Shipped"));
    let back: ShapesState = serde_json::from_value(json!("start")).unwrap();
    assert_eq!(back, ShapesState::Unit);
    assert!(serde_json::from_value::<ShapesState>(json!("Unit")).is_err());
    assert_eq!(OrderState::ALL.len(), 5);
}

#[test]
fn transitions_are_checked_at_run_time_with_guards() {
    let created = Order::Created {
        sku: "a".into(),
        qty: 1,
    };
    assert!(created.can_transition_to(&Order::Cancelled));
    assert!(!created.can_transition_to(&Order::Refunded));
    match created.clone().transition(Order::Shipped { tracking: "t".into() }) {
        Err(TransitionError::NotAllowed { from, to, allowed, .. }) => {
            assert_eq!((from.as_str(), to.as_str()), ("Created", "Shipped"));
            assert_eq!(allowed, ["Paid", "Cancelled"]);
        }
        other => panic!("expected NotAllowed, got {other:?}"),
    }
    let cheap = Order::Paid { amount_cents: 500 };
    assert_eq!(cheap.clone().transition(Order::Refunded).unwrap(), Order::Refunded);
    let dear = Order::Paid { amount_cents: 500_000 };
    match dear.transition(Order::Refunded) {
        Err(TransitionError::GuardRejected { guard, .. }) => assert_eq!(guard, "refund_allowed"),
        other => panic!("expected GuardRejected, got {other:?}"),
    }
}

#[test]
fn next_enums_convert_into_the_machine() {
    let next = OrderCreatedNext::Paid { amount_cents: 42 };
    assert_eq!(Order::from(next), Order::Paid { amount_cents: 42 });
    assert_eq!(Order::from(OrderCreatedNext::Cancelled), Order::Cancelled);
}

#[test]
fn codec_round_trips_every_shape() {
    let values = [
        Shapes::Unit,
        Shapes::Tuple(7, Some("x".into())),
        Shapes::Tuple(0, None),
        Shapes::Struct {
            items: vec!["ünï".into(), "🦀".into()],
            note: None,
        },
    ];
    for value in values {
        let encoded = value.encode().unwrap();
        let back = Shapes::decode(encoded.state, encoded.payload.clone()).unwrap();
        assert_eq!(back, value, "{encoded:?}");
    }
    let encoded = Shapes::Tuple(1, None).encode().unwrap();
    assert_eq!(encoded.state, "Tuple");
    assert_eq!(encoded.payload, json!([1, null]));
    let encoded = Order::Created {
        sku: "s".into(),
        qty: 3,
    }
    .encode()
    .unwrap();
    assert_eq!(encoded.payload, json!({"sku": "s", "qty": 3}));
}

#[test]
fn codec_tolerates_a_missing_optional_field() {
    let decoded = Shapes::decode("end", json!({"items": []})).unwrap();
    assert_eq!(
        decoded,
        Shapes::Struct {
            items: vec![],
            note: None
        }
    );
}

#[test]
fn codec_errors_name_the_machine_state_and_field() {
    match Order::decode("Shiped", json!(null)) {
        Err(CodecError::UnknownState(e)) => {
            assert_eq!(e.machine, "order");
            assert_eq!(e.suggestion.as_deref(), Some("Shipped"));
        }
        other => panic!("expected UnknownState, got {other:?}"),
    }
    let err = Order::decode("Created", json!({"sku": "a", "qty": "many"})).unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("order") && text.contains("`Created`") && text.contains("`qty`"),
        "{text}"
    );
    let err = Shapes::decode("Tuple", json!([1])).unwrap_err();
    assert!(err.to_string().contains("array of 2"), "{err}");
}

#[test]
fn definition_describes_the_graph() {
    let def = Order::definition();
    assert_eq!(def.name(), "order");
    assert_eq!(def.initial().name, "Created");
    let terminals: Vec<&str> = def.terminals().map(|s| s.name.as_str()).collect();
    assert_eq!(terminals, ["Shipped", "Cancelled", "Refunded"]);
    let refund = def.transition("Paid", "Refunded").unwrap();
    assert_eq!(refund.guard.as_deref(), Some("refund_allowed"));
    assert!(def.to_mermaid().contains("Paid --> Refunded: [refund_allowed]"));
    assert!(def.to_dot().contains("\"Created\" -> \"Cancelled\""));

    let shapes = Shapes::definition();
    assert_eq!(shapes.version(), 3);
    let tuple = shapes.state("Tuple").unwrap();
    assert_eq!(tuple.timeout, Some(std::time::Duration::from_millis(250)));
    assert_eq!(tuple.max_attempts, Some(7));
    assert_eq!(
        shapes.transition("Tuple", "end").unwrap().label.as_deref(),
        Some("fill")
    );
    assert_ne!(def.fingerprint(), shapes.fingerprint());
    assert_eq!(def.fingerprint(), Order::definition().fingerprint());
}

#[test]
fn the_json_form_is_the_enums_own_serde_json() {
    let orders = [
        Order::Created {
            sku: "a".into(),
            qty: 1,
        },
        Order::Paid { amount_cents: 5 },
        Order::Cancelled,
    ];
    let shapes = [
        Shapes::Unit,
        Shapes::Tuple(3, Some("x".into())),
        Shapes::Struct {
            items: vec!["i".into()],
            note: None,
        },
    ];
    fn check<M: StateMachine + serde::Serialize + PartialEq + std::fmt::Debug>(value: &M) {
        let def = M::definition();
        let encoded = value.encode().unwrap();
        let json = def.state_to_json(encoded.state, &encoded.payload);
        assert_eq!(json, serde_json::to_value(value).unwrap());
        let (state, payload) = def.state_from_json(&json).unwrap();
        assert_eq!(&M::decode(&state, payload).unwrap(), value);
    }
    orders.iter().for_each(check);
    shapes.iter().for_each(check);
    assert_eq!(
        Order::definition().state_to_json("Cancelled", &json!(null)),
        json!("Cancelled")
    );
    let def = Order::definition();
    let err = def.state_from_json(&json!({"Shiped": {}})).unwrap_err();
    assert!(
        err.to_string()
            .contains("`Shiped` is not a state of the `order` machine"),
        "{err}"
    );
    assert!(def.state_from_json(&json!({"Cancelled": 1})).is_err());
    assert!(def.state_from_json(&json!({"Paid": [1]})).is_err());
    assert!(def.state_from_json(&json!([1])).is_err());
}
