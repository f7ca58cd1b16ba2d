//! `/api/owners/bookings`: an owner reads requests for their properties and
//! approves, rejects or cancels them. Another owner's booking is 404.

use axum::{
    extract::{Path, State},
    Json,
};
use events::{Actor, ActorRole, BookingId, BookingStatus, PropertyId};
use serde::{Deserialize, Serialize};
use service_runtime::{
    auth::AuthUser,
    http::{params, ApiError, ApiQuery, OptionalApiJson},
    openapi::schema::ObjectSchema,
};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    decisions::{decide_and_save, DecisionError},
    domain::booking::Booking,
    store::{BookingFilter, BOOKINGS_LIST},
    AppState,
};

/// The booking endpoints, described by their annotations.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(show))
        .routes(routes!(approve))
        .routes(routes!(reject))
        .routes(routes!(cancel))
}

/// A page of the bookings of the caller's properties.
#[derive(Serialize, ToSchema)]
pub struct BookingPage {
    /// Newest first.
    pub bookings: Vec<Booking>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

/// `{"booking": …}`.
#[derive(Serialize, ToSchema)]
pub struct BookingBody {
    pub booking: Booking,
}

// The schema of `Booking` as served: the fields both services' bookings
// share, and what owner-service says of them.
service_runtime::http_schema!(
    Booking as "Booking",
    refs: service_runtime::openapi::schema::booking_schemas,
    ObjectSchema::booking("A booking as owner-service knows it.")
        .describe(
            "status_reason",
            "Why the booking was rejected or cancelled, when given.",
        )
        .describe(
            "version",
            "Number of status changes so far; the optimistic-concurrency token.",
        )
        .build()
);

/// `?property_id=`, beside the status and page parameters.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct PropertyParam {
    /// Only the bookings of this property; empty: all.
    #[param(value_type = Option<String>)]
    property_id: Option<PropertyId>,
}

/// The bookings of the caller's properties, newest first, a page at a time.
#[utoipa::path(
    get,
    path = "/bookings",
    tag = "bookings",
    security(("bearer" = [])),
    params(params::StatusParam, PropertyParam, params::PageParams),
    responses((status = 200, description = "a page of bookings", body = BookingPage))
)]
async fn list(
    State(state): State<AppState>,
    caller: AuthUser,
    ApiQuery(q): ApiQuery<params::StatusParam>,
    ApiQuery(p): ApiQuery<PropertyParam>,
    ApiQuery(page): ApiQuery<params::PageParams>,
) -> Result<Json<BookingPage>, ApiError> {
    let status = params::status_filter(q.status.as_deref())?;
    let page = page.request(BOOKINGS_LIST)?;
    let filter = BookingFilter {
        status,
        property_id: p.property_id.filter(|p| !p.as_str().is_empty()),
    };
    let bookings = state.store.bookings_of(&caller.id, &filter, &page).await?;
    Ok(Json(BookingPage {
        next_cursor: params::next_cursor(BOOKINGS_LIST, &bookings),
        bookings: bookings.items,
    }))
}

/// The caller's booking, or 404 — never reveals another owner's booking.
async fn owned(state: &AppState, caller: &AuthUser, id: &BookingId) -> Result<Booking, ApiError> {
    match state.store.booking(id).await? {
        Some(b) if b.owner_id == caller.id => Ok(b),
        _ => Err(ApiError::not_found("booking")),
    }
}

/// One booking of the caller's properties.
#[utoipa::path(
    get,
    path = "/bookings/{id}",
    tag = "bookings",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "the booking's id")),
    responses(
        (status = 200, description = "the booking", body = BookingBody),
        (status = 404, description = "no booking of the caller's properties has this id (`not_found`)"),
    )
)]
async fn show(
    State(state): State<AppState>,
    caller: AuthUser,
    Path(id): Path<BookingId>,
) -> Result<Json<BookingBody>, ApiError> {
    let booking = owned(&state, &caller, &id).await?;
    Ok(Json(BookingBody { booking }))
}

/// The body of a rejection or cancellation.
#[derive(Deserialize, Default, ToSchema)]
#[schema(example = json!({"reason": "the dates are no longer free"}))]
struct ReasonBody {
    /// At most 1000 characters; blank means none.
    reason: Option<String>,
}

/// The body of an owner's cancellation: the same as [`ReasonBody`], with
/// the reason required. Only describes the API: the handler reads
/// [`ReasonBody`] and answers 400 naming `reason` when it is missing.
#[derive(ToSchema)]
#[schema(example = json!({"reason": "the property is closed for repairs"}))]
pub struct RequiredReason {
    /// 1 to 1000 characters, not all blank.
    #[schema(min_length = 1, max_length = 1000, pattern = "\\S")]
    pub reason: String,
}

/// Accepts a PENDING booking.
///
/// PENDING → ACCEPTED; 409 if the nights overlap an accepted booking of
/// the same property.
#[utoipa::path(
    put,
    path = "/bookings/{id}/approve",
    tag = "bookings",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "the booking's id")),
    responses(
        (status = 200, description = "the booking, ACCEPTED", body = BookingBody),
        (status = 404, description = "no booking of the caller's properties has this id (`not_found`)"),
        (status = 409, description = "the booking is not PENDING (`invalid_transition`), another decision won (`booking_changed`), or the nights overlap an accepted booking (`dates_unavailable`)"),
    )
)]
async fn approve(
    State(state): State<AppState>,
    caller: AuthUser,
    Path(id): Path<BookingId>,
) -> Result<Json<BookingBody>, ApiError> {
    owner_decides(&state, &caller, &id, BookingStatus::Accepted, None).await
}

/// Rejects a PENDING booking, with an optional reason.
#[utoipa::path(
    put,
    path = "/bookings/{id}/reject",
    tag = "bookings",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "the booking's id")),
    request_body(content = Option<ReasonBody>, description = "optional: an empty body means no reason"),
    responses(
        (status = 200, description = "the booking, REJECTED", body = BookingBody),
        (status = 404, description = "no booking of the caller's properties has this id (`not_found`)"),
        (status = 409, description = "the booking is not PENDING (`invalid_transition`), or another decision won (`booking_changed`)"),
    )
)]
async fn reject(
    State(state): State<AppState>,
    caller: AuthUser,
    Path(id): Path<BookingId>,
    OptionalApiJson(body): OptionalApiJson<ReasonBody>,
) -> Result<Json<BookingBody>, ApiError> {
    let reason = params::reason(body.reason)?;
    owner_decides(&state, &caller, &id, BookingStatus::Rejected, reason).await
}

/// Cancels a PENDING or ACCEPTED booking; a reason is required.
#[utoipa::path(
    put,
    path = "/bookings/{id}/cancel",
    tag = "bookings",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "the booking's id")),
    request_body(content = RequiredReason, description = "`reason` is required here"),
    responses(
        (status = 200, description = "the booking, CANCELLED", body = BookingBody),
        (status = 404, description = "no booking of the caller's properties has this id (`not_found`)"),
        (status = 409, description = "the booking is already REJECTED or CANCELLED (`invalid_transition`), or another decision won (`booking_changed`)"),
    )
)]
async fn cancel(
    State(state): State<AppState>,
    caller: AuthUser,
    Path(id): Path<BookingId>,
    OptionalApiJson(body): OptionalApiJson<ReasonBody>,
) -> Result<Json<BookingBody>, ApiError> {
    let reason = params::reason(body.reason)?
        .ok_or_else(|| ApiError::invalid_field("reason", "is required to cancel a booking"))?;
    owner_decides(&state, &caller, &id, BookingStatus::Cancelled, Some(reason)).await
}

/// The problem document of each reason a decision was not made.
impl From<DecisionError> for ApiError {
    fn from(e: DecisionError) -> Self {
        match e {
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
        }
    }
}

async fn owner_decides(
    state: &AppState,
    caller: &AuthUser,
    id: &BookingId,
    to: BookingStatus,
    reason: Option<String>,
) -> Result<Json<BookingBody>, ApiError> {
    service_runtime::telemetry::record_booking_id(id.as_str());
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
    .await?;
    Ok(Json(BookingBody { booking: decided }))
}
