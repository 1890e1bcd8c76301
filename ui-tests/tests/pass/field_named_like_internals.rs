use runekernel::prelude::*;

// Fields named like the generated code's own variables must not clash with them.
#[derive(StateMachine, Debug, PartialEq)]
enum Clash {
    #[state(initial)]
    #[transition(to = Done)]
    Start { ctx: u32, handler: String, state: bool, next: u8, payload: i64 },
    #[state(terminal)]
    Done,
}

struct H;

impl ClashHandler for H {
    async fn start(&self, _c: &JobContext, ctx: u32, _handler: String, _state: bool, _next: u8, _payload: i64) -> Result<ClashStartNext, StepError> {
        assert_eq!(ctx, 1);
        Ok(ClashStartNext::Done)
    }
}

#[tokio::main]
async fn main() {
    let value = Clash::Start { ctx: 1, handler: "h".into(), state: true, next: 2, payload: -3 };
    let encoded = value.encode().unwrap();
    assert_eq!(Clash::decode(encoded.state, encoded.payload).unwrap(), value);
    let done = Clash::handler(H).run(value, JobContext::detached(JobId::new())).await.unwrap();
    assert_eq!(done, Clash::Done);
}
