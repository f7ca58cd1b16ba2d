//! Schemas of the responses that carry a domain type, built in the HTTP
//! layer: the domain types (a service's `Booking`, `Property`) derive no
//! OpenAPI schema, and the fields both services' bookings, and both
//! services' properties, share are described once, here, for both.

use chrono::{DateTime, NaiveDate, Utc};
use events::{BookingStatus, PropertyDetails};
use serde_json::Value;
use utoipa::openapi::{
    schema::{AllOfBuilder, Object, Schema},
    Ref, RefOr,
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

// The fields of a property both services serve beside its
// `PropertyDetails`. Only describes the API. (Not a `///` comment: the
// description belongs on the whole, see `ObjectSchema::over_details`.)
#[derive(ToSchema)]
#[allow(dead_code)]
struct PropertyFields {
    id: String,
    owner_id: String,
    active: bool,
    version: u64,
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

    /// The property fields both services serve beside the details (see
    /// [`Self::over_details`]).
    pub fn property() -> Self {
        Self::of::<PropertyFields>()
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

    /// The finished schema of a property: its [`PropertyDetails`] and these
    /// fields (as the domain type flattens them), described as a whole.
    pub fn over_details(self, description: &str) -> RefOr<Schema> {
        RefOr::T(Schema::AllOf(
            AllOfBuilder::new()
                .item(Ref::from_schema_name(PropertyDetails::name()))
                .item(Schema::Object(self.0))
                .description(Some(description))
                .build(),
        ))
    }
}

/// What a booking schema refers to: its status.
pub fn booking_schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
    schemas.push((BookingStatus::name().into(), BookingStatus::schema()));
    <BookingStatus as ToSchema>::schemas(schemas);
}

/// What a property schema refers to: its details.
pub fn property_schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
    schemas.push((PropertyDetails::name().into(), PropertyDetails::schema()));
    <PropertyDetails as ToSchema>::schemas(schemas);
}

/// Describes a domain type of a service as the schema `$name` of its
/// document, from the HTTP layer (the domain type derives none): `$schema`
/// builds it (usually an [`ObjectSchema`]), and `$refs` lists the schemas it
/// refers to ([`booking_schemas`], [`property_schemas`]).
#[macro_export]
macro_rules! http_schema {
    ($type:ty as $name:literal, refs: $refs:path, $schema:expr) => {
        impl utoipa::PartialSchema for $type {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                $schema
            }
        }

        impl utoipa::ToSchema for $type {
            fn name() -> std::borrow::Cow<'static, str> {
                std::borrow::Cow::Borrowed($name)
            }

            fn schemas(
                schemas: &mut Vec<(
                    String,
                    utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>,
                )>,
            ) {
                $refs(schemas);
            }
        }
    };
}
