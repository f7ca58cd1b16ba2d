//! The property catalog travelers browse, rebuilt from `property-listings`.

use chrono::{DateTime, Utc};
use events::PropertySnapshot;
use serde::{Deserialize, Serialize};

/// A property as travelers see it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CatalogProperty {
    pub id: String,
    pub owner_id: String,
    pub name: String,
    pub city: String,
    pub country: String,
    pub address: Option<String>,
    pub description: Option<String>,
    pub price_per_night_cents: i64,
    pub cleaning_fee_cents: i64,
    pub service_fee_cents: i64,
    pub currency: String,
    pub max_guests: u32,
    pub bedrooms: Option<u32>,
    pub bathrooms: Option<u32>,
    pub amenities: Vec<String>,
    pub active: bool,
    /// The owner-side version this copy reflects; older events are ignored.
    pub version: u64,
    #[serde(with = "events::timestamp")]
    pub updated_at: DateTime<Utc>,
}

impl From<&PropertySnapshot> for CatalogProperty {
    fn from(p: &PropertySnapshot) -> Self {
        Self {
            id: p.property_id.clone(),
            owner_id: p.owner_id.clone(),
            name: p.name.clone(),
            city: p.city.clone(),
            country: p.country.clone(),
            address: p.address.clone(),
            description: p.description.clone(),
            price_per_night_cents: p.price_per_night_cents,
            cleaning_fee_cents: p.cleaning_fee_cents,
            service_fee_cents: p.service_fee_cents,
            currency: p.currency.clone(),
            max_guests: p.max_guests,
            bedrooms: p.bedrooms,
            bathrooms: p.bathrooms,
            amenities: p.amenities.clone(),
            active: p.active,
            version: p.version,
            updated_at: p.updated_at,
        }
    }
}

/// Catalog search criteria.
#[derive(Debug, Clone, Default)]
pub struct CatalogQuery {
    /// Matched case-insensitively against the whole city name.
    pub city: Option<String>,
    /// Only properties hosting at least this many guests.
    pub guests: Option<u32>,
}

impl CatalogQuery {
    pub fn matches(&self, p: &CatalogProperty) -> bool {
        p.active
            && self
                .city
                .as_ref()
                .is_none_or(|c| p.city.to_lowercase() == c.to_lowercase())
            && self.guests.is_none_or(|g| p.max_guests >= g)
    }
}
