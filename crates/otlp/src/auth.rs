//! The bearer token: `Authorization: Bearer TOKEN`, compared in constant
//! time.

use subtle::ConstantTimeEq;

/// A required bearer token.
#[derive(Clone)]
pub struct Token(Vec<u8>);

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(…)")
    }
}

impl Token {
    /// A token; `None` when empty.
    pub fn new(token: &str) -> Option<Token> {
        (!token.is_empty()).then(|| Token(token.as_bytes().to_vec()))
    }

    /// True when `header` (an `Authorization` value) is `Bearer` and this
    /// token. The comparison takes the same time whatever the given token
    /// shares with this one (its length aside).
    pub fn accepts(&self, header: Option<&str>) -> bool {
        let Some(header) = header else { return false };
        let Some((scheme, given)) = header.trim().split_once(' ') else {
            return false;
        };
        scheme.eq_ignore_ascii_case("bearer") && bool::from(given.trim().as_bytes().ct_eq(&self.0))
    }
}

#[cfg(test)]
mod tests {
    use super::Token;

    #[test]
    fn only_the_bearer_token_passes() {
        let t = Token::new("s3cret").unwrap();
        assert!(t.accepts(Some("Bearer s3cret")));
        assert!(t.accepts(Some("bearer s3cret")));
        assert!(!t.accepts(Some("Bearer s3cre")));
        assert!(!t.accepts(Some("Bearer s3cretx")));
        assert!(!t.accepts(Some("Basic s3cret")));
        assert!(!t.accepts(Some("s3cret")));
        assert!(!t.accepts(None));
        assert!(Token::new("").is_none());
    }
}
