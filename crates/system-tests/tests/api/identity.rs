//! Sign-up, login and `me` on both services.

use crate::helpers::*;

/// `POST {signup}` with this name, email and password.
async fn sign_up(sys: &System, signup: &str, name: &str, email: &str, password: &str) -> Reply {
    let body = json!({"name": name, "email": email, "password": password});
    sys.http.post(signup, None, body).await
}

/// `POST {login}` with this email and password.
async fn log_in(sys: &System, login: &str, email: &str, password: &str) -> Reply {
    let body = json!({"email": email, "password": password});
    sys.http.post(login, None, body).await
}

#[tokio::test]
async fn identity_signup_login_and_me_follow_the_contract_on_both_services() {
    let sys = System::embedded().await;
    for (role, api) in sys.apis() {
        let (signup, login, me) = (
            format!("{api}/signup"),
            format!("{api}/login"),
            format!("{api}/me"),
        );
        let email = format!("{}@Example.COM", unique("Ada"));
        let lower = email.to_lowercase();

        // Sign-up: 201 {token, user}, name trimmed, email normalised.
        let reply = sign_up(&sys, &signup, "  Ada Lovelace ", &email, "correct-horse-1").await;
        assert!(
            reply.content_type.starts_with("application/json"),
            "{}",
            reply.content_type
        );
        let created = reply.expect(201);
        assert_no_secrets(&created);
        let token = str_of(&created["token"]);
        let user = created["user"].clone();
        assert_user(&user, "Ada Lovelace", &lower, role);
        assert_eq!(
            created.as_object().unwrap().len(),
            2,
            "only token and user: {created}"
        );

        // me: the same user.
        let mine = sys.http.get(&me, Some(&token)).await.expect(200);
        assert_eq!(mine["user"], user);
        assert_no_secrets(&mine);

        // Login (email in another case): 200 {token, user}; the new token works too.
        let logged = log_in(&sys, &login, &email.to_uppercase(), "correct-horse-1")
            .await
            .expect(200);
        assert_eq!(logged["user"], user);
        assert_no_secrets(&logged);
        let token2 = str_of(&logged["token"]);
        assert_eq!(
            sys.http.get(&me, Some(&token2)).await.expect(200)["user"]["id"],
            user["id"]
        );

        // Bad credentials: 401, the same answer whether the email exists or not.
        let wrong = log_in(&sys, &login, &lower, "wrong-horse-1")
            .await
            .expect_problem(401, "invalid_credentials");
        let nobody = format!("{}@example.com", unique("nobody"));
        let unknown = log_in(&sys, &login, &nobody, "correct-horse-1")
            .await
            .expect_problem(401, "invalid_credentials");
        assert_eq!(wrong["detail"], unknown["detail"]);
        expect_invalid(
            sys.http.post(&login, None, json!({"email": lower})).await,
            &["password"],
        );

        // Duplicate email (in any case): 409, and the first account still logs in.
        for dup in [email.clone(), lower.clone(), email.to_uppercase()] {
            sign_up(&sys, &signup, "Imposter", &dup, "another-pass-1")
                .await
                .expect_problem(409, "email_taken");
        }
        log_in(&sys, &login, &lower, "another-pass-1")
            .await
            .expect_problem(401, "invalid_credentials");

        // Invalid email, short password, blank name: 400 listing each field.
        for bad in ["not-an-email", "a@b", "a b@c.de", "@example.com", ""] {
            let body = expect_invalid(
                sign_up(&sys, &signup, "Bob", bad, "long-enough-1").await,
                &["email"],
            );
            assert_eq!(body["errors"][0]["field"], "email");
        }
        expect_invalid(
            sign_up(
                &sys,
                &signup,
                "Bob",
                &format!("{}@example.com", unique("bob")),
                "1234567",
            )
            .await,
            &["password"],
        );
        expect_invalid(
            sign_up(&sys, &signup, "   ", "x", "short").await,
            &["name", "email", "password"],
        );
        let missing = expect_invalid(
            sys.http
                .post(
                    &signup,
                    None,
                    json!({"name": "Bob", "email": "bob@example.com"}),
                )
                .await,
            &["password"],
        );
        assert_eq!(missing["errors"][0]["message"], "is required");
        // Exactly eight characters is enough.
        let eight = sign_up(
            &sys,
            &signup,
            "Bea",
            &format!("{}@example.com", unique("bea")),
            "12345678",
        )
        .await
        .expect(201);
        assert_user(
            &eight["user"],
            "Bea",
            eight["user"]["email"].as_str().unwrap(),
            role,
        );
        assert_ne!(eight["user"]["id"], user["id"]);

        // A token whose account does not exist is refused by /me.
        let ghost = JwtKeys::new(JWT_SECRET.as_bytes()).issue(
            "00000000-0000-7000-8000-000000000000",
            if role == "owner" {
                Role::Owner
            } else {
                Role::Traveler
            },
        );
        sys.http
            .get(&me, Some(&ghost))
            .await
            .expect_problem(401, "invalid_token");
    }
}
