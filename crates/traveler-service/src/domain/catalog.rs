//! The property catalog travelers browse, rebuilt from `property-listings`.

use chrono::{DateTime, Utc};
use events::{PropertyDetails, PropertyId, PropertySnapshot, UserId};
use serde::{Deserialize, Serialize};

/// A property as travelers see it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CatalogProperty {
    pub id: PropertyId,
    pub owner_id: UserId,
    #[serde(flatten)]
    pub details: PropertyDetails,
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
            details: p.details.clone(),
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
                .is_none_or(|c| p.details.city.to_lowercase() == c.to_lowercase())
            && self.guests.is_none_or(|g| p.details.max_guests >= g)
    }
}
