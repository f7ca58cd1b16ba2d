//! `/health` and `/health/ready` on both services.

use crate::helpers::*;

#[tokio::test]
async fn health_and_readiness_answer_200_on_both_services() {
    let sys = System::embedded().await;
    let raw = RawClient::new();
    for base in [&sys.traveler, &sys.owner] {
        for (path, status) in [("health", "ok"), ("health/ready", "ready")] {
            let r = raw
                .send(Method::GET, &format!("{base}/{path}"), &[], None)
                .await;
            assert_eq!(r.status, 200, "{path}: {}", r.text);
            assert!(
                r.content_type.starts_with("application/json"),
                "{path}: {}",
                r.content_type
            );
            assert_eq!(r.body["status"], status, "{path}");
        }

        raw.send(Method::POST, &format!("{base}/health"), &[], None)
            .await
            .problem(405, "method_not_allowed");
    }
}
