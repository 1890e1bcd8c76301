//! Bearer-token authentication for every endpoint but `/health`,
//! `/openapi.json` and the visualizer's page: the operator token may do
//! everything, the optional read-only token may only read (`GET`).

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
    /// The read-only token is the operator token.
    #[error("the read-only token is the operator token; give it a secret of its own")]
    Reused,
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
}

/// What the caller's token lets it do; handlers find it in the request's
/// extensions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Role {
    /// Everything.
    Operator,
    /// Only reads (`GET`).
    ReadOnly,
}

/// Lets a request through only with `Authorization: Bearer <token>`: any
/// request with the operator token, a `GET` with the read-only token.
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
    let read_only = |given: &str| {
        tokens
            .read_only
            .as_ref()
            .is_some_and(|t| same(given.as_bytes(), t.as_bytes()))
    };
    match presented {
        Some(given) if same(given.as_bytes(), tokens.operator.as_bytes()) => {
            request.extensions_mut().insert(Role::Operator);
            Ok(next.run(request).await)
        }
        Some(given) if read_only(given) => {
            if request.method() == Method::GET {
                request.extensions_mut().insert(Role::ReadOnly);
                Ok(next.run(request).await)
            } else {
                Err(ApiError::new(
                    StatusCode::FORBIDDEN,
                    "read_only_token",
                    format!(
                        "this token may only read; {} {} changes jobs and needs the operator token",
                        request.method(),
                        request.uri().path()
                    ),
                ))
            }
        }
        Some(_) => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "the bearer token is wrong",
        )),
        None => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "send the admin token as `Authorization: Bearer <token>`",
        )),
    }
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
