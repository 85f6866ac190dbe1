//! Query strings: repeated keys kept (`populates[]=a&populates[]=b`), typed look-ups.

use crate::error::ApiError;

pub struct Query(Vec<(String, String)>);

impl Query {
    pub fn parse(raw: Option<&str>) -> Self {
        Query(
            raw.map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
                .unwrap_or_default(),
        )
    }

    /// The first value of `key`.
    pub fn value(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Whether any of `keys` has the value `value`.
    pub fn has(&self, keys: &[&str], value: &str) -> bool {
        self.0
            .iter()
            .any(|(k, v)| keys.contains(&k.as_str()) && v == value)
    }

    /// The first of `keys` present, as a number in `1..=max`; `default` when none is.
    pub fn number(&self, keys: &[&str], default: u32, max: u32) -> Result<u32, ApiError> {
        match self.0.iter().find(|(k, _)| keys.contains(&k.as_str())) {
            None => Ok(default),
            Some((_, v)) => match v.parse::<u32>() {
                Ok(n) if (1..=max).contains(&n) => Ok(n),
                _ => Err(ApiError::InvalidQuery),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_bounded_and_keys_repeat() {
        let q = Query::parse(Some(
            "page=2&perPage=500&populates[]=a&populates[]=collections&x=abc",
        ));
        assert_eq!(q.number(&["page"], 1, 10).ok(), Some(2));
        assert_eq!(q.number(&["missing"], 7, 10).ok(), Some(7));
        assert!(q.number(&["limit", "perPage"], 10, 100).is_err());
        assert!(q.number(&["x"], 1, 10).is_err());
        assert!(q.has(&["populates[]", "populates"], "collections"));
        assert_eq!(q.value("x"), Some("abc"));
    }
}
