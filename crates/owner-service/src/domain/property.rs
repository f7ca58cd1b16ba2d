//! Properties an owner lists, and the rules for their fields.

use chrono::{DateTime, Utc};
use events::{PropertyDetails, PropertyId, PropertySnapshot, UserId};
use serde::{Deserialize, Serialize};
use service_runtime::validation::{Invalid, Validator};

/// A property as owner-service stores and serves it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Property {
    pub id: PropertyId,
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
    /// A new, active property of `owner_id` with no details yet: the
    /// defaults of the optional fields, the rest for the request to fill
    /// (and [`Self::validate`] to check).
    pub fn draft(id: PropertyId, owner_id: UserId, now: DateTime<Utc>) -> Self {
        Self {
            id,
            owner_id,
            details: PropertyDetails {
                name: String::new(),
                city: String::new(),
                country: String::new(),
                address: None,
                description: None,
                price_per_night_cents: 0,
                cleaning_fee_cents: 0,
                service_fee_cents: 0,
                currency: "USD".into(),
                max_guests: 0,
                bedrooms: None,
                bathrooms: None,
                amenities: Vec::new(),
            },
            active: true,
            version: 1,
            created_at: now,
            updated_at: now,
        }
    }

    /// The rules a property's fields obey, checked as a whole so every
    /// problem is reported at once.
    pub fn validate(&self) -> Result<(), Invalid> {
        let d = &self.details;
        Validator::new()
            .text(&d.name, "name", 1, 200)
            .text(&d.city, "city", 1, 100)
            .text(&d.country, "country", 1, 100)
            .text(d.address.as_deref().unwrap_or(""), "address", 0, 300)
            .text(
                d.description.as_deref().unwrap_or(""),
                "description",
                0,
                5000,
            )
            .check(
                (1..=MAX_CENTS).contains(&d.price_per_night_cents),
                "price_per_night_cents",
                format!("must be from 1 to {MAX_CENTS}"),
            )
            .check(
                (0..=MAX_CENTS).contains(&d.cleaning_fee_cents),
                "cleaning_fee_cents",
                format!("must be from 0 to {MAX_CENTS}"),
            )
            .check(
                (0..=MAX_CENTS).contains(&d.service_fee_cents),
                "service_fee_cents",
                format!("must be from 0 to {MAX_CENTS}"),
            )
            .check(
                d.currency.len() == 3 && d.currency.chars().all(|c| c.is_ascii_uppercase()),
                "currency",
                "must be a 3-letter ISO 4217 code",
            )
            .check(
                (1..=MAX_GUESTS).contains(&d.max_guests),
                "max_guests",
                format!("must be from 1 to {MAX_GUESTS}"),
            )
            .check(
                d.bedrooms.is_none_or(|n| n <= 100),
                "bedrooms",
                "must be at most 100",
            )
            .check(
                d.bathrooms.is_none_or(|n| n <= 100),
                "bathrooms",
                "must be at most 100",
            )
            .check(d.amenities.len() <= 50, "amenities", "at most 50 items")
            .check(
                d.amenities
                    .iter()
                    .all(|a| (1..=50).contains(&a.chars().count())),
                "amenities",
                "each must be 1 to 50 characters",
            )
            .finish()
    }

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
