//! Tokens made by hand: base64url, and every kind of bad credential.

use crate::helpers::*;

pub const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

pub fn b64url_encode(bytes: &[u8]) -> String {
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..=chunk.len() {
            out.push(B64[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

pub fn b64url_decode(s: &str) -> Vec<u8> {
    let (mut bits, mut n, mut out) = (0u32, 0u32, Vec::new());
    for c in s.bytes() {
        let v = B64
            .iter()
            .position(|&x| x == c)
            .expect("base64url character") as u32;
        bits = (bits << 6) | v;
        n += 6;
        if n >= 8 {
            n -= 8;
            out.push((bits >> n) as u8);
            bits &= (1 << n) - 1;
        }
    }
    out
}

/// A well-formed `Authorization` of the wrong scheme.
const BASIC: &str = "Basic dXNlcjpwYXNzd29yZA==";

/// Every kind of bad credential for an endpoint of `role`, with the expected
/// status and problem code. `user` is a real user of `role`; `other_role` a
/// valid token of the other role.
pub fn bad_credentials(
    user: &User,
    role: Role,
    other_role: &User,
) -> Vec<(&'static str, Option<String>, u16, &'static str)> {
    let keys = JwtKeys::new(JWT_SECRET.as_bytes());
    let past = Utc::now().timestamp() - 120;
    let expired = keys.issue_with_expiry(&user.id, role, past);
    let forged = JwtKeys::new(b"a-completely-different-secret-0123456789").issue(&user.id, role);

    // The other role's real token with the role claim rewritten: the signature no longer matches.
    let parts: Vec<&str> = other_role.token.split('.').collect();
    let mut claims: Value = serde_json::from_slice(&b64url_decode(parts[1])).expect("claims");
    claims["role"] = json!(match role {
        Role::Traveler => "traveler",
        Role::Owner => "owner",
    });
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        b64url_encode(claims.to_string().as_bytes()),
        parts[2]
    );
    // The same claims, unsigned (`alg: none`).
    let unsigned = format!(
        "{}.{}.",
        b64url_encode(br#"{"alg":"none","typ":"JWT"}"#),
        b64url_encode(claims.to_string().as_bytes())
    );

    let bearer = |token: &str| Some(format!("Bearer {token}"));
    let invalid = |what, auth| (what, auth, 401, "invalid_token");
    vec![
        ("no token", None, 401, "missing_token"),
        invalid("garbage token", bearer("not-a-jwt")),
        invalid("basic auth", Some(BASIC.into())),
        invalid("bare token without scheme", Some(user.token.clone())),
        ("expired token", bearer(&expired), 401, "token_expired"),
        invalid("token signed with another secret", bearer(&forged)),
        invalid("tampered role claim", bearer(&tampered)),
        invalid("unsigned token", bearer(&unsigned)),
        ("other role", bearer(&other_role.token), 403, "wrong_role"),
    ]
}
