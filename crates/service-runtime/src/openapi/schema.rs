//! Schemas of the responses that carry a domain type, built in the HTTP
//! layer: the domain types (a service's `Booking`, `Property`) derive no
//! OpenAPI schema, and the fields both services' bookings share are
//! described once, here, for both.

use chrono::{DateTime, NaiveDate, Utc};
use events::BookingStatus;
use serde_json::Value;
use utoipa::openapi::{
    schema::{Object, Schema},
    RefOr,
};
use utoipa::{PartialSchema, ToSchema};

/// The fields of a booking both services serve, in the order they serve
/// them. Only describes the API: each service's `Booking` is its own.
#[derive(ToSchema)]
#[allow(dead_code)]
struct BookingFields {
    id: String,
    property_id: String,
    owner_id: String,
    traveler_id: String,
    check_in: NaiveDate,
    check_out: NaiveDate,
    nights: u32,
    guests: u32,
    total_price_cents: i64,
    currency: String,
    status: BookingStatus,
    status_reason: Option<String>,
    version: u32,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

/// An object schema being put together: the shared fields, then what a
/// service adds (its fields, descriptions, example).
pub struct ObjectSchema(Object);

impl ObjectSchema {
    /// The booking fields both services share, described as `description`.
    pub fn booking(description: &str) -> Self {
        Self::of::<BookingFields>().described(description)
    }

    /// The object schema `T` derives (its fields, in order).
    pub fn of<T: PartialSchema>() -> Self {
        match T::schema() {
            RefOr::T(Schema::Object(object)) => Self(object),
            _ => panic!("an object schema"),
        }
    }

    /// Describes the object as a whole.
    pub fn described(mut self, description: &str) -> Self {
        self.0.description = Some(description.to_owned());
        self
    }

    /// Describes one of its fields.
    pub fn describe(mut self, field: &str, description: &str) -> Self {
        match self.0.properties.get_mut(field) {
            Some(RefOr::T(Schema::Object(object))) => {
                object.description = Some(description.to_owned());
            }
            _ => panic!("no field `{field}` to describe"),
        }
        self
    }

    /// Puts `field` of the object schema `T` right after `after`, and among
    /// the required fields in the same place when `T` requires it.
    pub fn insert_after<T: PartialSchema>(mut self, after: &str, field: &str) -> Self {
        let from = Self::of::<T>().0;
        let schema = from
            .properties
            .get(field)
            .unwrap_or_else(|| panic!("no field `{field}` to take"))
            .clone();
        let at = self
            .0
            .properties
            .get_index_of(after)
            .unwrap_or_else(|| panic!("no field `{after}` to insert after"))
            + 1;
        self.0.properties.shift_insert(at, field.to_owned(), schema);
        if from.required.iter().any(|r| r == field) {
            let place = self
                .0
                .properties
                .keys()
                .take(at)
                .filter(|k| self.0.required.contains(k))
                .count();
            self.0.required.insert(place, field.to_owned());
        }
        self
    }

    /// An example of the whole object, as JSON text.
    pub fn example(mut self, json: &str) -> Self {
        let example: Value = serde_json::from_str(json).expect("an example is JSON");
        #[allow(deprecated)]
        {
            self.0.example = Some(example);
        }
        self
    }

    /// The finished schema.
    pub fn build(self) -> RefOr<Schema> {
        RefOr::T(Schema::Object(self.0))
    }
}

/// What a booking schema refers to: its status.
pub fn booking_schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
    schemas.push((BookingStatus::name().into(), BookingStatus::schema()));
    <BookingStatus as ToSchema>::schemas(schemas);
}

/// Describes a service's domain `Booking` as the `Booking` schema of its
/// document, from the HTTP layer (the domain type derives none): `$schema`
/// builds it, usually from [`ObjectSchema::booking`].
#[macro_export]
macro_rules! booking_schema {
    ($booking:ty, $schema:expr) => {
        impl utoipa::PartialSchema for $booking {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                $schema
            }
        }

        impl utoipa::ToSchema for $booking {
            fn name() -> std::borrow::Cow<'static, str> {
                std::borrow::Cow::Borrowed("Booking")
            }

            fn schemas(
                schemas: &mut Vec<(
                    String,
                    utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>,
                )>,
            ) {
                $crate::openapi::schema::booking_schemas(schemas);
            }
        }
    };
}
