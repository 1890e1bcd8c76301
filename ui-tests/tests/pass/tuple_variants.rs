use runekernel::prelude::*;

#[derive(StateMachine, Debug, PartialEq)]
enum Upload {
    #[state(initial)]
    #[transition(to = Stored)]
    Received(String, Vec<u8>),
    #[state(terminal)]
    Stored(u64),
}

fn main() {
    let next: Upload = UploadReceivedNext::Stored(42).into();
    assert_eq!(next, Upload::Stored(42));
    let encoded = Upload::Received("a.txt".into(), vec![1, 2]).encode().unwrap();
    assert_eq!(encoded.payload, serde_json::json!(["a.txt", [1, 2]]));
}
