//! The one table of every endpoint under `/api`, and the scene the tests
//! that iterate over endpoints call them on. A new endpoint goes here and
//! every such test (authorization, content types, body limits, weird input)
//! covers it.

use crate::helpers::*;

/// The service that serves an endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    Traveler,
    Owner,
}

/// What an endpoint makes of a request body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Body {
    /// It reads none.
    None,
    /// It needs a JSON object.
    Required,
    /// No body or an empty one is allowed; one that is there must be JSON.
    Optional,
}

/// One endpoint of the contract.
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub service: Service,
    pub method: Method,
    /// Below `/api/travelers` or `/api/owners`; `{pid}` and `{bid}` stand
    /// for the scene's property and booking.
    pub path: &'static str,
    /// The role whose token it needs; `None` for the public ones.
    pub role: Option<Role>,
    pub body: Body,
}

impl Endpoint {
    pub fn is_protected(&self) -> bool {
        self.role.is_some()
    }

    pub fn takes_body(&self) -> bool {
        self.body != Body::None
    }
}

/// Every endpoint under `/api` of both services. Delisting the scene's
/// property comes last, so that a test walking the table in order calls the
/// others on a listed property.
pub fn endpoints() -> Vec<Endpoint> {
    use Body::{None as NoBody, Optional, Required};
    use Service::{Owner, Traveler};
    let (t, o) = (Some(Role::Traveler), Some(Role::Owner));
    let row = |service, method, path, role, body| Endpoint {
        service,
        method,
        path,
        role,
        body,
    };
    vec![
        row(Traveler, Method::POST, "signup", None, Required),
        row(Traveler, Method::POST, "login", None, Required),
        row(Traveler, Method::GET, "me", t, NoBody),
        row(Traveler, Method::GET, "notifications", t, NoBody),
        row(Traveler, Method::GET, "properties", t, NoBody),
        row(Traveler, Method::GET, "properties/{pid}", t, NoBody),
        row(Traveler, Method::POST, "bookings", t, Required),
        row(Traveler, Method::GET, "bookings", t, NoBody),
        row(Traveler, Method::GET, "bookings/{bid}", t, NoBody),
        row(Traveler, Method::PUT, "bookings/{bid}/cancel", t, Optional),
        row(Owner, Method::POST, "signup", None, Required),
        row(Owner, Method::POST, "login", None, Required),
        row(Owner, Method::GET, "me", o, NoBody),
        row(Owner, Method::GET, "notifications", o, NoBody),
        row(Owner, Method::GET, "properties", o, NoBody),
        row(Owner, Method::POST, "properties", o, Required),
        row(Owner, Method::GET, "properties/{pid}", o, NoBody),
        row(Owner, Method::PUT, "properties/{pid}", o, Required),
        row(Owner, Method::GET, "bookings", o, NoBody),
        row(Owner, Method::GET, "bookings/{bid}", o, NoBody),
        row(Owner, Method::PUT, "bookings/{bid}/approve", o, NoBody),
        row(Owner, Method::PUT, "bookings/{bid}/reject", o, Optional),
        row(Owner, Method::PUT, "bookings/{bid}/cancel", o, Optional),
        row(Owner, Method::DELETE, "properties/{pid}", o, NoBody),
    ]
}

/// Both services embedded, with an owner, a traveler, the owner's property
/// in `city` (in the traveler's catalog) and the traveler's pending booking
/// of it (seen by the owner, its request published).
pub struct Scene {
    pub sys: System,
    pub raw: RawClient,
    pub owner: User,
    pub traveler: User,
    pub pid: String,
    pub bid: String,
    /// `/api/travelers` of traveler-service.
    pub t: String,
    /// `/api/owners` of owner-service.
    pub o: String,
    /// The `Authorization` header of the traveler, and of the owner.
    pub t_auth: String,
    pub o_auth: String,
}

impl Scene {
    pub async fn new(city: &str) -> Self {
        let sys = System::embedded().await;
        let (owner, traveler, pid) = sys.listed_property(city).await;
        let bid = str_of(&sys.book(&traveler, &pid, 10, 2).await["id"]);
        sys.wait_owner_sees(&owner, &bid).await;
        wait_requested_published(&sys, &bid).await;
        let (t, o) = (
            format!("{}/api/travelers", sys.traveler),
            format!("{}/api/owners", sys.owner),
        );
        Self {
            sys,
            raw: RawClient::new(),
            t_auth: format!("Bearer {}", traveler.token),
            o_auth: format!("Bearer {}", owner.token),
            owner,
            traveler,
            pid,
            bid,
            t,
            o,
        }
    }

    /// The endpoint's URL for this scene's property and booking.
    pub fn url(&self, e: &Endpoint) -> String {
        let api = match e.service {
            Service::Traveler => &self.t,
            Service::Owner => &self.o,
        };
        let path = e
            .path
            .replace("{pid}", &self.pid)
            .replace("{bid}", &self.bid);
        format!("{api}/{path}")
    }

    /// The token of the scene's user of the endpoint's role.
    pub fn token(&self, e: &Endpoint) -> Option<&str> {
        match e.role? {
            Role::Traveler => Some(&self.traveler.token),
            Role::Owner => Some(&self.owner.token),
        }
    }

    /// The `Authorization` header of the scene's user of the endpoint's role.
    pub fn authorization(&self, e: &Endpoint) -> Option<&str> {
        match e.role? {
            Role::Traveler => Some(&self.t_auth),
            Role::Owner => Some(&self.o_auth),
        }
    }

    /// A body the endpoint would accept, so that a refusal is not for its
    /// content (`None` when it reads no body).
    pub fn sample_body(&self, e: &Endpoint) -> Option<String> {
        let body = match (e.method.as_str(), e.path) {
            (_, "signup") => {
                json!({"name": "Eve", "email": "eve@example.com", "password": "long-enough-1"})
            }
            (_, "login") => json!({"email": "eve@example.com", "password": "long-enough-1"}),
            ("POST", "bookings") => stay(&self.pid, 40, 2, 2),
            ("POST", "properties") => property_body("Porto", 2),
            ("PUT", "properties/{pid}") => json!({"name": "Hijacked"}),
            _ if e.takes_body() => json!({"reason": "x"}),
            _ => return None,
        };
        Some(body.to_string())
    }

    /// Sends exactly `headers` and `body` to the endpoint.
    pub async fn send(&self, e: &Endpoint, headers: &[(&str, &str)], body: Option<Vec<u8>>) -> Raw {
        self.raw
            .send(e.method.clone(), &self.url(e), headers, body)
            .await
    }

    /// `body` as JSON with the endpoint's role's token.
    pub async fn send_json(&self, e: &Endpoint, body: &[u8]) -> Raw {
        self.raw
            .json(e.method.clone(), &self.url(e), self.token(e), body)
            .await
    }
}
