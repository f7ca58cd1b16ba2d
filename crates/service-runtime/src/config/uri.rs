//! What of a connection string may be shown ([`redact_uri`]) and a driver's
//! message with its password taken out ([`scrub_uri_password`]): used by
//! the configuration's errors and by [`crate::mongo`]; imports nothing of
//! the runtime.

/// What of a connection string may be shown: `uri` with the password of
/// its `user:password@` part, and the values of options that can carry a
/// secret (a key password, an AWS session token in
/// `authMechanismProperties`), replaced by `***`. Scheme, user name, hosts,
/// database and other options stay, so a message still says which server
/// was meant.
///
/// The user part ends at the last `@`, so a password with an unescaped `/`,
/// `?` or `@` (invalid, but typed) is still hidden whole.
pub fn redact_uri(uri: &str) -> String {
    let (scheme, rest) = match uri.find("://") {
        Some(i) => (&uri[..i + 3], &uri[i + 3..]),
        None => ("", uri),
    };
    let (user, rest) = match rest.rfind('@') {
        Some(i) => {
            let userinfo = &rest[..i];
            let user = match userinfo.split_once(':') {
                Some((name, _password)) => format!("{name}:***@"),
                None => format!("{userinfo}@"),
            };
            (user, &rest[i + 1..])
        }
        None => (String::new(), rest),
    };
    let (location, query) = match rest.split_once('?') {
        Some((l, q)) => (l, Some(q)),
        None => (rest, None),
    };
    let mut out = format!("{scheme}{user}{location}");
    if let Some(query) = query {
        out.push('?');
        let options: Vec<String> = query
            .split('&')
            .map(|option| match option.split_once('=') {
                Some((key, _)) if is_secret_option(key) => format!("{key}=***"),
                _ => option.to_string(),
            })
            .collect();
        out.push_str(&options.join("&"));
    }
    out
}

/// Connection-string options whose value can be a secret.
fn is_secret_option(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    key.contains("password")
        || key.contains("secret")
        || key.contains("token")
        || key == "authmechanismproperties"
}

/// `text` (say, a driver's error about `uri`) with the password of `uri`,
/// as written and percent-decoded, replaced by `***`.
pub fn scrub_uri_password(text: &str, uri: &str) -> String {
    let rest = uri.split_once("://").map_or(uri, |(_, rest)| rest);
    let Some((userinfo, _)) = rest.rsplit_once('@') else {
        return text.to_string();
    };
    let Some((_, password)) = userinfo.split_once(':') else {
        return text.to_string();
    };
    let mut out = text.to_string();
    for form in [password.to_string(), percent_decode(password)] {
        if !form.is_empty() {
            out = out.replace(&form, "***");
        }
    }
    out
}

/// `%XX` escapes decoded; anything malformed is kept as written.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (
            bytes[i],
            bytes.get(i + 1).copied().and_then(hex),
            bytes.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(hi), Some(lo)) => {
                out.push((hi * 16 + lo) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacted_uris_keep_what_identifies_the_server() {
        assert_eq!(
            redact_uri("mongodb://app:pw@a:27017,b:27017/owner?replicaSet=rs0&authSource=admin"),
            "mongodb://app:***@a:27017,b:27017/owner?replicaSet=rs0&authSource=admin"
        );
        assert_eq!(
            redact_uri("mongodb+srv://app@cluster.example/?tlsCertificateKeyFilePassword=pw&authMechanismProperties=AWS_SESSION_TOKEN:tok"),
            "mongodb+srv://app@cluster.example/?tlsCertificateKeyFilePassword=***&authMechanismProperties=***"
        );
        assert_eq!(
            redact_uri("mongodb://localhost:27017"),
            "mongodb://localhost:27017"
        );
    }

    #[test]
    fn a_driver_message_loses_the_password_as_written_and_decoded() {
        let uri = "mongodb://app:p%40ss%2Fword@db.internal/";
        let text = "bad address app:p@ss/word@db.internal, raw p%40ss%2Fword";
        let scrubbed = scrub_uri_password(text, uri);
        assert!(!scrubbed.contains("p@ss/word"), "{scrubbed}");
        assert!(!scrubbed.contains("p%40ss%2Fword"), "{scrubbed}");
        assert!(scrubbed.contains("db.internal"), "{scrubbed}");
        assert_eq!(
            scrub_uri_password("no secret here", "mongodb://h/"),
            "no secret here"
        );
    }
}
