//! `/api/owners/properties`: list, create, update, delist. Every change is
//! published (through the outbox) to the compacted listings topic.

use axum::{
    extract::{Path, State},
    http::StatusCode,
    routing::get,
    Json, Router,
};
use events::{Envelope, PropertyDelisted, PropertyDetails, PropertyEvent};
use serde_json::{json, Value};
use service_runtime::{
    auth::AuthUser,
    http::{params, ApiError, ApiJson, ApiQuery},
    outbox::OutboxMessage,
};
use uuid::Uuid;

use crate::{
    domain::property::{Property, PropertyFields},
    store::PROPERTIES_LIST,
    AppState, SOURCE,
};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/properties", get(list).post(create))
        .route("/properties/{id}", get(show).put(update).delete(delist))
}

/// `GET /properties?limit=&cursor=`: a page of the caller's properties,
/// by name then id.
async fn list(
    State(state): State<AppState>,
    caller: AuthUser,
    ApiQuery(page): ApiQuery<params::PageParams>,
) -> Result<Json<Value>, ApiError> {
    let page = page.request(PROPERTIES_LIST)?;
    let properties = state.store.properties_of(&caller.id, &page).await?;
    Ok(Json(params::page_json(
        "properties",
        PROPERTIES_LIST,
        properties,
    )))
}

async fn create(
    State(state): State<AppState>,
    caller: AuthUser,
    ApiJson(fields): ApiJson<PropertyFields>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let now = events::timestamp::now();
    let mut property = Property {
        id: Uuid::now_v7().to_string(),
        owner_id: caller.id,
        // Filled from the request by `apply_to`; these are the defaults of
        // the optional fields.
        details: PropertyDetails {
            name: String::new(),
            city: String::new(),
            country: String::new(),
            address: None,
            description: None,
            price_per_night_cents: 0,
            cleaning_fee_cents: 0,
            service_fee_cents: 0,
            currency: "USD".into(),
            max_guests: 0,
            bedrooms: None,
            bathrooms: None,
            amenities: Vec::new(),
        },
        active: true,
        version: 1,
        created_at: now,
        updated_at: now,
    };
    fields.apply_to(&mut property, true)?;
    let event = listing_event(&state, &property);
    state.store.insert_property(&property, event).await?;
    Ok((StatusCode::CREATED, Json(json!({ "property": property }))))
}

/// The caller's property, or 404 — another owner's property does not exist for them.
async fn owned(state: &AppState, caller: &AuthUser, id: &str) -> Result<Property, ApiError> {
    match state.store.property(id).await? {
        Some(p) if p.owner_id == caller.id => Ok(p),
        _ => Err(ApiError::not_found("property")),
    }
}

async fn show(
    State(state): State<AppState>,
    caller: AuthUser,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let property = owned(&state, &caller, &id).await?;
    Ok(Json(json!({ "property": property })))
}

async fn update(
    State(state): State<AppState>,
    caller: AuthUser,
    Path(id): Path<String>,
    ApiJson(fields): ApiJson<PropertyFields>,
) -> Result<Json<Value>, ApiError> {
    let current = owned(&state, &caller, &id).await?;
    let mut next = current.clone();
    fields.apply_to(&mut next, false)?;
    save_change(&state, &current, next).await
}

async fn delist(
    State(state): State<AppState>,
    caller: AuthUser,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let current = owned(&state, &caller, &id).await?;
    if !current.active {
        return Ok(Json(json!({ "property": current })));
    }
    let next = Property {
        active: false,
        ..current.clone()
    };
    save_change(&state, &current, next).await
}

/// Saves `next` over `current` (optimistically: 409 if someone else changed
/// it in between) with the event describing it.
async fn save_change(
    state: &AppState,
    current: &Property,
    mut next: Property,
) -> Result<Json<Value>, ApiError> {
    next.version = current.version + 1;
    next.updated_at = events::timestamp::now();
    let event = listing_event(state, &next);
    if !state
        .store
        .update_property(&next, current.version, event)
        .await?
    {
        return Err(ApiError::conflict(
            "property_changed",
            "the property was changed by another request; reload it and retry",
        ));
    }
    state.property_cache.invalidate(&next.id);
    Ok(Json(json!({ "property": next })))
}

fn listing_event(state: &AppState, p: &Property) -> OutboxMessage {
    let payload = if p.active {
        PropertyEvent::Upserted(p.snapshot())
    } else {
        PropertyEvent::Delisted(PropertyDelisted {
            property_id: p.id.clone(),
            owner_id: p.owner_id.clone(),
            version: p.version,
            delisted_at: p.updated_at,
        })
    };
    OutboxMessage::new(
        &state.topics.property_listings,
        &Envelope::new(SOURCE, payload),
    )
}
