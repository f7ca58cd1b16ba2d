//! Default topic names and the dead-letter naming rule.
//!
//! Names are configurable at run time (`KAFKA_REQUEST_TOPIC`, ...); these are the
//! defaults that the binaries, docker-compose and k8s manifests agree on.

/// Traveler → owner: booking requests and traveler cancellations. Key: booking id.
pub const BOOKING_REQUESTS: &str = "booking-requests";
/// Owner → traveler: status decisions. Key: booking id.
pub const BOOKING_UPDATES: &str = "booking-updates";
/// Owner → traveler: the property catalog, compacted. Key: property id.
pub const PROPERTY_LISTINGS: &str = "property-listings";

/// The three topic names one deployment uses, as one value: both services
/// carry the same `Topics`, each publishing to and subscribing to its own
/// part of it, so a renamed topic (`KAFKA_REQUEST_TOPIC`, ...) is renamed
/// for producer and consumer alike. [`Default`] gives the names above.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topics {
    /// Where traveler-service publishes and owner-service consumes requests.
    pub booking_requests: String,
    /// Where owner-service publishes and traveler-service consumes decisions.
    pub booking_updates: String,
    /// The compacted catalog feed, from owner-service to traveler-service.
    pub property_listings: String,
}

impl Default for Topics {
    fn default() -> Self {
        Self {
            booking_requests: BOOKING_REQUESTS.into(),
            booking_updates: BOOKING_UPDATES.into(),
            property_listings: PROPERTY_LISTINGS.into(),
        }
    }
}

/// The dead-letter topic for `topic`: messages that can never be processed go
/// there, with the reason in headers, so consumption of `topic` never stalls.
pub fn dead_letter(topic: &str) -> String {
    format!("{topic}.dlq")
}

#[cfg(test)]
mod tests {
    #[test]
    fn dead_letter_topic_appends_dlq() {
        assert_eq!(
            super::dead_letter("booking-requests"),
            "booking-requests.dlq"
        );
    }
}
