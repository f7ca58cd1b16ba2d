use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{EventPayload, PropertyId, UserId};

/// What an owner says about a property: the fields a listing shows and
/// booking prices are computed from. One definition for the event, the
/// owner's record and the traveler catalog, each flattening it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, utoipa::ToSchema)]
pub struct PropertyDetails {
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
}

/// The full state of a property after a change. The listings topic is
/// compacted by property id, so the latest snapshot alone rebuilds the catalog.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PropertySnapshot {
    pub property_id: PropertyId,
    pub owner_id: UserId,
    #[serde(flatten)]
    pub details: PropertyDetails,
    pub active: bool,
    /// Increases with every change; consumers keep the highest they have seen.
    pub version: u64,
    #[serde(with = "crate::timestamp")]
    #[schemars(with = "String", extend("format" = "date-time"))]
    pub created_at: DateTime<Utc>,
    #[serde(with = "crate::timestamp")]
    #[schemars(with = "String", extend("format" = "date-time"))]
    pub updated_at: DateTime<Utc>,
}

/// The owner took the property off the market.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PropertyDelisted {
    pub property_id: PropertyId,
    pub owner_id: UserId,
    pub version: u64,
    #[serde(with = "crate::timestamp")]
    #[schemars(with = "String", extend("format" = "date-time"))]
    pub delisted_at: DateTime<Utc>,
}

/// Everything published on the property-listings topic.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "event_type", content = "data")]
// Events are short-lived values moved once from decode to handler; boxing the
// larger variant would cost an allocation for no measurable gain.
#[allow(clippy::large_enum_variant)]
pub enum PropertyEvent {
    #[serde(rename = "property.upserted")]
    Upserted(PropertySnapshot),
    #[serde(rename = "property.delisted")]
    Delisted(PropertyDelisted),
}

impl PropertyEvent {
    /// The property the event is about (also its partition key).
    pub fn property_id(&self) -> &PropertyId {
        match self {
            PropertyEvent::Upserted(p) => &p.property_id,
            PropertyEvent::Delisted(p) => &p.property_id,
        }
    }
}

impl EventPayload for PropertyEvent {
    fn event_type(&self) -> &'static str {
        match self {
            PropertyEvent::Upserted(_) => "property.upserted",
            PropertyEvent::Delisted(_) => "property.delisted",
        }
    }

    fn key(&self) -> &str {
        self.property_id().as_str()
    }
}
