//! owner-service's authoritative bookings and the decision rules.
//!
//! A decision is computed here from the booking as read ([`decide`]); the
//! store then saves it only if the booking still has the version that was
//! read, so of two concurrent decisions exactly one wins.

use chrono::{DateTime, Utc};
use events::{
    Actor, BookingId, BookingRequested, BookingStatus, BookingStatusChanged, Stay, UserId,
};
use serde::{Deserialize, Serialize};

/// A booking as owner-service knows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Booking {
    pub id: BookingId,
    /// What was booked; stored and served as flat fields.
    #[serde(flatten)]
    pub stay: Stay,
    pub owner_id: UserId,
    pub traveler_id: UserId,
    pub status: BookingStatus,
    /// Why the booking was rejected or cancelled, when given.
    pub status_reason: Option<String>,
    /// Number of status changes so far; the optimistic-concurrency token.
    pub version: u32,
    #[serde(with = "events::timestamp")]
    pub created_at: DateTime<Utc>,
    #[serde(with = "events::timestamp")]
    pub updated_at: DateTime<Utc>,
}

impl Booking {
    /// The owner's copy of a newly requested booking.
    pub fn from_request(e: &BookingRequested) -> Self {
        Self {
            id: e.booking_id.clone(),
            stay: e.stay.clone(),
            owner_id: e.owner_id.clone(),
            traveler_id: e.traveler_id.clone(),
            status: BookingStatus::Pending,
            status_reason: None,
            version: 0,
            created_at: e.created_at,
            updated_at: e.created_at,
        }
    }

    /// Whether two bookings' stays share at least one night.
    pub fn overlaps(&self, other: &Booking) -> bool {
        self.stay.overlaps(&other.stay)
    }
}

/// A decision the state machine refuses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotAllowed {
    pub from: BookingStatus,
    pub to: BookingStatus,
}

/// Computes the booking after moving to `to`, and the event announcing it.
pub fn decide(
    booking: &Booking,
    to: BookingStatus,
    reason: Option<String>,
    by: Actor,
    now: DateTime<Utc>,
) -> Result<(Booking, BookingStatusChanged), NotAllowed> {
    if !booking.status.can_become(to) {
        return Err(NotAllowed {
            from: booking.status,
            to,
        });
    }
    let next = Booking {
        status: to,
        status_reason: reason.clone(),
        version: booking.version + 1,
        updated_at: now,
        ..booking.clone()
    };
    let event = BookingStatusChanged {
        booking_id: next.id.clone(),
        property_id: next.stay.property_id.clone(),
        owner_id: next.owner_id.clone(),
        traveler_id: next.traveler_id.clone(),
        status: to,
        previous_status: booking.status,
        reason,
        changed_by: by,
        version: next.version,
        changed_at: now,
    };
    Ok((next, event))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;
    use events::ActorRole;

    fn booking(check_in: u32, check_out: u32) -> Booking {
        let d = |day| NaiveDate::from_ymd_opt(2030, 5, day).unwrap();
        Booking {
            id: "b".into(),
            stay: Stay {
                property_id: "p".into(),
                check_in: d(check_in),
                check_out: d(check_out),
                nights: check_out - check_in,
                guests: 1,
                total_price_cents: 100,
                currency: "USD".into(),
            },
            owner_id: "o".into(),
            traveler_id: "t".into(),
            status: BookingStatus::Pending,
            status_reason: None,
            version: 0,
            created_at: Utc::now(),
            updated_at: Utc::now(),
        }
    }

    #[test]
    fn stays_overlap_only_when_they_share_a_night() {
        assert!(booking(1, 5).overlaps(&booking(4, 8)));
        assert!(booking(1, 5).overlaps(&booking(2, 3)));
        assert!(
            !booking(1, 5).overlaps(&booking(5, 8)),
            "check-out day is free"
        );
        assert!(!booking(5, 8).overlaps(&booking(1, 5)));
    }

    #[test]
    fn decide_bumps_version_and_describes_the_change() {
        let owner = Actor {
            role: ActorRole::Owner,
            id: "o".into(),
        };
        let (next, event) = decide(
            &booking(1, 3),
            BookingStatus::Accepted,
            None,
            owner.clone(),
            Utc::now(),
        )
        .unwrap();
        assert_eq!((next.status, next.version), (BookingStatus::Accepted, 1));
        assert_eq!(event.previous_status, BookingStatus::Pending);
        assert_eq!(event.version, 1);

        let err = decide(&next, BookingStatus::Rejected, None, owner, Utc::now()).unwrap_err();
        assert_eq!(err.from, BookingStatus::Accepted);
    }
}
