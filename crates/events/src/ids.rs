//! Typed identifiers: a booking's id cannot be passed where a property's is
//! expected, from the HTTP extractor through the store to the event.
//!
//! On the wire and in the database each is the plain string it always was
//! (`serde(transparent)`), and the JSON Schemas and OpenAPI documents describe
//! it as one, so the types change no contract.

use std::borrow::Borrow;
use std::fmt;

use serde::{Deserialize, Serialize};

/// Declares an id type: a string newtype with the conversions every id needs.
macro_rules! typed_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// A new, time-ordered id (UUID v7), so ids sort by creation.
            pub fn generate() -> Self {
                Self(uuid::Uuid::now_v7().to_string())
            }

            /// The id as the string the wire and the database carry.
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// The string, for a caller that owns it from here on.
            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl From<String> for $name {
            fn from(s: String) -> Self {
                Self(s)
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                Self(s.to_owned())
            }
        }

        impl From<&String> for $name {
            fn from(s: &String) -> Self {
                Self(s.clone())
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> Self {
                id.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }

        impl PartialEq<String> for $name {
            fn eq(&self, other: &String) -> bool {
                &self.0 == other
            }
        }

        impl PartialEq<$name> for String {
            fn eq(&self, other: &$name) -> bool {
                self == &other.0
            }
        }

        impl PartialEq<$name> for &str {
            fn eq(&self, other: &$name) -> bool {
                *self == other.0
            }
        }

        /// In a `doc!` as the string it is stored as (bson turns a
        /// reference into a clone of this).
        #[cfg(feature = "bson")]
        impl From<$name> for bson::Bson {
            fn from(id: $name) -> Self {
                bson::Bson::String(id.0)
            }
        }

        impl schemars::JsonSchema for $name {
            fn inline_schema() -> bool {
                true
            }

            fn schema_name() -> std::borrow::Cow<'static, str> {
                String::schema_name()
            }

            fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
                String::json_schema(generator)
            }
        }

        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                String::schema()
            }
        }
    };
}

typed_id!(
    /// A booking, from the traveler's request to the owner's decisions.
    BookingId
);
typed_id!(
    /// A property an owner lists, and its catalog entry.
    PropertyId
);
typed_id!(
    /// A traveler or an owner: the subject of their tokens.
    UserId
);
typed_id!(
    /// One event on a topic: what consumers deduplicate on.
    EventId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_is_its_string_on_the_wire() {
        let id = BookingId::from("b-1");
        assert_eq!(serde_json::to_string(&id).unwrap(), "\"b-1\"");
        assert_eq!(serde_json::from_str::<BookingId>("\"b-1\"").unwrap(), id);
        assert_eq!(id, "b-1");
        assert_eq!(id.to_string(), "b-1");
    }

    #[test]
    fn generated_ids_are_distinct_uuids() {
        let (a, b) = (EventId::generate(), EventId::generate());
        assert!(uuid::Uuid::parse_str(a.as_str()).is_ok());
        assert_ne!(a, b);
    }

    #[test]
    fn the_schema_of_an_id_is_a_string() {
        let schema = schemars::schema_for!(PropertyId);
        assert_eq!(schema.get("type"), Some(&serde_json::json!("string")));
    }
}
