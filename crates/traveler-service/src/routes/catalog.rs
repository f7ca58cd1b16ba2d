//! `/api/travelers/properties`: browsing the catalog of active properties,
//! and what a stay would cost.

use axum::{
    extract::{Path, State},
    routing::get,
    Json, Router,
};
use serde::Deserialize;
use serde_json::{json, Value};
use service_runtime::{
    auth::AuthUser,
    http::{params, ApiError, ApiQuery},
};

use crate::{
    domain::{
        booking::{total_price_cents, BookingRequest},
        catalog::CatalogQuery,
    },
    store::CATALOG_LIST,
    AppState,
};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/properties", get(search))
        .route("/properties/{id}", get(show))
        .route("/properties/{id}/quote", get(quote))
}

#[derive(Deserialize)]
struct SearchQuery {
    city: Option<String>,
    guests: Option<String>,
}

/// `GET /properties?city=&guests=&limit=&cursor=`: a page of the active
/// catalog, by name then id.
async fn search(
    State(state): State<AppState>,
    _caller: AuthUser,
    ApiQuery(q): ApiQuery<SearchQuery>,
    ApiQuery(page): ApiQuery<params::PageParams>,
) -> Result<Json<Value>, ApiError> {
    let page = page.request(CATALOG_LIST)?;
    let guests = match q.guests.as_deref().map(str::trim).filter(|g| !g.is_empty()) {
        None => None,
        Some(g) => Some(g.parse::<u32>().ok().filter(|n| *n >= 1).ok_or_else(|| {
            ApiError::invalid_field("guests", "must be a whole number of at least 1")
        })?),
    };
    let query = CatalogQuery {
        city: q
            .city
            .map(|c| c.trim().to_string())
            .filter(|c| !c.is_empty()),
        guests,
    };
    let properties = state.store.search_listings(&query, &page).await?;
    Ok(Json(params::page_json(
        "properties",
        CATALOG_LIST,
        properties,
    )))
}

async fn show(
    State(state): State<AppState>,
    _caller: AuthUser,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    match state.store.listing(&id).await? {
        Some(p) if p.active => Ok(Json(json!({ "property": p }))),
        _ => Err(ApiError::not_found("property")),
    }
}

#[derive(Deserialize)]
struct QuoteQuery {
    check_in: chrono::NaiveDate,
    check_out: chrono::NaiveDate,
    guests: Option<u32>,
}

/// `GET /properties/{id}/quote?check_in=&check_out=&guests=`: the price a
/// booking of these nights would get, by the same rules and arithmetic as
/// `POST /bookings` (so the traveler app never prices a stay differently),
/// with the parts it adds up. Invalid dates or guests: the same 400.
async fn quote(
    State(state): State<AppState>,
    _caller: AuthUser,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<QuoteQuery>,
) -> Result<Json<Value>, ApiError> {
    let request = BookingRequest {
        property_id: id,
        check_in: q.check_in,
        check_out: q.check_out,
        guests: q.guests.unwrap_or(1),
    };
    let nights = request.validate(events::timestamp::now().date_naive())?;
    let property = match state.store.listing(&request.property_id).await? {
        Some(p) if p.active => p,
        _ => return Err(ApiError::not_found("property")),
    };
    request.validate_for(&property)?;
    let d = &property.details;
    Ok(Json(json!({ "quote": {
        "property_id": property.id,
        "nights": nights,
        "price_per_night_cents": d.price_per_night_cents,
        "nights_cents": i64::from(nights) * d.price_per_night_cents,
        "cleaning_fee_cents": d.cleaning_fee_cents,
        "service_fee_cents": d.service_fee_cents,
        "total_price_cents": total_price_cents(&property, nights),
        "currency": d.currency,
    }})))
}
