//! `/api/travelers/bookings`: create a booking (published to
//! `booking-requests` through the outbox), list and read one's own, and ask
//! to cancel. Another traveler's booking is 404.

use axum::{
    extract::{Path, State},
    http::{HeaderMap, StatusCode},
    Json,
};
use events::{BookingCancellationRequested, BookingRequestEvent, BookingStatus, Envelope};
use serde::{Deserialize, Serialize};
use service_runtime::{
    auth::AuthUser,
    http::{params, ApiError, ApiJson, ApiQuery, OptionalApiJson},
    outbox::OutboxMessage,
};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::{
    domain::booking::{total_price_cents, Booking, BookingRequest},
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

/// Longest `Idempotency-Key` accepted.
const MAX_IDEMPOTENCY_KEY_LEN: usize = 255;

fn idempotency_key(
    headers: &HeaderMap,
    traveler_id: &str,
    request: &BookingRequest,
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
        .get(&state.store, request.property_id.trim())
        .await?
        .filter(|p| p.active)
        .ok_or_else(|| ApiError::not_found("property"))?;
    request.validate_for(&property)?;

    let booking = Booking {
        id: key
            .as_ref()
            .map_or_else(|| Uuid::now_v7().to_string(), IdempotencyKey::booking_id),
        property_id: property.id.clone(),
        property_name: property.details.name.clone(),
        owner_id: property.owner_id.clone(),
        traveler_id: caller.id.clone(),
        check_in: request.check_in,
        check_out: request.check_out,
        nights,
        guests: request.guests,
        total_price_cents: total_price_cents(&property, nights),
        currency: property.details.currency.clone(),
        status: BookingStatus::Pending,
        status_reason: None,
        version: 0,
        cancellation_requested_at: None,
        created_at: now,
        updated_at: now,
    };
    service_runtime::telemetry::record_booking_id(&booking.id);
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
    Path(id): Path<String>,
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
    Path(id): Path<String>,
    OptionalApiJson(body): OptionalApiJson<CancelBody>,
) -> Result<(StatusCode, Json<BookingBody>), ApiError> {
    service_runtime::telemetry::record_booking_id(&id);
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
