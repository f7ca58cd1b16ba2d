//! `/api/travelers/properties`: browsing the catalog of active properties,
//! and what a stay would cost.

use axum::{
    extract::{Path, State},
    Json,
};
use events::PropertyId;
use serde::{Deserialize, Serialize};
use service_runtime::{
    auth::AuthUser,
    http::{params, ApiError, ApiQuery},
    openapi::schema::ObjectSchema,
};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    domain::{
        booking::StayRequest,
        catalog::{CatalogProperty, CatalogQuery},
    },
    store::CATALOG_LIST,
    AppState,
};

/// The catalog endpoints, described by their annotations.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(search))
        .routes(routes!(show))
        .routes(routes!(quote))
}

/// A page of the catalog.
#[derive(Serialize, ToSchema)]
pub struct CatalogPage {
    /// By name, then id.
    pub properties: Vec<CatalogProperty>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

// The schema of `CatalogProperty` as served: the fields both services'
// properties share beside the details.
service_runtime::http_schema!(
    CatalogProperty as "CatalogProperty",
    refs: service_runtime::openapi::schema::property_schemas,
    ObjectSchema::property()
        .describe(
            "version",
            "The owner-side version this copy reflects; older events are ignored.",
        )
        .over_details("A property as travelers see it.")
);

/// `{"property": …}`.
#[derive(Serialize, ToSchema)]
pub struct CatalogPropertyBody {
    pub property: CatalogProperty,
}

/// What a stay would cost, and the parts it adds up.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"property_id": "0193a5d0-3333-7000-8000-000000000003", "nights": 3, "price_per_night_cents": 12000, "nights_cents": 36000, "cleaning_fee_cents": 4000, "service_fee_cents": 2000, "total_price_cents": 42000, "currency": "EUR"}))]
pub struct Quote {
    #[schema(value_type = String)]
    pub property_id: PropertyId,
    pub nights: u32,
    pub price_per_night_cents: i64,
    /// `nights` × `price_per_night_cents`.
    pub nights_cents: i64,
    pub cleaning_fee_cents: i64,
    pub service_fee_cents: i64,
    /// What `POST /bookings` would charge for these nights.
    pub total_price_cents: i64,
    pub currency: String,
}

/// `{"quote": …}`.
#[derive(Serialize, ToSchema)]
pub struct QuoteBody {
    pub quote: Quote,
}

/// `?city=&guests=`, beside the page parameters.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct SearchQuery {
    /// Only properties in this city (exact, after trimming); empty: any.
    city: Option<String>,
    /// Only properties that host at least this many guests.
    #[param(value_type = Option<i64>, minimum = 1, maximum = 4294967295.0)]
    guests: Option<String>,
}

/// A `guests` parameter: absent or empty means none given.
fn guests_param(raw: Option<&str>) -> Result<Option<u32>, ApiError> {
    match raw.map(str::trim).filter(|g| !g.is_empty()) {
        None => Ok(None),
        Some(g) => g
            .parse::<u32>()
            .ok()
            .filter(|n| *n >= 1)
            .map(Some)
            .ok_or_else(|| {
                ApiError::invalid_field("guests", "must be a whole number of at least 1")
            }),
    }
}

/// Searches the catalog of active properties.
#[utoipa::path(
    get,
    path = "/properties",
    tag = "catalog",
    security(("bearer" = [])),
    params(SearchQuery, params::PageParams),
    responses((status = 200, description = "a page of the active catalog, by name then id", body = CatalogPage))
)]
async fn search(
    State(state): State<AppState>,
    _caller: AuthUser,
    ApiQuery(q): ApiQuery<SearchQuery>,
    ApiQuery(page): ApiQuery<params::PageParams>,
) -> Result<Json<CatalogPage>, ApiError> {
    let page = page.request(CATALOG_LIST)?;
    let guests = guests_param(q.guests.as_deref())?;
    let query = CatalogQuery {
        city: q
            .city
            .map(|c| c.trim().to_string())
            .filter(|c| !c.is_empty()),
        guests,
    };
    let properties = state.store.search_listings(&query, &page).await?;
    Ok(Json(CatalogPage {
        next_cursor: params::next_cursor(CATALOG_LIST, &properties),
        properties: properties.items,
    }))
}

/// One active property of the catalog.
#[utoipa::path(
    get,
    path = "/properties/{id}",
    tag = "catalog",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "the property's id")),
    responses(
        (status = 200, description = "the property", body = CatalogPropertyBody),
        (status = 404, description = "no active property with this id (`not_found`)"),
    )
)]
async fn show(
    State(state): State<AppState>,
    _caller: AuthUser,
    Path(id): Path<PropertyId>,
) -> Result<Json<CatalogPropertyBody>, ApiError> {
    match state.store.listing(&id).await? {
        Some(p) if p.active => Ok(Json(CatalogPropertyBody { property: p })),
        _ => Err(ApiError::not_found("property")),
    }
}

/// `?check_in=&check_out=&guests=`.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct QuoteQuery {
    /// The first night, not before today.
    check_in: chrono::NaiveDate,
    /// The day of departure: 1 to 365 nights after `check_in`.
    check_out: chrono::NaiveDate,
    /// Default 1 (also when empty); at most the property's `max_guests`.
    #[param(value_type = Option<i64>, minimum = 1, maximum = 4294967295.0)]
    guests: Option<String>,
}

/// Prices a stay.
///
/// The price a booking of these nights would get, by the same rules and
/// arithmetic as `POST /bookings` (so the traveler app never prices a stay
/// differently), with the parts it adds up. Invalid dates or guests: the
/// same 400.
#[utoipa::path(
    get,
    path = "/properties/{id}/quote",
    tag = "catalog",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "the property's id"), QuoteQuery),
    responses(
        (status = 200, description = "the price and its parts", body = QuoteBody),
        (status = 404, description = "no active property with this id (`not_found`)"),
    )
)]
async fn quote(
    State(state): State<AppState>,
    _caller: AuthUser,
    Path(id): Path<PropertyId>,
    ApiQuery(q): ApiQuery<QuoteQuery>,
) -> Result<Json<QuoteBody>, ApiError> {
    let request = StayRequest {
        property_id: id,
        check_in: q.check_in,
        check_out: q.check_out,
        guests: guests_param(q.guests.as_deref())?.unwrap_or(1),
    };
    let nights = request.validate(events::timestamp::now().date_naive())?;
    let property = match state.store.listing(&request.property_id).await? {
        Some(p) if p.active => p,
        _ => return Err(ApiError::not_found("property")),
    };
    let stay = request.priced(&property, nights)?;
    let d = &property.details;
    Ok(Json(QuoteBody {
        quote: Quote {
            total_price_cents: stay.total_price_cents,
            property_id: property.id.clone(),
            nights,
            price_per_night_cents: d.price_per_night_cents,
            nights_cents: i64::from(nights) * d.price_per_night_cents,
            cleaning_fee_cents: d.cleaning_fee_cents,
            service_fee_cents: d.service_fee_cents,
            currency: d.currency.clone(),
        },
    }))
}
