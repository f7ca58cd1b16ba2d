//! `/api/travelers/properties`: browsing the catalog of active properties.

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

use crate::{domain::catalog::CatalogQuery, store::CATALOG_LIST, AppState};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/properties", get(search))
        .route("/properties/{id}", get(show))
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
