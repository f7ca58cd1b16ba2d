//! Bounded lists: every list endpoint answers one page at a time.
//!
//! A client asks for `limit` items (default [`DEFAULT_LIMIT`], at most
//! [`MAX_LIMIT`]) and gets, beside them, an opaque `next_cursor` (`null` on
//! the last page) to ask for the next page. Pages are keyset pages: a cursor
//! holds the sort key and id of the last item served, and the next page is
//! "the items after that one in list order". Unlike an offset, that stays
//! right while new items arrive or old ones change between two requests: no
//! item is served twice and none that existed before the first page is
//! skipped. Every list orders by a string key and then by id, which makes the
//! order total; time-ordered lists use the fixed-width timestamps of
//! [`events::timestamp`], whose strings sort in time order.
//!
//! Stores take a [`PageRequest`] and return a [`Page`]; the HTTP layer turns
//! query parameters into the first and a page's [`Page::next`] into the
//! second with [`List::decode`] and [`List::encode`].

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use serde::{Deserialize, Serialize};

/// Items on a page when the client does not say.
pub const DEFAULT_LIMIT: usize = 50;
/// Most items one page holds: bounds what one request makes the database
/// read and the service encode.
pub const MAX_LIMIT: usize = 200;

/// Longest cursor accepted (a name of at most a few hundred bytes and an id
/// fit easily); a longer one was not issued here.
const MAX_CURSOR_LEN: usize = 1024;

/// How a list is ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    /// By creation time, newest first, then by id descending.
    NewestFirst,
    /// By name, then by id, both ascending (byte order, as MongoDB compares
    /// strings without a collation).
    ByName,
}

/// Where a page starts: just after the item with this sort key and id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct After {
    /// The item's sort key: its `created_at` timestamp or its name.
    pub key: String,
    pub id: String,
}

/// Which page of a list to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    /// At most this many items (1 to [`MAX_LIMIT`]).
    pub limit: usize,
    /// `None` for the first page.
    pub after: Option<After>,
}

impl Default for PageRequest {
    /// The first page with the default limit.
    fn default() -> Self {
        Self {
            limit: DEFAULT_LIMIT,
            after: None,
        }
    }
}

impl PageRequest {
    /// The first page of `limit` items.
    pub fn first(limit: usize) -> Self {
        Self { limit, after: None }
    }

    /// Whether an item with this sort key and id belongs after the cursor in
    /// `order` (always, on the first page). In-memory adapters filter with
    /// it; the MongoDB adapters express the same with
    /// [`crate::mongo::page_filter`].
    pub fn admits(&self, order: Order, key: &str, id: &str) -> bool {
        let Some(after) = &self.after else {
            return true;
        };
        let item = (key, id);
        let cursor = (after.key.as_str(), after.id.as_str());
        match order {
            Order::NewestFirst => item < cursor,
            Order::ByName => item > cursor,
        }
    }

    /// How many items an adapter reads: one more than the page, which tells
    /// whether another page follows without a second query.
    pub fn fetch(&self) -> usize {
        self.limit + 1
    }
}

/// One page of a list, in list order.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Where the next page starts; `None` on the last page.
    pub next: Option<After>,
}

impl<T> Page<T> {
    /// A page from up to [`PageRequest::fetch`] items read in list order:
    /// keeps `limit` of them, and if there were more, the next page starts
    /// after the last one kept.
    pub fn from_fetched(
        mut items: Vec<T>,
        request: &PageRequest,
        key_of: impl Fn(&T) -> After,
    ) -> Self {
        let more = items.len() > request.limit;
        items.truncate(request.limit);
        let next = if more { items.last().map(key_of) } else { None };
        Self { items, next }
    }

    /// The page of `all` (every matching item, in any order) that `request`
    /// asks for: sorts them in `order`, skips up to the cursor and keeps
    /// `limit`. For in-memory adapters.
    pub fn of_all(
        mut all: Vec<T>,
        request: &PageRequest,
        order: Order,
        key_of: impl Fn(&T) -> After,
    ) -> Self {
        all.retain(|item| {
            let k = key_of(item);
            request.admits(order, &k.key, &k.id)
        });
        all.sort_by_cached_key(|item| {
            let k = key_of(item);
            (k.key, k.id)
        });
        if order == Order::NewestFirst {
            all.reverse();
        }
        all.truncate(request.fetch());
        Self::from_fetched(all, request, key_of)
    }
}

/// Why a `limit` or `cursor` parameter was refused; the HTTP layer answers
/// 400 naming [`PagingError::field`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct PagingError {
    /// `limit` or `cursor`.
    pub field: &'static str,
    pub message: String,
}

/// A paged list: its name (so a cursor of one list is refused by another)
/// and its order (which decides what a valid sort key is).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct List {
    pub name: &'static str,
    pub order: Order,
}

/// What a cursor holds before it is encoded.
#[derive(Serialize, Deserialize)]
struct CursorBody {
    /// The list it was issued for.
    l: String,
    /// Sort key and id of the last item served.
    k: String,
    i: String,
}

impl List {
    /// The list `name`, newest first (by creation time, then id).
    pub const fn newest_first(name: &'static str) -> Self {
        Self {
            name,
            order: Order::NewestFirst,
        }
    }

    /// The list `name`, by name then id.
    pub const fn by_name(name: &'static str) -> Self {
        Self {
            name,
            order: Order::ByName,
        }
    }

    /// The cursor a client sends to get the page after `after`: base64url
    /// of a small JSON document. Opaque to clients: its content may change.
    pub fn encode(&self, after: &After) -> String {
        let body = CursorBody {
            l: self.name.to_string(),
            k: after.key.clone(),
            i: after.id.clone(),
        };
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&body).expect("a cursor serialises"))
    }

    /// Reads `limit` and `cursor` query parameters; absent or empty ones
    /// mean the default limit and the first page, as every other empty
    /// query parameter means "not given".
    pub fn request(
        &self,
        limit: Option<&str>,
        cursor: Option<&str>,
    ) -> Result<PageRequest, PagingError> {
        let limit = match limit.map(str::trim).filter(|l| !l.is_empty()) {
            None => DEFAULT_LIMIT,
            Some(raw) => raw
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=MAX_LIMIT).contains(n))
                .ok_or_else(|| PagingError {
                    field: "limit",
                    message: format!("must be a whole number from 1 to {MAX_LIMIT}"),
                })?,
        };
        let after = match cursor.map(str::trim).filter(|c| !c.is_empty()) {
            None => None,
            Some(raw) => Some(self.decode(raw)?),
        };
        Ok(PageRequest { limit, after })
    }

    /// Reads a cursor this list issued; anything else is refused.
    pub fn decode(&self, raw: &str) -> Result<After, PagingError> {
        let refused = || PagingError {
            field: "cursor",
            message: format!(
                "is not a cursor of this list; send the next_cursor of a previous page of {}",
                self.name
            ),
        };
        if raw.len() > MAX_CURSOR_LEN {
            return Err(refused());
        }
        let bytes = URL_SAFE_NO_PAD.decode(raw).map_err(|_| refused())?;
        let body: CursorBody = serde_json::from_slice(&bytes).map_err(|_| refused())?;
        let key_ok = match self.order {
            // Only the exact fixed-width form sorts in time order.
            Order::NewestFirst => chrono::DateTime::parse_from_rfc3339(&body.k)
                .is_ok_and(|t| events::timestamp::format(&t.with_timezone(&chrono::Utc)) == body.k),
            Order::ByName => true,
        };
        if body.l != self.name || !key_ok || body.i.is_empty() {
            return Err(refused());
        }
        Ok(After {
            key: body.k,
            id: body.i,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOOKINGS: List = List {
        name: "bookings",
        order: Order::NewestFirst,
    };
    const PROPERTIES: List = List {
        name: "properties",
        order: Order::ByName,
    };

    fn after(key: &str, id: &str) -> After {
        After {
            key: key.into(),
            id: id.into(),
        }
    }

    #[test]
    fn cursors_round_trip_and_are_url_safe() {
        let a = after("2031-01-01T09:00:00.123Z", "b-1");
        let raw = BOOKINGS.encode(&a);
        assert!(raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        assert_eq!(BOOKINGS.decode(&raw).unwrap(), a);
        let named = after("Casa / Azul & ção?", "p-1");
        assert_eq!(
            PROPERTIES.decode(&PROPERTIES.encode(&named)).unwrap(),
            named
        );
    }

    #[test]
    fn foreign_or_malformed_cursors_are_refused_naming_the_cursor() {
        let of_properties = PROPERTIES.encode(&after("2031-01-01T09:00:00.123Z", "p"));
        let not_a_time = BOOKINGS.encode(&after("Casa", "b"));
        let loose_time = BOOKINGS.encode(&after("2031-01-01T09:00:00Z", "b"));
        let no_id = BOOKINGS.encode(&after("2031-01-01T09:00:00.123Z", ""));
        let long = "A".repeat(MAX_CURSOR_LEN + 1);
        for bad in [
            "%%%",
            "bm90IGpzb24",
            "e30",
            of_properties.as_str(),
            not_a_time.as_str(),
            loose_time.as_str(),
            no_id.as_str(),
            long.as_str(),
        ] {
            let err = BOOKINGS.decode(bad).unwrap_err();
            assert_eq!(err.field, "cursor", "{bad}");
        }
    }

    #[test]
    fn limit_defaults_and_is_bounded() {
        assert_eq!(
            BOOKINGS.request(None, None).unwrap(),
            PageRequest::first(DEFAULT_LIMIT)
        );
        assert_eq!(BOOKINGS.request(Some(""), Some(" ")).unwrap().limit, 50);
        assert_eq!(BOOKINGS.request(Some("1"), None).unwrap().limit, 1);
        assert_eq!(BOOKINGS.request(Some("200"), None).unwrap().limit, 200);
        for bad in ["0", "201", "-1", "ten", "1.5", "99999999999999999999999"] {
            assert_eq!(
                BOOKINGS.request(Some(bad), None).unwrap_err().field,
                "limit",
                "{bad}"
            );
        }
    }

    #[test]
    fn pages_of_all_items_walk_every_item_once_in_order() {
        let items: Vec<(String, String)> = [("b", "2"), ("a", "9"), ("b", "1"), ("c", "0")]
            .iter()
            .map(|(k, i)| (k.to_string(), i.to_string()))
            .collect();
        let key = |x: &(String, String)| after(&x.0, &x.1);
        for (order, expected) in [
            (Order::ByName, ["a9", "b1", "b2", "c0"]),
            (Order::NewestFirst, ["c0", "b2", "b1", "a9"]),
        ] {
            let mut request = PageRequest::first(3);
            let mut seen = Vec::new();
            loop {
                let page = Page::of_all(items.clone(), &request, order, key);
                seen.extend(page.items.iter().map(|(k, i)| format!("{k}{i}")));
                match page.next {
                    Some(next) => request.after = Some(next),
                    None => break,
                }
            }
            assert_eq!(seen, expected);
        }
        // Exactly `limit` items left: no next page.
        let page = Page::of_all(items.clone(), &PageRequest::first(4), Order::ByName, key);
        assert_eq!((page.items.len(), page.next), (4, None));
    }
}
