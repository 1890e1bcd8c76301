use runekernel::prelude::*;

#[derive(StateMachine)]
enum Ping {
    #[state(initial)]
    #[transition(to = Pong)]
    Ping,
    #[state(terminal)]
    Pong,
}

struct Player;

impl PingHandler for Player {
    async fn ping(&self, _ctx: &JobContext) -> Result<PingPingNext, StepError> {
        Ok(PingPingNext::Pong)
    }
}

fn assert_send<T: Send>(_: &T) {}

#[tokio::main]
async fn main() {
    let handler = Ping::handler(Player);
    let future = handler.run(Ping::Ping, JobContext::detached(JobId::new()));
    assert_send(&future);
    // A handler step can run on another task.
    let next = tokio::spawn(future).await.unwrap().ok().unwrap();
    assert!(next.is_terminal());
}
