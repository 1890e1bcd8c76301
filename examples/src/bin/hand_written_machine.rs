//! A `StateMachine` implemented by hand, without the derive: the original
//! description's "Custom State Machine". The derive writes all of this (and
//! checks the graph at compile time); by hand, `MachineDef::builder` checks
//! it at first use.

use std::sync::OnceLock;

use runekernel::prelude::*;
use runekernel::{CodecError, EncodedState, MachineDef, StateDef, Transition, TransitionError};

/// A traffic light that is eventually switched off.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Light {
    Red,
    Green,
    Off,
}

impl StateMachine for Light {
    type State = &'static str;
    const NAME: &'static str = "light";

    fn definition() -> &'static MachineDef {
        static DEFINITION: OnceLock<MachineDef> = OnceLock::new();
        DEFINITION.get_or_init(|| {
            MachineDef::builder("light")
                .state(StateDef::new("Red").initial())
                .state(StateDef::new("Green"))
                .state(StateDef::new("Off").terminal())
                .transition(Transition::new("Red", "Green"))
                .transition(Transition::new("Green", "Red"))
                .transition(Transition::new("Green", "Off"))
                .build()
                .expect("the light's graph is valid")
        })
    }

    fn state(&self) -> &'static str {
        match self {
            Light::Red => "Red",
            Light::Green => "Green",
            Light::Off => "Off",
        }
    }

    fn check_transition(&self, next: &Self) -> Result<(), TransitionError> {
        match Self::definition().transition(self.state(), next.state()) {
            Some(_) => Ok(()),
            None => Err(TransitionError::not_allowed(
                Self::definition(),
                self.state(),
                next.state(),
            )),
        }
    }

    fn encode(&self) -> Result<EncodedState, CodecError> {
        Ok(EncodedState {
            state: self.state(),
            payload: serde_json::Value::Null,
        })
    }

    fn decode(state: &str, _payload: serde_json::Value) -> Result<Self, CodecError> {
        match state {
            "Red" => Ok(Light::Red),
            "Green" => Ok(Light::Green),
            "Off" => Ok(Light::Off),
            other => Err(CodecError::unknown_state(Self::definition(), other)),
        }
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Without a handler trait, a closure steps the machine; the runtime
    // still checks every returned state against the definition.
    let cycles = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
    let handler = Handler::new(move |light: Light, _ctx: JobContext| {
        let cycles = cycles.clone();
        async move {
            Ok(match light {
                Light::Red => Light::Green,
                Light::Green if cycles.fetch_add(1, std::sync::atomic::Ordering::Relaxed) < 2 => Light::Red,
                _ => Light::Off,
            })
        }
    });
    let rt = Runtime::builder().register(handler).build().await?;
    let id = rt.submit(Light::Red).await?;
    let done = rt.wait::<Light>(id).await?;
    let path: Vec<String> = rt.history(id).await?.into_iter().map(|h| h.to).collect();
    println!("{:?} after {}", done.state, path.join(" -> "));
    assert!(Light::Red.transition(Light::Off).is_err());
    rt.shutdown().await?;
    Ok(())
}
