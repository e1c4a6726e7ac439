//! Who may see the console, and which requests may change anything.
//!
//! | request | without `--token` | with `--token` |
//! |---|---|---|
//! | a page | served, when the `Host` is an IP address or `localhost` | the Bearer header, or the session cookie the login form set; else `401` with the login form |
//! | `/api/*` | served, same `Host` rule | the Bearer header or the cookie; else `401` JSON, never a redirect |
//! | `POST` (login, logout, `verify`) | same-origin only | same-origin only, and authenticated |
//!
//! * **The cookie** (`ringtrail_session`) is `HttpOnly; SameSite=Strict;
//!   Path=/` (and `Secure` over TLS). Its value is a SHA-256 of the token
//!   under a fixed label, not the token, compared in constant time.
//! * **Same-origin** means the browser said so: `Sec-Fetch-Site:
//!   same-origin`, or an `Origin` whose host is the request's `Host`. A
//!   cross-site form or `fetch` carries neither, so it is refused `403`
//!   whatever cookie it brings.
//! * **The `Host` rule** without a token stops DNS rebinding: a web page
//!   that points its own name at 127.0.0.1 sends its own name as `Host`,
//!   and is refused `403`.

use axum::http::{header, HeaderMap, Method};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The session cookie's name.
pub const COOKIE: &str = "ringtrail_session";

/// The console's access rules.
#[derive(Clone)]
pub struct Auth {
    token: Option<Vec<u8>>,
    session: Option<String>,
    /// Whether the listener is TLS (the cookie is then `Secure`).
    pub tls: bool,
}

/// Why a request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No valid token or session: 401.
    Unauthenticated,
    /// A `Host` that is neither an IP address nor `localhost`, without a
    /// token: 403.
    ForeignHost,
    /// A state-changing request not from the console's own pages: 403.
    CrossSite,
}

impl Auth {
    /// Rules for `token` (`None`: no token required).
    pub fn new(token: Option<&str>, tls: bool) -> Auth {
        Auth {
            token: token.map(|t| t.as_bytes().to_vec()),
            session: token.map(session_value),
            tls,
        }
    }

    /// Whether a token is required.
    pub fn required(&self) -> bool {
        self.token.is_some()
    }

    /// Checks a request: its `Host`, its credentials, and for anything
    /// but `GET`/`HEAD`, its origin.
    pub fn check(&self, method: &Method, headers: &HeaderMap) -> Result<(), Refusal> {
        if self.token.is_none() && !local_host(headers) {
            return Err(Refusal::ForeignHost);
        }
        let safe = method == Method::GET || method == Method::HEAD;
        if !safe && !same_origin(headers) {
            return Err(Refusal::CrossSite);
        }
        if self.token.is_some() && !self.authenticated(headers) {
            return Err(Refusal::Unauthenticated);
        }
        Ok(())
    }

    /// Whether the request carries the token (Bearer) or the session
    /// cookie.
    pub fn authenticated(&self, headers: &HeaderMap) -> bool {
        let (Some(token), Some(session)) = (&self.token, &self.session) else {
            return true;
        };
        let bearer = headers
            .get_all(header::AUTHORIZATION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .filter_map(|v| v.strip_prefix("Bearer "))
            .any(|given| bool::from(given.as_bytes().ct_eq(token)));
        bearer
            || cookie(headers, COOKIE)
                .is_some_and(|given| bool::from(given.as_bytes().ct_eq(session.as_bytes())))
    }

    /// Whether `given` (the login form's) is the token.
    pub fn token_matches(&self, given: &str) -> bool {
        self.token
            .as_ref()
            .is_some_and(|t| bool::from(given.as_bytes().ct_eq(t)))
    }

    /// The `Set-Cookie` value that logs a browser in.
    pub fn login_cookie(&self) -> Option<String> {
        let session = self.session.as_ref()?;
        let secure = if self.tls { "; Secure" } else { "" };
        Some(format!(
            "{COOKIE}={session}; HttpOnly; SameSite=Strict; Path=/{secure}"
        ))
    }

    /// The `Set-Cookie` value that logs a browser out.
    pub fn logout_cookie(&self) -> String {
        let secure = if self.tls { "; Secure" } else { "" };
        format!("{COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0{secure}")
    }
}

/// The cookie's value for `token`: not the token itself.
fn session_value(token: &str) -> String {
    let digest = Sha256::new()
        .chain_update(b"ringtrail console session v1\0")
        .chain_update(token.as_bytes())
        .finalize();
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// The value of cookie `name`, if sent.
fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// The host part of a `Host` (or `Origin` authority) value.
fn host_of(authority: &str) -> &str {
    if let Some(rest) = authority.strip_prefix('[') {
        return rest.split(']').next().unwrap_or("");
    }
    authority.rsplit_once(':').map_or(authority, |(h, _)| h)
}

/// Whether the `Host` is an IP address or `localhost`.
fn local_host(headers: &HeaderMap) -> bool {
    let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok()) else {
        // HTTP/2 carries `:authority` instead; hyper maps it to the URI,
        // and a request without either comes from no browser.
        return true;
    };
    let host = host_of(host);
    host.eq_ignore_ascii_case("localhost") || host.parse::<std::net::IpAddr>().is_ok()
}

/// Whether the browser says the request comes from the console's own
/// origin.
fn same_origin(headers: &HeaderMap) -> bool {
    let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    match get("sec-fetch-site") {
        Some("same-origin") => return true,
        Some(_) => return false,
        None => {}
    }
    match (get("origin"), get("host")) {
        (Some(origin), Some(host)) => origin
            .split_once("://")
            .is_some_and(|(_, authority)| authority.eq_ignore_ascii_case(host)),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn tokens_sessions_hosts_and_origins() {
        let auth = Auth::new(Some("s3cret"), false);
        let get = Method::GET;
        let host = ("host", "127.0.0.1:4318");
        assert_eq!(
            auth.check(&get, &headers(&[host])),
            Err(Refusal::Unauthenticated)
        );
        assert!(auth
            .check(&get, &headers(&[host, ("authorization", "Bearer s3cret")]))
            .is_ok());
        assert!(auth
            .check(&get, &headers(&[host, ("authorization", "Bearer s3cre")]))
            .is_err());
        let cookie = auth.login_cookie().unwrap();
        let value = cookie.split(';').next().unwrap().to_owned();
        assert!(!value.contains("s3cret"));
        assert!(auth
            .check(&get, &headers(&[host, ("cookie", &value)]))
            .is_ok());
        // A POST with the cookie but from elsewhere.
        let post = Method::POST;
        let cross = [host, ("cookie", &value), ("origin", "https://evil.example")];
        assert_eq!(auth.check(&post, &headers(&cross)), Err(Refusal::CrossSite));
        let same = [host, ("cookie", &value), ("sec-fetch-site", "same-origin")];
        assert!(auth.check(&post, &headers(&same)).is_ok());
        let origin = [
            host,
            ("cookie", &value),
            ("origin", "http://127.0.0.1:4318"),
        ];
        assert!(auth.check(&post, &headers(&origin)).is_ok());

        let open = Auth::new(None, false);
        assert!(open.check(&get, &headers(&[host])).is_ok());
        assert!(open
            .check(&get, &headers(&[("host", "localhost:4318")]))
            .is_ok());
        assert!(open
            .check(&get, &headers(&[("host", "[::1]:4318")]))
            .is_ok());
        assert_eq!(
            open.check(&get, &headers(&[("host", "rebind.evil.example:4318")])),
            Err(Refusal::ForeignHost)
        );
    }
}
