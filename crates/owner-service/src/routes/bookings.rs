//! `/api/owners/bookings`: an owner reads requests for their properties and
//! approves, rejects or cancels them. Another owner's booking is 404.

use axum::{
    extract::{Path, State},
    routing::{get, put},
    Json, Router,
};
use events::{Actor, ActorRole, BookingStatus};
use serde::Deserialize;
use serde_json::{json, Value};
use service_runtime::{
    auth::AuthUser,
    http::{params, ApiError, ApiQuery, OptionalApiJson},
};

use crate::{
    decisions::{decide_and_save, DecisionError},
    domain::booking::Booking,
    store::{BookingFilter, BOOKINGS_LIST},
    AppState,
};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/bookings", get(list))
        .route("/bookings/{id}", get(show))
        .route("/bookings/{id}/approve", put(approve))
        .route("/bookings/{id}/reject", put(reject))
        .route("/bookings/{id}/cancel", put(cancel))
}

#[derive(Deserialize)]
struct ListQuery {
    status: Option<String>,
    property_id: Option<String>,
}

/// `GET /bookings?status=&property_id=&limit=&cursor=`: a page of the
/// bookings of the caller's properties, newest first.
async fn list(
    State(state): State<AppState>,
    caller: AuthUser,
    ApiQuery(q): ApiQuery<ListQuery>,
    ApiQuery(page): ApiQuery<params::PageParams>,
) -> Result<Json<Value>, ApiError> {
    let status = params::status_filter(q.status.as_deref())?;
    let page = page.request(BOOKINGS_LIST)?;
    let filter = BookingFilter {
        status,
        property_id: q.property_id.filter(|p| !p.is_empty()),
    };
    let bookings = state.store.bookings_of(&caller.id, &filter, &page).await?;
    Ok(Json(params::page_json("bookings", BOOKINGS_LIST, bookings)))
}

/// The caller's booking, or 404 — never reveals another owner's booking.
async fn owned(state: &AppState, caller: &AuthUser, id: &str) -> Result<Booking, ApiError> {
    match state.store.booking(id).await? {
        Some(b) if b.owner_id == caller.id => Ok(b),
        _ => Err(ApiError::not_found("booking")),
    }
}

async fn show(
    State(state): State<AppState>,
    caller: AuthUser,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let booking = owned(&state, &caller, &id).await?;
    Ok(Json(json!({ "booking": booking })))
}

#[derive(Deserialize, Default)]
struct ReasonBody {
    reason: Option<String>,
}

/// `PUT /bookings/{id}/approve`: PENDING → ACCEPTED, 409 if the nights
/// overlap an accepted booking of the same property.
async fn approve(
    State(state): State<AppState>,
    caller: AuthUser,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    owner_decides(&state, &caller, &id, BookingStatus::Accepted, None).await
}

/// `PUT /bookings/{id}/reject` `{reason?}`: PENDING → REJECTED.
async fn reject(
    State(state): State<AppState>,
    caller: AuthUser,
    Path(id): Path<String>,
    OptionalApiJson(body): OptionalApiJson<ReasonBody>,
) -> Result<Json<Value>, ApiError> {
    let reason = params::reason(body.reason)?;
    owner_decides(&state, &caller, &id, BookingStatus::Rejected, reason).await
}

/// `PUT /bookings/{id}/cancel` `{reason}`: → CANCELLED; a reason is required.
async fn cancel(
    State(state): State<AppState>,
    caller: AuthUser,
    Path(id): Path<String>,
    OptionalApiJson(body): OptionalApiJson<ReasonBody>,
) -> Result<Json<Value>, ApiError> {
    let reason = params::reason(body.reason)?
        .ok_or_else(|| ApiError::invalid_field("reason", "is required to cancel a booking"))?;
    owner_decides(&state, &caller, &id, BookingStatus::Cancelled, Some(reason)).await
}

async fn owner_decides(
    state: &AppState,
    caller: &AuthUser,
    id: &str,
    to: BookingStatus,
    reason: Option<String>,
) -> Result<Json<Value>, ApiError> {
    service_runtime::telemetry::record_booking_id(id);
    let booking = owned(state, caller, id).await?;
    let by = Actor {
        role: ActorRole::Owner,
        id: caller.id.clone(),
    };
    let decided = decide_and_save(
        state.store.as_ref(),
        &state.metrics,
        &state.topics.booking_updates,
        &booking,
        to,
        reason,
        by,
    )
    .await
    .map_err(|e| match e {
        DecisionError::NotAllowed(_) => ApiError::conflict("invalid_transition", e.to_string()),
        DecisionError::Conflict => ApiError::conflict(
            "booking_changed",
            "the booking was changed by another request; reload it",
        ),
        DecisionError::Overlap(_) => ApiError::conflict(
            "dates_unavailable",
            "the stay overlaps an accepted booking of this property",
        ),
        DecisionError::Store(e) => e.into(),
    })?;
    Ok(Json(json!({ "booking": decided })))
}
