//! `/api/travelers/bookings`: create a booking (published to
//! `booking-requests` through the outbox), list and read one's own, and ask
//! to cancel. Another traveler's booking is 404.

use axum::{
    extract::{Path, State},
    http::{HeaderMap, StatusCode},
    Json,
};
use chrono::NaiveDate;
use events::{BookingCancellationRequested, BookingId, BookingRequestEvent, Envelope, UserId};
use serde::{Deserialize, Serialize};
use service_runtime::{
    auth::AuthUser,
    http::{params, ApiError, ApiJson, ApiQuery, OptionalApiJson},
    openapi::schema::ObjectSchema,
    outbox::OutboxMessage,
};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    domain::booking::{Booking, StayRequest},
    store::{CancelOutcome, CreateOutcome, IdempotencyKey, BOOKINGS_LIST},
    AppState, SOURCE,
};

/// The booking endpoints, described by their annotations.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(show))
        .routes(routes!(cancel))
}

/// `{"booking": …}`: written straight from the booking, without building a
/// JSON tree first (booking creation is the hottest path).
#[derive(Serialize, ToSchema)]
pub struct BookingBody {
    pub booking: Booking,
}

/// A page of the caller's bookings.
#[derive(Serialize, ToSchema)]
pub struct BookingPage {
    /// Newest first.
    pub bookings: Vec<Booking>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

// The schema of `Booking` as served: the fields both services' bookings
// share, and what the traveler's copy adds.
service_runtime::http_schema!(
    Booking as "Booking",
    refs: service_runtime::openapi::schema::booking_schemas,
    ObjectSchema::booking("A booking as the traveler sees it.")
        .insert_after::<TravelerFields>("property_id", "property_name")
        .insert_after::<TravelerFields>("version", "cancellation_requested_at")
        .describe(
            "version",
            "The owner-side version of the status; older updates are ignored.",
        )
        .example(
            r#"{
                "id": "0193a5df-2222-7000-8000-000000000002", "property_id": "0193a5d0-3333-7000-8000-000000000003",
                "property_name": "Sea View", "owner_id": "0193a5d0-1111-7000-8000-000000000001",
                "traveler_id": "0193a5d0-4444-7000-8000-000000000004", "check_in": "2027-03-01", "check_out": "2027-03-04",
                "nights": 3, "guests": 2, "total_price_cents": 42000, "currency": "EUR", "status": "PENDING",
                "status_reason": null, "version": 0, "cancellation_requested_at": null,
                "created_at": "2026-11-25T02:04:41.123Z", "updated_at": "2026-11-25T02:04:41.123Z"
            }"#,
        )
        .build()
);

/// The fields the traveler's booking has beyond the shared ones. Only
/// describes the API.
#[derive(ToSchema)]
#[allow(dead_code)]
struct TravelerFields {
    property_name: String,
    /// Set when the traveler asked to cancel and owner-service has not answered yet.
    cancellation_requested_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// `POST /bookings` body.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[schema(example = json!({"property_id": "0193a5d0-3333-7000-8000-000000000003", "check_in": "2027-03-01", "check_out": "2027-03-04", "guests": 2}))]
pub struct BookingRequest {
    /// An active property of the catalog.
    pub property_id: String,
    /// Not before today.
    pub check_in: NaiveDate,
    /// 1 to 365 nights after `check_in`.
    pub check_out: NaiveDate,
    /// At least 1, at most the property's `max_guests`.
    pub guests: u32,
}

impl From<BookingRequest> for StayRequest {
    fn from(r: BookingRequest) -> Self {
        Self {
            property_id: r.property_id.trim().into(),
            check_in: r.check_in,
            check_out: r.check_out,
            guests: r.guests,
        }
    }
}

/// Longest `Idempotency-Key` accepted.
const MAX_IDEMPOTENCY_KEY_LEN: usize = 255;

fn idempotency_key(
    headers: &HeaderMap,
    traveler_id: &UserId,
    request: &StayRequest,
) -> Result<Option<IdempotencyKey>, ApiError> {
    let Some(raw) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let key = raw
        .to_str()
        .ok()
        .map(str::trim)
        .filter(|k| !k.is_empty() && k.len() <= MAX_IDEMPOTENCY_KEY_LEN)
        .ok_or_else(|| {
            ApiError::invalid_field(
                "Idempotency-Key",
                format!("must be 1 to {MAX_IDEMPOTENCY_KEY_LEN} visible ASCII characters"),
            )
        })?;
    Ok(Some(IdempotencyKey {
        scoped_key: format!("{traveler_id}:{key}"),
        fingerprint: request.fingerprint(),
    }))
}

/// Requests a booking.
///
/// Validates, prices on the server, and saves the booking with its
/// `booking.requested` event in one write; owner-service decides, and the
/// status follows on `booking-updates`. With an `Idempotency-Key`, a retry
/// returns the original booking and publishes nothing new; the same key
/// with a different body is 422.
#[utoipa::path(
    post,
    path = "/bookings",
    tag = "bookings",
    security(("bearer" = [])),
    params(("Idempotency-Key" = Option<String>, Header, description = "1 to 255 visible ASCII characters; a retry with the same key and body returns the first booking")),
    request_body = BookingRequest,
    responses(
        (status = 201, description = "the booking, PENDING (or the one an earlier request with this `Idempotency-Key` created)", body = BookingBody),
        (status = 404, description = "no active property with this id (`not_found`)"),
        (status = 422, description = "this `Idempotency-Key` was used with a different body (`idempotency_key_reused`)"),
    )
)]
async fn create(
    State(state): State<AppState>,
    caller: AuthUser,
    headers: HeaderMap,
    ApiJson(request): ApiJson<BookingRequest>,
) -> Result<(StatusCode, Json<BookingBody>), ApiError> {
    let request = StayRequest::from(request);
    let key = idempotency_key(&headers, &caller.id, &request)?;
    // A retry is answered from what the first attempt created, before any
    // check against today's date or catalog, which may have moved since.
    if let Some(key) = &key {
        if let Some((original, fingerprint)) = state
            .store
            .booking_by_idempotency_key(&key.scoped_key)
            .await?
        {
            return key
                .replay(original, &fingerprint)
                .map(created)
                .ok_or_else(key_reused);
        }
    }
    let now = events::timestamp::now();
    let nights = request.validate(now.date_naive())?;
    let property = state
        .listings
        .get(&state.store, &request.property_id)
        .await?
        .filter(|p| p.active)
        .ok_or_else(|| ApiError::not_found("property"))?;
    let stay = request.priced(&property, nights)?;
    let id = key
        .as_ref()
        .map_or_else(BookingId::generate, IdempotencyKey::booking_id);
    let booking = Booking::request(id, stay, &property, caller.id.clone(), now);
    service_runtime::telemetry::record_booking_id(booking.id.as_str());
    let envelope = Envelope::new(
        SOURCE,
        BookingRequestEvent::Requested(booking.requested_event()),
    );
    let event = OutboxMessage::new(&state.topics.booking_requests, &envelope);
    match state
        .store
        .create_booking(&booking, key.as_ref(), event)
        .await?
    {
        CreateOutcome::Created => Ok(created(booking)),
        // A concurrent retry with the same key won the insert.
        CreateOutcome::Replayed(original) => Ok(created(original)),
        CreateOutcome::KeyReused => Err(key_reused()),
    }
}

/// `201` with the booking: a new one, or the one a retried key created.
fn created(booking: Booking) -> (StatusCode, Json<BookingBody>) {
    (StatusCode::CREATED, Json(BookingBody { booking }))
}

fn key_reused() -> ApiError {
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "idempotency_key_reused",
        "this Idempotency-Key was already used with a different request body",
    )
}

/// The caller's bookings, newest first, a page at a time.
#[utoipa::path(
    get,
    path = "/bookings",
    tag = "bookings",
    security(("bearer" = [])),
    params(params::StatusParam, params::PageParams),
    responses((status = 200, description = "a page of bookings", body = BookingPage))
)]
async fn list(
    State(state): State<AppState>,
    caller: AuthUser,
    ApiQuery(q): ApiQuery<params::StatusParam>,
    ApiQuery(page): ApiQuery<params::PageParams>,
) -> Result<Json<BookingPage>, ApiError> {
    let status = params::status_filter(q.status.as_deref())?;
    let page = page.request(BOOKINGS_LIST)?;
    let bookings = state.store.bookings_of(&caller.id, status, &page).await?;
    Ok(Json(BookingPage {
        next_cursor: params::next_cursor(BOOKINGS_LIST, &bookings),
        bookings: bookings.items,
    }))
}

/// One of the caller's bookings.
#[utoipa::path(
    get,
    path = "/bookings/{id}",
    tag = "bookings",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "the booking's id")),
    responses(
        (status = 200, description = "the booking", body = BookingBody),
        (status = 404, description = "the caller has no booking with this id (`not_found`)"),
    )
)]
async fn show(
    State(state): State<AppState>,
    caller: AuthUser,
    Path(id): Path<BookingId>,
) -> Result<Json<BookingBody>, ApiError> {
    match state.store.booking(&id).await? {
        Some(b) if b.traveler_id == caller.id => Ok(Json(BookingBody { booking: b })),
        _ => Err(ApiError::not_found("booking")),
    }
}

/// The optional body of a cancellation.
#[derive(Deserialize, Default, ToSchema)]
#[schema(example = json!({"reason": "plans changed"}))]
struct CancelBody {
    /// At most 1000 characters; blank means none.
    reason: Option<String>,
}

/// Asks to cancel one of the caller's bookings.
///
/// Answers 202: the request travels to owner-service, which decides; the
/// booking turns CANCELLED when its answer arrives on `booking-updates`.
/// The body is optional.
#[utoipa::path(
    put,
    path = "/bookings/{id}/cancel",
    tag = "bookings",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "the booking's id")),
    request_body(content = Option<CancelBody>, description = "optional: an empty body means no reason"),
    responses(
        (status = 202, description = "the cancellation is requested (`cancellation_requested_at` is set)", body = BookingBody),
        (status = 404, description = "the caller has no booking with this id (`not_found`)"),
        (status = 409, description = "the booking is already REJECTED or CANCELLED (`booking_final`)"),
    )
)]
async fn cancel(
    State(state): State<AppState>,
    caller: AuthUser,
    Path(id): Path<BookingId>,
    OptionalApiJson(body): OptionalApiJson<CancelBody>,
) -> Result<(StatusCode, Json<BookingBody>), ApiError> {
    service_runtime::telemetry::record_booking_id(id.as_str());
    let reason = params::reason(body.reason)?;
    let now = events::timestamp::now();
    let envelope = Envelope::new(
        SOURCE,
        BookingRequestEvent::CancellationRequested(BookingCancellationRequested {
            booking_id: id.clone(),
            traveler_id: caller.id.clone(),
            reason,
            requested_at: now,
        }),
    );
    let event = OutboxMessage::new(&state.topics.booking_requests, &envelope);
    match state
        .store
        .request_cancellation(&id, &caller.id, now, event)
        .await?
    {
        CancelOutcome::Requested(b) | CancelOutcome::AlreadyRequested(b) => {
            Ok((StatusCode::ACCEPTED, Json(BookingBody { booking: b })))
        }
        CancelOutcome::Final(b) => Err(ApiError::conflict(
            "booking_final",
            format!("the booking is already {}", b.status.as_str()),
        )),
        CancelOutcome::NotFound => Err(ApiError::not_found("booking")),
    }
}
