//! Who is calling: the bearer token of a request, checked by the service (signature, expiry,
//! revocation). Tokens themselves are `service::tokens`.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use service::{ClientId, Session};

use crate::error::ApiError;
use crate::AppState;

/// The token from an `Authorization` header: `Bearer x` or `JWT x` (schemes are
/// case-insensitive, as RFC 9110 says), or a bare `x`.
fn token_from_header(value: &str) -> &str {
    let value = value.trim();
    match value.split_once(char::is_whitespace) {
        Some((scheme, rest))
            if scheme.eq_ignore_ascii_case("bearer") || scheme.eq_ignore_ascii_case("jwt") =>
        {
            rest.trim()
        }
        _ => value,
    }
}

/// The session of a request; `None` when it carries no `Authorization` header.
async fn authenticate(parts: &Parts, state: &AppState) -> Option<Result<Session, service::Error>> {
    let header = parts
        .headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())?;
    Some(state.service.session(token_from_header(header)).await)
}

/// The tenant of an authenticated request (every API route).
pub struct AuthClient(pub ClientId);

impl FromRequestParts<AppState> for AuthClient {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let client = match authenticate(parts, state).await {
            None => return Err(ApiError::Unauthenticated),
            Some(session) => session?.client,
        };
        crate::access_log::record_client(&client);
        if let Err(wait) = state.rate_limiter.admit(&client) {
            crate::metrics::record_rate_limited();
            state.overload.refused(&client, "rate limit reached: 429");
            return Err(ApiError::RateLimited(wait));
        }
        // For the body extractor, which charges the image URLs it finds to this client.
        parts.extensions.insert(client.clone());
        Ok(AuthClient(client))
    }
}

/// The session whose token is renewed (`/v2/auth/session`), which Verifik answers in its own
/// words: a missing header is a missing parameter, any refused token one 401.
pub struct RenewingClient(pub Session);

impl FromRequestParts<AppState> for RenewingClient {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        match authenticate(parts, state).await {
            None => Err(ApiError::Validation("missing Authorization header".into())),
            Some(Ok(session)) => {
                crate::access_log::record_client(&session.client);
                Ok(RenewingClient(session))
            }
            Some(Err(service::Error::Unauthenticated | service::Error::TokenExpired)) => {
                Err(ApiError::RenewalRefused(state.message.clone()))
            }
            Some(Err(other)) => Err(other.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_documented_scheme_is_accepted() {
        for h in [
            "Bearer abc",
            "BEARER abc",
            "bEaReR abc",
            "JWT abc",
            "jwt abc",
            "abc",
            "  Bearer   abc ",
        ] {
            assert_eq!(token_from_header(h), "abc");
        }
    }
}
