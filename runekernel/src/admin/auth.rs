//! Bearer-token authentication for every endpoint but `/health`,
//! `/openapi.json` and the visualizer's page: the operator token may do
//! everything, the optional read-only token may only read (`GET`), and each
//! optional machine token may read everything and change the jobs of its
//! machines alone.
//!
//! The middleware lets a machine token's changes through with its
//! [`Role`]; each handler that changes a job checks the job's machine
//! ([`Role::may_change`]) before it changes anything, and records
//! [`Role::who`] in the job's history.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, Method, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use subtle::ConstantTimeEq;

use super::error::ApiError;

/// The fewest bytes an admin token may have: 16 random bytes written as hex
/// are 32, so a generated token is always long enough, and a guessable one
/// such as a word or a PIN is refused.
pub const MIN_TOKEN_LEN: usize = 16;

/// Why [`AdminConfig::new`](super::AdminConfig::new) refused a token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// The token is empty or only white space.
    #[error("the admin token is empty; pass a random secret of at least {MIN_TOKEN_LEN} characters")]
    Empty,
    /// The token is shorter than [`MIN_TOKEN_LEN`].
    #[error("the admin token has {len} bytes; it needs at least {MIN_TOKEN_LEN} (use a random secret)")]
    TooShort {
        /// How many bytes it has.
        len: usize,
    },
    /// The token starts or ends with white space, which a client's
    /// `Authorization` header cannot carry reliably.
    #[error("the admin token starts or ends with white space")]
    Whitespace,
    /// The token is one the admin API already accepts (the operator's,
    /// the read-only one, or another machine token).
    #[error("this token is already another role's; give each role a secret of its own")]
    Reused,
    /// A machine token's name is empty or is not a plain name.
    #[error("a machine token's name must be letters, digits, `-` or `_`, not `{0}`")]
    BadName(String),
    /// A machine token that may change no machine's jobs.
    #[error("the machine token `{0}` names no machine; use the read-only token to only read")]
    NoMachines(String),
}

/// Checks that `token` may guard the admin API.
pub(crate) fn check_token(token: &str) -> Result<(), TokenError> {
    if token.trim().is_empty() {
        return Err(TokenError::Empty);
    }
    if token.trim() != token {
        return Err(TokenError::Whitespace);
    }
    if token.len() < MIN_TOKEN_LEN {
        return Err(TokenError::TooShort { len: token.len() });
    }
    Ok(())
}

/// The tokens the admin API accepts.
#[derive(Clone)]
pub(crate) struct Tokens {
    /// May do everything.
    pub(crate) operator: Arc<str>,
    /// May only read.
    pub(crate) read_only: Option<Arc<str>>,
    /// May read, and change the jobs of some machines.
    pub(crate) machines: Vec<MachineToken>,
}

impl Tokens {
    /// Whether `token` is one of these already.
    pub(crate) fn contains(&self, token: &str) -> bool {
        *self.operator == *token
            || self.read_only.as_deref() == Some(token)
            || self.machines.iter().any(|m| *m.token == *token)
    }
}

/// A token that may change the jobs of some machines only.
#[derive(Clone)]
pub(crate) struct MachineToken {
    /// Its name, recorded in the history of the jobs it changes.
    pub(crate) name: Arc<str>,
    pub(crate) token: Arc<str>,
    /// The machines whose jobs it may change.
    pub(crate) machines: Arc<[String]>,
}

/// What the caller's token lets it do; handlers find it in the request's
/// extensions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Role {
    /// Everything.
    Operator,
    /// Only reads (`GET`).
    ReadOnly,
    /// Reads, and changes the jobs of `machines`.
    Machines {
        /// The token's name.
        name: Arc<str>,
        /// The machines whose jobs it may change.
        machines: Arc<[String]>,
    },
}

impl Role {
    /// Whether this role may change the jobs of `machine`.
    pub(crate) fn may_change(&self, machine: &str) -> bool {
        match self {
            Role::Operator => true,
            Role::ReadOnly => false,
            Role::Machines { machines, .. } => machines.iter().any(|m| m == machine),
        }
    }

    /// Refuses a change to a job of `machine` this role may not make
    /// (403 `machine_not_allowed`).
    ///
    /// # Errors
    /// The 403 that names the machine and what the token may change.
    pub(crate) fn check(&self, machine: &str) -> Result<(), ApiError> {
        if self.may_change(machine) {
            return Ok(());
        }
        let may = match self {
            Role::Machines { name, machines } => format!("the token `{name}` may change only jobs of {machines:?}"),
            _ => "this token may change no job".to_owned(),
        };
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "machine_not_allowed",
            format!("{may}, not those of `{machine}`"),
        ))
    }

    /// Refuses a change that is not to one machine's jobs (a queue's pause,
    /// a change to every machine's jobs) unless the role is the operator's.
    ///
    /// # Errors
    /// The 403 that says what needs the operator token.
    pub(crate) fn check_operator(&self, what: &str) -> Result<(), ApiError> {
        if *self == Role::Operator {
            return Ok(());
        }
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "operator_only",
            format!("{what} needs the operator token"),
        ))
    }

    /// Who made a change, as the job's history records it: `admin` for the
    /// operator token, `admin:<name>` for a machine token.
    pub(crate) fn who(&self) -> String {
        match self {
            Role::Machines { name, .. } => format!("admin:{name}"),
            _ => "admin".to_owned(),
        }
    }
}

/// Lets a request through only with `Authorization: Bearer <token>`: any
/// request with the operator token or a machine token, a `GET` with the
/// read-only token.
pub(crate) async fn require_token(
    State(tokens): State<Tokens>,
    mut request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let Some(given) = presented else {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "send the admin token as `Authorization: Bearer <token>`",
        ));
    };
    let role = role_of(&tokens, given)
        .ok_or_else(|| ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", "the bearer token is wrong"))?;
    if role == Role::ReadOnly && request.method() != Method::GET {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "read_only_token",
            format!(
                "this token may only read; {} {} changes jobs and needs the operator token",
                request.method(),
                request.uri().path()
            ),
        ));
    }
    request.extensions_mut().insert(role);
    Ok(next.run(request).await)
}

/// The role of the token `given`, if it is one of `tokens`. Every token is
/// compared, in constant time, whichever matches.
fn role_of(tokens: &Tokens, given: &str) -> Option<Role> {
    let mut role = None;
    if same(given.as_bytes(), tokens.operator.as_bytes()) {
        role = Some(Role::Operator);
    }
    if tokens
        .read_only
        .as_ref()
        .is_some_and(|t| same(given.as_bytes(), t.as_bytes()))
    {
        role = Some(Role::ReadOnly);
    }
    for token in &tokens.machines {
        if same(given.as_bytes(), token.token.as_bytes()) {
            role = Some(Role::Machines {
                name: Arc::clone(&token.name),
                machines: Arc::clone(&token.machines),
            });
        }
    }
    role
}

/// Whether `given` is `token`, in time that depends on neither where they
/// differ nor the token's length: the loop runs over every byte of `given`
/// (whose length the caller knows anyway) and reads the token at each
/// position modulo its length, so how long it takes says nothing of the
/// token.
fn same(given: &[u8], token: &[u8]) -> bool {
    if token.is_empty() {
        return false;
    }
    let mut differ = 0u8;
    for (i, byte) in given.iter().enumerate() {
        let expected = token.get(i % token.len()).copied().unwrap_or(0);
        differ |= byte ^ expected;
    }
    let lengths_equal = (given.len() as u64).ct_eq(&(token.len() as u64));
    let bytes_equal = differ.ct_eq(&0);
    bool::from(lengths_equal & bytes_equal)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comparison() {
        assert!(same(b"secret", b"secret"));
        assert!(!same(b"secret", b"secreT"));
        assert!(!same(b"secret", b"secrets"));
        assert!(!same(b"secretsecret", b"secret"), "a repeated token is not the token");
        assert!(!same(b"", b"secret"));
        assert!(!same(b"sec", b"secret"));
        assert!(!same(b"", b""));
    }

    #[test]
    fn weak_tokens_are_refused() {
        assert_eq!(check_token(""), Err(TokenError::Empty));
        assert_eq!(check_token("   "), Err(TokenError::Empty));
        assert_eq!(check_token("short"), Err(TokenError::TooShort { len: 5 }));
        assert_eq!(check_token(" 0123456789abcdef"), Err(TokenError::Whitespace));
        assert_eq!(check_token("0123456789abcdef"), Ok(()));
    }
}
