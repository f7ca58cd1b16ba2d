//! `GET /notifications` (a page of the caller's notifications) and the
//! router that also mounts `GET /notifications/stream` ([`super::stream`]).

use axum::{
    extract::{FromRef, State},
    Json,
};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{stream, Notification, Notifications, LIST};
use crate::{
    auth::AuthUser,
    http::{params, ApiError, ApiQuery},
    identity::IdentityState,
};

/// `GET /notifications` and `GET /notifications/stream` for the
/// authenticated caller.
pub fn routes<S>() -> OpenApiRouter<S>
where
    Notifications: FromRef<S>,
    IdentityState: FromRef<S>,
    S: Clone + Send + Sync + 'static,
{
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(stream::open))
}

/// A page of the caller's notifications.
#[derive(Debug, Serialize, ToSchema)]
pub struct NotificationPage {
    /// Newest first.
    pub notifications: Vec<Notification>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

/// The caller's notifications, newest first, a page at a time.
#[utoipa::path(
    get,
    path = "/notifications",
    tag = "notifications",
    security(("bearer" = [])),
    params(params::PageParams),
    responses((status = 200, description = "a page of notifications", body = NotificationPage))
)]
async fn list(
    State(Notifications { store, .. }): State<Notifications>,
    caller: AuthUser,
    ApiQuery(page): ApiQuery<params::PageParams>,
) -> Result<Json<NotificationPage>, ApiError> {
    let page = page.request(LIST)?;
    let notifications = store.list(&caller.id, &page).await?;
    Ok(Json(NotificationPage {
        next_cursor: params::next_cursor(LIST, &notifications),
        notifications: notifications.items,
    }))
}
