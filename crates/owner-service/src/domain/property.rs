//! Properties an owner lists, and the rules for their fields.

use chrono::{DateTime, Utc};
use events::{PropertyDetails, PropertyId, PropertySnapshot, UserId};
use serde::{Deserialize, Serialize};
use service_runtime::validation::{Invalid, Validator};

/// A property as owner-service stores and serves it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Property {
    #[schema(value_type = String)]
    pub id: PropertyId,
    #[schema(value_type = String)]
    pub owner_id: UserId,
    #[serde(flatten)]
    pub details: PropertyDetails,
    pub active: bool,
    /// Bumped on every change; the catalog keeps the highest version it saw.
    pub version: u64,
    #[serde(with = "events::timestamp")]
    pub created_at: DateTime<Utc>,
    #[serde(with = "events::timestamp")]
    pub updated_at: DateTime<Utc>,
}

impl Property {
    /// The full state published on the listings topic.
    pub fn snapshot(&self) -> PropertySnapshot {
        PropertySnapshot {
            property_id: self.id.clone(),
            owner_id: self.owner_id.clone(),
            details: self.details.clone(),
            active: self.active,
            version: self.version,
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }
}

/// Upper bound on any money amount, in minor units: keeps totals far from overflow.
pub const MAX_CENTS: i64 = 100_000_000;
/// Upper bound on guests a property can host.
pub const MAX_GUESTS: u32 = 100;

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
    /// Applies these fields to `p`, validating the result as a whole so every
    /// problem is reported at once. `creating` makes the required fields required.
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
        Validator::new()
            .text(&p.details.name, "name", 1, 200)
            .text(&p.details.city, "city", 1, 100)
            .text(&p.details.country, "country", 1, 100)
            .text(
                p.details.address.as_deref().unwrap_or(""),
                "address",
                0,
                300,
            )
            .text(
                p.details.description.as_deref().unwrap_or(""),
                "description",
                0,
                5000,
            )
            .check(
                (1..=MAX_CENTS).contains(&p.details.price_per_night_cents),
                "price_per_night_cents",
                format!("must be from 1 to {MAX_CENTS}"),
            )
            .check(
                (0..=MAX_CENTS).contains(&p.details.cleaning_fee_cents),
                "cleaning_fee_cents",
                format!("must be from 0 to {MAX_CENTS}"),
            )
            .check(
                (0..=MAX_CENTS).contains(&p.details.service_fee_cents),
                "service_fee_cents",
                format!("must be from 0 to {MAX_CENTS}"),
            )
            .check(
                p.details.currency.len() == 3
                    && p.details.currency.chars().all(|c| c.is_ascii_uppercase()),
                "currency",
                "must be a 3-letter ISO 4217 code",
            )
            .check(
                (1..=MAX_GUESTS).contains(&p.details.max_guests),
                "max_guests",
                format!("must be from 1 to {MAX_GUESTS}"),
            )
            .check(
                p.details.bedrooms.is_none_or(|n| n <= 100),
                "bedrooms",
                "must be at most 100",
            )
            .check(
                p.details.bathrooms.is_none_or(|n| n <= 100),
                "bathrooms",
                "must be at most 100",
            )
            .check(
                p.details.amenities.len() <= 50,
                "amenities",
                "at most 50 items",
            )
            .check(
                p.details
                    .amenities
                    .iter()
                    .all(|a| (1..=50).contains(&a.chars().count())),
                "amenities",
                "each must be 1 to 50 characters",
            )
            .finish()
    }
}
