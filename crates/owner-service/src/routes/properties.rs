//! `/api/owners/properties`: list, create, update, delist. Every change is
//! published (through the outbox) to the compacted listings topic.

use axum::{
    extract::{Path, State},
    http::StatusCode,
    Json,
};
use events::{Envelope, PropertyDelisted, PropertyEvent, PropertyId};
use serde::Serialize;
use service_runtime::{
    auth::AuthUser,
    http::{params, ApiError, ApiJson, ApiQuery},
    openapi::schema::ObjectSchema,
    outbox::OutboxMessage,
};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    domain::property::Property,
    routes::property_fields::{NewProperty, PropertyFields},
    store::PROPERTIES_LIST,
    AppState, SOURCE,
};

/// The property endpoints, described by their annotations.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(show, update, delist))
}

/// A page of the caller's properties.
#[derive(Serialize, ToSchema)]
pub struct PropertyPage {
    /// By name, then id.
    pub properties: Vec<Property>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

// The schema of `Property` as served: the fields both services' properties
// share beside the details, and what owner-service adds.
service_runtime::http_schema!(
    Property as "Property",
    refs: service_runtime::openapi::schema::property_schemas,
    ObjectSchema::property()
        .insert_after::<OwnerFields>("version", "created_at")
        .describe(
            "version",
            "Bumped on every change; the catalog keeps the highest version it saw.",
        )
        .over_details("A property as owner-service stores and serves it.")
);

/// The fields owner-service's property has beyond the shared ones. Only
/// describes the API.
#[derive(ToSchema)]
#[allow(dead_code)]
struct OwnerFields {
    created_at: chrono::DateTime<chrono::Utc>,
}

/// `{"property": …}`.
#[derive(Serialize, ToSchema)]
pub struct PropertyBody {
    pub property: Property,
}

/// The caller's properties, by name then id, a page at a time.
#[utoipa::path(
    get,
    path = "/properties",
    tag = "properties",
    security(("bearer" = [])),
    params(params::PageParams),
    responses((status = 200, description = "a page of the caller's properties", body = PropertyPage))
)]
async fn list(
    State(state): State<AppState>,
    caller: AuthUser,
    ApiQuery(page): ApiQuery<params::PageParams>,
) -> Result<Json<PropertyPage>, ApiError> {
    let page = page.request(PROPERTIES_LIST)?;
    let properties = state.store.properties_of(&caller.id, &page).await?;
    Ok(Json(PropertyPage {
        next_cursor: params::next_cursor(PROPERTIES_LIST, &properties),
        properties: properties.items,
    }))
}

/// Lists a new property; it is published to the traveler catalog.
#[utoipa::path(
    post,
    path = "/properties",
    tag = "properties",
    security(("bearer" = [])),
    request_body = NewProperty,
    responses((status = 201, description = "the new property", body = PropertyBody))
)]
async fn create(
    State(state): State<AppState>,
    caller: AuthUser,
    ApiJson(fields): ApiJson<PropertyFields>,
) -> Result<(StatusCode, Json<PropertyBody>), ApiError> {
    let now = events::timestamp::now();
    let mut property = Property::draft(PropertyId::generate(), caller.id, now);
    fields.apply_to(&mut property, true)?;
    let event = listing_event(&state, &property);
    state.store.insert_property(&property, event).await?;
    Ok((StatusCode::CREATED, Json(PropertyBody { property })))
}

/// The caller's property, or 404 — another owner's property does not exist for them.
async fn owned(state: &AppState, caller: &AuthUser, id: &PropertyId) -> Result<Property, ApiError> {
    match state.store.property(id).await? {
        Some(p) if p.owner_id == caller.id => Ok(p),
        _ => Err(ApiError::not_found("property")),
    }
}

/// One of the caller's properties.
#[utoipa::path(
    get,
    path = "/properties/{id}",
    tag = "properties",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "the property's id")),
    responses(
        (status = 200, description = "the property", body = PropertyBody),
        (status = 404, description = "the caller has no property with this id (`not_found`)"),
    )
)]
async fn show(
    State(state): State<AppState>,
    caller: AuthUser,
    Path(id): Path<PropertyId>,
) -> Result<Json<PropertyBody>, ApiError> {
    let property = owned(&state, &caller, &id).await?;
    Ok(Json(PropertyBody { property }))
}

/// Changes some fields of one of the caller's properties; the change is
/// published to the traveler catalog.
#[utoipa::path(
    put,
    path = "/properties/{id}",
    tag = "properties",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "the property's id")),
    request_body = PropertyFields,
    responses(
        (status = 200, description = "the property as changed", body = PropertyBody),
        (status = 404, description = "the caller has no property with this id (`not_found`)"),
        (status = 409, description = "another request changed the property meanwhile (`property_changed`); reload it and retry"),
    )
)]
async fn update(
    State(state): State<AppState>,
    caller: AuthUser,
    Path(id): Path<PropertyId>,
    ApiJson(fields): ApiJson<PropertyFields>,
) -> Result<Json<PropertyBody>, ApiError> {
    let current = owned(&state, &caller, &id).await?;
    let mut next = current.clone();
    fields.apply_to(&mut next, false)?;
    save_change(&state, &current, next).await
}

/// Takes one of the caller's properties off the catalog (`active: false`);
/// it stays readable here. Delisting twice is not an error.
#[utoipa::path(
    delete,
    path = "/properties/{id}",
    tag = "properties",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "the property's id")),
    responses(
        (status = 200, description = "the property, delisted", body = PropertyBody),
        (status = 404, description = "the caller has no property with this id (`not_found`)"),
        (status = 409, description = "another request changed the property meanwhile (`property_changed`); reload it and retry"),
    )
)]
async fn delist(
    State(state): State<AppState>,
    caller: AuthUser,
    Path(id): Path<PropertyId>,
) -> Result<Json<PropertyBody>, ApiError> {
    let current = owned(&state, &caller, &id).await?;
    if !current.active {
        return Ok(Json(PropertyBody { property: current }));
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
) -> Result<Json<PropertyBody>, ApiError> {
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
    Ok(Json(PropertyBody { property: next }))
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
