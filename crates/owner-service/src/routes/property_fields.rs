//! The bodies of `POST` and `PATCH /properties`: the fields of a property a
//! client may set, and how they apply to a property before the domain's
//! rules check it.

use serde::Deserialize;
use service_runtime::validation::{Invalid, Validator};

use crate::domain::property::Property;

/// The fields of a property a client may set. On create, the required ones
/// must be present; on update, any subset may be.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"price_per_night_cents": 13500, "amenities": ["wifi", "kitchen"]}))]
pub struct PropertyFields {
    /// 1 to 200 characters (trimmed).
    pub name: Option<String>,
    /// 1 to 100 characters (trimmed).
    pub city: Option<String>,
    /// 1 to 100 characters (trimmed).
    pub country: Option<String>,
    /// At most 300 characters; blank removes it.
    pub address: Option<String>,
    /// At most 5000 characters; blank removes it.
    pub description: Option<String>,
    /// 1 to 100000000.
    pub price_per_night_cents: Option<i64>,
    /// 0 to 100000000; default 0.
    pub cleaning_fee_cents: Option<i64>,
    /// 0 to 100000000; default 0.
    pub service_fee_cents: Option<i64>,
    /// A 3-letter ISO 4217 code (any case); default `USD`.
    pub currency: Option<String>,
    /// 1 to 100.
    pub max_guests: Option<u32>,
    /// At most 100.
    pub bedrooms: Option<u32>,
    /// At most 100.
    pub bathrooms: Option<u32>,
    /// Replaces the whole list.
    pub amenities: Option<Vec<String>>,
    /// `false` takes the property off the catalog, `true` puts it back.
    pub active: Option<bool>,
}

/// The body of `POST /properties`: the [`PropertyFields`] a new property
/// must have are required. Only describes the API: the handler reads
/// [`PropertyFields`] and reports every missing field at once.
#[derive(utoipa::ToSchema)]
#[schema(example = json!({"name": "Sea View", "city": "Lisbon", "country": "Portugal", "price_per_night_cents": 12000, "cleaning_fee_cents": 4000, "service_fee_cents": 2000, "currency": "EUR", "max_guests": 4, "bedrooms": 2, "amenities": ["wifi"]}))]
pub struct NewProperty {
    /// 1 to 200 characters (trimmed).
    pub name: String,
    /// 1 to 100 characters (trimmed).
    pub city: String,
    /// 1 to 100 characters (trimmed).
    pub country: String,
    /// At most 300 characters.
    pub address: Option<String>,
    /// At most 5000 characters.
    pub description: Option<String>,
    /// 1 to 100000000.
    pub price_per_night_cents: i64,
    /// 0 to 100000000; default 0.
    pub cleaning_fee_cents: Option<i64>,
    /// 0 to 100000000; default 0.
    pub service_fee_cents: Option<i64>,
    /// A 3-letter ISO 4217 code (any case); default `USD`.
    pub currency: Option<String>,
    /// 1 to 100.
    pub max_guests: u32,
    /// At most 100.
    pub bedrooms: Option<u32>,
    /// At most 100.
    pub bathrooms: Option<u32>,
    pub amenities: Option<Vec<String>>,
    /// Default `true`: listed in the catalog.
    pub active: Option<bool>,
}

impl PropertyFields {
    /// Applies these fields to `p` and checks the result by the property
    /// rules ([`Property::validate`]). `creating` makes the required fields
    /// required.
    pub fn apply_to(self, p: &mut Property, creating: bool) -> Result<(), Invalid> {
        if creating {
            Validator::new()
                .check(self.name.is_some(), "name", "is required")
                .check(self.city.is_some(), "city", "is required")
                .check(self.country.is_some(), "country", "is required")
                .check(
                    self.price_per_night_cents.is_some(),
                    "price_per_night_cents",
                    "is required",
                )
                .check(self.max_guests.is_some(), "max_guests", "is required")
                .finish()?;
        }
        let trim = |s: String| s.trim().to_string();
        if let Some(x) = self.name {
            p.details.name = trim(x);
        }
        if let Some(x) = self.city {
            p.details.city = trim(x);
        }
        if let Some(x) = self.country {
            p.details.country = trim(x);
        }
        if let Some(x) = self.address {
            p.details.address = Some(trim(x)).filter(|s| !s.is_empty());
        }
        if let Some(x) = self.description {
            p.details.description = Some(trim(x)).filter(|s| !s.is_empty());
        }
        if let Some(x) = self.price_per_night_cents {
            p.details.price_per_night_cents = x;
        }
        if let Some(x) = self.cleaning_fee_cents {
            p.details.cleaning_fee_cents = x;
        }
        if let Some(x) = self.service_fee_cents {
            p.details.service_fee_cents = x;
        }
        if let Some(x) = self.currency {
            p.details.currency = x.trim().to_ascii_uppercase();
        }
        if let Some(x) = self.max_guests {
            p.details.max_guests = x;
        }
        if self.bedrooms.is_some() {
            p.details.bedrooms = self.bedrooms;
        }
        if self.bathrooms.is_some() {
            p.details.bathrooms = self.bathrooms;
        }
        if let Some(x) = self.amenities {
            p.details.amenities = x.into_iter().map(trim).collect();
        }
        if let Some(x) = self.active {
            p.active = x;
        }
        p.validate()
    }
}
