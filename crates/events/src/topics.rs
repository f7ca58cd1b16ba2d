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
