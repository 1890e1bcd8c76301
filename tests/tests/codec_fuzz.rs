//! The state codec fed arbitrary stored data: any state name and any JSON
//! payload (as a stored row could hold after a bug, an edit by hand, or a
//! changed definition) decodes or fails with an error, never a panic; and
//! whatever decodes encodes back to a payload that decodes to the same
//! state.

use proptest::prelude::*;
use runekernel::prelude::*;
use runekernel_tests::machines::Order;
use serde_json::{Map, Value};

/// Any JSON value, a few levels deep.
fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        ".{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map("[a-z_]{0,8}", inner, 0..6)
                .prop_map(|fields| Value::Object(fields.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// A state name: one of the machine's, or anything.
fn state_name() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec!["Created", "Paid", "Shipped", "Cancelled", "Refunded"]).prop_map(str::to_owned),
        ".{0,12}",
    ]
}

/// A payload shaped like one of the machine's states, with fields of any
/// value: closer to what decodes than arbitrary JSON.
fn near_miss() -> impl Strategy<Value = Value> {
    let names = prop::sample::select(vec!["sku", "qty", "amount_cents", "tracking", "other"]);
    prop::collection::btree_map(names.prop_map(str::to_owned), json(), 0..4)
        .prop_map(|fields| Value::Object(fields.into_iter().collect()))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    #[test]
    fn any_stored_data_decodes_or_fails_cleanly(state in state_name(), payload in prop_oneof![json(), near_miss()]) {
        if let Ok(decoded) = Order::decode(&state, payload) {
            let encoded = decoded.encode().expect("a decoded state encodes");
            prop_assert_eq!(encoded.state, state.as_str());
            let again = Order::decode(encoded.state, encoded.payload).expect("an encoded state decodes");
            prop_assert_eq!(again, decoded);
        }
    }
}
