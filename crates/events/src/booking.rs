use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{BookingId, EventPayload, PropertyId, Stay, UserId};

/// A booking's lifecycle. owner-service is the authority; traveler-service mirrors it.
///
/// `PENDING → ACCEPTED | REJECTED | CANCELLED`, `ACCEPTED → CANCELLED`;
/// REJECTED and CANCELLED are final.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema, utoipa::ToSchema,
)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum BookingStatus {
    Pending,
    Accepted,
    Rejected,
    Cancelled,
}

impl BookingStatus {
    /// Every status. Lists that are not filtered by status name them all, so
    /// a database can walk an index whose key has the status before the sort
    /// key as one ordered run per status.
    pub const ALL: [BookingStatus; 4] = [
        BookingStatus::Pending,
        BookingStatus::Accepted,
        BookingStatus::Rejected,
        BookingStatus::Cancelled,
    ];

    /// Whether the state machine allows moving from `self` to `next`.
    pub fn can_become(self, next: BookingStatus) -> bool {
        use BookingStatus::*;
        matches!(
            (self, next),
            (Pending, Accepted)
                | (Pending, Rejected)
                | (Pending, Cancelled)
                | (Accepted, Cancelled)
        )
    }

    /// REJECTED and CANCELLED never change again.
    pub fn is_final(self) -> bool {
        matches!(self, BookingStatus::Rejected | BookingStatus::Cancelled)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            BookingStatus::Pending => "PENDING",
            BookingStatus::Accepted => "ACCEPTED",
            BookingStatus::Rejected => "REJECTED",
            BookingStatus::Cancelled => "CANCELLED",
        }
    }

    /// Parses the wire form (`PENDING`, ...), case-insensitively for query strings.
    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_uppercase().as_str() {
            "PENDING" => Some(BookingStatus::Pending),
            "ACCEPTED" => Some(BookingStatus::Accepted),
            "REJECTED" => Some(BookingStatus::Rejected),
            "CANCELLED" => Some(BookingStatus::Cancelled),
            _ => None,
        }
    }
}

/// Who caused a status change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ActorRole {
    Owner,
    Traveler,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Actor {
    pub role: ActorRole,
    pub id: UserId,
}

/// A traveler asked for a stay. Carries every booking field so owner-service
/// can build its authoritative copy without calling back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct BookingRequested {
    pub booking_id: BookingId,
    #[serde(flatten)]
    pub stay: Stay,
    pub owner_id: UserId,
    pub traveler_id: UserId,
    pub status: BookingStatus,
    #[serde(with = "crate::timestamp")]
    #[schemars(with = "String", extend("format" = "date-time"))]
    pub created_at: DateTime<Utc>,
}

/// A traveler asked to cancel one of their bookings; owner-service decides.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct BookingCancellationRequested {
    pub booking_id: BookingId,
    pub traveler_id: UserId,
    pub reason: Option<String>,
    #[serde(with = "crate::timestamp")]
    #[schemars(with = "String", extend("format" = "date-time"))]
    pub requested_at: DateTime<Utc>,
}

/// owner-service changed a booking's status.
///
/// `version` counts the booking's transitions (1 = first decision); a consumer
/// ignores a change older than what it already holds, so reordering across
/// partitions or replicas cannot move a booking backwards.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct BookingStatusChanged {
    pub booking_id: BookingId,
    pub property_id: PropertyId,
    pub owner_id: UserId,
    pub traveler_id: UserId,
    pub status: BookingStatus,
    pub previous_status: BookingStatus,
    pub reason: Option<String>,
    pub changed_by: Actor,
    pub version: u32,
    #[serde(with = "crate::timestamp")]
    #[schemars(with = "String", extend("format" = "date-time"))]
    pub changed_at: DateTime<Utc>,
}

/// Everything published on the booking-requests topic.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "event_type", content = "data")]
// Events are short-lived values moved once from decode to handler; boxing the
// larger variant would cost an allocation for no measurable gain.
#[allow(clippy::large_enum_variant)]
pub enum BookingRequestEvent {
    #[serde(rename = "booking.requested")]
    Requested(BookingRequested),
    #[serde(rename = "booking.cancellation_requested")]
    CancellationRequested(BookingCancellationRequested),
}

impl EventPayload for BookingRequestEvent {
    fn event_type(&self) -> &'static str {
        match self {
            BookingRequestEvent::Requested(_) => "booking.requested",
            BookingRequestEvent::CancellationRequested(_) => "booking.cancellation_requested",
        }
    }

    fn key(&self) -> &str {
        match self {
            BookingRequestEvent::Requested(e) => e.booking_id.as_str(),
            BookingRequestEvent::CancellationRequested(e) => e.booking_id.as_str(),
        }
    }
}

/// Everything published on the booking-updates topic.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "event_type", content = "data")]
pub enum BookingUpdateEvent {
    #[serde(rename = "booking.status_changed")]
    StatusChanged(BookingStatusChanged),
}

impl EventPayload for BookingUpdateEvent {
    fn event_type(&self) -> &'static str {
        "booking.status_changed"
    }

    fn key(&self) -> &str {
        match self {
            BookingUpdateEvent::StatusChanged(e) => e.booking_id.as_str(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use BookingStatus::*;

    #[test]
    fn all_names_every_status_once() {
        // A new status breaks this match, which points here to add it to ALL.
        let position = |s: BookingStatus| match s {
            Pending => 0,
            Accepted => 1,
            Rejected => 2,
            Cancelled => 3,
        };
        let positions: Vec<_> = BookingStatus::ALL.into_iter().map(position).collect();
        assert_eq!(positions, [0, 1, 2, 3]);
    }

    #[test]
    fn state_machine_allows_only_documented_transitions() {
        let all = [Pending, Accepted, Rejected, Cancelled];
        let allowed: Vec<_> = all
            .iter()
            .flat_map(|a| all.iter().map(move |b| (*a, *b)))
            .filter(|(a, b)| a.can_become(*b))
            .collect();
        assert_eq!(
            allowed,
            vec![
                (Pending, Accepted),
                (Pending, Rejected),
                (Pending, Cancelled),
                (Accepted, Cancelled)
            ]
        );
        assert!(Rejected.is_final() && Cancelled.is_final());
        assert!(!Pending.is_final() && !Accepted.is_final());
    }

    #[test]
    fn status_parses_case_insensitively_and_serialises_upper_case() {
        assert_eq!(BookingStatus::parse("accepted"), Some(Accepted));
        assert_eq!(BookingStatus::parse("nope"), None);
        assert_eq!(serde_json::to_string(&Cancelled).unwrap(), "\"CANCELLED\"");
    }
}
